"""The one converter between entities/value objects and JSON-able dicts.

Every special type is handled here, once: UUIDs and Decimals as strings, datetimes as ISO
8601 in UTC (in the exact form PostgreSQL's ``to_jsonb`` prints a ``timestamptz`` in a UTC
session, so rows compare equal whichever store wrote them), dates as ISO dates, enums as their
labels, bytes as base64, frozen JSON objects as plain dicts, tuples and sets as lists, and
camelCase JSON keys where the data model names them (``hairColor``...), declared on the field
as ``metadata={"json": "hairColor"}``.

Structuring is strict (``"12"`` is not an int, a string is not a list of characters, unknown
keys are refused) and every failure becomes a :class:`ValidationError` naming the field path.

>>> from fittwin_core.domain.users import Appearance
>>> unstructure(Appearance(hair_color="auburn"))
{'hairColor': 'auburn', 'eyeColor': None, 'skinTone': None}
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import Any, TypeVar
from uuid import UUID

import attrs
import cattrs
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import JsonMap, parse_uuid, thaw_json

T = TypeVar("T")


# ----------------------------------------------------------------------------- scalar formats


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 in UTC with trailing zeros of the fraction dropped (PostgreSQL's JSON form)."""
    if value.tzinfo is None:
        raise ValidationError("datetime", "must carry a time zone")
    text = value.astimezone(dt.UTC).isoformat()
    if value.microsecond:
        stamp, offset = text[:-6], text[-6:]
        text = stamp.rstrip("0") + offset
    return text


def parse_datetime(value: object, field: str = "datetime") -> dt.datetime:
    """Parse an ISO 8601 timestamp that carries a time zone (datetimes pass through)."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, "must be an ISO 8601 timestamp") from None
    else:
        raise ValidationError(field, "must be an ISO 8601 timestamp")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(field, "must carry a time zone")
    return parsed


def _parse_date(value: object, _: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError("date", "must be an ISO 8601 date (YYYY-MM-DD)")


def _parse_uuid(value: object, _: object) -> UUID:
    return parse_uuid(value, "uuid")


def _parse_decimal(value: object, _: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise ValidationError("decimal", "must be a decimal string")


def _parse_bytes(value: object, _: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise ValidationError("bytes", "must be base64")


def _strict_int(value: object, _: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValidationError("int", "must be an integer")


def _strict_float(value: object, _: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValidationError("float", "must be a number")


def _strict_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    raise ValidationError("str", "must be a string")


def _strict_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValidationError("bool", "must be true or false")


def _json_map(value: object, _: object) -> JsonMap:
    if isinstance(value, JsonMap):
        return value
    if isinstance(value, dict):
        return JsonMap(value)
    raise ValidationError("json", "must be a JSON object")


# ----------------------------------------------------------------------------- collections


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_frozenset(tp: Any) -> bool:
    return typing.get_origin(tp) is frozenset or tp is frozenset


def _sequence_structure(conv: cattrs.Converter, tp: Any, build: Callable[[list[Any]], Any]) -> Any:
    (element, *_) = typing.get_args(tp) or (Any,)
    structure_element = conv.get_structure_hook(element)

    def structure(value: object, _: object) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValidationError("list", "must be a list")
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        out: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(items):
            try:
                out.append(structure_element(item, element))
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    cattrs.IterableValidationNote(f"index {index}", index, element),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError("While structuring a sequence", errors, tp)
        return build(out)

    return structure


@functools.cache
def _enum_structure(tp: type[Enum]) -> Callable[[object, object], Enum]:
    """The structure hook of enum ``tp`` (one per enum: the ``StrEnum`` hook asks per value)."""
    labels = ", ".join(str(member.value) for member in tp)

    def structure(value: object, _: object) -> Enum:
        try:
            return tp(value)
        except ValueError:
            raise ValidationError(tp.__name__, f"must be one of {labels}") from None

    return structure


# ----------------------------------------------------------------------------- attrs classes


def _json_overrides(cls: type[Any]) -> dict[str, Any]:
    return {
        field.name: override(rename=field.metadata["json"])
        for field in attrs.fields(cls)
        if "json" in field.metadata
    }


def make_converter() -> cattrs.Converter:
    """Build the converter (use the module-level :data:`converter`; this is for tests)."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    conv.register_unstructure_hook(UUID, str)
    conv.register_structure_hook(UUID, _parse_uuid)
    conv.register_unstructure_hook(dt.datetime, format_datetime)
    conv.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    conv.register_unstructure_hook(dt.date, dt.date.isoformat)
    conv.register_structure_hook(dt.date, _parse_date)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _parse_decimal)
    conv.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    conv.register_structure_hook(bytes, _parse_bytes)
    conv.register_unstructure_hook(JsonMap, thaw_json)
    conv.register_structure_hook(JsonMap, _json_map)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)

    # StrEnum is also a str, whose identity hook would win the dispatch: name it explicitly.
    conv.register_unstructure_hook(StrEnum, lambda member: member.value)
    conv.register_unstructure_hook(Enum, lambda member: member.value)
    conv.register_structure_hook(StrEnum, lambda value, tp: _enum_structure(tp)(value, tp))
    conv.register_structure_hook_factory(
        lambda tp: isinstance(tp, type) and issubclass(tp, Enum), _enum_structure
    )
    conv.register_unstructure_hook_factory(
        _is_homogeneous_tuple, lambda tp: lambda value: [conv.unstructure(v) for v in value]
    )
    conv.register_structure_hook_factory(
        _is_homogeneous_tuple, lambda tp: _sequence_structure(conv, tp, tuple)
    )
    conv.register_unstructure_hook_factory(
        _is_frozenset, lambda tp: lambda value: sorted(conv.unstructure(v) for v in value)
    )
    conv.register_structure_hook_factory(_is_frozenset, lambda tp: _sequence_structure(conv, tp, frozenset))

    def unstructure_attrs(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
        attrs.resolve_types(cls)
        return make_dict_unstructure_fn(cls, conv, **_json_overrides(cls))

    def structure_attrs(cls: type[Any]) -> Callable[[Any, Any], Any]:
        attrs.resolve_types(cls)
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **_json_overrides(cls))

    conv.register_unstructure_hook_factory(attrs.has, unstructure_attrs)
    conv.register_structure_hook_factory(attrs.has, structure_attrs)
    return conv


converter = make_converter()
"""The shared converter: entities and value objects ⇄ JSON-able dicts."""


# ----------------------------------------------------------------------------- errors


def _join(path: str, name: str) -> str:
    if not path:
        return name
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"


def _first_failure(exc: BaseException, path: str, root: str = "value") -> ValidationError:
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            return _first_failure(sub, _join(path, note.name))
        for sub in without:
            return _first_failure(sub, path)
    if isinstance(exc, IterableValidationError):
        with_notes_i, without_i = exc.group_exceptions()
        for sub, inote in with_notes_i:
            return _first_failure(sub, _join(path, f"[{inote.index}]"))
        for sub in without_i:
            return _first_failure(sub, path)
    if isinstance(exc, ForbiddenExtraKeysError):
        return ValidationError(path or root, f"has unknown fields: {', '.join(sorted(exc.extra_fields))}")
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            return _first_failure(sub, path)
    if isinstance(exc, ValidationError):
        # Scalar hooks name their type, not a field: the path says where it was.
        scalar = exc.field in {
            "int",
            "float",
            "str",
            "bool",
            "uuid",
            "date",
            "datetime",
            "decimal",
            "bytes",
            "json",
            "list",
        }
        if scalar or path.endswith(exc.field):
            return ValidationError(path or exc.field, exc.rule)
        return ValidationError(_join(path, exc.field), exc.rule)
    if isinstance(exc, KeyError):
        return ValidationError(path or "value", "is required")
    return ValidationError(path or "value", "has the wrong type or shape")


def unstructure(value: Any) -> Any:
    """An entity or value object (or a collection of them) as JSON-able data."""
    return converter.unstructure(value)


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from JSON-able ``data``; any problem is a :class:`ValidationError`
    naming the field path (``"body_metrics.height_cm"``)."""
    if attrs.has(cls) and not isinstance(data, dict):
        raise ValidationError(cls.__name__, "must be a JSON object")
    try:
        return converter.structure(data, cls)
    except ValidationError:
        raise
    except (BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise _first_failure(exc, "", getattr(cls, "__name__", "value")) from None


# ----------------------------------------------------------------------------- stored rows


_PASSED_AS_THEY_ARE: frozenset[type[Any]] = frozenset(
    {str, int, float, bool, UUID, dt.datetime, dt.date, Decimal, bytes}
)
"""Scalar types whose structure hook returns a value of exactly that type unchanged (``bool``
is not an ``int`` here, nor a ``datetime`` a ``date``: the test is ``type(value) is``)."""

_ROW_BUILDERS: dict[type[Any], Callable[[Mapping[Any, Any]], Any]] = {}


def trusted_row_builder(cls: type[T]) -> Callable[[Mapping[Any, Any]], T]:
    """The function building ``cls`` from a row read back from a store that validated the
    values when it wrote them (built once per class).

    It gives exactly what ``structure(dict(row), cls)`` gives, skipping the attrs validators
    and nothing else: every field is structured by the converter's hook for its type (a value
    already of the declared scalar type as it is, an enum by its label, an attrs value held in
    a JSON document, or a tuple of them, by this same kind of builder), then passed through
    the field's attrs ``converter=`` and set; then ``__attrs_post_init__`` runs, as in
    ``__init__``. A row whose keys are not exactly the fields' JSON names, or whose values the
    hooks refuse, goes to :func:`structure`, so its errors are the same. Not for input from
    callers, which must be validated.
    """
    found = _ROW_BUILDERS.get(cls)
    if found is None:
        found = _ROW_BUILDERS[cls] = _make_row_builder(cls)
    return found


def _declared(tp: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, ``(tp, False)`` otherwise."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = tuple(arg for arg in args if arg is not type(None))
        return (rest[0] if len(rest) == 1 else tp), True
    return tp, False


def _stored_values(tp: Any) -> Callable[[Any, Any], Any]:
    """For a field holding an attrs value (or a tuple of them) in a stored JSON document: the
    value built by its own :func:`trusted_row_builder` (a JSON object as a ``dict``, an array
    as a ``list``); anything else raises ``TypeError``, sending the row to :func:`structure`."""
    if attrs.has(tp):

        def value(data: Any, _: Any) -> Any:
            if type(data) is not dict:
                raise TypeError(f"{tp.__name__} is stored as a JSON object")
            return trusted_row_builder(tp)(data)

        return value
    (element,) = typing.get_args(tp)[:1]

    def values(data: Any, _: Any) -> tuple[Any, ...]:
        if type(data) is not list or any(type(item) is not dict for item in data):
            raise TypeError(f"{element.__name__} values are stored as a JSON array of objects")
        build = trusted_row_builder(element)
        return tuple([build(item) for item in data])

    return values


def _make_row_builder(cls: type[T]) -> Callable[[Mapping[Any, Any]], T]:
    def validated(row: Mapping[Any, Any]) -> T:
        return structure(dict(row), cls)

    entity_cls: type[Any] = cls
    attrs.resolve_types(entity_cls)
    fields = attrs.fields(entity_cls)
    if (
        getattr(cls, "__attrs_pre_init__", None) is not None
        or any(not field.init or isinstance(field.converter, attrs.Converter) for field in fields)
        or "__attrs_cached_hash__" in getattr(cls, "__slots__", ())
    ):  # what __init__ does there is more than setting converted values: let it do it
        return validated
    plan: list[tuple[str, str, Any, bool, Callable[[Any, Any], Any], Any, Any]] = []
    for field in fields:
        declared, optional = _declared(field.type)
        hook: Callable[[Any, Any], Any]
        if isinstance(declared, type) and issubclass(declared, Enum):
            hook = _enum_structure(declared)
        elif attrs.has(declared) or (_is_homogeneous_tuple(declared) and attrs.has(declared.__args__[0])):
            hook = _stored_values(declared)
        else:
            hook = converter.get_structure_hook(field.type)
        plan.append(
            (
                field.name,
                field.metadata.get("json", field.name),
                declared if declared in _PASSED_AS_THEY_ARE else None,
                optional,
                hook,
                field.type,
                field.converter,
            )
        )
    steps = tuple(plan)
    width = len(steps)
    post_init = getattr(cls, "__attrs_post_init__", None)
    new = object.__new__
    set_field = object.__setattr__

    def build(row: Mapping[Any, Any]) -> T:
        if len(row) != width:
            return validated(row)
        entity = new(cls)
        try:
            for name, key, exact, optional, hook, tp, convert in steps:
                value = row[key]
                if type(value) is not exact and (value is not None or not optional):
                    value = hook(value, tp)
                if convert is not None:
                    value = convert(value)
                set_field(entity, name, value)
            if post_init is not None:
                post_init(entity)
        except Exception:  # a key missing, a value refused: the validated path says why
            return validated(row)
        return entity

    return build


__all__ = [
    "converter",
    "format_datetime",
    "make_converter",
    "parse_datetime",
    "structure",
    "trusted_row_builder",
    "unstructure",
]
