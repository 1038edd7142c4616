"""The store turns a statement's parameters into psycopg's with its own precomputed binder
(``_binder``). SQLAlchemy's ``construct_params`` plus its bind processors is the reference: for
every shape of statement the store sends, both give the same parameters. No database needed:
statements are compiled for the psycopg dialect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from psycopg.types.json import Json, Jsonb
from sqlalchemy.dialects import postgresql as pg

from fittwin_adapters.postgres.store import STATEMENTS, _binder, _order_with_items

DIALECT = pg.dialect(driver="psycopg")  # type: ignore[no-untyped-call]
META = sa.MetaData()
THINGS = sa.Table(
    "things",
    META,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("doc", pg.JSONB()),
    sa.Column("n", sa.Integer()),
    sa.Column("at", sa.TIMESTAMP(timezone=True)),
)


def reference(compiled: Any, params: dict[str, Any]) -> dict[str, Any]:
    """What SQLAlchemy itself makes of ``params`` for ``compiled``."""
    values: dict[str, Any] = compiled.construct_params(params)
    for name, process in compiled._bind_processors.items():
        if values.get(name) is not None:
            values[name] = process(values[name])
    return values


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """Values as comparable data (psycopg's JSON wrappers compare by identity)."""
    return {k: (type(v).__name__, v.obj) if isinstance(v, Json | Jsonb) else v for k, v in values.items()}


def compile_(statement: Any) -> Any:
    return statement.compile(dialect=DIALECT)


ID = UUID("01234567-89ab-7def-8123-456789abcdef")
AT = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        # named parameters, one of them JSON (processed) and one left None
        (
            THINGS.insert().values(
                id=sa.bindparam("id"), doc=sa.bindparam("doc", type_=pg.JSONB()), n=sa.bindparam("n")
            ),
            {"id": ID, "doc": {"a": [1, 2]}, "n": None},
        ),
        # a literal bound inside the statement: its value is the default
        (sa.select(THINGS.c.id).where(THINGS.c.n == 5, THINGS.c.id == sa.bindparam("k")), {"k": ID}),
        # a literal given anyway: the caller's value wins, as in SQLAlchemy
        (sa.select(THINGS.c.id).where(THINGS.c.n == sa.bindparam("n", value=7)), {"n": 8}),
        (sa.select(THINGS.c.id).where(THINGS.c.n == sa.bindparam("n", value=7)), {}),
        (sa.text("SELECT set_config('x', :v, true)"), {"v": "on"}),
        # the store's own statements
        (STATEMENTS["orders"].insert, None),
        (_order_with_items(2), None),
    ],
)
def test_the_binder_gives_what_sqlalchemy_gives(statement: Any, params: dict[str, Any] | None) -> None:
    compiled = compile_(statement)
    if params is None:  # every parameter of the statement, with a value of its column's kind
        params = {bind.key: _sample(bind) for bind in compiled.bind_names}
    assert plain(_binder(compiled)(params)) == plain(reference(compiled, params))


def _sample(bind: Any) -> Any:
    python = bind.type.python_type if not isinstance(bind.type, sa.types.NullType) else str
    return {UUID: ID, datetime: AT, dict: {"k": "v"}, int: 3, str: "s"}.get(python, None)


def test_a_required_parameter_missing_is_refused_as_sqlalchemy_refuses_it() -> None:
    compiled = compile_(sa.select(THINGS.c.id).where(THINGS.c.id == sa.bindparam("k")))
    with pytest.raises(sa.exc.InvalidRequestError, match="'k'"):
        reference(compiled, {"other": 1})
    with pytest.raises(sa.exc.InvalidRequestError, match="'k'"):
        _binder(compiled)({"other": 1})


def test_a_default_computed_per_call_is_computed_per_call() -> None:
    calls: list[int] = []

    def value() -> int:
        calls.append(1)
        return len(calls)

    compiled = compile_(sa.select(THINGS.c.id).where(THINGS.c.n == sa.bindparam("n", callable_=value)))
    bind = _binder(compiled)
    assert [bind({})["n"], bind({})["n"]] == [1, 2]


@given(
    n=st.none() | st.integers(-(2**31), 2**31 - 1),
    doc=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
)
def test_any_values_bind_alike(n: int | None, doc: dict[str, Any] | None) -> None:
    statement = (
        THINGS.update()
        .where(THINGS.c.id == sa.bindparam("k"))
        .values(n=sa.bindparam("v_n"), doc=sa.bindparam("v_doc", type_=pg.JSONB()))
    )
    compiled = compile_(statement)
    params = {"k": ID, "v_n": n, "v_doc": doc}
    assert plain(_binder(compiled)(params)) == plain(reference(compiled, params))
