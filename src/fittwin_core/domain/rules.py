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
from json.encoder import encode_basestring as _encode_json_string
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain.errors import ValidationError

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

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


TEXT_RULE = "must be valid Unicode text without NUL characters"
"""The rule every text value that enters FitTwin follows (no lone surrogates, no NUL)."""


def is_valid_text(value: str) -> bool:
    """Whether ``value`` is storable text: encodable as UTF-8 (no lone surrogates) and
    free of NUL, the two things PostgreSQL's ``text`` cannot hold."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(field: str, value: str) -> None:
    """Raise :class:`ValidationError` naming ``field`` unless ``value`` is valid text."""
    if not is_valid_text(value):
        raise ValidationError(field, TEXT_RULE)


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
        check_text(field, value)
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


_Plan = tuple[
    "tuple[tuple[attrs.Attribute[Any], Callable[[Any], Any] | None, Callable[..., Any] | None], ...]",
    "Callable[[Any], None] | None",
]
_EVOLVE_PLANS: dict[type[Any], _Plan] = {}


def _evolve_plan(cls: type[Any]) -> _Plan:
    plan = _EVOLVE_PLANS.get(cls)
    if plan is None:
        fields = []
        for field in attrs.fields(cls):
            convert = field.converter
            if not field.init or isinstance(convert, attrs.Converter):  # pragma: no cover
                raise TypeError(
                    f"evolved() takes plain converters and every field of {cls.__name__} in __init__"
                )
            fields.append((field, convert, field.validator))
        plan = (tuple(fields), getattr(cls, "__attrs_post_init__", None))
        _EVOLVE_PLANS[cls] = plan
    return plan


def evolved(instance: T, /, **changes: Any) -> T:
    """``attrs.evolve(instance, **changes)`` that converts and checks the changed fields only
    (and runs the class's ``__attrs_post_init__``), not again the fields copied unchanged,
    which passed their rules when ``instance`` was built. For entities whose moves change a few
    fields (an order's status, an effect's outcome); a test checks it equals ``attrs.evolve``,
    errors included."""
    cls = type(instance)
    fields, post_init = _evolve_plan(cls)
    made = object.__new__(cls)
    checks = []
    left = len(changes)
    for field, convert, validator in fields:
        if field.alias in changes:
            left -= 1
            value = changes[field.alias]
            if convert is not None:
                value = convert(value)
            if validator is not None:
                checks.append((validator, field, value))
        else:
            value = getattr(instance, field.name)
        object.__setattr__(made, field.name, value)
    if left:
        unknown = sorted(set(changes) - {field.alias for field, _, _ in fields})
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    for validator, field, value in checks:
        validator(made, field, value)
    if post_init is not None:
        post_init(made)
    return made


def to_tuple(value: Any) -> Any:
    """attrs converter: lists (from JSON) become tuples so entities stay immutable."""
    if isinstance(value, list):
        return tuple(value)
    return value


# ---------------------------------------------------------------------------- JSON columns


JSON_MAX_DEPTH = 32
"""How deeply any stored JSON value may nest (objects and arrays)."""
JSON_MAX_BYTES = 1024 * 1024
"""The largest stored JSON value, as the UTF-8 bytes of its compact JSON text."""
JSON_INPUT_MAX_DEPTH = 16
"""How deeply a free-form JSON object given to a service (``metadata``, ``fit_metadata``) may nest."""
JSON_INPUT_MAX_BYTES = 64 * 1024
"""The largest free-form JSON object a service accepts, as the UTF-8 bytes of its compact JSON text."""
JSON_INT_MIN, JSON_INT_MAX = -(2**63), 2**63 - 1
"""JSON integers are 64-bit (amounts are BIGINT and audit diffs carry them)."""

_SCALAR_SIZES = {True: 4, False: 5, None: 4}
_KEY_RULE = "object keys must be strings of valid Unicode text without NUL characters"


class _Budget:
    """Limits of one JSON walk and the bytes used so far."""

    __slots__ = ("max_bytes", "max_depth", "used")

    def __init__(self, max_depth: int, max_bytes: int) -> None:
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self.used = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise ValidationError("json", f"must be at most {self.max_bytes} bytes as JSON")


def _json_text_size(value: str, rule: str) -> int:
    """UTF-8 bytes of ``value`` as a JSON string; :class:`ValidationError` for NUL or a lone
    surrogate (``rule`` says which kind of text it was)."""
    if "\x00" in value:
        raise ValidationError("json", rule)
    escaped = _encode_json_string(value)
    if escaped.isascii():
        return len(escaped)
    try:
        return len(escaped.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError("json", rule) from None


_STRING_RULE = "strings must be valid Unicode text without NUL characters"
_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII without ``"`` and ``\\``: JSON writes it as it is, between quotes."""


def _freeze(value: Any, depth: int, budget: _Budget) -> Any:
    # The exact built-in types first (what JSON decoders and the converter produce): one type
    # lookup instead of an ABC check. Subclasses and other types take the general path below.
    kind = type(value)
    if kind is str:
        budget.spend(_json_text_size(value, _STRING_RULE))
        return value
    if kind is int:
        if not JSON_INT_MIN <= value <= JSON_INT_MAX:
            raise ValidationError("json", "integers must be within the 64-bit range")
        budget.spend(len(str(value)))
        return value
    if value is None or kind is bool:
        budget.spend(_SCALAR_SIZES[value])
        return value
    if kind is dict:
        return JsonMap._frozen(_freeze_items(value, depth + 1, budget))
    return _freeze_general(value, depth, budget)


def _freeze_general(value: Any, depth: int, budget: _Budget) -> Any:
    if isinstance(value, Mapping):
        return JsonMap._frozen(_freeze_items(value, depth + 1, budget))
    if isinstance(value, list | tuple):
        if depth + 1 > budget.max_depth:
            raise ValidationError("json", f"must nest at most {budget.max_depth} levels deep")
        budget.spend(1 + max(len(value), 1))  # brackets and commas
        return tuple(_freeze(v, depth + 1, budget) for v in value)
    if isinstance(value, str):
        budget.spend(_json_text_size(value, _STRING_RULE))
        return value
    if isinstance(value, bool) or value is None:
        budget.spend(_SCALAR_SIZES[value])
        return value
    if isinstance(value, int):
        if not JSON_INT_MIN <= value <= JSON_INT_MAX:
            raise ValidationError("json", "integers must be within the 64-bit range")
        budget.spend(len(str(value)))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("json", "numbers must be finite")
        budget.spend(len(repr(value)))
        return value
    if isinstance(value, JsonMap):  # pragma: no cover — a JsonMap is a Mapping
        return value
    raise ValidationError("json", f"values must be JSON (got {type(value).__name__})")


def _freeze_items(data: Mapping[Any, Any], depth: int, budget: _Budget) -> dict[str, Any]:
    if depth > budget.max_depth:
        raise ValidationError("json", f"must nest at most {budget.max_depth} levels deep")
    used = 1 + max(len(data), 1)  # braces and commas
    plain = _PLAIN_TEXT.fullmatch
    frozen: dict[str, Any] = {}
    for key, item in data.items():
        if type(key) is not str and not isinstance(key, str):
            raise ValidationError("json", _KEY_RULE)
        # Plain printable ASCII is its length plus quotes as JSON: the common case, measured
        # here in one step; anything else is measured exactly by _json_text_size.
        used += 3 + len(key) if plain(key) else 1 + _json_text_size(key, _KEY_RULE)
        kind = type(item)
        if kind is str:
            used += 2 + len(item) if plain(item) else _json_text_size(item, _STRING_RULE)
            frozen[key] = item
        elif kind is int and JSON_INT_MIN <= item <= JSON_INT_MAX:
            used += len(str(item))
            frozen[key] = item
        elif item is None or kind is bool:
            used += _SCALAR_SIZES[item]
            frozen[key] = item
        else:
            budget.spend(used)
            used = 0
            frozen[key] = _freeze(item, depth, budget)
    budget.spend(used)
    return frozen


class JsonMap(Mapping[str, Any]):
    """An immutable JSON object: the value of a free-form JSONB column.

    Nested objects become :class:`JsonMap` and arrays become tuples, so an entity holding one
    cannot be changed behind the store's back. Compares equal to a ``dict`` with the same
    content; :func:`thaw_json` turns it back into plain ``dict``/``list`` values.

    Only JSON goes in: string keys; strings that are valid Unicode without NUL; finite floats;
    integers within the 64-bit range; objects and arrays nested at most
    :data:`JSON_MAX_DEPTH` deep, the whole at most :data:`JSON_MAX_BYTES` as compact JSON.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = _freeze_items(data or {}, 1, _Budget(JSON_MAX_DEPTH, JSON_MAX_BYTES))
        self._hash: int | None = None

    @classmethod
    def _frozen(cls, frozen: dict[str, Any]) -> JsonMap:
        """Wrap an already frozen and checked dict (nested objects of a walk)."""
        made = cls.__new__(cls)
        made._data = frozen
        made._hash = None
        return made

    @classmethod
    def checked(cls, data: Mapping[str, Any], *, max_depth: int, max_bytes: int) -> JsonMap:
        """``data`` frozen under tighter limits than the stored ones (caller-supplied JSON)."""
        return cls._frozen(_freeze_items(data, 1, _Budget(max_depth, max_bytes)))

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


def freeze_json(value: Any) -> Any:
    """Deep-freeze a JSON value: objects to :class:`JsonMap`, arrays to tuples (within the
    limits :class:`JsonMap` documents; :class:`ValidationError` otherwise)."""
    if isinstance(value, JsonMap):
        return value
    return _freeze(value, 0, _Budget(JSON_MAX_DEPTH, JSON_MAX_BYTES))


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
    when it is not a JSON object or exceeds the input limits (:data:`JSON_INPUT_MAX_DEPTH`
    levels, :data:`JSON_INPUT_MAX_BYTES` bytes)."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a JSON object (a mapping)")
    try:
        return JsonMap.checked(value, max_depth=JSON_INPUT_MAX_DEPTH, max_bytes=JSON_INPUT_MAX_BYTES)
    except ValidationError as exc:
        raise ValidationError(field, exc.rule) from None
