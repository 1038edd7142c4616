"""A client-side deadline for every round trip to PostgreSQL.

Server-side time-outs (``statement_timeout``, ``lock_timeout``) only help while the server can
answer. When the network stops forwarding — a failed-over address, a stuck proxy or load
balancer that keeps the TCP connection open and acknowledges what it receives — the client
waits for an answer that never comes; TCP keepalives and ``tcp_user_timeout`` do not fire
because every segment is acknowledged. psycopg has no per-call time-out, and its cancel
request travels the same broken path (libpq's cancel blocks on it too).

So FitTwin arms a deadline around each call it makes; a single watchdog thread shuts the
socket of any call still waiting at its deadline down (``shutdown(2)``, not ``close``: the file
descriptor stays the connection's). The blocked call then fails at once with a lost
connection, which the adapter reports as :class:`~fittwin_core.domain.errors.StoreUnavailable`
and whose connection it discards. The watchdog sleeps while nothing is armed and wakes at the
earliest deadline otherwise; arming and disarming take a lock and a dictionary operation.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType
from typing import Self


class Deadline:
    """One armed round trip: ``with watchdog.deadline(fileno, seconds) as d: ...``;
    :attr:`expired` tells afterwards whether the watchdog cut it off."""

    __slots__ = ("_watchdog", "at", "expired", "fileno", "seconds")

    def __init__(self, watchdog: Watchdog, fileno: int, seconds: float) -> None:
        self._watchdog = watchdog
        self.fileno = fileno
        self.seconds = seconds
        self.at = 0.0
        self.expired = False

    def __enter__(self) -> Self:
        self.at = time.monotonic() + self.seconds
        self._watchdog._arm(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._watchdog._disarm(self)


class Unbounded:
    """A deadline that never expires (time-outs turned off, or no socket to watch)."""

    __slots__ = ()
    expired = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


UNBOUNDED = Unbounded()


class Watchdog:
    """Shuts down the sockets of round trips that overran their deadline (one thread,
    started on first use, restarted in a forked child)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed: dict[int, Deadline] = {}
        self._next: float | None = None
        self._thread: threading.Thread | None = None

    def deadline(self, fileno: int, seconds: float | None) -> Deadline | Unbounded:
        """A deadline ``seconds`` from entering it for the connection on socket ``fileno``
        (``None``: unbounded)."""
        if seconds is None or fileno < 0:
            return UNBOUNDED
        return Deadline(self, fileno, seconds)

    def _arm(self, deadline: Deadline) -> None:
        with self._lock:
            self._armed[id(deadline)] = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fittwin-postgres-watchdog", daemon=True
                )
                self._thread.start()
            if self._next is None or deadline.at < self._next:
                self._wake.notify()

    def _disarm(self, deadline: Deadline) -> None:
        with self._lock:
            self._armed.pop(id(deadline), None)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                pending = []
                for deadline in self._armed.values():
                    if deadline.expired:
                        continue
                    if deadline.at <= now:
                        deadline.expired = True
                        _shut_down(deadline.fileno)
                    else:
                        pending.append(deadline.at)
                self._next = min(pending) if pending else None
                self._wake.wait(None if self._next is None else self._next - now)


def _shut_down(fileno: int) -> None:
    # Runs under the watchdog's lock: the call is still armed, so its connection (and the file
    # descriptor) cannot have been closed. shutdown() acts on the socket shared by the duplicate.
    try:
        duplicate = socket.socket(fileno=os.dup(fileno))
    except OSError:
        return
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()


WATCHDOG = Watchdog()
"""The process's watchdog."""


__all__ = ["UNBOUNDED", "WATCHDOG", "Deadline", "Unbounded", "Watchdog"]
