"""Engines and sessions for FitTwin's PostgreSQL adapter: URL checks, the schema, pool options,
time-outs and the session settings every FitTwin transaction starts with."""

from __future__ import annotations

import os
import re
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from fittwin_core.domain.errors import ConfigurationError

DRIVER = "postgresql+psycopg"
APPLICATION_NAME = "fittwin"

DEFAULT_SCHEMA = "fittwin"
"""The PostgreSQL schema FitTwin's objects live in unless ``schema=`` names another."""
VERSION_TABLE = "fittwin_alembic_version"
"""Where Alembic records FitTwin's schema revision (in FitTwin's schema)."""
EXTENSIONS = ("citext",)
"""Extensions FitTwin's schema uses. They are database-wide objects, shared by every schema:
installed in ``public`` when missing, used where they are otherwise (see :func:`search_path_sql`)."""

DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 10
DEFAULT_POOL_TIMEOUT = 5.0
"""Seconds a unit of work waits for a pooled connection before :class:`StoreUnavailable`."""
DEFAULT_POOL_RECYCLE = 1800
"""Seconds after which a pooled connection is replaced on its next checkout."""
DEFAULT_CONNECT_TIMEOUT = 5
"""Seconds to establish a connection (libpq ``connect_timeout``)."""
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
DEFAULT_LOCK_TIMEOUT_MS = 3_000
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
NETWORK_GRACE_S = 2.0
"""How long past ``statement_timeout`` the client waits for an answer before it gives the
connection up (the server's own time-out error needs a moment to arrive)."""

TCP_DEFAULTS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}
"""libpq parameters set on FitTwin's own connections unless the URL's query sets them: a dead
idle connection is found within about a minute, unacknowledged data fails after 20 s."""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(schema: object) -> str:
    """The schema name, checked: lower-case letters, digits and ``_``, at most 63 characters,
    not ``pg_…`` (so it never needs quoting and cannot collide with the system's)."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise ConfigurationError(
            "schema must be 1-63 lower-case letters, digits or '_', starting with a letter or '_' "
            "(and not pg_...)"
        )
    return schema


def parse_url(url: str | URL) -> URL:
    """Check a PostgreSQL URL and pin the psycopg 3 driver (``postgres://`` works too).

    :class:`ConfigurationError` for anything that is not a PostgreSQL URL; the message never
    repeats the URL (it may carry a password)."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise ConfigurationError("the database URL cannot be parsed") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError("the database URL must start with postgresql:// or postgresql+psycopg://")
    if parsed.get_driver_name() not in ("psycopg", "psycopg2", ""):
        raise ConfigurationError("FitTwin talks to PostgreSQL through psycopg 3 (postgresql+psycopg://)")
    if not parsed.database:
        raise ConfigurationError("the database URL must name a database")
    return parsed.set(drivername=DRIVER)


def _timeout(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of milliseconds (None turns it off)")
    return value


@attrs.frozen
class SessionSettings:
    """What every FitTwin transaction sets for itself (transaction-locally, so they hold on
    FitTwin's own pool, on a host's engine and behind PgBouncer alike)."""

    schema: str = attrs.field(default=DEFAULT_SCHEMA, converter=check_schema)
    statement_timeout_ms: int | None = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS
    idle_in_transaction_timeout_ms: int | None = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS

    def __attrs_post_init__(self) -> None:
        _timeout("statement_timeout_ms", self.statement_timeout_ms)
        _timeout("lock_timeout_ms", self.lock_timeout_ms)
        _timeout("idle_in_transaction_timeout_ms", self.idle_in_transaction_timeout_ms)

    @property
    def call_bound(self) -> float | None:
        """Seconds the client waits for any answer before it drops the connection:
        ``statement_timeout`` plus :data:`NETWORK_GRACE_S` (``None`` when statements are
        unbounded)."""
        if self.statement_timeout_ms is None:
            return None
        return self.statement_timeout_ms / 1000 + NETWORK_GRACE_S

    def parameters(self, search_path: str) -> dict[str, str]:
        """Bind parameters of :data:`BEGIN_SQL` (the actor's are added per unit of work)."""
        return {
            "search_path": search_path,
            "statement_timeout": str(self.statement_timeout_ms or 0),
            "lock_timeout": str(self.lock_timeout_ms or 0),
            "idle_timeout": str(self.idle_in_transaction_timeout_ms or 0),
        }


BEGIN_SQL = sa.text(
    "SELECT set_config('search_path', :search_path, true), set_config('TimeZone', 'UTC', true), "
    "set_config('statement_timeout', :statement_timeout, true), "
    "set_config('lock_timeout', :lock_timeout, true), "
    "set_config('idle_in_transaction_session_timeout', :idle_timeout, true), "
    "set_config('fittwin.actor_type', :actor_type, true), "
    "set_config('fittwin.actor_id', :actor_id, true), set_config('fittwin.library', 'on', true)"
)
"""The first statement of every FitTwin transaction: schema, UTC, time-outs and the actor
(read by the audit triggers), in one round trip."""


def search_path_sql(schema: str) -> str:
    """A SQL expression for FitTwin's search path: its schema, then the schema holding the
    extensions it uses (``public`` until they are installed, since the first migration puts
    them there). Nothing else: an object missing from FitTwin's schema is never looked up in a
    host's."""
    check_schema(schema)
    return (
        f"'{schema}' || coalesce((SELECT string_agg(DISTINCT ', ' || quote_ident(n.nspname), '') "  # noqa: S608
        "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        f"WHERE e.extname IN ({', '.join(repr(name) for name in EXTENSIONS)}) "
        f"AND n.nspname <> '{schema}'), ', public')"
    )


DEPLOYED_SQL = (
    "ARRAY(SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "  # noqa: S608
    f"WHERE c.relname = '{VERSION_TABLE}' AND c.relkind = 'r' ORDER BY 1)"
)
"""A SQL expression: the schemas of the database holding a FitTwin (its version table)."""


def discovery_sql(schema: str) -> sa.TextClause:
    """``SELECT search path, schemas holding a FitTwin`` — what a store learns when it opens."""
    return sa.text(f"SELECT {search_path_sql(schema)}, {DEPLOYED_SQL}")


def legacy_schema_error(schema: str, deployed: list[str]) -> ConfigurationError:
    """A schema left to its default while FitTwin lives elsewhere in the database (a deployment
    made before schemas were configurable lives in ``public``)."""
    where = deployed[0]
    return ConfigurationError(
        f"FitTwin's tables are in schema {', '.join(deployed)}, not {schema}: pass schema='{where}' "
        f"(--schema {where}) to use them, or schema='{schema}' explicitly to start an empty FitTwin "
        "beside them"
    )


SQL_PARAMETERS_ENV = "FITTWIN_DEBUG_SQL_PARAMETERS"
"""Set to ``1`` to let SQLAlchemy log statement parameters (and show them in its error
messages): a debugging aid for a developer's own data only, since parameters hold personal
data. Off by default (``hide_parameters=True``)."""


def make_engine(
    url: str | URL,
    *,
    schema: str = DEFAULT_SCHEMA,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
    pool_recycle: int | None = DEFAULT_POOL_RECYCLE,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    poolclass: Any = None,
) -> sa.Engine:
    """A SQLAlchemy engine on psycopg 3 whose connections start with ``schema, public`` as
    their search path, in UTC, with the connect time-out and TCP keepalives of
    :data:`TCP_DEFAULTS` (parameters in the URL's query win)."""
    parsed = parse_url(url)
    check_schema(schema)
    if (
        not isinstance(pool_size, int)
        or not isinstance(max_overflow, int)
        or pool_size < 1
        or max_overflow < 0
    ):
        raise ConfigurationError("pool_size must be at least 1 and max_overflow not negative")
    if not isinstance(pool_timeout, int | float) or isinstance(pool_timeout, bool) or pool_timeout <= 0:
        raise ConfigurationError("pool_timeout must be a positive number of seconds")
    if pool_recycle is not None and (not isinstance(pool_recycle, int) or pool_recycle <= 0):
        raise ConfigurationError("pool_recycle must be a positive number of seconds (None: never)")
    if not isinstance(connect_timeout, int) or isinstance(connect_timeout, bool) or connect_timeout < 2:
        raise ConfigurationError(
            "connect_timeout must be a whole number of seconds, at least 2 (libpq's minimum)"
        )
    # Startup options, not a SET after connecting: no extra round trip, and nothing a
    # transaction-pooling proxy could hand on to another client. Raw SQL through the engine
    # sees FitTwin's schema; FitTwin's own transactions set the full search path themselves.
    connect_args: dict[str, Any] = {
        "options": f"-c TimeZone=UTC -c search_path={schema},public",
        "application_name": APPLICATION_NAME,
        # FitTwin's unit-of-work pipelines prepare their statements themselves
        # (fittwin_adapters.postgres.pipeline); psycopg's own preparing would DEALLOCATE ALL of
        # them at its next ROLLBACK.
        "prepare_threshold": None,
    }
    for name, value in {"connect_timeout": connect_timeout, **TCP_DEFAULTS}.items():
        if name not in parsed.query:
            connect_args[name] = value
    from fittwin_adapters.postgres.jsoncodec import dumps

    # SQL parameters hold emails, tokens and body metrics: SQLAlchemy's logs and error messages
    # leave them out unless a developer asks for them on purpose (SQL_PARAMETERS_ENV).
    kwargs: dict[str, Any] = {
        "connect_args": connect_args,
        "json_serializer": dumps,
        "hide_parameters": os.environ.get(SQL_PARAMETERS_ENV) != "1",
    }
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=-1 if pool_recycle is None else pool_recycle,
        )
    return sa.create_engine(parsed, **kwargs)


def driver_socket(conn: sa.Connection) -> int:
    """The socket of the psycopg connection behind ``conn`` (``-1`` if there is none)."""
    try:
        driver = conn.connection.driver_connection
        return int(driver.pgconn.socket) if driver is not None else -1
    except Exception:
        return -1


__all__ = [
    "APPLICATION_NAME",
    "BEGIN_SQL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS",
    "DEFAULT_LOCK_TIMEOUT_MS",
    "DEFAULT_MAX_OVERFLOW",
    "DEFAULT_POOL_RECYCLE",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_SCHEMA",
    "DEFAULT_STATEMENT_TIMEOUT_MS",
    "DEPLOYED_SQL",
    "DRIVER",
    "EXTENSIONS",
    "NETWORK_GRACE_S",
    "SQL_PARAMETERS_ENV",
    "TCP_DEFAULTS",
    "VERSION_TABLE",
    "SessionSettings",
    "check_schema",
    "discovery_sql",
    "driver_socket",
    "legacy_schema_error",
    "make_engine",
    "parse_url",
    "search_path_sql",
]
