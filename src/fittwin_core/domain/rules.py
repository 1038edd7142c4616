"""Validators shared by every entity: each mirrors a column rule of the data model.

They are attrs validators (``validator(instance, attribute, value)``) that raise
:class:`~fittwin_core.domain.errors.ValidationError` naming the field and the rule, never the
value. Entities declare them next to their fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain.errors import ValidationError

E = TypeVar("E", bound=StrEnum)

_REDACTED = "<redacted>"


def redacted(value: object) -> str:
    """attrs ``repr=`` hook for personal data and secrets: show only whether a value is set."""
    return "None" if value is None else _REDACTED


class Rule:
    """A named check usable as an attrs validator or on its own with :meth:`check`."""

    __slots__ = ("_check",)

    def __init__(self, check: Callable[[str, Any], None]) -> None:
        self._check = check

    def check(self, field: str, value: Any) -> None:
        """Raise :class:`ValidationError` naming ``field`` unless ``value`` passes."""
        self._check(field, value)

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        self._check(attribute.name, value)


def optional(rule: Rule) -> Rule:
    """Accept ``None``, otherwise apply ``rule``."""

    def check(field: str, value: Any) -> None:
        if value is not None:
            rule.check(field, value)

    return Rule(check)


def text(
    *,
    min_len: int = 1,
    max_len: int | None = None,
    pattern: str | None = None,
    rule: str | None = None,
) -> Rule:
    """A ``str`` of ``min_len``..``max_len`` characters, optionally matching ``pattern``."""
    compiled = re.compile(pattern) if pattern else None

    def check(field: str, value: Any) -> None:
        if not isinstance(value, str):
            raise ValidationError(field, "must be a string")
        if len(value) < min_len:
            raise ValidationError(
                field, "must not be empty" if min_len == 1 else f"must be at least {min_len} characters"
            )
        if max_len is not None and len(value) > max_len:
            raise ValidationError(field, f"must be at most {max_len} characters")
        if "\x00" in value:
            raise ValidationError(field, "must not contain NUL characters")
        if compiled is not None and not compiled.fullmatch(value):
            raise ValidationError(field, rule or f"must match {pattern}")

    return Rule(check)


def integer(*, ge: int | None = None, le: int | None = None, gt: int | None = None) -> Rule:
    """An ``int`` (not a ``bool``) within the given bounds."""

    def check(field: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(field, "must be an integer")
        if gt is not None and value <= gt:
            raise ValidationError(field, f"must be greater than {gt}")
        if ge is not None and value < ge:
            raise ValidationError(field, "must not be negative" if ge == 0 else f"must be at least {ge}")
        if le is not None and value > le:
            raise ValidationError(field, f"must be at most {le}")

    return Rule(check)


def number(*, ge: float, le: float, unit: str = "") -> Rule:
    """A finite ``int``/``float`` within ``[ge, le]`` (used for body measurements)."""
    suffix = f" {unit}" if unit else ""

    def check(field: str, value: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValidationError(field, "must be a finite number")
        if not ge <= value <= le:
            raise ValidationError(field, f"must be between {ge:g} and {le:g}{suffix}")

    return Rule(check)


def _boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")


def parse_uuid(value: object, field: str) -> UUID:
    """``value`` as a :class:`UUID` (UUIDs pass, strings are parsed); :class:`ValidationError`
    naming ``field`` otherwise."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValidationError(field, "must be a UUID")


def _uuid(field: str, value: Any) -> None:
    if not isinstance(value, UUID):
        raise ValidationError(field, "must be a UUID")


def _aware_datetime(field: str, value: Any) -> None:
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must carry a time zone")


def _calendar_date(field: str, value: Any) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(field, "must be a date")


boolean = Rule(_boolean)
"""A real ``bool``."""
uuid = Rule(_uuid)
"""A :class:`uuid.UUID`."""
aware_datetime = Rule(_aware_datetime)
"""A :class:`datetime` with a time zone (the store keeps ``timestamptz``)."""
calendar_date = Rule(_calendar_date)
"""A :class:`date` (and not a datetime)."""


def member_of(enum: type[E]) -> Rule:
    """A member of ``enum`` ."""
    labels = ", ".join(e.value for e in enum)

    def check(field: str, value: Any) -> None:
        if not isinstance(value, enum):
            raise ValidationError(field, f"must be one of {labels}")

    return Rule(check)


def parse_enum(enum: type[E], value: object, field: str) -> E:
    """``value`` as a member of ``enum`` (members pass, labels are looked up); a
    :class:`ValidationError` naming ``field`` and the allowed labels otherwise."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    labels = ", ".join(e.value for e in enum)
    raise ValidationError(field, f"must be one of {labels}")


def sequence_of(rule: Rule) -> Rule:
    """A tuple whose every element passes ``rule`` (the error names the index)."""

    def check(field: str, value: Any) -> None:
        if not isinstance(value, tuple):
            raise ValidationError(field, "must be a sequence")
        for index, item in enumerate(value):
            rule.check(f"{field}[{index}]", item)

    return Rule(check)


def instance_of(cls: type[Any], rule: str | None = None) -> Rule:
    """An instance of ``cls`` (value objects nested in entities)."""

    def check(field: str, value: Any) -> None:
        if not isinstance(value, cls):
            raise ValidationError(field, rule or f"must be a {cls.__name__}")

    return Rule(check)


def to_tuple(value: Any) -> Any:
    """attrs converter: lists (from JSON) become tuples so entities stay immutable."""
    if isinstance(value, list):
        return tuple(value)
    return value


# ---------------------------------------------------------------------------- JSON columns


class JsonMap(Mapping[str, Any]):
    """An immutable JSON object: the value of a free-form JSONB column.

    Nested objects become :class:`JsonMap` and arrays become tuples, so an entity holding one
    cannot be changed behind the store's back. Compares equal to a ``dict`` with the same
    content; :func:`thaw_json` turns it back into plain ``dict``/``list`` values.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        frozen: dict[str, Any] = {}
        for key, item in (data or {}).items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValidationError("json", "object keys must be strings without NUL characters")
            frozen[key] = freeze_json(item)
        self._data = frozen
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == {k: freeze_json(v) for k, v in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"JsonMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (JsonMap, (thaw_json(self),))


_JSON_SCALARS = (str, int, float, bool, type(None))


def freeze_json(value: Any) -> Any:
    """Deep-freeze a JSON value: objects to :class:`JsonMap`, arrays to tuples."""
    if isinstance(value, JsonMap):
        return value
    if isinstance(value, Mapping):
        return JsonMap(value)
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("json", "numbers must be finite")
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError("json", "strings must not contain NUL characters")
    if isinstance(value, _JSON_SCALARS):
        return value
    raise ValidationError("json", f"values must be JSON (got {type(value).__name__})")


def thaw_json(value: Any) -> Any:
    """The plain ``dict``/``list`` form of a (possibly frozen) JSON value."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw_json(v) for v in value]
    return value


def to_json_map(value: Any) -> Any:
    """attrs converter for JSON object columns (``None`` stays ``None``)."""
    if value is None or isinstance(value, JsonMap):
        return value
    if isinstance(value, Mapping):
        return JsonMap(value)
    return value


def _json_object(field: str, value: Any) -> None:
    if not isinstance(value, JsonMap):
        raise ValidationError(field, "must be a JSON object")


json_object = Rule(_json_object)
"""A JSON object (after :func:`to_json_map`)."""


def json_object_from(value: object, field: str) -> JsonMap:
    """``value`` (a mapping) as a frozen JSON object; :class:`ValidationError` naming ``field``
    when it is not a JSON object."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a JSON object (a mapping)")
    try:
        return JsonMap(value)
    except ValidationError as exc:
        raise ValidationError(field, exc.rule) from None
