"""Avatars: versioned 3D body meshes generated from a shopper's measurements and photos."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import redacted
from fittwin_core.domain.users import MEASUREMENT_RANGES


class AvatarStatus(StrEnum):
    """``avatars.status``: ``processing → ready`` or ``processing → failed``."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class PhotoRef:
    """A photo used to build an avatar: where it is stored and what it is (no pixels here)."""

    object_key: str = attrs.field(validator=rules.text(max_len=1024))
    content_type: str = attrs.field(
        default="image/jpeg",
        validator=rules.text(max_len=100, pattern=r"image/[a-z0-9.+-]+", rule="must be an image/* type"),
    )
    width: int | None = attrs.field(default=None, validator=rules.optional(rules.integer(gt=0, le=20000)))
    height: int | None = attrs.field(default=None, validator=rules.optional(rules.integer(gt=0, le=20000)))
    view: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=20)))


def _measurement_map(field: str, value: Any) -> None:
    rules.json_object.check(field, value)
    for name, cm in value.items():
        if name in {"height_cm", "weight_kg"}:
            continue
        if name not in MEASUREMENT_RANGES:
            raise ValidationError(f"{field}.{name}", "is not a known measurement")
        low, high = MEASUREMENT_RANGES[name]
        rules.number(ge=low, le=high, unit="cm").check(f"{field}.{name}", cm)


@attrs.frozen(kw_only=True)
class AvatarSources:
    """What an avatar was built from (``avatars.sources``): a measurement snapshot, photo
    metadata, and whether it is a quick estimate from height and weight alone."""

    measurements: rules.JsonMap = attrs.field(
        factory=rules.JsonMap, converter=rules.to_json_map, validator=rules.Rule(_measurement_map)
    )
    photos: tuple[PhotoRef, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.sequence_of(rules.instance_of(PhotoRef))
    )
    quick_estimate: bool = attrs.field(default=False, validator=rules.boolean)


@attrs.frozen(kw_only=True)
class Avatar:
    """One version of a shopper's avatar (``avatars``). ``(user_id, version)`` is unique;
    ``mesh_ref`` is the object key of the mesh once ``ready``; ``deleted_at`` marks DSR removal."""

    id: UUID = attrs.field(validator=rules.uuid)
    user_id: UUID = attrs.field(validator=rules.uuid)
    version: int = attrs.field(validator=rules.integer(ge=1, le=2**31 - 1))
    sources: AvatarSources = attrs.field(repr=redacted, validator=rules.instance_of(AvatarSources))
    status: AvatarStatus = attrs.field(
        default=AvatarStatus.PROCESSING, validator=rules.member_of(AvatarStatus)
    )
    mesh_ref: str | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.text(max_len=1024))
    )
    generated_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    confidence: int | None = attrs.field(default=None, validator=rules.optional(rules.integer(ge=0, le=100)))
    failure_reason: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=500)))
    deleted_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = ["Avatar", "AvatarSources", "AvatarStatus", "PhotoRef"]
