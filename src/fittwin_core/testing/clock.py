"""Deterministic ``Clock`` and ``Ids`` for tests: time moves only when told to."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.ids import encode_rid, uuid7

DEFAULT_START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


class FrozenClock:
    """A clock standing still at ``start`` until :meth:`advance` or :meth:`set` moves it.

    >>> clock = FrozenClock()
    >>> clock.advance(days=1).isoformat()
    '2026-01-16T12:00:00+00:00'
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValidationError("start", "must carry a time zone")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` (or ``timedelta(**kwargs)``); returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValidationError("delta", "must not be negative: clocks do not run backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (forwards or backwards: tests may need either)."""
        if moment.tzinfo is None:
            raise ValidationError("moment", "must carry a time zone")
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()})"


class SequentialIds:
    """Reproducible ids: UUIDv7s from ``clock``'s time with a counter, rids and tokens from a
    seeded generator. Ids keep increasing even when the clock stands still."""

    def __init__(self, clock: FrozenClock | None = None, *, seed: int = 0) -> None:
        self._clock = clock or FrozenClock()
        self._random = random.Random(seed)  # noqa: S311 — reproducible test ids, not secrets
        self._counter = 0
        self._last_ms = -1
        self._lock = threading.Lock()

    def new_id(self) -> UUID:
        """The next UUIDv7."""
        with self._lock:
            ms = int(self._clock.now().timestamp() * 1000)
            if ms > self._last_ms:
                self._last_ms, self._counter = ms, 0
            self._counter += 1
            return uuid7(self._last_ms, self._counter)

    def new_rid(self) -> str:
        """A reproducible rid."""
        with self._lock:
            return encode_rid(self._random.randbytes(16))

    def new_token(self) -> UUID:
        """A reproducible UUIDv4 token."""
        with self._lock:
            return uuid.UUID(bytes=self._random.randbytes(16), version=4)


__all__ = ["DEFAULT_START", "FrozenClock", "SequentialIds"]
