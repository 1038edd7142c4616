"""Alembic migrations of FitTwin's PostgreSQL schema (run by :mod:`fittwin_adapters.postgres.migrate`)."""
