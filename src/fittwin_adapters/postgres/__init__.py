"""PostgreSQL adapter: :class:`PostgresStore` on SQLAlchemy Core and psycopg 3, with the schema's
Alembic migrations and monthly partition maintenance.

Needs the ``postgres`` extra: ``pip install 'fittwin[postgres]'``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import URL

from fittwin_adapters.postgres.engine import DEFAULT_SCHEMA, check_schema, make_engine
from fittwin_adapters.postgres.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    grant,
    history,
    upgrade,
)
from fittwin_adapters.postgres.partitions import PartitionReport
from fittwin_adapters.postgres.store import PostgresStore, PostgresUnitOfWork
from fittwin_adapters.postgres.tables import metadata


def maintain_partitions(
    url: str | URL,
    *,
    schema: str = DEFAULT_SCHEMA,
    ahead_months: int = 3,
    retain_months: int | None = None,
    now: datetime | None = None,
) -> PartitionReport:
    """Create the months ahead and drop the months past retention of FitTwin's schema in the
    database at ``url`` (what ``fittwin db partitions`` runs; see
    :meth:`PostgresStore.maintain_partitions`)."""
    import sqlalchemy as sa

    from fittwin_adapters.postgres import partitions
    from fittwin_adapters.postgres.errors import translate

    check_schema(schema)
    engine = make_engine(url, schema=schema, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            return partitions.maintain_partitions(
                conn, ahead_months=ahead_months, retain_months=retain_months, now=now, schema=schema
            )
    except sa.exc.DBAPIError as exc:
        failure = translate(exc, table="partitions", op="read")
    finally:
        engine.dispose()
    raise failure  # outside the except block: no reference to the driver's error


__all__ = [
    "DEFAULT_SCHEMA",
    "VERSION_TABLE",
    "PartitionReport",
    "PostgresStore",
    "PostgresUnitOfWork",
    "current_revision",
    "downgrade",
    "grant",
    "history",
    "maintain_partitions",
    "metadata",
    "upgrade",
]
