"""The input boundary: every public service method checks its arguments before it runs.

:class:`~fittwin_core.services.base.Service` guards each public method of its subclasses
with :func:`guarded`, which reads the method's own annotations. So the signature *is* the
contract, and no service spells the checks out again:

* **Types.** An argument must be of a type its annotation names (``str``, ``int``, ``bool``,
  ``float``, ``bytes``, ``UUID``, ``date``/``datetime``, an enum, an attrs class, a mapping, a
  list of …; a union accepts any of its members). ``bool`` is not an ``int``, a ``float`` is
  not an ``int``, ``bytes`` are not text, a naive ``datetime`` carries no time zone. A
  ``UUID`` may also be given as its canonical string (parsed here). Integers fit 64 bits.
  Elements of a list argument are checked against the element type.
* **Text.** Every string anywhere in an argument — nested in mappings and lists too, keys
  included — is valid Unicode without NUL (:data:`~fittwin_core.domain.rules.TEXT_RULE`):
  no lone surrogates, which UTF-8 cannot encode, and no NUL, which PostgreSQL's ``text``
  cannot hold.
* **Depth.** Mappings and lists nest at most
  :data:`~fittwin_core.domain.rules.JSON_MAX_DEPTH` levels.

A broken rule is a :class:`~fittwin_core.domain.errors.ValidationError` naming the argument
(with a path into nested values, ``metadata.door`` or ``items[0]``), raised before any store
is touched — so both stores give the same answer. Annotations that are not types a caller
passes (protocols, ``Any``) are not checked. Business rules (lengths, formats, ranges) stay
with the domain entities and services.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import JSON_MAX_DEPTH, TEXT_RULE, is_valid_text, parse_uuid

F = TypeVar("F", bound=Callable[..., Any])

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Every integer argument fits a PostgreSQL BIGINT."""

_NOT_LISTS = (str, bytes, bytearray, Mapping)
_CONTAINERS = (list, tuple, set, frozenset)


@attrs.frozen
class _Spec:
    """What one annotation accepts: ``matches`` decides by type, ``refine`` checks (and may
    convert) a value that matched, raising :class:`ValidationError` naming the field."""

    description: str
    matches: Callable[[Any], bool]
    refine: Callable[[str, Any], Any] = lambda field, value: value


def _int64(field: str, value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(field, "must be an integer that fits 64 bits")
    return value


def _aware(field: str, value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must carry a time zone")
    return value


def _scalar(tp: Any, *, strict_uuid: bool) -> _Spec | None:
    if tp is type(None):
        return _Spec("None", lambda v: v is None)
    if tp is str:
        return _Spec("a string", lambda v: isinstance(v, str))
    if tp is bool:
        return _Spec("true or false", lambda v: isinstance(v, bool))
    if tp is int:
        return _Spec("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), _int64)
    if tp is float:
        return _Spec("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    if tp is bytes:
        return _Spec("bytes", lambda v: isinstance(v, bytes | bytearray))
    if tp is UUID:
        if strict_uuid:
            return _Spec("a UUID", lambda v: isinstance(v, UUID))
        return _Spec(
            "a UUID",
            lambda v: isinstance(v, UUID | str),
            lambda f, v: v if isinstance(v, UUID) else parse_uuid(v, f),
        )
    if tp is dt.datetime:
        return _Spec("a datetime with a time zone", lambda v: isinstance(v, dt.datetime), _aware)
    if tp is dt.date:
        return _Spec("a date", lambda v: isinstance(v, dt.date))
    if isinstance(tp, type) and issubclass(tp, Enum):
        labels = ", ".join(str(m.value) for m in tp)
        return _Spec(f"one of {labels}", lambda v: isinstance(v, tp))
    if isinstance(tp, type) and not getattr(tp, "_is_protocol", False):
        article = "an" if tp.__name__[:1].lower() in "aeiou" else "a"
        return _Spec(f"{article} {tp.__name__}", lambda v: isinstance(v, tp))
    return None


def _elements(element: _Spec | None) -> Callable[[str, Any], Any]:
    def refine(field: str, value: Any) -> Any:
        if element is not None and isinstance(value, _CONTAINERS):
            for index, item in enumerate(value):
                if not element.matches(item):  # the type only: the service parses the rest
                    raise ValidationError(f"{field}[{index}]", f"must be {element.description}")
        return value

    return refine


def _apply(spec: _Spec, field: str, value: Any) -> Any:
    if not spec.matches(value):
        raise ValidationError(field, f"must be {spec.description}")
    return spec.refine(field, value)


def _is_unset(tp: Any) -> bool:
    from fittwin_core.services.base import Unset  # base imports this module

    return tp is Unset


def spec_for(annotation: Any, *, strict_uuid: bool = False) -> _Spec | None:
    """What ``annotation`` accepts (``None``: anything, e.g. ``Any`` or a protocol)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return None
    if origin is typing.Union or origin is types.UnionType:
        members = [spec_for(arg, strict_uuid=strict_uuid or str in args) for arg in args]
        if any(m is None for m in members):
            return None
        known = [m for m in members if m is not None]

        def matches(value: Any) -> bool:
            return any(m.matches(value) for m in known)

        def refine(field: str, value: Any) -> Any:
            return next(m for m in known if m.matches(value)).refine(field, value)

        shown = [m.description for m, arg in zip(members, args, strict=True) if m and not _is_unset(arg)]
        return _Spec(" or ".join(shown), matches, refine)
    if origin is typing.Literal:
        return _Spec(
            f"one of {', '.join(map(str, args))}", lambda v: any(v == a and type(v) is type(a) for a in args)
        )
    if origin is tuple and args and args[-1] is not Ellipsis:
        return None  # pairs and records: the service names their parts better
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return _Spec("a mapping", lambda v: isinstance(v, Mapping))
    if isinstance(origin, type) and issubclass(origin, Iterable) and origin is not str:
        element = spec_for(args[0]) if args else None
        return _Spec(
            "a list",
            lambda v: isinstance(v, Iterable) and not isinstance(v, _NOT_LISTS),
            _elements(element),
        )
    if origin is not None:
        return None
    if annotation is Mapping or annotation is dict:
        return _Spec("a mapping", lambda v: isinstance(v, Mapping))
    return _scalar(annotation, strict_uuid=strict_uuid)


def _key_path(field: str, key: object) -> str:
    if isinstance(key, str) and key.isascii() and key.isprintable() and len(key) <= 64:
        return f"{field}.{key}"
    return f"{field}.<key>"


def check_text_within(field: str, value: Any, depth: int = 0) -> None:
    """Every string inside ``value`` (mapping keys too) is valid text, and containers nest at
    most :data:`JSON_MAX_DEPTH` levels; :class:`ValidationError` naming the path otherwise."""
    if isinstance(value, str):
        if not is_valid_text(value):
            raise ValidationError(field, TEXT_RULE)
        return
    if isinstance(value, Mapping):
        if depth >= JSON_MAX_DEPTH:
            raise ValidationError(field, f"must nest at most {JSON_MAX_DEPTH} levels deep")
        for key, item in value.items():
            path = _key_path(field, key)
            if isinstance(key, str) and not is_valid_text(key):
                raise ValidationError(path, TEXT_RULE)
            check_text_within(path, item, depth + 1)
        return
    if isinstance(value, _CONTAINERS):
        if depth >= JSON_MAX_DEPTH:
            raise ValidationError(field, f"must nest at most {JSON_MAX_DEPTH} levels deep")
        for index, item in enumerate(value):
            check_text_within(f"{field}[{index}]", item, depth + 1)


Check = Callable[[str, Any], Any]


def _check(spec: _Spec | None) -> Check:
    def check(field: str, value: Any) -> Any:
        if spec is not None:
            value = _apply(spec, field, value)
        check_text_within(field, value)
        return value

    return check


def _resolve(fn: Callable[..., Any], annotation: Any) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, fn.__globals__)  # noqa: S307 — the method's own annotation
    except Exception:
        return Any  # a name only known to type checkers: not checked


@attrs.frozen
class _Checks:
    """The checks of one method's parameters, and which of them a call must name."""

    positional: list[tuple[str, Check]]
    by_name: dict[str, Check]
    extra: Check | None
    required: frozenset[str]
    """Parameters without a default (``actor`` among them): a call missing one is left to
    Python, which refuses it with a ``TypeError`` before any argument is judged."""

    def missing(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether the call leaves out a required parameter."""
        given = {name for name, _ in self.positional[: len(args)]} | kwargs.keys()
        return not self.required <= given


def _checks(fn: Callable[..., Any]) -> _Checks:
    parameters = list(inspect.signature(fn).parameters.values())[1:]  # without self
    positional: list[tuple[str, Check]] = []
    by_name: dict[str, Check] = {}
    extra: Check | None = None
    required = frozenset(
        p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    for parameter in parameters:
        check = _check(spec_for(_resolve(fn, parameter.annotation)))
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append((parameter.name, check))
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = check
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            by_name[parameter.name] = check
    return _Checks(positional, by_name, extra, required)


def guarded(fn: F) -> F:
    """``fn`` (a service method) checking its arguments against its annotations first."""
    if getattr(fn, "__fittwin_guarded__", False):
        return fn
    resolved: list[_Checks] = []

    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not resolved:  # annotations are resolved on first use, when every name exists
            resolved.append(_checks(fn))
        checks = resolved[0]
        if checks.missing(args, kwargs):
            return fn(self, *args, **kwargs)  # Python's TypeError names what is missing
        positional, by_name, extra = checks.positional, checks.by_name, checks.extra
        checked = [
            positional[index][1](positional[index][0], value) if index < len(positional) else value
            for index, value in enumerate(args)
        ]
        for name, value in kwargs.items():
            check = by_name.get(name, extra)
            if check is not None:
                kwargs[name] = check(name, value)
        return fn(self, *checked, **kwargs)

    method.__fittwin_guarded__ = True  # type: ignore[attr-defined]
    return method  # type: ignore[return-value]


def guard_public_methods(cls: type[Any]) -> None:
    """Guard every public method defined in ``cls`` itself (see :func:`guarded`)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, guarded(member))


__all__ = ["INT64_MAX", "INT64_MIN", "check_text_within", "guard_public_methods", "guarded", "spec_for"]
