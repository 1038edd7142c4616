"""Comparable snapshots of what a store holds, to prove a failed call wrote nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable

from fittwin_core.ports import RawRows, Store
from fittwin_core.schema import TABLES


def snapshot(store: Store, tables: Iterable[str] = TABLES) -> dict[str, list[str]]:
    """Every row of ``tables`` as canonical JSON, sorted (row order is not part of the state)."""
    assert isinstance(store, RawRows), "the store must expose raw rows"
    return {
        table: sorted(json.dumps(row, sort_keys=True) for row in store.raw_rows(table)) for table in tables
    }


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """The tables whose rows differ."""
    return [table for table in before if before[table] != after.get(table)]


__all__ = ["changed_tables", "snapshot"]
