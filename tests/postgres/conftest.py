"""Fixtures of the PostgreSQL adapter's tests: throw-away databases from a migrated template."""

from __future__ import annotations

from tests.support.postgres import postgres_databases, postgres_store, postgres_url

__all__ = ["postgres_databases", "postgres_store", "postgres_url"]
