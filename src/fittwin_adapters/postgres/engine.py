"""Engines for FitTwin's PostgreSQL adapter: URL checks, UTC sessions, pool sizing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from fittwin_core.domain.errors import ConfigurationError

DRIVER = "postgresql+psycopg"
APPLICATION_NAME = "fittwin"


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


def session_options(statement_timeout_ms: int | None = None) -> str:
    """libpq ``options`` for every FitTwin connection: UTC (so ``to_jsonb`` prints timestamps
    exactly as the converter does) and an optional statement time-out."""
    options = ["-c TimeZone=UTC"]
    if statement_timeout_ms is not None:
        if statement_timeout_ms <= 0:
            raise ConfigurationError("statement_timeout_ms must be positive")
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    return " ".join(options)


def make_engine(
    url: str | URL,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    statement_timeout_ms: int | None = None,
    poolclass: Any = None,
) -> sa.Engine:
    """A SQLAlchemy engine on psycopg 3 with FitTwin's session settings."""
    parsed = parse_url(url)
    if pool_size < 1 or max_overflow < 0:
        raise ConfigurationError("pool_size must be at least 1 and max_overflow not negative")
    connect_args: dict[str, Any] = {
        "options": session_options(statement_timeout_ms),
        "application_name": APPLICATION_NAME,
    }
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = 10
    from fittwin_adapters.postgres.jsoncodec import dumps

    kwargs: dict[str, Any] = {"connect_args": connect_args, "json_serializer": dumps}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    else:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    return sa.create_engine(parsed, **kwargs)


__all__ = ["APPLICATION_NAME", "DRIVER", "make_engine", "parse_url", "session_options"]
