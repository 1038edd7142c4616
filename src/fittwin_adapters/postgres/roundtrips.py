"""Counting round trips to PostgreSQL, on the wire.

:class:`RoundTripCounter` is a small TCP relay between a client and the server: give the
client :attr:`RoundTripCounter.url` instead of the server's, and it counts every time the
client speaks after the server has answered — one round trip, whatever sent it (a statement,
SQLAlchemy's or psycopg's ``BEGIN``, a ``COMMIT``, a ``COPY``, a whole psycopg pipeline).
Statements a client sends together, without waiting in between, count once, as they cost one
wait. It is a measuring tool for tests and benchmarks, not for production traffic::

    with RoundTripCounter(url) as counter:
        store = PostgresStore(counter.url)
        ...
        counter.reset()
        ft.orders.place(...)
        print(counter.count)
"""

from __future__ import annotations

import selectors
import socket
import threading
from contextlib import suppress
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import URL

_CHUNK = 1 << 16


class RoundTripCounter:
    """A relay on ``127.0.0.1`` to the server of ``url`` that counts client turns (see the module)."""

    def __init__(self, url: str | URL) -> None:
        self.target = sa.engine.make_url(url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        port = self._listener.getsockname()[1]
        self.url: URL = self.target.set(host="127.0.0.1", port=port)
        """The URL to connect through (same database, user and options)."""
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fittwin-roundtrips", daemon=True)
        self._thread.start()

    @property
    def count(self) -> int:
        """Round trips since the relay started or since :meth:`reset`."""
        with self._lock:
            return self._count

    def reset(self) -> int:
        """Start counting from zero; the count until now."""
        with self._lock:
            count, self._count = self._count, 0
            return count

    def close(self) -> None:
        """Stop relaying (connections through it are cut)."""
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ relay

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        # per client socket: [client, server, client spoke last]
        pairs: dict[socket.socket, tuple[socket.socket, socket.socket, list[bool]]] = {}
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    if key.data is None:
                        self._accept(selector, pairs)
                        continue
                    client, server, state = key.data
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop(selector, pairs, client, server)
                        continue
                    if source is client:
                        if not state[0]:
                            state[0] = True
                            with self._lock:
                                self._count += 1
                        target = server
                    else:
                        state[0] = False
                        target = client
                    try:
                        target.sendall(data)
                    except OSError:
                        self._drop(selector, pairs, client, server)
        finally:
            for client, server, _ in list(pairs.values()):
                self._drop(selector, pairs, client, server)
            selector.close()

    def _accept(
        self,
        selector: selectors.BaseSelector,
        pairs: dict[socket.socket, tuple[socket.socket, socket.socket, list[bool]]],
    ) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        server = socket.create_connection((self.target.host or "127.0.0.1", self.target.port or 5432))
        for sock in (client, server):
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        entry = (client, server, [False])
        pairs[client] = entry
        selector.register(client, selectors.EVENT_READ, entry)
        selector.register(server, selectors.EVENT_READ, entry)

    @staticmethod
    def _drop(
        selector: selectors.BaseSelector,
        pairs: dict[socket.socket, tuple[socket.socket, socket.socket, list[bool]]],
        client: socket.socket,
        server: socket.socket,
    ) -> None:
        if pairs.pop(client, None) is None:
            return
        for sock in (client, server):
            with suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()


__all__ = ["RoundTripCounter"]
