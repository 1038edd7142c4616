"""Throw-away PostgreSQL databases for the benchmarks (on ``FITTWIN_TEST_DATABASE_URL``'s server)."""

from __future__ import annotations

import os
import secrets

import sqlalchemy as sa

from fittwin_adapters.postgres import upgrade

SERVER = os.environ.get("FITTWIN_TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")


def _admin() -> sa.Engine:
    return sa.create_engine(SERVER, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def make_database() -> str:
    """Create and migrate a fresh database; its URL."""
    name = f"fittwin_bench_{os.getpid()}_{secrets.token_hex(3)}"
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    """Drop a database made by :func:`make_database`."""
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)'))
    engine.dispose()
