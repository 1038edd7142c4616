"""Default implementations of the ``Clock`` and ``Ids`` ports: the real time and ``secrets``.

They need nothing but the standard library, so every adapter and the composition root can use
them. Tests use the deterministic ones in :mod:`fittwin_core.testing.clock` instead.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from uuid import UUID

from fittwin_core.domain.ids import encode_rid, uuid7

_RANDOM_BITS = 74
_HEADROOM = 1 << (_RANDOM_BITS - 1)


class SystemClock:
    """The current UTC time."""

    def now(self) -> datetime:
        """The current time, time-zone aware (UTC)."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class SystemIds:
    """UUIDv7 ids (monotonic within the process), rids and tokens from :mod:`secrets`.

    Ids minted in the same millisecond count up from a random start (RFC 9562 §6.2, method 2),
    so ids from one process are strictly increasing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new_id(self) -> UUID:
        """A fresh UUIDv7."""
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                # Start in the lower half so increments within the millisecond cannot overflow.
                self._last_random = secrets.randbits(_RANDOM_BITS) % _HEADROOM
            else:
                self._last_random += 1
                if self._last_random >= 1 << _RANDOM_BITS:
                    self._last_ms += 1
                    self._last_random = 0
            return uuid7(self._last_ms, self._last_random)

    def new_rid(self) -> str:
        """A rid: 128 bits from :mod:`secrets`, base64url without padding."""
        return encode_rid(secrets.token_bytes(16))

    def new_token(self) -> UUID:
        """A random UUIDv4 token."""
        return uuid.uuid4()

    def __repr__(self) -> str:
        return "SystemIds()"


__all__ = ["SystemClock", "SystemIds"]
