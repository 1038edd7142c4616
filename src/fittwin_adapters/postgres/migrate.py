"""Schema migrations, run in code: ``upgrade(url)``, ``downgrade(url, revision)``.

The Alembic scripts ship inside the package (``fittwin_adapters/postgres/migrations``) and
record their state in their own version table, ``fittwin_alembic_version``, so a host
application's Alembic history in the same database is left alone. No ``alembic.ini`` is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from fittwin_core.domain.errors import StoreUnavailable

VERSION_TABLE = "fittwin_alembic_version"
"""Where Alembic records FitTwin's schema revision."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x46_54_4D_49  # "FTMI": one migration run at a time per database
_CLONED_FK = re.compile(r".+_fkey\d*")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic filter: compare FitTwin's own tables only (not partitions, not a host's tables)."""
    if type_ == "table":
        from fittwin_adapters.postgres.tables import metadata

        return name in metadata.tables
    if type_ == "foreign_key_constraint":
        # PostgreSQL clones a foreign key to a partitioned table once per partition
        # (``order_items_order_id_fkey1``...); FitTwin's own keys are named ``fk_*``.
        return not _CLONED_FK.fullmatch(name or "")
    return True


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for FitTwin's scripts, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _connect(url: str | URL | sa.Engine) -> Iterator[sa.Connection]:
    from fittwin_adapters.postgres.engine import make_engine

    engine = url if isinstance(url, sa.Engine) else make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError:
        raise StoreUnavailable("cannot reach the PostgreSQL server to migrate") from None
    finally:
        if not isinstance(url, sa.Engine):
            engine.dispose()


def upgrade(url: str | URL | sa.Engine, revision: str = "head", *, ahead_months: int = 3) -> None:
    """Migrate the database at ``url`` up to ``revision`` (the latest by default), then make
    sure this month's and the next ``ahead_months`` months' partitions exist."""
    from fittwin_adapters.postgres.partitions import maintain_partitions

    with _connect(url) as conn:
        command.upgrade(alembic_config(conn), revision)
        if sa.inspect(conn).has_table("event_logs"):
            maintain_partitions(conn, ahead_months=ahead_months)


def downgrade(url: str | URL | sa.Engine, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` removes FitTwin's schema)."""
    with _connect(url) as conn:
        command.downgrade(alembic_config(conn), revision)


def current_revision(url: str | URL | sa.Engine) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    with _connect(url) as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "include_name",
    "upgrade",
]
