"""The input boundary: service arguments checked against their annotations, and the rules for
text and JSON that both stores rely on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest

from fittwin_adapters import connect
from fittwin_core import Actor
from fittwin_core.domain import OrderStatus, ValidationError
from fittwin_core.domain.rules import (
    JSON_INPUT_MAX_BYTES,
    JSON_INPUT_MAX_DEPTH,
    JSON_MAX_BYTES,
    JSON_MAX_DEPTH,
    JsonMap,
    freeze_json,
    json_object_from,
    text,
    thaw_json,
)
from fittwin_core.services.base import Service

ID = uuid.uuid4()


class Probe(Service):
    """A service whose one method returns what it was given."""

    def call(
        self,
        words: str,
        count: int,
        amount: float,
        flag: bool,
        data: bytes,
        ident: UUID,
        when: datetime,
        day: date,
        status: OrderStatus | str | None,
        ids: Iterable[UUID],
        payload: Mapping[str, Any],
        maybe: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        return dict(locals())


VALID: dict[str, Any] = {
    "words": "text",
    "count": 3,
    "amount": 2.5,
    "flag": True,
    "data": b"\x00bytes",
    "ident": ID,
    "when": datetime(2026, 1, 1, tzinfo=UTC),
    "day": date(2026, 1, 1),
    "status": "paid",
    "ids": [ID],
    "payload": {"a": [1, "two"]},
}


def short(value: Any) -> str:
    """A test id for any value (some are too deep or too long to repr)."""
    try:
        return repr(value)[:30]
    except (ValueError, RecursionError):
        return type(value).__name__


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


# argument, value, the field a ValidationError must name (None: accepted)
CASES: list[tuple[str, Any, str | None]] = [
    ("words", "ok", None),
    ("words", b"bytes", "words"),
    ("words", "lone \ud800 surrogate", "words"),
    ("words", "nul \x00 inside", "words"),
    ("count", -(2**63), None),
    ("count", 2**63 - 1, None),
    ("count", 2**63, "count"),
    ("count", True, "count"),
    ("count", 1.0, "count"),
    ("count", "3", "count"),
    ("amount", 1, None),
    ("amount", False, "amount"),
    ("flag", 1, "flag"),
    ("flag", None, "flag"),
    ("data", bytearray(b"x"), None),
    ("data", "text", "data"),
    ("ident", 7, "ident"),
    ("ident", "not-a-uuid", "ident"),
    ("when", datetime(2026, 1, 1), "when"),  # naive
    ("when", date(2026, 1, 1), "when"),
    ("day", "2026-01-01", "day"),
    ("status", OrderStatus.PAID, None),
    ("status", None, None),
    ("status", 3, "status"),
    ("ids", (ID, str(ID)), None),
    ("ids", "a string is not a list", "ids"),
    ("ids", {"a": ID}, "ids"),
    ("ids", [ID, 7], "ids[1]"),
    ("payload", {"a": {"b": "\udc80"}}, "payload.a.b"),
    ("payload", {"\udc80": 1}, "payload.<key>"),
    ("payload", {"list": ["ok", "\x00"]}, "payload.list[1]"),
    ("payload", nested(JSON_MAX_DEPTH), None),
    ("payload", nested(JSON_MAX_DEPTH + 1), "payload" + ".k" * JSON_MAX_DEPTH),
    ("payload", nested(1_000), "payload" + ".k" * JSON_MAX_DEPTH),
    ("payload", ["not", "a", "mapping"], "payload"),
    ("maybe", None, None),
    ("maybe", 5, "maybe"),
    ("actor", Actor.system(), None),
    ("actor", "system", "actor"),
]


@pytest.mark.parametrize(("argument", "value", "field"), CASES, ids=short)
def test_arguments_are_checked_against_the_annotations(argument: str, value: Any, field: str | None) -> None:
    probe = Probe.__new__(Probe)
    kwargs = {**VALID, argument: value}
    if field is None:
        assert probe.call(**kwargs)[argument] == value
        return
    with pytest.raises(ValidationError) as raised:
        probe.call(**kwargs)
    assert raised.value.field == field


def test_positional_arguments_are_checked_and_uuid_strings_parsed() -> None:
    probe = Probe.__new__(Probe)
    values = list(VALID.values())
    values[5] = str(ID)
    assert probe.call(*values)["ident"] == ID
    values[1] = False
    with pytest.raises(ValidationError) as raised:
        probe.call(*values)
    assert raised.value.field == "count"


def test_every_public_service_method_is_guarded() -> None:
    ft = connect()
    groups = [value for name, value in vars(ft).items() if isinstance(value, Service)]
    assert len(groups) >= 10
    for group in groups:
        for name, member in vars(type(group)).items():
            if not name.startswith("_") and callable(member) and not isinstance(member, type):
                assert getattr(member, "__fittwin_guarded__", False), f"{type(group).__name__}.{name}"


# ------------------------------------------------------------------ text and JSON rules


@pytest.mark.parametrize("value", ["a\ud800", "\udfff", "a\x00b"], ids=repr)
def test_text_rules_refuse_surrogates_and_nul(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        text(max_len=10).check("name", value)
    assert raised.value.field == "name"


def compact_size(value: Any) -> int:
    """The measure the documentation gives: UTF-8 bytes of the compact JSON text."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def test_json_size_is_measured_as_compact_json_text() -> None:
    # {"s":"…"} is 8 bytes of punctuation and key around the string's content.
    fits = {"s": 'é\n"' + "x" * (JSON_MAX_BYTES - 8 - 2 - 2 - 2)}
    assert compact_size(fits) == JSON_MAX_BYTES
    assert JsonMap(fits) == fits
    over = {"s": fits["s"] + "x"}
    with pytest.raises(ValidationError, match="at most 1048576 bytes"):
        JsonMap(over)
    sample = {"a": [1, 2.5, None, True, 'x"y\\'], "b": {"ü": "\u2028"}, "c": []}
    small = compact_size(sample)
    json_object_from(sample, "metadata")
    with pytest.raises(ValidationError):
        JsonMap.checked(sample, max_depth=JSON_MAX_DEPTH, max_bytes=small - 1)
    JsonMap.checked(sample, max_depth=JSON_MAX_DEPTH, max_bytes=small)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ({"n": 2**63 - 1}, True),
        ({"n": -(2**63)}, True),
        ({"n": 2**63}, False),
        ({"n": -(2**63) - 1}, False),
        ({"n": 10**5_000}, False),
        ({"n": float("nan")}, False),
        ({"n": [float("inf")]}, False),
        ({"n": {1, 2}}, False),
        ({"n": b"bytes"}, False),
        ({1: "key"}, False),
        ({"k\x00": 1}, False),
        ({"\ud800": 1}, False),
        ({"v": ["\udfff"]}, False),
        (nested(JSON_MAX_DEPTH - 1), True),  # the leaf string sits inside JSON_MAX_DEPTH - 1 objects
        (nested(JSON_MAX_DEPTH), True),
        (nested(JSON_MAX_DEPTH + 1), False),
        (nested(5_000), False),
    ],
    ids=short,
)
def test_json_holds_only_bounded_json(value: dict[Any, Any], accepted: bool) -> None:
    if accepted:
        assert thaw_json(JsonMap(value)) == value
        return
    with pytest.raises(ValidationError) as raised:
        JsonMap(value)
    assert raised.value.field == "json"


def test_caller_json_has_tighter_limits_than_stored_json() -> None:
    deep = nested(JSON_INPUT_MAX_DEPTH + 1)
    JsonMap(deep)  # fine for a stored value (an audit diff nests rows deeper)
    with pytest.raises(ValidationError) as raised:
        json_object_from(deep, "metadata")
    assert raised.value.field == "metadata"
    big = {"s": "x" * JSON_INPUT_MAX_BYTES}
    JsonMap(big)
    with pytest.raises(ValidationError, match="65536 bytes"):
        json_object_from(big, "metadata")
    assert freeze_json([1, {"a": (2,)}]) == (1, JsonMap({"a": [2]}))
