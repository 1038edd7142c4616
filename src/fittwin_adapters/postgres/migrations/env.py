"""Alembic environment: runs FitTwin's revisions on the connection handed over in code.

There is no ``alembic.ini``: :mod:`fittwin_adapters.postgres.migrate` builds the
:class:`alembic.config.Config` and passes an open connection in ``config.attributes``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from fittwin_adapters.postgres.migrate import MIGRATION_LOCK_KEY, VERSION_TABLE, include_name
from fittwin_adapters.postgres.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):  # pragma: no cover - a programming error
    raise RuntimeError("run FitTwin migrations through fittwin_adapters.postgres.migrate")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    compare_type=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    # Two processes migrating at once take turns instead of failing half-way.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    context.run_migrations()
