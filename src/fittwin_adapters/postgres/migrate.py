"""Schema migrations, run in code: ``upgrade(url)``, ``downgrade(url, revision)``.

The Alembic scripts ship inside the package (``fittwin_adapters/postgres/migrations``) and
record their state in their own version table, ``fittwin_alembic_version``, inside FitTwin's
schema, so a host application's Alembic history in the same database is left alone. No
``alembic.ini`` is read.

Every migration runs with the search path set to FitTwin's schema (created if missing) and
then the extensions' schema, so a revision's unqualified names (``op.create_table("x")``,
``op.add_column("orders", ...)``) land in the configured schema without saying so.
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
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL

from fittwin_adapters.postgres.engine import (
    DEFAULT_SCHEMA,
    DEPLOYED_SQL,
    EXTENSIONS,
    VERSION_TABLE,
    check_schema,
    legacy_schema_error,
    search_path_sql,
)
from fittwin_core.domain.errors import ConfigurationError, FitTwinError

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


def alembic_config(connection: sa.Connection | None = None, *, schema: str = DEFAULT_SCHEMA) -> Config:
    """An Alembic configuration for FitTwin's scripts, bound to ``connection`` and ``schema``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["schema"] = check_schema(schema)
    return config


def prepare(conn: sa.Connection, schema: str) -> None:
    """Before the revisions run (called by the migration environment, in its transaction):
    create ``schema`` if missing, install the :data:`~fittwin_adapters.postgres.engine.EXTENSIONS`
    that are missing into ``public`` (extensions are database-wide; every FitTwin schema of the
    database shares them, and dropping a FitTwin schema must not take them along), and set
    the transaction's search path to FitTwin's."""
    check_schema(schema)
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    installed = set(conn.execute(sa.text("SELECT extname FROM pg_extension")).scalars())
    for name in EXTENSIONS:
        if name in installed:
            continue
        savepoint = conn.begin_nested()
        try:
            conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name} SCHEMA public"))
        except sa.exc.DBAPIError:
            savepoint.rollback()
            raise ConfigurationError(
                f"FitTwin needs the {name} extension and this role cannot install it into schema "
                f"public: install it once (CREATE EXTENSION {name}, into any schema) as a role "
                "allowed to, then migrate again"
            ) from None
        savepoint.commit()
    conn.execute(sa.text(f"SELECT set_config('search_path', {search_path_sql(schema)}, true)"))


@contextmanager
def _connect(url: str | URL | sa.Engine) -> Iterator[sa.Connection]:
    from fittwin_adapters.postgres.engine import make_engine
    from fittwin_adapters.postgres.errors import translate

    engine = url if isinstance(url, sa.Engine) else make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.DBAPIError as exc:
        failure = translate(exc, table="migrations", op="update")
    else:
        return
    finally:
        if not isinstance(url, sa.Engine):
            engine.dispose()
    raise failure  # outside the except block: no reference to the driver's error


def _target(schema: str | None) -> str:
    return DEFAULT_SCHEMA if schema is None else check_schema(schema)


def _refuse_legacy(conn: sa.Connection, schema: str) -> None:
    deployed = list(conn.execute(sa.text(f"SELECT {DEPLOYED_SQL}")).scalar_one() or ())
    if deployed and schema not in deployed:
        raise legacy_schema_error(schema, deployed)


def _revision_error(exc: Exception, action: str, revision: str) -> ConfigurationError:
    known = ", ".join(rev for rev, _ in history())
    message = str(exc)
    if "Can't locate revision" in message or "No such revision" in message or "is not present" in message:
        return ConfigurationError(
            f"unknown revision {revision!r}: FitTwin's revisions are {known} (or head, base, +N, -N)"
        )
    if "didn't produce" in message or "Relative revision" in message:
        return ConfigurationError(f"cannot {action} by {revision!r}: there are not that many revisions to go")
    return ConfigurationError(f"cannot {action} to {revision!r}: {message.splitlines()[0]}")


def _run(conn: sa.Connection, schema: str, action: str, revision: str) -> None:
    from fittwin_adapters.postgres.errors import foreign_object, translate

    config = alembic_config(conn, schema=schema)
    try:
        getattr(command, action)(config, revision)
    except sa.exc.DBAPIError as exc:
        failure: FitTwinError = foreign_object(exc, schema) or translate(exc, table="migrations", op="update")
    except FitTwinError:
        raise
    except Exception as exc:  # Alembic's CommandError, RevisionError, ResolutionError...
        if not (isinstance(exc, CommandError) or type(exc).__module__.startswith("alembic")):
            raise
        failure = _revision_error(exc, action, revision)
    else:
        return
    raise failure  # outside the except block: no reference to the driver's error


def upgrade(
    url: str | URL | sa.Engine,
    revision: str = "head",
    *,
    schema: str | None = None,
    ahead_months: int = 3,
) -> None:
    """Migrate FitTwin's schema (``fittwin`` unless ``schema`` names another) in the database
    at ``url`` up to ``revision`` (the latest by default), then make sure this month's and the
    next ``ahead_months`` months' partitions exist. One transaction: on any error nothing is
    left half-created.

    A name already taken in the schema by an object that is not FitTwin's (a host's
    ``products`` table) is a :class:`ConfigurationError` naming it. With ``schema`` left out,
    a database whose FitTwin lives in another schema (``public``, for deployments made before
    schemas were configurable) is refused rather than given a second, empty FitTwin."""
    from fittwin_adapters.postgres.partitions import maintain_partitions

    target = _target(schema)
    with _connect(url) as conn:
        if schema is None:
            _refuse_legacy(conn, target)
        _run(conn, target, "upgrade", revision)
        if sa.inspect(conn).has_table("event_logs", schema=target):
            maintain_partitions(conn, ahead_months=ahead_months, schema=target)


def downgrade(url: str | URL | sa.Engine, revision: str, *, schema: str | None = None) -> None:
    """Migrate FitTwin's schema down to ``revision`` (``"base"`` removes every FitTwin object but
    the version table; the extensions stay, other schemas may use them). A schema with nothing
    to revert is a :class:`ConfigurationError`."""
    target = _target(schema)
    with _connect(url) as conn:
        if _current(conn, target) is None:
            raise ConfigurationError(f"schema {target} holds no FitTwin migration to revert (it is at base)")
        _run(conn, target, "downgrade", revision)


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _check_role(role: object, what: str) -> str:
    if not isinstance(role, str) or not _ROLE_NAME.fullmatch(role) or role.startswith("pg_"):
        raise ConfigurationError(
            f"{what} must be 1-63 lower-case letters, digits or '_', "
            "starting with a letter or '_' (and not pg_...)"
        )
    return role


def grant_sql(
    schema: str, app_role: str, analytics_role: str | None, event_log_relations: list[str]
) -> list[str]:
    """The statements :func:`grant` runs (with the roles existing): the application role may
    read and write FitTwin's tables but not ``event_logs`` (it adds records through
    ``fittwin_record_events``; the audit triggers run as the owner) nor the version table; the
    analytics role may read every column that is not declared personal."""
    from fittwin_core.schema import TABLES

    s = schema
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {app_role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {app_role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {app_role}",
        f"GRANT EXECUTE ON FUNCTION {s}.fittwin_record_events(jsonb) TO {app_role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.{VERSION_TABLE} FROM {app_role}",
    ]
    statements += [
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.{relation} FROM {app_role}"
        for relation in event_log_relations
    ]
    if analytics_role is not None:
        statements.append(f"GRANT USAGE ON SCHEMA {s} TO {analytics_role}")
        for table in TABLES.values():
            columns = ", ".join(c for c in table.columns if c not in table.personal)
            statements.append(f"GRANT SELECT ({columns}) ON {s}.{table.name} TO {analytics_role}")
    return statements


def grant(
    url: str | URL | sa.Engine,
    *,
    app_role: str,
    analytics_role: str | None = None,
    schema: str | None = None,
    create: bool = False,
) -> None:
    """Give the application role and (optionally) a read-only analytics role their privileges
    on a migrated FitTwin schema; with ``create``, create missing roles first (``LOGIN``, no
    password: set one, or use your own authentication, before they connect from elsewhere).

    Run it as the role that migrated (the owner), after every ``upgrade``: privileges are per
    table and new revisions add tables. The application role then cannot disable triggers,
    change the schema, or insert, change or delete ``event_logs`` rows (see docs/security.md).
    The analytics role reads only the columns not declared personal."""
    target = _target(schema)
    app = _check_role(app_role, "app_role")
    analytics = None if analytics_role is None else _check_role(analytics_role, "analytics_role")
    with _connect(url) as conn:
        if _current(conn, target) is None:
            raise ConfigurationError(f"schema {target} is not migrated: run fittwin db upgrade first")
        for role in (app, analytics):
            if role is None:
                continue
            exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if exists is None:
                if not create:
                    raise ConfigurationError(
                        f"there is no role {role}: create it, or pass create=True (--create)"
                    )
                conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
            owner = conn.execute(
                sa.text(
                    "SELECT tableowner FROM pg_tables WHERE schemaname = :s AND tablename = 'event_logs'"
                ),
                {"s": target, "t": "event_logs"},
            ).scalar_one()
            if owner == role:
                raise ConfigurationError(
                    f"{role} owns FitTwin's tables: the roles granted to must not be the owner"
                )
        relations = list(
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = to_regclass(:t) ORDER BY 1"
                ),
                {"t": f"{target}.event_logs"},
            ).scalars()
        )
        for statement in grant_sql(target, app, analytics, ["event_logs", *relations]):
            conn.execute(sa.text(statement))


def _current(conn: sa.Connection, schema: str) -> str | None:
    opts = {"version_table": VERSION_TABLE, "version_table_schema": schema}
    return MigrationContext.configure(conn, opts=opts).get_current_revision()


def current_revision(url: str | URL | sa.Engine, *, schema: str | None = None) -> str | None:
    """The revision FitTwin's schema is at, or ``None`` before the first migration."""
    target = _target(schema)
    with _connect(url) as conn:
        return _current(conn, target)


def history() -> list[tuple[str, str]]:
    """FitTwin's revisions, newest first: ``(revision, what it does)``."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [
        (script.revision, (script.doc or "").strip().splitlines()[0] if script.doc else "")
        for script in scripts.walk_revisions()
    ]


__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "grant",
    "grant_sql",
    "history",
    "include_name",
    "prepare",
    "upgrade",
]
