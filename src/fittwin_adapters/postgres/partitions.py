"""Monthly partitions of ``orders`` and ``event_logs``: creating months ahead, relocating rows
out of the DEFAULT partition, dropping months past retention.

Both tables are partitioned by RANGE on their UUIDv7 ``id``; a month's bounds are the
smallest UUIDv7s of its first instant and of the next month's
(:func:`fittwin_core.domain.ids.uuid7_floor`). Partitions are named ``<table>_pYYYY_MM``;
``<table>_default`` catches ids outside every month.

Every function works in one schema (FitTwin's; ``schema=None`` means the connection's current
schema) and names every relation with it, so two FitTwin schemas of one database, or a host's
tables of the same name, are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import sqlalchemy as sa

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.ids import uuid7_floor

PARTITIONED_TABLES = ("orders", "event_logs")
"""The tables partitioned by month of their id."""

APPEND_ONLY_TRUNCATE_GUARD = "fittwin_append_only_truncate"
"""Name of the BEFORE TRUNCATE trigger guarding every ``event_logs`` partition (a TRUNCATE
aimed at a partition directly does not fire the parent's statement triggers)."""

_BOUND = re.compile(r"FOR VALUES FROM \('([0-9a-f-]{36})'\) TO \('([0-9a-f-]{36})'\)")
_LOCK_KEY = 0x46_54_50_41  # "FTPA": serialises concurrent maintenance runs


@attrs.frozen
class Partition:
    """One monthly partition and its id bounds (``lower`` inclusive, ``upper`` exclusive)."""

    table: str
    name: str
    lower: UUID
    upper: UUID
    schema: str = "public"


@attrs.frozen
class PartitionReport:
    """What :func:`maintain_partitions` did."""

    created: tuple[str, ...] = ()
    """Partitions created (current month and the months ahead)."""
    moved_rows: int = 0
    """Rows relocated from a DEFAULT partition into a newly created month."""
    skipped: tuple[str, ...] = ()
    """Months not created because their rows sit in the DEFAULT partition and this role may
    not relocate them (it needs ``SET`` on ``session_replication_role``)."""
    dropped: tuple[str, ...] = ()
    """Partitions dropped past retention."""


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month holding ``moment``."""
    if moment.tzinfo is None:
        raise ValidationError("now", "must carry a time zone")
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The first instant of the month ``count`` months after ``month`` (negative: before)."""
    index = month.year * 12 + (month.month - 1) + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    """``orders_p2025_01`` for January 2025."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def default_partition(table: str) -> str:
    """The DEFAULT partition of ``table``."""
    return f"{table}_default"


def month_bounds(month: datetime) -> tuple[UUID, UUID]:
    """The id range ``[lower, upper)`` of the month starting at ``month``."""
    return uuid7_floor(month), uuid7_floor(add_months(month, 1))


ID_CLOCK_SLACK = timedelta(hours=1)
"""How far apart an ``orders`` or ``event_logs`` row's id time and its ``created_at`` may be for
:func:`id_window` to find it. FitTwin mints the id and stamps ``created_at`` from the same clock
in the same unit of work (milliseconds apart; a retried unit of work mints both again), and an
audit row's ``created_at`` is its transaction's start; rows imported with ids of another time
are outside this guarantee."""


def id_window(
    since: datetime | None, until: datetime | None, *, slack: timedelta = ID_CLOCK_SLACK
) -> tuple[UUID | None, UUID | None]:
    """Id bounds ``[lower, upper)`` holding every row of a partitioned table created in
    ``[since, until)`` (``None``: unbounded on that side), widened by ``slack``.

    Added to a ``created_at`` window they change no result and let PostgreSQL prune the
    monthly partitions the window cannot reach (partitions are ranges of ids, not of times)."""
    lower = None if since is None else uuid7_floor(max(since - slack, _UUID7_EPOCH))
    upper = None if until is None else uuid7_floor(until + slack)
    return lower, upper


def id_conditions(
    column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    """``column >= lower`` / ``column < upper`` for :func:`id_window`'s bounds."""
    lower, upper = id_window(since, until)
    conditions = []
    if lower is not None:
        conditions.append(column >= lower)
    if upper is not None:
        conditions.append(column < upper)
    return conditions


_UUID7_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _quote(conn: sa.Connection, schema: str, name: str) -> str:
    prepare = conn.dialect.identifier_preparer
    return f"{prepare.quote_schema(schema)}.{prepare.quote(name)}"


def schema_of(conn: sa.Connection, schema: str | None) -> str:
    """``schema``, or the connection's current schema when ``None``."""
    if schema is not None:
        return schema
    return str(conn.execute(sa.text("SELECT current_schema()")).scalar_one())


def list_partitions(conn: sa.Connection, table: str, *, schema: str | None = None) -> list[Partition]:
    """The monthly partitions of ``schema.table`` (the DEFAULT one excluded), oldest first."""
    schema = schema_of(conn, schema)
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": _quote(conn, schema, table)},
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUND.fullmatch(bound or "")
        if match:
            found.append(Partition(table, name, UUID(match[1]), UUID(match[2]), schema))
    return sorted(found, key=lambda p: p.lower)


def _count(
    conn: sa.Connection, schema: str, relation: str, lower: UUID | None = None, upper: UUID | None = None
) -> int:
    sql = f"SELECT count(*) FROM {_quote(conn, schema, relation)}"  # noqa: S608 - catalogued names only
    params: dict[str, UUID] = {}
    if lower is not None and upper is not None:
        sql += " WHERE id >= :lower AND id < :upper"
        params = {"lower": lower, "upper": upper}
    return int(conn.execute(sa.text(sql), params).scalar_one())


def guard_truncate(conn: sa.Connection, partition: str, *, schema: str | None = None) -> None:
    """Refuse TRUNCATE on an ``event_logs`` partition, as on the parent."""
    schema = schema_of(conn, schema)
    target, function = _quote(conn, schema, partition), _quote(conn, schema, "fittwin_append_only")
    conn.execute(
        sa.text(
            f"CREATE TRIGGER {APPEND_ONLY_TRUNCATE_GUARD} BEFORE TRUNCATE ON {target} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}('event_logs')"
        )
    )


def _bounds_sql(lower: UUID, upper: UUID) -> str:
    # UUIDs printed by Python are hex and dashes only: safe to inline (DDL takes no parameters).
    return f"FROM ('{lower}') TO ('{upper}')"


def _create_month(conn: sa.Connection, schema: str, table: str, month: datetime) -> tuple[bool, int]:
    """Create one month; ``(created, rows moved)``."""
    name = partition_name(table, month)
    lower, upper = month_bounds(month)
    strays = _count(conn, schema, default_partition(table), lower, upper)
    qname, qtable = _quote(conn, schema, name), _quote(conn, schema, table)
    if not strays:
        conn.execute(
            sa.text(f"CREATE TABLE {qname} PARTITION OF {qtable} FOR VALUES {_bounds_sql(lower, upper)}")
        )
    else:
        # Relocation, not a change: with replica role no trigger fires (no audit rows, no
        # append-only refusal, no foreign-key check of rows that only change partition).
        savepoint = conn.begin_nested()
        try:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        except sa.exc.DBAPIError:
            savepoint.rollback()
            return False, 0
        qdefault = _quote(conn, schema, default_partition(table))
        where = f"id >= '{lower}' AND id < '{upper}'"
        conn.execute(sa.text(f"CREATE TABLE {qname} (LIKE {qtable} INCLUDING DEFAULTS)"))
        conn.execute(sa.text(f"INSERT INTO {qname} SELECT * FROM {qdefault} WHERE {where}"))  # noqa: S608
        conn.execute(sa.text(f"DELETE FROM {qdefault} WHERE {where}"))  # noqa: S608
        conn.execute(
            sa.text(f"ALTER TABLE {qtable} ATTACH PARTITION {qname} FOR VALUES {_bounds_sql(lower, upper)}")
        )
        conn.execute(sa.text("SET LOCAL session_replication_role = origin"))
        savepoint.commit()
    if table == "event_logs":
        guard_truncate(conn, name, schema=schema)
    return True, strays


def maintain_partitions(
    conn: sa.Connection,
    *,
    ahead_months: int = 3,
    retain_months: int | None = None,
    now: datetime | None = None,
    tables: Iterable[str] = PARTITIONED_TABLES,
    schema: str | None = None,
) -> PartitionReport:
    """Create this month's and the next ``ahead_months`` months' partitions, and drop those
    past ``retain_months``, in the caller's transaction.

    Rows already in the DEFAULT partition for a month being created are moved into it.
    Retention drops whole ``event_logs`` months that ended more than ``retain_months`` months
    before the current month (as :func:`purge_event_logs` does); ``orders`` months past
    retention are dropped only when empty (orders are purged one by one by the retention job,
    after they close).
    """
    if ahead_months < 0:
        raise ValidationError("ahead_months", "must not be negative")
    if retain_months is not None and retain_months < 0:
        raise ValidationError("retain_months", "must not be negative")
    current = month_start(now or datetime.now(UTC))
    schema = schema_of(conn, schema)
    _lock(conn)
    created: list[str] = []
    skipped: list[str] = []
    dropped: list[str] = []
    moved = 0
    for table in tables:
        existing = {p.name for p in list_partitions(conn, table, schema=schema)}
        for offset in range(ahead_months + 1):
            month = add_months(current, offset)
            name = partition_name(table, month)
            if name in existing:
                continue
            ok, rows = _create_month(conn, schema, table, month)
            (created if ok else skipped).append(name)
            moved += rows
        if retain_months is None:
            continue
        oldest_kept = add_months(current, -retain_months)
        horizon = uuid7_floor(oldest_kept)
        if table == "event_logs":
            _, names, relocated = _purge(conn, schema, table, oldest_kept, dry_run=False)
            dropped.extend(names)
            moved += relocated
            continue
        for part in list_partitions(conn, table, schema=schema):
            if part.upper <= horizon and not _count(conn, schema, part.name):
                drop_partition(conn, part)
                dropped.append(part.name)
    return PartitionReport(tuple(created), moved, tuple(skipped), tuple(dropped))


def drop_partition(conn: sa.Connection, part: Partition) -> None:
    """Detach and drop one monthly partition with its rows."""
    table, name = _quote(conn, part.schema, part.table), _quote(conn, part.schema, part.name)
    conn.execute(sa.text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
    conn.execute(sa.text(f"DROP TABLE {name}"))


def _lock(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _can_relocate(conn: sa.Connection) -> bool:
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    except sa.exc.DBAPIError:
        return False
    finally:
        savepoint.rollback()
    return True


def _month_of(value: UUID) -> datetime | None:
    try:
        return month_start(datetime.fromtimestamp((value.int >> 80) / 1000, tz=UTC))
    except (OverflowError, ValueError, OSError):
        return None


def _partition_strays(conn: sa.Connection, schema: str, table: str, cutoff: UUID) -> tuple[list[str], int]:
    """Give every month with rows in the DEFAULT partition below ``cutoff`` its partition."""
    created: list[str] = []
    moved = 0
    existing = {p.name for p in list_partitions(conn, table, schema=schema)}
    find = sa.text(
        f"SELECT id FROM {_quote(conn, schema, default_partition(table))} "  # noqa: S608
        "WHERE id >= :lower AND id < :cutoff ORDER BY id LIMIT 1"
    )
    lower = UUID(int=0)
    while (first := conn.execute(find, {"lower": lower, "cutoff": cutoff}).scalar()) is not None:
        month = _month_of(first)
        if month is None or partition_name(table, month) in existing:
            break
        ok, rows = _create_month(conn, schema, table, month)
        if not ok:
            break
        created.append(partition_name(table, month))
        moved += rows
        lower = month_bounds(month)[1]
    return created, moved


def _purge(
    conn: sa.Connection, schema: str, table: str, before: datetime, *, dry_run: bool
) -> tuple[int, list[str], int]:
    """Drop the months of ``table`` that ended at or before ``before``; ``(rows, partitions
    dropped, rows relocated from DEFAULT)``."""
    horizon = uuid7_floor(before)
    stray_cutoff = uuid7_floor(month_start(before))  # rows of whole months before ``before``
    total = 0
    relocated = 0
    if dry_run:
        if _can_relocate(conn):
            total += _count_below(conn, schema, default_partition(table), stray_cutoff)
    else:
        _, relocated = _partition_strays(conn, schema, table, stray_cutoff)
    names = []
    for part in _whole_months_before(conn, schema, table, horizon):
        total += _count(conn, schema, part.name)
        if not dry_run:
            drop_partition(conn, part)
            names.append(part.name)
    return total, names, relocated


def _whole_months_before(conn: sa.Connection, schema: str, table: str, horizon: UUID) -> list[Partition]:
    return [part for part in list_partitions(conn, table, schema=schema) if part.upper <= horizon]


def _count_below(conn: sa.Connection, schema: str, relation: str, cutoff: UUID) -> int:
    sql = f"SELECT count(*) FROM {_quote(conn, schema, relation)} WHERE id < :cutoff"  # noqa: S608
    return int(conn.execute(sa.text(sql), {"cutoff": cutoff}).scalar_one())


def purge_event_logs(
    conn: sa.Connection, before: datetime, *, dry_run: bool = False, schema: str | None = None
) -> int:
    """Drop every ``event_logs`` month that ended at or before ``before``; the rows that went
    (or, with ``dry_run``, would go).

    Rows of such months still sitting in the DEFAULT partition are first moved into a
    partition of their month, so they go too (this needs ``SET`` on
    ``session_replication_role``; without it they stay and are not counted).
    """
    if before.tzinfo is None:
        raise ValidationError("before", "must carry a time zone")
    schema = schema_of(conn, schema)
    _lock(conn)
    total, _, _ = _purge(conn, schema, "event_logs", before, dry_run=dry_run)
    return total


__all__ = [
    "ID_CLOCK_SLACK",
    "PARTITIONED_TABLES",
    "Partition",
    "PartitionReport",
    "add_months",
    "default_partition",
    "drop_partition",
    "id_conditions",
    "id_window",
    "list_partitions",
    "maintain_partitions",
    "month_bounds",
    "month_start",
    "partition_name",
    "purge_event_logs",
    "schema_of",
]
