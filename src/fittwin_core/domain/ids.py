"""Identifier formats: UUIDv7 (RFC 9562) entity ids and referral ids (rids).

Generating ids needs time and randomness, so it happens behind the ``Ids`` port; this module
holds the pure parts: composing a UUIDv7 from a timestamp and random bits, reading the
timestamp back (partition bounds are computed from it), and the rid format.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fittwin_core.domain.errors import ValidationError

RID_PATTERN = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
"""A rid: 128 bits in base64url without padding. The 22nd character carries the last two
bits followed by four zero bits, so it is one of ``A``, ``Q``, ``g``, ``w``."""

_MAX_MS = (1 << 48) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def uuid7(unix_ms: int, random_bits: int) -> UUID:
    """Compose a UUIDv7 from a Unix time in milliseconds and 74 random bits.

    Layout (RFC 9562 §5.7): 48-bit timestamp, 4-bit version ``0111``, 12 bits ``rand_a``,
    2-bit variant ``10``, 62 bits ``rand_b``.
    """
    if not 0 <= unix_ms <= _MAX_MS:
        raise ValidationError("unix_ms", "must fit in 48 bits")
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return UUID(int=value)


def uuid7_unix_ms(value: UUID) -> int:
    """The millisecond timestamp embedded in a UUIDv7."""
    if value.version != 7:
        raise ValidationError("id", "must be a UUIDv7")
    return value.int >> 80


def uuid7_datetime(value: UUID) -> datetime:
    """When a UUIDv7 was minted (UTC, millisecond precision)."""
    return datetime.fromtimestamp(uuid7_unix_ms(value) / 1000, tz=UTC)


def uuid7_floor(moment: datetime) -> UUID:
    """The smallest UUIDv7 minted at or after ``moment``: a range bound for partitions.

    Every UUIDv7 with a timestamp ``>= moment`` sorts at or above it, every earlier one below.
    """
    if moment.tzinfo is None:
        raise ValidationError("moment", "must carry a time zone")
    elapsed = moment - _EPOCH
    unix_ms = -(-elapsed // timedelta(milliseconds=1))  # ceiling: partial milliseconds round up
    return UUID(int=unix_ms << 80)


def is_rid(value: object) -> bool:
    """Whether ``value`` is a well-formed rid (22 base64url characters, 128 bits)."""
    return isinstance(value, str) and RID_PATTERN.fullmatch(value) is not None


def encode_rid(raw: bytes) -> str:
    """Encode 16 random bytes as a rid."""
    if len(raw) != 16:
        raise ValidationError("rid", "needs exactly 16 random bytes")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_rid(rid: str) -> bytes:
    """The 16 bytes behind a rid (raises :class:`ValidationError` if it is malformed)."""
    if not is_rid(rid):
        raise ValidationError("rid", "must be 22 base64url characters encoding 128 bits")
    return base64.urlsafe_b64decode(rid + "==")


__all__ = [
    "RID_PATTERN",
    "decode_rid",
    "encode_rid",
    "is_rid",
    "uuid7",
    "uuid7_datetime",
    "uuid7_floor",
    "uuid7_unix_ms",
]
