"""Alembic environment: runs FitTwin's revisions on the connection handed over in code.

There is no ``alembic.ini``: :mod:`fittwin_adapters.postgres.migrate` builds the
:class:`alembic.config.Config` and passes an open connection and FitTwin's schema in
``config.attributes``. The version table lives in that schema, and the revisions run with the
search path set to it (:func:`~fittwin_adapters.postgres.migrate.prepare`), so their
unqualified names land there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from fittwin_adapters.postgres.engine import DEFAULT_SCHEMA
from fittwin_adapters.postgres.migrate import MIGRATION_LOCK_KEY, VERSION_TABLE, include_name, prepare
from fittwin_adapters.postgres.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):  # pragma: no cover - a programming error
    raise RuntimeError("run FitTwin migrations through fittwin_adapters.postgres.migrate")
schema: str = context.config.attributes.get("schema", DEFAULT_SCHEMA)

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    version_table_schema=schema,
    include_name=include_name,
    compare_type=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    # Two processes migrating at once take turns instead of failing half-way.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    prepare(connection, schema)
    context.run_migrations()
