"""Tests of the PostgreSQL adapter (marked ``postgres``)."""
