"""Object keys: the names media are stored under, checked before they reach a backend.

A key is a relative, ``/``-separated path such as ``avatars/<user_id>/v3.glb``. The same rules
hold on every backend, so a key that works on ``memory://`` works on ``s3://`` and on disk.
"""

from __future__ import annotations

import re

from fittwin_core.domain.errors import ValidationError

MAX_KEY_BYTES = 1024
"""S3's limit on a key, in UTF-8 bytes (and ``avatars.mesh_ref``'s length)."""

MAX_SEGMENT_BYTES = 255
"""The longest file name most file systems accept, in UTF-8 bytes."""

RESERVED_FOLDER = ".fittwin-meta"
"""Top-level folder where backends without object metadata keep their sidecar records."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_object_key(key: object, field: str = "key") -> str:
    """Return ``key`` if it is a valid object key; raise :class:`ValidationError` otherwise.

    Valid keys are non-empty strings of at most 1024 UTF-8 bytes, relative (no leading ``/``),
    made of non-empty ``/``-separated segments of at most 255 bytes that are neither ``.`` nor
    ``..``, without backslashes or control characters, and outside the reserved
    ``.fittwin-meta/`` folder.
    """
    if not isinstance(key, str):
        raise ValidationError(field, "must be a string")
    if not key:
        raise ValidationError(field, "must not be empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode text") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(field, f"must be at most {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise ValidationError(field, "must be relative (no leading '/')")
    if "\\" in key:
        raise ValidationError(field, "must not contain backslashes")
    if _CONTROL.search(key):
        raise ValidationError(field, "must not contain control characters")
    segments = key.split("/")
    for segment in segments:
        if not segment:
            raise ValidationError(field, "must not contain empty segments ('//' or a trailing '/')")
        if segment in {".", ".."}:
            raise ValidationError(field, "must not contain '.' or '..' segments")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ValidationError(field, f"segments must be at most {MAX_SEGMENT_BYTES} bytes")
    if segments[0] == RESERVED_FOLDER:
        raise ValidationError(field, f"must not lie in the reserved folder {RESERVED_FOLDER}/")
    return key


__all__ = ["MAX_KEY_BYTES", "MAX_SEGMENT_BYTES", "RESERVED_FOLDER", "check_object_key"]
