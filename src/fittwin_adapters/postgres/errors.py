"""Driver errors translated into FitTwin's own: nothing from psycopg or SQLAlchemy escapes.

Messages name tables, columns, indexes and constraints, never the values involved (PostgreSQL's
own messages quote them, so they are not passed on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import sqlalchemy as sa

from fittwin_core.domain.errors import (
    ConfigurationError,
    Conflict,
    FitTwinError,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    TransientConflict,
    ValidationError,
)
from fittwin_core.domain.rules import TEXT_RULE, is_valid_text
from fittwin_core.schema import TABLES

Operation = Literal["read", "insert", "update", "delete"]

_TRANSIENT = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock not available",
    "57014": "statement timed out",
}
_LOST = {"57P01", "57P02", "57P03", "25P03"}  # terminated, crashed, starting, idle timeout
_SCHEMA = {"42P01", "42703", "42883", "42704"}  # undefined table, column, function, object

_FK_TARGETS = {
    f"fk_{table.name}_{fk.column}": fk.table for table in TABLES.values() for fk in table.foreign_keys
}


_CLONED_FK = re.compile(r"(\w+)_fkey\d*")


def _constraint_name(name: str | None) -> str:
    # A foreign key to a partitioned table is cloned per partition under PostgreSQL's own
    # name (``referral_events_order_id_fkey3``): report the declared key (``fk_…``) instead.
    if name is None:
        return "a constraint"
    match = _CLONED_FK.fullmatch(name)
    if match and f"fk_{match[1]}" in _FK_TARGETS:
        return f"fk_{match[1]}"
    return name


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (wrapped by SQLAlchemy or not), if the server sent one."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return getattr(orig, "sqlstate", None)


def is_disconnect(exc: BaseException) -> bool:
    """Whether the error means the connection is gone (its transaction with it)."""
    state = sqlstate(exc)
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if state is not None:
        return state.startswith("08") or state in _LOST
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    import psycopg

    return isinstance(orig, psycopg.OperationalError)


_UNTRANSLATABLE = {"22P05", "22021"}  # untranslatable character, character not in repertoire


def is_refused_text(exc: sa.exc.DBAPIError) -> bool:
    """Whether the error is about text PostgreSQL cannot hold: psycopg refusing a NUL before
    sending it (the connection is unharmed), or the server refusing ``\u0000`` in JSON."""
    import psycopg

    state = sqlstate(exc)
    return state in _UNTRANSLATABLE or (isinstance(exc.orig, psycopg.DataError) and state is None)


def _bind_column(name: str) -> str:
    # Bind parameters of keys and compare-and-set guards are prefixed (``k_id``, ``x_status``).
    return name[2:] if name[:2] in ("k_", "x_") else name


def _holds_bad_text(value: Any) -> bool:
    if isinstance(value, str):
        return not is_valid_text(value)
    if isinstance(value, dict):
        return any(_holds_bad_text(k) or _holds_bad_text(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_bad_text(v) for v in value)
    return False


def refused_text(table: str, params: Any) -> ValidationError:
    """The error for text PostgreSQL cannot take (a lone surrogate, which UTF-8 cannot encode,
    or NUL), naming the column whose parameter holds it."""
    rows = params if isinstance(params, list | tuple) else [params]
    for row in rows:
        if isinstance(row, Mapping):
            for name, value in row.items():
                if _holds_bad_text(value):
                    return ValidationError(f"{table}.{_bind_column(name)}", TEXT_RULE)
        elif isinstance(row, tuple) and any(_holds_bad_text(v) for v in row):
            break
    return ValidationError(table, TEXT_RULE)


def _diag(exc: sa.exc.DBAPIError, attribute: str) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, attribute, None) if diag is not None else None


_CONNECT_FAILURES: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (
        re.compile(r'database "([^"]*)" does not exist'),
        'PostgreSQL has no database "{0}" (SQLSTATE 3D000): check the database name in the URL, or create it',
        False,
    ),
    (
        re.compile(r'role "([^"]*)" does not exist'),
        'PostgreSQL has no role "{0}" (SQLSTATE 28000): check the user name in the URL',
        False,
    ),
    (
        re.compile(r'password authentication failed for user "([^"]*)"'),
        'PostgreSQL refused the password of role "{0}" (SQLSTATE 28P01)',
        False,
    ),
    (
        re.compile(r"no pg_hba\.conf entry"),
        "PostgreSQL does not accept connections from this host for "
        "this role and database (pg_hba.conf, SQLSTATE 28000)",
        False,
    ),
    (
        re.compile(r"fe_sendauth: no password supplied"),
        "PostgreSQL asks for a password and the URL has none",
        False,
    ),
    (
        re.compile(r'could not translate host name "([^"]*)"'),
        'cannot resolve the PostgreSQL host name "{0}"',
        False,
    ),
    (
        re.compile(r"[Cc]onnection refused"),
        "cannot reach the PostgreSQL server: connection refused (is it running, on that host and port?)",
        True,
    ),
    (
        re.compile(r"timeout expired|timed out"),
        "cannot reach the PostgreSQL server: no answer within connect_timeout",
        True,
    ),
    (
        re.compile(r"the database system is (starting up|shutting down|in recovery mode)"),
        "the PostgreSQL server is {0}; try again shortly",
        True,
    ),
    (
        re.compile(r"too many clients|remaining connection slots are reserved"),
        "the PostgreSQL server has no connection slot left (max_connections)",
        True,
    ),
)


def connection_failure(exc: BaseException) -> FitTwinError | None:
    """The FitTwin error for a failure to *establish* a connection, or ``None`` when ``exc``
    is not one.

    libpq reports these as text without a SQLSTATE, so the server's English messages are
    matched: an unknown database (3D000), an unknown role (28000), a refused password (28P01)
    or host (pg_hba.conf) are :class:`ConfigurationError`; a server that is down, refusing,
    starting or full is :class:`StoreUnavailable`. Neither ever repeats the URL or a password.
    """
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    message = str(orig)
    if not message.startswith(("connection failed", "connection timeout")) and "failed: FATAL" not in message:
        return None
    for pattern, text, transient in _CONNECT_FAILURES:
        match = pattern.search(message)
        if match:
            detail = text.format(*match.groups())
            return StoreUnavailable(detail) if transient else ConfigurationError(detail)
    return StoreUnavailable("cannot connect to PostgreSQL")


_DUPLICATES = {"42P07": "relation", "42710": "object", "42723": "function", "42P06": "schema"}
_NAMED = re.compile(r'(?:relation|type|function|schema|trigger|sequence|index|constraint)? ?"([^"]+)"')


def foreign_object(exc: sa.exc.DBAPIError, schema: str) -> ConfigurationError | None:
    """A migration refused because an object of that name already exists (a host's table in
    the way): a :class:`ConfigurationError` naming it, or ``None`` for any other error."""
    state = sqlstate(exc)
    if state not in _DUPLICATES:
        return None
    primary = _diag(exc, "message_primary") or ""
    match = _NAMED.search(primary)
    name = match[1] if match else f"an {_DUPLICATES[state]}"
    return ConfigurationError(
        f'schema {schema} already holds "{name}", which FitTwin wants to create: nothing was changed; '
        "give FitTwin a schema of its own (schema=..., --schema) or move that object"
    )


def translate(exc: sa.exc.DBAPIError, *, table: str, op: Operation) -> FitTwinError:
    """The FitTwin error for a driver error raised while running ``op`` on ``table``.

    The error keeps the server's SQLSTATE as ``sqlstate`` (``None`` when there was none), never
    the driver's exception: raise it *outside* the ``except`` block that caught ``exc``, so it
    carries neither ``__cause__`` nor ``__context__`` (the driver's message quotes values)."""
    error = _translated(exc, table=table, op=op)
    error.sqlstate = sqlstate(exc)
    return error


def _translated(exc: sa.exc.DBAPIError, *, table: str, op: Operation) -> FitTwinError:
    failed_to_connect = connection_failure(exc)
    if failed_to_connect is not None:
        return failed_to_connect
    if is_disconnect(exc):
        return StoreUnavailable("the connection to PostgreSQL was lost; the unit of work was rolled back")
    state = sqlstate(exc) or ""
    constraint = _constraint_name(_diag(exc, "constraint_name"))
    column = _diag(exc, "column_name")
    if state == "23505":
        return Conflict(f"{table}: unique key {constraint} is already taken")
    if state in ("23503", "23001"):
        if op == "delete" or state == "23001" or constraint not in _FK_TARGETS:
            return Conflict(f"{table}: the row is still referenced ({constraint})")
        return NotFound(_FK_TARGETS[constraint])
    if state == "23514":
        return ValidationError(f"{table}.{column}" if column else table, f"breaks the check {constraint}")
    if state == "23502":
        return ValidationError(f"{table}.{column or 'column'}", "is required")
    if state.startswith("22"):
        return ValidationError(f"{table}.{column}" if column else table, "holds a value PostgreSQL refuses")
    if state == "42501":
        return PermissionDenied(f"{table}: this database role may not {op} here")
    if state in _TRANSIENT:
        return TransientConflict(f"{table}: {_TRANSIENT[state]}; run the unit of work again")
    if state in _SCHEMA:
        return ConfigurationError(
            "the database schema is missing or out of date: run PostgresStore.migrate() "
            "or `fittwin db upgrade`"
        )
    if state.startswith("28") or state == "3D000":
        return ConfigurationError("PostgreSQL refused the connection (check the URL's user and database)")
    return StoreUnavailable(f"PostgreSQL failed the statement on {table} (SQLSTATE {state or 'unknown'})")


__all__ = [
    "Operation",
    "connection_failure",
    "foreign_object",
    "is_disconnect",
    "is_refused_text",
    "refused_text",
    "sqlstate",
    "translate",
]
