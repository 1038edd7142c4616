"""Throw-away PostgreSQL databases for tests.

``FITTWIN_TEST_DATABASE_URL`` names the server to create them on (default
``postgresql+psycopg://root@127.0.0.1:5432/postgres``; the user must be allowed to create
databases). One template database is migrated per test session (FitTwin in its default
schema, ``fittwin``); every test that asks for ``postgres_url`` gets its own
``CREATE DATABASE … TEMPLATE`` copy, dropped afterwards. ``sql_engine`` is plain SQL from
outside the library, as a DBA's session with FitTwin's schema on its search path.

When no server answers, the tests are skipped with a message saying how to enable them —
except under ``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

SERVER_URL_ENV = "FITTWIN_TEST_DATABASE_URL"
DEFAULT_SERVER_URL = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
HOW_TO_ENABLE = (
    "PostgreSQL tests need a server: start one on 127.0.0.1:5432 (user root, trust auth) or set "
    f"{SERVER_URL_ENV}=postgresql+psycopg://USER@HOST:PORT/DB naming a role that may create databases"
)


def server_url() -> URL:
    """The URL of the server (and maintenance database) test databases are created on."""
    url = make_url(os.environ.get(SERVER_URL_ENV, DEFAULT_SERVER_URL))
    return url.set(drivername="postgresql+psycopg")


def libpq_dsn(url: URL) -> str:
    """``url`` as a libpq connection string, for ``psycopg.connect`` (password included)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin() -> sa.Engine:
    return sa.create_engine(
        server_url(),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 5},
    )


def sql_engine(url: URL, *, schema: str = "fittwin") -> sa.Engine:
    """Plain SQL from outside the library (a DBA's ``psql`` session), with ``schema`` first on
    its search path."""
    return sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"options": f"-c search_path={schema},public"}
    )


def server_problem() -> str | None:
    """Why the server cannot be used, or ``None`` when it can."""
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        return f"{HOW_TO_ENABLE} ({type(exc.orig).__name__})"
    finally:
        engine.dispose()
    return None


def require_server() -> None:
    """Skip the test when no server answers (fail under ``CI=true``)."""
    problem = server_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


class TestDatabases:
    """Creates databases from one migrated template and drops them again."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.server = server_url()
        self.prefix = f"fittwin_t{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_tpl"
        self._count = 0
        self.create_seconds: list[float] = []
        self._engine = _admin()

    def url(self, name: str) -> URL:
        """The URL of database ``name`` on the test server."""
        return self.server.set(database=name)

    def _run(self, sql: str) -> None:
        with self._engine.connect() as conn:
            conn.execute(sa.text(sql))

    def create_template(self) -> None:
        """Create and migrate the session's template database."""
        from fittwin_adapters.postgres import upgrade

        self._run(f'CREATE DATABASE "{self.template}"')
        upgrade(self.url(self.template))

    def new_database(self, *, migrated: bool = True) -> URL:
        """A fresh database: a copy of the migrated template, or empty."""
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        started = time.perf_counter()
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        self._run(f'CREATE DATABASE "{name}"{template}')
        self.create_seconds.append(time.perf_counter() - started)
        return self.url(name)

    def drop(self, url: URL) -> None:
        """Drop a database, ending any session still connected to it."""
        self._run(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the template and release the admin connection."""
        self._run(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self._engine.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[TestDatabases]:
    """The session's database factory (the template is migrated once)."""
    require_server()
    databases = TestDatabases()
    databases.create_template()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres_url(postgres_databases: TestDatabases) -> Iterator[URL]:
    """The URL of a fresh, migrated database of its own, dropped after the test."""
    url = postgres_databases.new_database()
    try:
        yield url
    finally:
        postgres_databases.drop(url)


@pytest.fixture
def postgres_store(postgres_url: URL) -> Iterator[Any]:
    """A ``PostgresStore`` on a fresh, migrated database."""
    from fittwin_adapters.postgres import PostgresStore

    store = PostgresStore(postgres_url)
    try:
        yield store
    finally:
        store.close()


__all__ = [
    "DEFAULT_SERVER_URL",
    "SERVER_URL_ENV",
    "TestDatabases",
    "libpq_dsn",
    "postgres_databases",
    "postgres_store",
    "postgres_url",
    "require_server",
    "server_problem",
    "server_url",
    "sql_engine",
]
