"""The lean pipeline executor (``fittwin_adapters.postgres.pipeline``) on a real server.

What its contract promises, checked on the wire and in ``pg_prepared_statements``: a pipeline's
statements, with the commands before and after them, cost one round trip, the first run
included; a refused statement raises ``PipelineFailed`` with the rows of those before it and
leaves no prepared name the server does not know; a value that cannot be sent raises with
nothing sent; a broken connection raises ``OperationalError``; a plan gone stale is forgotten
and prepared again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.postgres import PostgresStore
from fittwin_adapters.postgres import pipeline as lean
from fittwin_adapters.postgres.roundtrips import RoundTripCounter
from fittwin_core.domain import Actor, OrderStatus
from tests.support.postgres import libpq_dsn
from tests.support.shop import open_shop

pytestmark = pytest.mark.postgres

INSERT = lean.Statement("INSERT INTO scratch (id, note) VALUES (%(id)s, %(note)s) RETURNING id, note")
DIVIDE = lean.Statement("SELECT 10 / %(by)s::int AS quotient")
COUNT = lean.Statement("SELECT count(*) AS n FROM scratch WHERE note LIKE %(like)s")
EVERYTHING = lean.Statement("SELECT * FROM scratch ORDER BY id")


@pytest.fixture
def counter(postgres_url: sa.engine.URL) -> Iterator[RoundTripCounter]:
    with psycopg.connect(libpq_dsn(postgres_url), autocommit=True) as setup:
        setup.execute("CREATE TABLE public.scratch (id int PRIMARY KEY, note text NOT NULL)")
    with RoundTripCounter(postgres_url) as relay:
        yield relay


@pytest.fixture
def conn(counter: RoundTripCounter) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_dsn(counter.url), autocommit=True) as connection:
        connection.execute("SET search_path = public")
        counter.reset()
        yield connection


def _ours(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE '\\_ft\\_%' ORDER BY name")
    return [name for (name,) in rows.fetchall()]


def test_a_statement_is_turned_into_numbered_parameters_once_per_name() -> None:
    statement = lean.Statement("SELECT %(a)s, %(b)s, %(a)s, '100%%'")
    assert statement.sql == b"SELECT $1, $2, $1, '100%'"
    assert statement.values({"b": 2, "a": 1, "unused": 3}) == [1, 2]


def test_a_pipeline_with_its_transaction_costs_one_round_trip_from_its_first_run(
    conn: psycopg.Connection[Any], counter: RoundTripCounter
) -> None:
    rows = lean.run(
        conn,
        [(INSERT, {"id": 1, "note": "a"}), (INSERT, {"id": 2, "note": "b"}), (COUNT, {"like": "%"})],
        before=[b"BEGIN"],
        after=[b"COMMIT"],
    )
    assert counter.reset() == 1
    assert rows == [[{"id": 1, "note": "a"}], [{"id": 2, "note": "b"}], [{"n": 2}]]
    again = lean.run(conn, [(INSERT, {"id": 3, "note": "c"}), (COUNT, {"like": "%"})])
    assert counter.reset() == 1
    assert again == [[{"id": 3, "note": "c"}], [{"n": 3}]]
    # two statements, each prepared once: the second INSERT of the first run reused its name
    assert len(_ours(conn)) == 2
    assert conn.execute("SELECT count(*) FROM scratch").fetchone() == (3,)


def test_a_refused_statement_raises_with_the_rows_of_those_before_it(
    conn: psycopg.Connection[Any], counter: RoundTripCounter
) -> None:
    with pytest.raises(lean.PipelineFailed) as caught:
        lean.run(
            conn,
            [(INSERT, {"id": 1, "note": "a"}), (DIVIDE, {"by": 0}), (COUNT, {"like": "%"})],
            before=[b"BEGIN"],
            after=[b"COMMIT"],
        )
    assert counter.reset() == 1
    failure = caught.value
    assert isinstance(failure.error, psycopg.errors.DivisionByZero)
    assert (failure.failed, failure.rows) == (1, [[{"id": 1, "note": "a"}]])
    # The server skipped the rest: COUNT was never parsed, and the transaction is left failed
    # for its owner to roll back.
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    conn.execute("ROLLBACK")
    assert len(_ours(conn)) == 2  # INSERT and DIVIDE, whose Parse the server answered
    # Every name the executor keeps is one the server knows: the same statements run again.
    rows = lean.run(conn, [(INSERT, {"id": 1, "note": "a"}), (DIVIDE, {"by": 5}), (COUNT, {"like": "%"})])
    assert rows == [[{"id": 1, "note": "a"}], [{"quotient": 2}], [{"n": 1}]]
    assert len(_ours(conn)) == 3


def test_a_failed_commit_counts_every_statement_as_run(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    orphan = lean.Statement("INSERT INTO child (id) VALUES (%(id)s)")
    with pytest.raises(lean.PipelineFailed) as caught:
        lean.run(conn, [(orphan, {"id": 7}), (COUNT, {"like": "%"})], before=[b"BEGIN"], after=[b"COMMIT"])
    assert isinstance(caught.value.error, psycopg.errors.ForeignKeyViolation)
    assert (caught.value.failed, caught.value.rows) == (2, [[], [{"n": 0}]])
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # COMMIT ended it
    assert conn.execute("SELECT count(*) FROM child").fetchone() == (0,)


@pytest.mark.parametrize("note", ["nul \x00 inside", "\udcff lone surrogate"])
def test_a_value_that_cannot_be_sent_raises_with_nothing_sent(
    conn: psycopg.Connection[Any], counter: RoundTripCounter, note: str
) -> None:
    with pytest.raises((psycopg.DataError, UnicodeEncodeError)):
        lean.run(conn, [(COUNT, {"like": "%"}), (INSERT, {"id": 1, "note": note})], before=[b"BEGIN"])
    assert counter.reset() == 0
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert lean.run(conn, [(COUNT, {"like": "%"})]) == [[{"n": 0}]]


def test_a_broken_connection_raises_operational_error(
    conn: psycopg.Connection[Any], postgres_url: sa.engine.URL
) -> None:
    assert lean.run(conn, [(COUNT, {"like": "%"})]) == [[{"n": 0}]]
    with psycopg.connect(libpq_dsn(postgres_url), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        lean.run(conn, [(COUNT, {"like": "%"})])
    assert conn.broken or conn.closed


def test_a_plan_gone_stale_is_forgotten_and_prepared_again(conn: psycopg.Connection[Any]) -> None:
    lean.run(conn, [(INSERT, {"id": 1, "note": "a"})])
    assert lean.run(conn, [(EVERYTHING, {})]) == [[{"id": 1, "note": "a"}]]
    conn.execute("ALTER TABLE scratch ADD COLUMN size text NOT NULL DEFAULT 'M'")
    with pytest.raises(lean.PipelineFailed) as caught:
        lean.run(conn, [(EVERYTHING, {})])
    assert caught.value.error.sqlstate == "0A000"  # cached plan must not change result type
    assert lean.run(conn, [(EVERYTHING, {})]) == [[{"id": 1, "note": "a", "size": "M"}]]


def test_on_a_connection_psycopg_prepared_on_statements_run_unnamed(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT %s::int", (1,), prepare=True)
    assert lean.run(conn, [(COUNT, {"like": "%"})]) == [[{"n": 0}]]
    assert _ours(conn) == []
    assert conn.prepare_threshold is None


def test_the_store_switches_psycopgs_automatic_preparing_off(postgres_url: sa.engine.URL) -> None:
    store = PostgresStore(postgres_url)
    try:
        with store.engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            assert driver.prepare_threshold is None
    finally:
        store.close()


def test_statements_before_the_pipelines_own_are_prepared_and_their_rows_left_out(
    conn: psycopg.Connection[Any], counter: RoundTripCounter
) -> None:
    setting = lean.Statement("SELECT set_config('fittwin.probe', %(value)s, true)")
    probe = lean.Statement("SELECT current_setting('fittwin.probe', true) AS probe")
    for value in ("first", "second"):
        rows = lean.run(
            conn, [(probe, {})], before=[b"BEGIN", (setting, {"value": value})], after=[b"COMMIT"]
        )
        assert rows == [[{"probe": value}]]
    assert counter.reset() == 2
    assert len(_ours(conn)) == 2


KEYRING = LocalKeyRing.generate()


def _checkout(store: PostgresStore, tag: str) -> OrderStatus:
    """A shop ``tag`` on ``store`` and one order placed and paid through the public API."""
    ft = connect(store, payments=FakePayments(), keyring=KEYRING, hasher=Argon2PasswordHasher.owasp_minimum())
    shop = open_shop(ft, tag, stock=5)
    order = shop.place([(shop.variants["M"].id, 2)])
    return ft.orders.mark_paid(order.id, actor=Actor.system()).status


def _prepared_on(store: PostgresStore) -> list[str]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE '\\_ft\\_%%'"
        )
        return [name for (name,) in rows]


def test_a_store_told_not_to_prepare_sends_every_statement_unnamed(postgres_url: sa.engine.URL) -> None:
    # Behind a pooler in transaction mode, names prepared on one server connection are unknown
    # on the next: such a store prepares nothing.
    store = PostgresStore(postgres_url, pool_size=1, max_overflow=0, prepare_statements=False)
    try:
        assert _checkout(store, "unnamed") == OrderStatus.PAID
        assert _prepared_on(store) == []
    finally:
        store.close()
    preparing = PostgresStore(postgres_url, pool_size=1, max_overflow=0)
    try:
        assert _checkout(preparing, "named") == OrderStatus.PAID
        assert _prepared_on(preparing) != []
    finally:
        preparing.close()


def test_names_deallocated_behind_the_stores_back_are_prepared_again(postgres_url: sa.engine.URL) -> None:
    store = PostgresStore(postgres_url, pool_size=1, max_overflow=0)
    try:
        assert _checkout(store, "before") == OrderStatus.PAID
        with store.engine.connect() as connection:  # the pool's one connection
            connection.exec_driver_sql("DEALLOCATE ALL")
            connection.commit()
        assert _prepared_on(store) == []
        # The next transaction's first round trip finds its names gone: it starts again, once,
        # on a new connection, and the checkout goes through.
        assert _checkout(store, "after") == OrderStatus.PAID
        assert _prepared_on(store) != []
    finally:
        store.close()
