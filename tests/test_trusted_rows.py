"""Entities built from rows read back from PostgreSQL without running their validators again:
``trusted_row_builder`` gives exactly what the validated ``structure`` gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fittwin_adapters.postgres.jsoncodec import dumps
from fittwin_adapters.postgres.store import STATEMENTS
from fittwin_core.domain import OrderStatus, ValidationError
from fittwin_core.domain.converter import structure, trusted_row_builder
from fittwin_core.testing import strategies as fst


def _as_read_back(name: str, entity: Any) -> dict[str, Any]:
    """The row PostgreSQL returns for ``entity`` as the store writes it: JSON columns as plain
    ``dict``/``list`` parsed from their JSON text, enums as their labels, timestamps in the
    session's UTC."""
    statements = STATEMENTS[name]
    kinds = dict(statements.kinds)
    row: dict[str, Any] = {}
    for column, written in statements.params(entity).items():
        if written is not None and kinds[column] == "json":
            row[column] = json.loads(dumps(written))
        elif isinstance(written, datetime):
            row[column] = written.astimezone(UTC)
        else:
            row[column] = written
    return row


def _error(call: Any) -> tuple[type[BaseException], str, str]:
    with pytest.raises(ValidationError) as raised:
        call()
    return type(raised.value), raised.value.field, raised.value.rule


@pytest.mark.parametrize("name", sorted(STATEMENTS))
@given(data=st.data())
def test_a_read_back_row_builds_the_entity_the_validated_path_builds(name: str, data: st.DataObject) -> None:
    cls = STATEMENTS[name].entity
    entity = data.draw(fst.for_type(cls))
    row = _as_read_back(name, entity)
    trusted = trusted_row_builder(cls)(row)
    validated = structure(dict(row), cls)
    assert type(trusted) is cls
    assert trusted == validated == entity
    for field in attrs.fields(cls):
        assert type(getattr(trusted, field.name)) is type(getattr(validated, field.name)), field.name


def test_the_builder_is_built_once_per_class() -> None:
    cls = STATEMENTS["orders"].entity
    assert trusted_row_builder(cls) is trusted_row_builder(cls)


@pytest.mark.parametrize("name", ["orders", "order_items", "size_charts"])
@given(data=st.data())
def test_rows_of_other_keys_fail_as_the_validated_path_does(name: str, data: st.DataObject) -> None:
    cls = STATEMENTS[name].entity
    row = _as_read_back(name, data.draw(fst.for_type(cls)))
    build = trusted_row_builder(cls)
    extra = {**row, "extra": 1}
    missing = dict(row)
    missing.pop(STATEMENTS[name].key[0])
    swapped = dict(missing, extra=1)  # as many keys as fields, one of them unknown
    for bad in (extra, missing, swapped):
        assert _error(lambda bad=bad: build(bad)) == _error(lambda bad=bad: structure(dict(bad), cls))
    assert _error(lambda: build(extra))[2] == "has unknown fields: extra"


@given(order=fst.orders(status=st.just(OrderStatus.PAID)))
def test_values_the_hooks_refuse_fail_as_the_validated_path_does(order: Any) -> None:
    cls = STATEMENTS["orders"].entity
    row = _as_read_back("orders", order)
    build = trusted_row_builder(cls)
    for column, value in [
        ("status", "lost"),
        ("refunded_cents", "12"),
        ("refunded_cents", True),
        ("user_id", "not a uuid"),
        ("created_at", "yesterday"),
        ("totals", {"total": 1}),
        ("totals", [1]),
        ("notifications", [{"channel": "pigeon"}]),
        ("notifications", ["sent"]),
        ("refunded_cents", 10**15),  # above the total: the order's own rule
    ]:
        bad = {**row, column: value}
        assert _error(lambda bad=bad: build(bad)) == _error(lambda bad=bad: structure(dict(bad), cls))


CALLS: list[str] = []


def _counting(instance: Any, attribute: Any, value: Any) -> None:
    CALLS.append(f"validate {attribute.name}")


@attrs.frozen(kw_only=True)
class _Inner:
    size: int = attrs.field(validator=_counting)


@attrs.frozen(kw_only=True)
class _Counted:
    name: str = attrs.field(validator=_counting)
    inner: _Inner | None = attrs.field(validator=_counting)
    inners: tuple[_Inner, ...] = attrs.field(validator=_counting)
    tags: tuple[str, ...] = attrs.field(converter=tuple, validator=_counting)
    status: OrderStatus | None = attrs.field(default=None, validator=_counting)
    label: str = attrs.field(default="", converter=str.upper, metadata={"json": "labelText"})

    def __attrs_post_init__(self) -> None:
        CALLS.append("post init")


def test_the_builder_skips_validators_only() -> None:
    row = {
        "name": "a",
        "inner": {"size": 1},
        "inners": [{"size": 2}, {"size": 3}],
        "tags": ["x", "y"],
        "status": "paid",
        "labelText": "b",
    }
    CALLS.clear()
    built = trusted_row_builder(_Counted)(row)
    assert CALLS == ["post init"]
    assert built == structure(dict(row), _Counted)
    assert built.inner == _Inner(size=1) and built.inners == (_Inner(size=2), _Inner(size=3))
    assert built.tags == ("x", "y") and built.status is OrderStatus.PAID and built.label == "B"
    assert trusted_row_builder(_Counted)({**row, "status": None, "inner": None}).inner is None
