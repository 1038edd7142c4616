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


def translate(exc: sa.exc.DBAPIError, *, table: str, op: Operation) -> FitTwinError:
    """The FitTwin error for a driver error raised while running ``op`` on ``table``."""
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


__all__ = ["Operation", "is_disconnect", "is_refused_text", "refused_text", "sqlstate", "translate"]
