"""Records that support the data model without being part of it: per-owner data keys (for
envelope encryption and crypto-shredding) and idempotency keys."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import redacted

PLATFORM_KEY_OWNER = UUID(int=0)
"""Owner of the data key that seals data belonging to no user (brand addresses, webhook secrets)."""


def _wrapped(field: str, value: object) -> None:
    if not isinstance(value, bytes) or not 16 <= len(value) <= 4096:
        raise ValidationError(field, "must be 16 to 4096 bytes of wrapped key material")


@attrs.frozen(kw_only=True)
class DataKey:
    """A data-encryption key of one owner, wrapped by a key-encryption key (``data_keys``).

    Deleting it crypto-shreds everything sealed under it. Rotation re-wraps ``wrapped_key``
    under a newer KEK (``kek_id``) without touching the rows it sealed.
    """

    owner_id: UUID = attrs.field(validator=rules.uuid)
    key_id: str = attrs.field(validator=rules.text(max_len=64, pattern=r"[A-Za-z0-9_-]+"))
    kek_id: str = attrs.field(validator=rules.text(max_len=64))
    wrapped_key: bytes = attrs.field(validator=rules.Rule(_wrapped), repr=redacted)
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


@attrs.frozen(kw_only=True)
class IdempotencyRecord:
    """The first result of a request made with an idempotency key (``idempotency_keys``).

    ``(scope, key)`` is unique; ``request_hash`` tells a true repeat from a reuse of the key
    with different input (a :class:`~fittwin_core.domain.errors.Conflict`).
    """

    scope: str = attrs.field(validator=rules.text(max_len=64))
    key: str = attrs.field(repr=redacted, validator=rules.text(max_len=255))
    request_hash: str = attrs.field(repr=redacted, validator=rules.text(max_len=128))
    result_id: UUID = attrs.field(validator=rules.uuid)
    created_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = ["PLATFORM_KEY_OWNER", "DataKey", "IdempotencyRecord"]
