"""``PostgresStore``: the store ports on PostgreSQL 15 with SQLAlchemy Core and psycopg 3.

Statements are built once per table at import time and reused; entities go in as native
values (UUID, datetime, enum labels, bytes) with JSON columns unstructured by the shared
converter, and come back through the same converter.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

import attrs
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import analytics as sql_analytics
from fittwin_adapters.postgres import partitions
from fittwin_adapters.postgres import pipeline as lean_pipeline
from fittwin_adapters.postgres.engine import (
    BEGIN_SQL,
    DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_POOL_RECYCLE,
    DEFAULT_SCHEMA,
    DEFAULT_STATEMENT_TIMEOUT_MS,
    SessionSettings,
    discovery_sql,
    driver_socket,
    legacy_schema_error,
    make_engine,
)
from fittwin_adapters.postgres.errors import (
    Operation,
    is_disconnect,
    is_refused_text,
    refused_text,
    translate,
)
from fittwin_adapters.postgres.jsoncodec import dumps
from fittwin_adapters.postgres.tables import column_kind, tables
from fittwin_adapters.postgres.watchdog import UNBOUNDED, WATCHDOG, Deadline, Unbounded
from fittwin_core import outbox
from fittwin_core.domain import (
    Actor,
    Notification,
    Order,
    OrderItem,
    OrderStatus,
    OutboxEffect,
    OutboxStatus,
    ProductVariant,
    VariantStatus,
)
from fittwin_core.domain.analytics import Period
from fittwin_core.domain.converter import trusted_row_builder, unstructure
from fittwin_core.domain.errors import (
    ConfigurationError,
    Conflict,
    FitTwinError,
    InsufficientInventory,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.domain.rules import JsonMap, thaw_json
from fittwin_core.ports import (
    CheckoutRows,
    Clock,
    Compare,
    Enqueued,
    Ids,
    Repositories,
    StockChange,
    changed_columns,
    check_delta,
)
from fittwin_core.schema import TABLES
from fittwin_core.schema import Table as CatalogTable
from fittwin_core.system import SystemClock

E = TypeVar("E")


# ============================================================================ statements


CACHED_ENTITIES = frozenset({"products", "size_charts", "fit_maps"})
"""Tables whose entities are kept by row value and built once: catalogue rows every checkout
reads and that rarely change (a size chart's rules take the longest to build). Entities are
immutable, so one built from equal values is the same entity; a changed row has other values
and is built anew. None of these tables holds personal data (a test holds them to it)."""
_BUILT_KEPT = 2048  # entities kept per table; all are dropped when it fills


def _hashable(value: Any) -> Any:
    """A column value as part of a dict key (JSON documents and arrays as their JSON text)."""
    return dumps(value) if isinstance(value, dict | list) else value


class TableStatements:
    """Everything needed to read and write one table, built once."""

    def __init__(self, spec: CatalogTable) -> None:
        self.spec = spec
        self.name = spec.name
        self.table = tables[spec.name]
        self.entity: type[Any] = spec.entity
        attrs.resolve_types(spec.entity)
        self.kinds: tuple[tuple[str, str], ...] = tuple(
            (field.name, column_kind(field.type)) for field in attrs.fields(spec.entity)
        )
        self.columns = tuple(name for name, _ in self.kinds)
        self.key = spec.key
        self.order = tuple(self.table.c[k] for k in self.key)
        key_match = sa.and_(*(self.table.c[k] == sa.bindparam(f"k_{k}") for k in self.key))
        self.key_match = key_match
        self.insert = self.table.insert()
        self.get = sa.select(self.table).where(key_match)
        self.lock = self.get.with_for_update()
        self.exists = sa.select(sa.literal(1)).select_from(self.table).where(key_match)
        self.delete = self.table.delete().where(key_match)
        self.update_values: dict[str, Any] = {c: sa.bindparam(c) for c in self.columns if c not in self.key}
        self.update = self.table.update().where(key_match).values(self.update_values)
        self.copy_columns = ", ".join(self.columns)
        self._read_all = operator.attrgetter(*self.columns)
        self._copy_kinds = tuple(kind if kind in _COPY_CONVERTERS else None for _, kind in self.kinds)
        self._guarded: dict[tuple[tuple[str, bool], ...], sa.Update] = {}
        self._returning: dict[Any, sa.Executable] = {}
        self._changed: dict[Any, sa.Executable] = {}
        self._built: dict[tuple[Any, ...], Any] | None = {} if spec.name in CACHED_ENTITIES else None
        self._build_entity = trusted_row_builder(spec.entity)

    def guarded_update(self, expected: Mapping[str, Any]) -> sa.Update:
        """``UPDATE … WHERE key AND col = :expected …`` (``IS NULL`` for ``None``), cached."""
        signature = tuple(sorted((c, expected[c] is None) for c in expected))
        stmt = self._guarded.get(signature)
        if stmt is None:
            conditions = []
            for column, is_null in signature:
                col = self.column(column)
                conditions.append(col.is_(None) if is_null else col == sa.bindparam(f"x_{column}"))
            stmt = self.update.where(*conditions)
            self._guarded[signature] = stmt
        return stmt

    def changed_update(self, columns: tuple[str, ...], expected: Mapping[str, Any]) -> sa.Executable:
        """The compare-and-set of :meth:`PostgresRepository.update_changed`, cached: ``UPDATE``
        of ``columns`` only, guarded as :meth:`guarded_update`, in a statement that fails when
        it changed no row. It yields ``1 / count(*)`` of the rows changed: PostgreSQL's
        division by zero (SQLSTATE 22012) aborts the transaction, so a write sent ahead with
        the commit never commits around a failed compare-and-set. The unit of work reports
        that error as :class:`Conflict`."""
        signature = (columns, tuple(sorted((c, expected[c] is None) for c in expected)))
        stmt = self._changed.get(signature)
        if stmt is None:
            conditions = [self.key_match]
            for column, is_null in signature[1]:
                col = self.column(column)
                conditions.append(col.is_(None) if is_null else col == sa.bindparam(f"x_{column}"))
            changed = (
                self.table.update()
                .where(*conditions)
                .values({c: sa.bindparam(f"v_{c}") for c in columns})
                .returning(sa.literal_column("1"))
                .cte("changed")
            )
            stmt = sa.select(sa.literal_column("1 / count(*)").label("held")).select_from(changed)
            self._changed[signature] = stmt
        return stmt

    def returning_key(self, statement: sa.Update | sa.Delete) -> sa.Executable:
        """``statement … RETURNING`` the key columns (a row per row changed), cached."""
        found = self._returning.get(statement)
        if found is None:
            found = self._returning[statement] = statement.returning(*self.order)
        return found

    def column(self, name: str) -> sa.ColumnElement[Any]:
        """The column ``name``; ``ValueError`` for a name the table does not have."""
        if name not in self.table.c:
            raise ValueError(f"{self.name} has no column {name!r}")
        return self.table.c[name]

    def key_params(self, key: Any) -> dict[str, Any]:
        """Bind parameters for a primary key (a tuple for composite keys)."""
        values = key if len(self.key) > 1 else (key,)
        if not isinstance(values, tuple) or len(values) != len(self.key):
            raise ValueError(f"{self.name} keys are ({', '.join(self.key)})")
        return {f"k_{name}": self.scalar(name, value) for name, value in zip(self.key, values, strict=True)}

    def key_of(self, entity: Any) -> Any:
        """The primary key of ``entity`` (a tuple for composite keys)."""
        values = tuple(getattr(entity, k) for k in self.key)
        return values if len(values) > 1 else values[0]

    def scalar(self, column: str, value: Any) -> Any:
        """A Python value as a bind parameter for ``column``."""
        if isinstance(value, Enum):
            return value.value
        if value is not None and dict(self.kinds).get(column) == "json":
            return unstructure(value)
        return value

    def params(self, entity: Any) -> dict[str, Any]:
        """The entity's columns as bind parameters."""
        if not isinstance(entity, self.entity):
            raise TypeError(f"{self.name} stores {self.entity.__name__}, not {type(entity).__name__}")
        out: dict[str, Any] = {}
        for name, kind in self.kinds:
            value = getattr(entity, name)
            if value is not None:
                if kind == "json":
                    value = unstructure(value)
                elif kind == "enum":
                    value = value.value
            out[name] = value
        return out

    def copy_sql(self, schema: str) -> str:
        """``COPY schema.table (columns) FROM STDIN`` (catalogued names and a checked schema only)."""
        return f"COPY {schema}.{self.name} ({self.copy_columns}) FROM STDIN"

    def copy_row(self, entity: Any) -> tuple[Any, ...]:
        """The entity as one row for ``COPY … FROM STDIN`` (the bulk path: columns read in one
        go, free-form JSON objects thawed without the converter)."""
        if type(entity) is not self.entity and not isinstance(entity, self.entity):
            raise TypeError(f"{self.name} stores {self.entity.__name__}, not {type(entity).__name__}")
        values = self._read_all(entity)
        if len(self.columns) == 1:
            values = (values,)
        return tuple(
            value if value is None or kind is None else _COPY_CONVERTERS[kind](value)
            for value, kind in zip(values, self._copy_kinds, strict=True)
        )

    def entity_of(self, row: Mapping[str, Any] | sa.RowMapping) -> Any:
        """Build the entity from a row of this table; for the tables of
        :data:`CACHED_ENTITIES`, the entity already built from a row with the same values, if
        there is one. The row's values passed the entity's rules when they were written (and
        the columns hold the data model's checks), so the entity is built without running its
        validators again (:func:`~fittwin_core.domain.converter.trusted_row_builder`)."""
        if self._built is None:
            return self._build_entity(row)
        key = tuple(_hashable(row[name]) for name in self.columns)
        entity = self._built.get(key)
        if entity is None:
            entity = self._build_entity(row)
            if len(self._built) >= _BUILT_KEPT:
                self._built.clear()
            self._built[key] = entity
        return entity


def _json_value(value: Any) -> Any:
    """A JSON column's value as plain ``dict``/``list``: :class:`JsonMap` walked directly,
    anything else (attrs values) through the converter."""
    kind = type(value)
    if kind is JsonMap:
        return {key: _plain(item) for key, item in value.items()}
    return unstructure(value)


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is JsonMap:
        return {key: _plain(item) for key, item in value.items()}
    if kind is tuple or kind is list:
        return [_plain(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    return thaw_json(value)


_COPY_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "json": lambda value: Jsonb(_json_value(value), dumps=dumps),
    "enum": lambda value: value.value,
}


STATEMENTS: dict[str, TableStatements] = {name: TableStatements(spec) for name, spec in TABLES.items()}
"""Prebuilt statements for every table."""


# ============================================================================ repositories


class PostgresReadRepository(Generic[E]):
    """Reads of one table inside a unit of work."""

    def __init__(self, uow: PostgresUnitOfWork, statements: TableStatements) -> None:
        self._uow = uow
        self._s = statements

    def get(self, key: Any) -> E:
        """The row with primary key ``key``; :class:`NotFound` otherwise."""
        found = self.find(key)
        if found is None:
            raise NotFound(self._s.name, key)
        return found

    def find(self, key: Any) -> E | None:
        """The row with primary key ``key``, or ``None``."""
        rows = self._uow.pipeline([(self._s.get, self._s.key_params(key))], table=self._s.name)[0]
        return self._s.entity_of(rows[0]) if rows else None

    def get_many(self, keys: Iterable[Any]) -> list[E]:
        """The rows with these keys that exist, in the order of ``keys``."""
        wanted = list(keys)
        if not wanted:
            return []
        s = self._s
        if len(s.key) == 1:
            values = [s.scalar(s.key[0], k) for k in wanted]
            condition: sa.ColumnElement[bool] = s.table.c[s.key[0]].in_(values)
        else:
            condition = sa.or_(
                *(sa.and_(*(s.table.c[c] == v for c, v in zip(s.key, k, strict=True))) for k in wanted)
            )
        rows = self._uow.execute(sa.select(s.table).where(condition), table=s.name).mappings().all()
        by_key = {s.key_of(entity): entity for entity in map(s.entity_of, rows)}
        return [by_key[k] for k in wanted if k in by_key]

    def where(
        self, *, order_by: str | Sequence[str] = (), limit: int | None = None, **filters: Any
    ) -> list[E]:
        """Rows matching every filter (``column=value`` or ``column=Compare(...)``), ordered by
        ``order_by`` (``"-column"`` descending) and then by primary key."""
        stmt = sa.select(self._s.table).where(*self._conditions(filters))
        names = (order_by,) if isinstance(order_by, str) else tuple(order_by)
        clauses = []
        for name in names:
            column = self._s.column(name.removeprefix("-"))
            clauses.append(column.desc() if name.startswith("-") else column.asc())
        stmt = stmt.order_by(*clauses, *self._s.order)
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must not be negative")
            stmt = stmt.limit(limit)
        rows = self._uow.execute(stmt, table=self._s.name).mappings().all()
        return [self._s.entity_of(row) for row in rows]

    def append_notification(self, order_id: UUID, entry: Notification) -> None:
        """``notifications = notifications || [entry]``, sent with the next round trip (see the port)."""
        if not isinstance(entry, Notification):
            raise TypeError(f"orders.notifications holds Notification entries, not {type(entry).__name__}")
        params = {"k_id": order_id, "entry": dumps([unstructure(entry)])}
        self._uow.defer(_APPEND_NOTIFICATION, params, table=self._s.name)

    def count(self, **filters: Any) -> int:
        """How many rows match."""
        stmt = sa.select(sa.func.count()).select_from(self._s.table).where(*self._conditions(filters))
        return int(self._uow.execute(stmt, table=self._s.name).scalar_one())

    def add(self, entity: E) -> None:
        """Insert a row."""
        self._uow.pipeline([(self._s.insert, self._s.params(entity))], table=self._s.name, op="insert")

    def add_many(self, entities: Iterable[E]) -> None:
        """Insert many rows in one ``COPY`` (the bulk path; triggers fire as for inserts)."""
        rows = [self._s.copy_row(entity) for entity in entities]
        if not rows:
            return
        self._uow.copy(self._s.copy_sql(self._uow.schema), rows, table=self._s.name)

    def _conditions(self, filters: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if self._s.name in partitions.PARTITIONED_TABLES and "created_at" in filters:
            since, until = _created_window(filters["created_at"])
            conditions.extend(partitions.id_conditions(self._s.table.c.id, since, until))
        for name, value in filters.items():
            column = self._s.column(name)
            if not isinstance(value, Compare):
                conditions.append(
                    column.is_(None) if value is None else column == self._s.scalar(name, value)
                )
                continue
            if value.op in ("in", "not in"):
                members = [self._s.scalar(name, v) for v in value.value]
                present = [v for v in members if v is not None]
                has_null = len(present) != len(members)
                if value.op == "in":
                    condition = column.in_(present)
                    conditions.append(sa.or_(condition, column.is_(None)) if has_null else condition)
                else:
                    excluded = sa.or_(column.not_in(present), column.is_(None))
                    conditions.append(sa.and_(excluded, column.is_not(None)) if has_null else excluded)
                continue
            if value.op == "within":
                start, stop = (self._s.scalar(name, v) for v in value.value)
                conditions.append(sa.and_(column >= start, column < stop))
                continue
            operand = self._s.scalar(name, value.value)
            if value.op == "!=":
                conditions.append(column.is_distinct_from(operand))
            else:
                conditions.append(column.operate(_OPERATORS[value.op], operand))
        return conditions


def _created_window(value: Any) -> tuple[datetime | None, datetime | None]:
    """The ``[since, until)`` a ``created_at`` filter keeps, widened to whole milliseconds
    (``None``: unbounded), for the id bounds that prune partitions."""
    if isinstance(value, datetime):
        return value, value + _MS
    if not isinstance(value, Compare):
        return None, None
    bound = value.value
    if value.op == "within":
        start, stop = bound
        return (start, stop) if isinstance(start, datetime) and isinstance(stop, datetime) else (None, None)
    if not isinstance(bound, datetime):
        return None, None
    if value.op in (">", ">="):
        return bound, None
    if value.op in ("<", "<="):
        return None, bound + _MS
    return None, None


_MS = timedelta(milliseconds=1)

_OPERATORS: dict[str, Any] = {
    "<": sa.sql.operators.lt,
    "<=": sa.sql.operators.le,
    ">": sa.sql.operators.gt,
    ">=": sa.sql.operators.ge,
}


class PostgresAppendOnlyRepository(PostgresReadRepository[E]):
    """A table whose rows are only added (``event_logs``), through ``fittwin_record_events``:
    the application role needs no INSERT on the table, and rows posing as row changes (which
    only the audit triggers write) are refused."""

    def add(self, entity: E) -> None:
        """Add one record."""
        self.add_many([entity])

    def add_many(self, entities: Iterable[E]) -> None:
        """Add records in one call."""
        rows = [unstructure(entity) for entity in entities]
        if rows:
            self._uow.execute(_RECORD_EVENTS, {"rows": Jsonb(rows, dumps)}, table=self._s.name, op="insert")


_RECORD_EVENTS = sa.text("SELECT fittwin_record_events(:rows)")


class PostgresRepository(PostgresReadRepository[E]):
    """Full access to one table inside a unit of work."""

    def lock(self, key: Any) -> E:
        """Read the row and hold it (``SELECT … FOR UPDATE``) until the unit of work ends."""
        rows = self._uow.pipeline([(self._s.lock, self._s.key_params(key))], table=self._s.name)[0]
        if not rows:
            raise NotFound(self._s.name, key)
        return self._s.entity_of(rows[0])  # type: ignore[no-any-return]

    def update(self, entity: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Replace the row; with ``expected``, only if it still holds those values
        (:class:`Conflict` otherwise). :class:`NotFound` when the row is gone."""
        s = self._s
        params = s.params(entity)
        key = s.key_of(entity)
        params.update(s.key_params(key))
        stmt = s.update
        if expected:
            stmt = s.guarded_update(expected)
            params.update({f"x_{c}": s.scalar(c, v) for c, v in expected.items() if v is not None})
        changed = self._uow.pipeline([(s.returning_key(stmt), params)], table=s.name, op="update")[0]
        if not changed:
            if self._uow.execute(s.exists, s.key_params(key), table=s.name).first() is None:
                raise NotFound(s.name, key)
            raise Conflict(f"{s.name} {key} changed since it was read (compare-and-set failed)")

    def update_changed(self, before: E, after: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Write the columns that differ from ``before``, guarded by ``expected``, with the
        unit of work's next round trip (see the port and :meth:`TableStatements.changed_update`)."""
        s = self._s
        if not isinstance(after, s.entity):
            raise TypeError(f"{s.name} stores {s.entity.__name__}, not {type(after).__name__}")
        changes = changed_columns(before, after)
        if not changes:
            return
        if any(column in s.key for column in changes):
            raise ValueError(f"{s.name}: update_changed cannot change the key")
        guard = dict(expected or {})
        params = {f"v_{c}": s.scalar(c, v) for c, v in changes.items()}
        params.update(s.key_params(s.key_of(after)))
        params.update({f"x_{c}": s.scalar(c, v) for c, v in guard.items() if v is not None})
        self._uow.defer(s.changed_update(tuple(sorted(changes)), guard), params, table=s.name, guarded=True)

    def delete(self, key: Any) -> None:
        """Delete the row (:class:`NotFound` if missing, :class:`Conflict` if referenced)."""
        s = self._s
        gone = self._uow.pipeline(
            [(s.returning_key(s.delete), s.key_params(key))], table=s.name, op="delete"
        )[0]
        if not gone:
            raise NotFound(s.name, key)


_VARIANTS = tables["product_variants"]
_TAKE = (
    _VARIANTS.update()
    .where(
        _VARIANTS.c.id == sa.bindparam("k_id"),
        _VARIANTS.c.inventory + sa.bindparam("delta") >= 0,
    )
    .values(inventory=_VARIANTS.c.inventory + sa.bindparam("delta"), updated_at=sa.bindparam("now"))
    .returning(*_VARIANTS.c)
)
_TAKEN_ABOVE = (
    _VARIANTS.update()
    .where(
        _VARIANTS.c.id == sa.bindparam("k_id"),
        _VARIANTS.c.status == VariantStatus.ACTIVE.value,
        _VARIANTS.c.inventory + sa.bindparam("delta") > sa.bindparam("above"),
    )
    .values(inventory=_VARIANTS.c.inventory + sa.bindparam("delta"), updated_at=sa.bindparam("now"))
    .returning(*_VARIANTS.c)
    .cte("taken")
)
_HELD = sa.select(sa.literal_column("1 / count(*)").label("held")).select_from(_TAKEN_ABOVE).subquery("held")
_TAKE_ABOVE = sa.select(*_TAKEN_ABOVE.c).select_from(_HELD.outerjoin(_TAKEN_ABOVE, _HELD.c.held == 1))
"""A stock change of an active variant that leaves more than ``above``, or an error: its row,
or PostgreSQL's division by zero (SQLSTATE 22012) when it changed none, which aborts what the
round trip holds after it (the order, the ``COMMIT``). The join's condition reads the
quotient, so the planner cannot drop it as an unused column."""
_CURRENT = sa.select(_VARIANTS.c.id, _VARIANTS.c.inventory).where(_VARIANTS.c.id == sa.bindparam("k_id"))
_LOCKED = _CURRENT.with_for_update().cte("cur")
_CLAMP = (
    _VARIANTS.update()
    .where(_VARIANTS.c.id == _LOCKED.c.id)
    .values(
        inventory=sa.func.greatest(_LOCKED.c.inventory + sa.bindparam("delta"), 0),
        updated_at=sa.bindparam("now"),
    )
    .returning(*_VARIANTS.c, (_VARIANTS.c.inventory - _LOCKED.c.inventory).label("applied"))
)


class PostgresVariantRepository(PostgresRepository[ProductVariant]):
    """``product_variants`` with stock changes made by one guarded statement."""

    def adjust_inventory(
        self, variant_id: UUID, delta: int, *, clamp_at_zero: bool = False
    ) -> tuple[ProductVariant, int]:
        """Add ``delta`` to the stock atomically; the variant and the delta applied.

        ``UPDATE … SET inventory = inventory + :d WHERE id = :id AND inventory + :d >= 0``;
        when that guard fails, :class:`InsufficientInventory` and nothing changed. With
        ``clamp_at_zero`` the stock stops at 0 and the applied delta says how much was taken.
        ``updated_at`` is stamped from the store's clock.
        """
        check_delta(delta)
        params: dict[str, Any] = {"k_id": variant_id, "delta": delta, "now": self._uow.now()}
        name = self._s.name
        if clamp_at_zero:
            row = self._uow.execute(_CLAMP, params, table=name, op="update").mappings().first()
            if row is None:
                raise NotFound(name, variant_id)
            values = dict(row)
            applied = int(values.pop("applied"))
            return self._s.entity_of(values), applied
        row = self._uow.execute(_TAKE, params, table=name, op="update").mappings().first()
        if row is None:
            current = self._uow.execute(_CURRENT, {"k_id": variant_id}, table=name).first()
            if current is None:
                raise NotFound(name, variant_id)
            raise InsufficientInventory(variant_id, -delta, int(current.inventory))
        return self._s.entity_of(row), delta

    def adjust_inventory_many(self, changes: Sequence[StockChange]) -> list[tuple[ProductVariant, int]]:
        """Every change's guarded statement (as :meth:`adjust_inventory`'s) in one round trip,
        behind a savepoint: when a guard fails, the savepoint is rolled back (nothing changed)
        and :class:`InsufficientInventory` names the first change that could not be made."""
        return _take_stock(self._uow, changes, [], table=self._s.name)


def _take_stock(
    uow: PostgresUnitOfWork,
    changes: Sequence[StockChange],
    then: Sequence[tuple[sa.Executable, Mapping[str, Any]]],
    *,
    table: str,
) -> list[tuple[ProductVariant, int]]:
    """The stock ``changes`` and then the statements ``then`` in one round trip behind a
    savepoint, rolled back (stock and ``then`` alike) when a guard fails."""
    if not changes and not then:
        return []
    statements = STATEMENTS["product_variants"]
    now = uow.now()
    queries: list[tuple[sa.Executable, Mapping[str, Any]]] = [(_SAVEPOINT, {})]
    for change in changes:
        check_delta(change.delta)
        params = {"k_id": change.variant_id, "delta": change.delta, "now": now}
        queries.append((_CLAMP if change.clamp_at_zero else _TAKE, params))
    queries.extend(then)
    results = uow.pipeline(queries, table=table, op="update" if not then else "insert")[1 : len(changes) + 1]
    out: list[tuple[ProductVariant, int]] = []
    for change, rows in zip(changes, results, strict=True):
        if not rows:
            current = uow.pipeline(
                [(_BACK_TO_SAVEPOINT, {}), (_CURRENT, {"k_id": change.variant_id})], table=statements.name
            )[1]
            if not current:
                raise NotFound(statements.name, change.variant_id)
            raise InsufficientInventory(change.variant_id, -change.delta, int(current[0]["inventory"]))
        values = dict(rows[0])
        applied = int(values.pop("applied")) if change.clamp_at_zero else change.delta
        out.append((statements.entity_of(values), applied))
    return out


_SAVEPOINT = sa.text("SAVEPOINT fittwin_stock")
_BACK_TO_SAVEPOINT = sa.text("ROLLBACK TO SAVEPOINT fittwin_stock")

_ORDERS, _ORDER_ITEMS = tables["orders"], tables["order_items"]


_WITH_ITEMS: dict[int, sa.Executable] = {}


def _order_with_items(count: int) -> sa.Executable:
    """``WITH placed AS (INSERT INTO orders …) INSERT INTO order_items … VALUES (…), …``: an order
    and its ``count`` lines in one statement, cached per count (the parameters are the columns
    prefixed ``o_`` and ``i0_``, ``i1_``…). The lines' foreign key is checked at the end of the
    statement, when the order is in."""
    found = _WITH_ITEMS.get(count)
    if found is None:
        placed = (
            _ORDERS.insert()
            .values({c.name: sa.bindparam(f"o_{c.name}", type_=c.type) for c in _ORDERS.c})
            .returning(_ORDERS.c.id)
            .cte("placed")
        )
        rows = [
            {c.name: sa.bindparam(f"i{n}_{c.name}", type_=c.type) for c in _ORDER_ITEMS.c}
            for n in range(count)
        ]
        found = _WITH_ITEMS[count] = _ORDER_ITEMS.insert().values(rows).add_cte(placed)
    return found


class PostgresOrderRepository(PostgresRepository[Order]):
    """``orders`` with orders by brand in one statement."""

    def add_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange] = ()
    ) -> list[tuple[ProductVariant, int]]:
        """Take ``stock`` and insert the order and its lines, all in one round trip (a
        pipeline behind a savepoint; see the port)."""
        queries = [self._insert_with_items(order, items)]
        if not stock:
            self._uow.pipeline(queries, table=self._s.name, op="insert")
            return []
        return _take_stock(self._uow, stock, queries, table=self._s.name)

    def commit_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange], above: int
    ) -> list[tuple[ProductVariant, int]] | None:
        """Behind a savepoint, each change as a statement that fails when it leaves ``above``
        or less (:data:`_TAKE_ABOVE`), the order with its lines, and the ``COMMIT``: one round
        trip. A change that fails aborts the rest; the savepoint is rolled back (one more
        round trip) and the result is ``None`` (see the port)."""
        if any(change.clamp_at_zero for change in stock):
            return None
        now = self._uow.now()
        queries: list[tuple[sa.Executable, Mapping[str, Any]]] = [(_SAVEPOINT, {})]
        for change in stock:
            check_delta(change.delta)
            queries.append(
                (_TAKE_ABOVE, {"k_id": change.variant_id, "delta": change.delta, "now": now, "above": above})
            )
        queries.append(self._insert_with_items(order, items))
        results = self._uow.commit_with(
            queries, table=self._s.name, op="insert", refusable=range(1, len(stock) + 1)
        )
        if results is None:
            return None
        variants = STATEMENTS["product_variants"]
        return [
            (variants.entity_of(rows[0]), change.delta)
            for change, rows in zip(stock, results[1 : len(stock) + 1], strict=True)
        ]

    def _insert_with_items(
        self, order: Order, items: Sequence[OrderItem]
    ) -> tuple[sa.Executable, Mapping[str, Any]]:
        """The order and its lines as one statement (:func:`_order_with_items`) and its parameters."""
        params = self._s.params(order)
        if not items:
            return self._s.insert, params
        lines = STATEMENTS["order_items"]
        params = {f"o_{name}": value for name, value in params.items()}
        for n, item in enumerate(items):
            params.update({f"i{n}_{name}": value for name, value in lines.params(item).items()})
        return _order_with_items(len(items)), params

    def for_brand(
        self,
        brand_id: UUID,
        *,
        status: OrderStatus | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Orders with a line of ``brand_id``, in id order (see the port's ``OrderRepository``).

        The brand's distinct order ids are read in order from ``idx_order_items_brand_order``
        and joined to ``orders`` by primary key, so ``LIMIT`` stops the walk after one page.
        """
        wanted = [_ORDER_ITEMS.c.brand_id == brand_id]
        if after is not None:
            wanted.append(_ORDER_ITEMS.c.order_id > after)
        ids = (
            sa.select(_ORDER_ITEMS.c.order_id)
            .where(*wanted)
            .distinct()
            .order_by(_ORDER_ITEMS.c.order_id)
            .subquery("brand_orders")
        )
        stmt = sa.select(_ORDERS).join(ids, _ORDERS.c.id == ids.c.order_id).order_by(ids.c.order_id)
        if status is not None:
            stmt = stmt.where(_ORDERS.c.status == self._s.scalar("status", status))
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must not be negative")
            stmt = stmt.limit(limit)
        rows = self._uow.execute(stmt, table=self._s.name).mappings().all()
        return [self._s.entity_of(row) for row in rows]


_APPEND_NOTIFICATION = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("k_id"))
    .values(
        notifications=sa.func.coalesce(_ORDERS.c.notifications, sa.literal_column("'[]'::jsonb")).op("||")(
            sa.cast(sa.bindparam("entry", type_=sa.Text), pg.JSONB)
        )
    )
)

_OUTBOX = tables["outbox"]
_ENQUEUE = (
    pg.insert(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_OUTBOX.c.id)
)


def _claim_statement(*, among: bool) -> sa.Executable:
    """``UPDATE outbox … FROM (SELECT due ids … FOR UPDATE SKIP LOCKED)`` (``among`` the ids
    bound as ``wanted``), ``RETURNING`` the claimed rows."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    due = sa.select(_OUTBOX.c.id).where(
        _OUTBOX.c.status == OutboxStatus.PENDING.value,
        _OUTBOX.c.available_at <= now,
        sa.or_(_OUTBOX.c.lease_until.is_(None), _OUTBOX.c.lease_until <= now),
    )
    if among:
        due = due.where(
            _OUTBOX.c.id == sa.any_(sa.bindparam("wanted", type_=pg.ARRAY(pg.UUID(as_uuid=True))))
        )
    picked = (
        due.order_by(_OUTBOX.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .with_for_update(skip_locked=True)
        .subquery("due")
    )
    return (
        _OUTBOX.update()
        .where(_OUTBOX.c.id == picked.c.id)
        .values(claimed_by=sa.bindparam("claimer"), lease_until=sa.bindparam("lease_until"), updated_at=now)
        .returning(*_OUTBOX.c)
    )


_CLAIM, _CLAIM_AMONG = _claim_statement(among=False), _claim_statement(among=True)


class PostgresOutboxRepository(PostgresRepository[OutboxEffect]):
    """``outbox`` with claims by one ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)``."""

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        claimer: UUID,
        limit: int,
        ids: Iterable[UUID] | None = None,
    ) -> list[OutboxEffect]:
        """Claim up to ``limit`` due effects in id order, skipping rows other units of work
        hold (see the port's ``OutboxRepository``); the statement is built once per shape."""
        params: dict[str, Any] = {
            "now": now,
            "lease_until": lease_until,
            "claimer": claimer,
            "limit": max(0, limit),
        }
        if ids is not None:
            params["wanted"] = sorted(set(ids))
            if not params["wanted"]:
                return []
        stmt = _CLAIM_AMONG if ids is not None else _CLAIM
        rows = self._uow.pipeline([(stmt, params)], table=self._s.name, op="update")[0]
        return sorted((self._s.entity_of(row) for row in rows), key=lambda e: e.id)

    def enqueue(self, effect: OutboxEffect) -> Enqueued:
        """``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id``, sent with the next
        round trip; the :class:`Enqueued` is filled in when it has run."""
        if not isinstance(effect, OutboxEffect):
            raise TypeError(f"outbox stores OutboxEffect, not {type(effect).__name__}")
        enqueued = Enqueued()

        def ran(rows: list[dict[str, Any]]) -> None:
            enqueued.inserted = bool(rows)

        self._uow.defer(_ENQUEUE, self._s.params(effect), table=self._s.name, op="insert", on_rows=ran)
        return enqueued

    def complete(self, effect: OutboxEffect, *, claimer: UUID, at: datetime, outcome: str) -> OutboxEffect:
        """Record a successful attempt (see the port)."""
        return outbox.complete(self, effect, claimer=claimer, at=at, outcome=outcome)

    def fail(
        self, effect: OutboxEffect, *, claimer: UUID, at: datetime, error: str, retry_at: datetime | None
    ) -> OutboxEffect:
        """Record a failed attempt (see the port)."""
        return outbox.fail(self, effect, claimer=claimer, at=at, error=error, retry_at=retry_at)


# ============================================================================ unit of work


def _inline_params(statement: sa.Executable) -> dict[str, Any]:
    """The values bound inside a built statement (``where(email=...)``), by column name."""
    if not isinstance(statement, sa.ClauseElement):
        return {}
    return {re.sub(r"_\d+$", "", name): value for name, value in statement.compile().params.items()}


_PARTS = {
    "user_profiles": "u",
    "data_keys": "k",
    "payment_methods": "m",
    "addresses": "a",
    "product_variants": "v",
    "products": "p",
    "brands": "b",
    "size_charts": "c",
    "fit_maps": "f",
}
"""The tables a checkout reads and the prefix of their columns in its two statements."""


_UUIDS = pg.ARRAY(sa.Uuid())


def _labelled(source: Any, table: str) -> list[sa.ColumnElement[Any]]:
    return [source.c[c.name].label(f"{_PARTS[table]}__{c.name}") for c in tables[table].c]


def _checkout_statements() -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The two statements of :meth:`PostgresUnitOfWork.load_checkout`: the shopper's side (their
    row locked, in a CTE, so that the statement returns a row even when it is missing) with
    data key, payment method and addresses; and the variants with their products, brands,
    size charts and fit maps. Outer joins: a row that is not there leaves its columns null."""
    t = tables
    user_id = sa.bindparam("user_id", type_=sa.Uuid())
    shopper = (
        sa.select(t["user_profiles"])
        .where(t["user_profiles"].c.id == user_id)
        .with_for_update()  # serialised with erasure (see the port)
        .cte("shopper")
    )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    keys, methods, addresses = t["data_keys"], t["payment_methods"], t["addresses"]
    shopper_side = sa.select(
        *_labelled(shopper, "user_profiles"),
        *_labelled(keys, "data_keys"),
        *_labelled(methods, "payment_methods"),
        *_labelled(addresses, "addresses"),
    ).select_from(
        one.outerjoin(shopper, sa.true())
        .outerjoin(keys, keys.c.owner_id == user_id)
        .outerjoin(methods, methods.c.id == sa.bindparam("payment_method_id", type_=sa.Uuid()))
        .outerjoin(
            addresses, addresses.c.id == sa.any_(sa.bindparam("address_ids", type_=pg.ARRAY(sa.Uuid())))
        )
    )
    v, p, b, c, f = (t[n] for n in ("product_variants", "products", "brands", "size_charts", "fit_maps"))
    catalogue = (
        sa.select(
            *_labelled(v, "product_variants"),
            *_labelled(p, "products"),
            *_labelled(b, "brands"),
            *_labelled(c, "size_charts"),
            *_labelled(f, "fit_maps"),
        )
        .select_from(
            v.outerjoin(p, p.c.id == v.c.product_id)
            .outerjoin(b, b.c.id == p.c.brand_id)
            .outerjoin(c, c.c.id == p.c.size_chart_id)
            .outerjoin(f, f.c.id == p.c.fit_map_id)
        )
        .where(v.c.id == sa.any_(sa.bindparam("variant_ids", type_=_UUIDS)))
    )
    return shopper_side, catalogue


def _split(rows: Sequence[Mapping[str, Any]], table: str) -> dict[Any, Any]:
    """The entities of ``table`` in the joined ``rows`` of a checkout, by key (null columns:
    no row)."""
    statements = STATEMENTS[table]
    keys, columns = _split_names(table)
    found: dict[Any, Any] = {}
    for row in rows:
        values = tuple(row[k] for k in keys)
        key = values if len(values) > 1 else values[0]
        if values[0] is None or key in found:
            continue
        found[key] = statements.entity_of({name: row[label] for label, name in columns})
    return found


@functools.cache
def _split_names(table: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The labels of ``table``'s key columns in a checkout's rows, and (label, column) pairs."""
    statements, prefix = STATEMENTS[table], f"{_PARTS[table]}__"
    return (
        tuple(prefix + k for k in statements.key),
        tuple((prefix + name, name) for name in statements.columns),
    )


_CHECKOUT = _checkout_statements()
"""``load_checkout``'s statements, by table."""


_COMMIT = b"COMMIT"
_SET_ACTOR = sa.text(
    "SELECT set_config('fittwin.actor_type', :actor_type, true), "
    "set_config('fittwin.actor_id', :actor_id, true), set_config('fittwin.library', 'on', true)"
)


_RELAXED = sa.text("SELECT set_config('synchronous_commit', 'off', true)")
_STARTS_KEPT = 4096  # transaction setting values kept per store (one per actor, mostly)
_SETTINGS = lean_pipeline.Statement(re.sub(r":(\w+)", r"%(\1)s", BEGIN_SQL.text))
""":data:`BEGIN_SQL` for the lean pipeline, its values as parameters (sent with ``BEGIN``)."""


def _actor_settings(actor: Actor) -> dict[str, str]:
    return {"actor_type": actor.type.value, "actor_id": "" if actor.id is None else str(actor.id)}


def _aborted() -> Conflict:
    return Conflict(
        "a statement of this unit of work was refused, which aborted its transaction: "
        "call rollback() (or leave the with block) before going on"
    )


@attrs.frozen
class _Deferred:
    """A write sent with the unit of work's next round trip (see :meth:`PostgresUnitOfWork.defer`)."""

    statement: sa.Executable
    params: Mapping[str, Any]
    table: str
    op: Operation
    guarded: bool
    on_rows: Callable[[list[dict[str, Any]]], None] | None


class PostgresUnitOfWork(Repositories):
    """One PostgreSQL transaction (READ COMMITTED) with a repository per table.

    Nothing is visible to others until :meth:`commit`; leaving the ``with`` block without
    committing rolls back. After a commit the unit of work goes on in a new transaction. Every
    transaction starts by setting the store's schema, time-outs and the actor (read by the
    audit triggers) transaction-locally; every round trip is bounded by the store's
    :attr:`~PostgresStore.call_bound`.
    """

    def __init__(self, store: PostgresStore, actor: Actor) -> None:
        self.actor = actor
        self.schema = store.schema
        self._store = store
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None
        self._failed = False
        self._pending = False  # a transaction is open, its BEGIN and settings not yet sent
        self._fresh = False  # the connection came from the pool and has not been used yet
        self._deferred: list[_Deferred] = []  # writes waiting for the next round trip
        self._begun_as = actor  # the actor the open transaction's settings start with

    def __getattr__(self, name: str) -> Any:
        """The repository of table ``name``, made on first use (a unit of work touches a few)."""
        table = TABLES.get(name)
        if table is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        repository = self._repository(table)
        setattr(self, name, repository)
        return repository

    def _repository(self, table: CatalogTable) -> object:
        statements = STATEMENTS[table.name]
        if table.name == "product_variants":
            return PostgresVariantRepository(self, statements)
        if table.name == "orders":
            return PostgresOrderRepository(self, statements)
        if table.name == "outbox":
            return PostgresOutboxRepository(self, statements)
        if table.append_only:
            return PostgresAppendOnlyRepository[Any](self, statements)
        return PostgresRepository[Any](self, statements)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transaction

    def commit(self) -> None:
        """Make the changes durable and visible; later calls run in a new transaction.

        After a refused statement (a :class:`Conflict`, :class:`NotFound`, ... raised by the
        database) PostgreSQL has aborted the transaction: committing then raises
        :class:`Conflict` instead of silently discarding the work; roll back and go on."""
        if self._tx is None:
            return
        if self._failed:
            raise _aborted()
        if self._deferred:  # the waiting writes and the COMMIT, in one round trip
            try:
                self.pipeline([], table=self._deferred[-1].table, op=self._deferred[-1].op, commit=True)
            except FitTwinError:
                self.rollback()
                raise
            tx, self._tx = self._tx, None
            tx.commit()  # sends nothing: the server has committed
            return
        tx, self._tx = self._tx, None
        if self._pending:  # nothing was sent: nothing to commit
            self._pending = False
            with suppress(sa.exc.DBAPIError):
                tx.rollback()
            return
        deadline = self._store.deadline(self._conn)
        try:
            with deadline:
                tx.commit()
            return
        except sa.exc.DBAPIError as exc:
            failure = self._fail(exc, "commit", "update", deadline.expired)
        raise failure  # outside the except block: no reference to the driver's error

    def rollback(self) -> None:
        """Discard the changes made since the last commit."""
        self._failed = False
        self._deferred.clear()
        if self._tx is None:
            return
        tx, self._tx = self._tx, None
        self._pending = False
        try:
            with self._store.deadline(self._conn):
                tx.rollback()
        except sa.exc.DBAPIError:
            self._discard()

    def act_as(self, actor: Actor) -> None:
        """Record ``actor`` on the audit rows of the statements that follow, without a round
        trip of its own: in an open transaction the settings the triggers read are queued
        behind the waiting writes (:meth:`defer`), which stay audited as the actor who made
        them, and go with the next round trip."""
        if self._tx is not None and not self._failed:
            if self._pending and not self._deferred:
                self._begun_as = actor  # nothing sent yet: the transaction starts as ``actor``
            else:
                self._deferred.append(
                    _Deferred(
                        _SET_ACTOR,
                        _actor_settings(actor),
                        table="begin",
                        op="read",
                        guarded=False,
                        on_rows=None,
                    )
                )
        self.actor = actor

    def relax_durability(self) -> None:
        """Commit the current transaction without waiting for its WAL to reach the disk
        (``synchronous_commit`` off for it; see the port), set with the next round trip."""
        self.defer(_RELAXED, {}, table="begin", op="read")

    def commit_with(
        self,
        queries: Sequence[tuple[sa.Executable, Mapping[str, Any]]],
        *,
        table: str,
        op: Operation,
        refusable: range,
    ) -> list[list[dict[str, Any]]] | None:
        """Run ``queries`` and commit, in one round trip (:meth:`pipeline` with the commit),
        unless one of the queries at the indexes ``refusable`` refuses: fails with a division
        by zero, as :data:`_TAKE_ABOVE` does. Then nothing after it ran, the transaction is
        rolled back to the savepoint ``queries`` set first, and the result is ``None``: the
        transaction goes on."""
        if self._failed:
            raise _aborted()
        self._open()
        try:
            rows = self.pipeline(queries, table=table, op=op, commit=True, refusable=refusable)
        except _Refused:
            self.pipeline([(_BACK_TO_SAVEPOINT, {})], table=table)
            return None
        except FitTwinError:
            self.rollback()
            raise
        tx, self._tx = self._tx, None
        if tx is not None:
            tx.commit()  # sends nothing: the server has committed
        return rows

    def load_checkout(
        self,
        user_id: UUID,
        address_ids: Iterable[UUID],
        payment_method_id: UUID,
        variant_ids: Iterable[UUID],
    ) -> CheckoutRows:
        """What placing an order reads (see the port): two SELECTs in one round trip (with the
        transaction's start when it is the first), the shopper's row locked; see
        :func:`_checkout_statements`."""
        params = {
            "user_id": user_id,
            "address_ids": list(address_ids),
            "payment_method_id": payment_method_id,
            "variant_ids": list(variant_ids),
        }
        shopper, catalogue = self.pipeline([(statement, params) for statement in _CHECKOUT], table="checkout")
        return CheckoutRows(
            user=_split(shopper, "user_profiles").get(user_id),
            addresses=_split(shopper, "addresses"),
            payment_method=_split(shopper, "payment_methods").get(payment_method_id),
            data_key=_split(shopper, "data_keys").get(user_id),
            variants=_split(catalogue, "product_variants"),
            products=_split(catalogue, "products"),
            brands=_split(catalogue, "brands"),
            size_charts=_split(catalogue, "size_charts"),
            fit_maps=_split(catalogue, "fit_maps"),
        )

    def close(self) -> None:
        """Roll back what was not committed and give the connection back to the pool."""
        self.rollback()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with suppress(sa.exc.DBAPIError):
                conn.close()

    def connection(self) -> sa.Connection:
        """The connection of the current transaction, beginning one (and setting the actor)
        if none is open."""
        conn = self._open()
        if self._pending or self._deferred:
            self.pipeline([], table="connection")  # may replace a connection found dead
            assert self._conn is not None
            return self._conn
        return conn

    def _open(self) -> sa.Connection:
        """The connection of the current transaction; a new transaction is opened without a
        round trip (its ``BEGIN`` and settings go with the first statement)."""
        if self._tx is not None and self._conn is not None:
            if self._failed:
                raise _aborted()
            return self._conn
        if self._conn is None:
            self._conn, self._tx = self._store.open_transaction(self.actor, start=False)
            self._fresh = True
        else:  # after a commit: go on on the same connection
            self._tx = self._conn.begin()
        self._pending = True
        self._begun_as = self.actor
        return self._conn

    def defer(
        self,
        statement: sa.Executable,
        params: Mapping[str, Any],
        *,
        table: str,
        op: Operation = "update",
        guarded: bool = False,
        on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        """Queue a write whose rows nobody reads: it goes ahead of the statements of the next
        round trip (:meth:`pipeline`, :meth:`execute`, :meth:`copy`, a change of actor) or
        with the ``COMMIT``, in order, so what follows sees it. Its error, if any, is raised
        there; a ``guarded`` write is a compare-and-set built by
        :meth:`TableStatements.changed_update`, whose failure is a :class:`Conflict`.
        ``on_rows`` is called with the statement's rows once it has run."""
        self._open()
        self._deferred.append(_Deferred(statement, params, table, op, guarded, on_rows))

    def pipeline(
        self,
        queries: Sequence[tuple[sa.Executable, Mapping[str, Any]]],
        *,
        table: str,
        op: Operation = "read",
        commit: bool = False,
        refusable: range | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Run ``queries`` (built statements and their parameters, in order) in one round trip,
        one pipeline (:mod:`~fittwin_adapters.postgres.pipeline`), preceded by the
        transaction's ``BEGIN`` and settings when they are still to be sent and by the deferred
        writes (:meth:`defer`), and followed by the ``COMMIT`` with ``commit``; the rows of
        each query (none for a statement returning none), as column-name dicts. Errors are
        translated as :meth:`execute` translates them, naming the table of the statement that
        failed. A transaction's first round trip that finds its connection dead (the pre-ping)
        or its prepared statements gone is made again on a new connection, once."""
        for attempt in (1, 2):
            conn = self._open()
            pending, fresh = self._pending, self._fresh
            deferred = list(self._deferred)
            sent = [(d.statement, d.params) for d in deferred]
            sent.extend(queries)
            tables_of = [d.table for d in deferred] + [table] * len(queries)
            deadline = self._store.deadline(conn)
            failure: Exception | None = None
            try:
                with deadline:
                    refusing = refusable is not None
                    rows = self._run_pipeline(conn, pending, sent, commit=commit, refusable=refusing)
            except UnicodeEncodeError:
                failure = self._refuse_text(table, _bound(sent))
            except Exception as caught:
                if (unwrapped := _driver_error(caught)) is None:
                    raise
                exc, ran = unwrapped
                wrapped = sa.exc.DBAPIError(table, None, exc)
                restart = attempt == 1 and pending and not deadline.expired
                if restart and self._restartable(exc, wrapped, fresh):
                    self._discard()
                    continue
                failed = len(ran) if len(ran) < len(sent) else None
                where = tables_of[failed] if failed is not None else table
                if _refused(exc, failed, refusable, len(deferred)):
                    self._ran_before_refusal(deferred, ran)
                    raise _Refused from None
                if is_refused_text(wrapped):
                    failure = self._refuse_text(where, _bound(sent))
                elif (
                    failed is not None
                    and failed < len(deferred)
                    and deferred[failed].guarded
                    and (getattr(exc, "sqlstate", None) == "22012")
                ):
                    self._fail(wrapped, where, "update")  # the transaction is aborted
                    failure = Conflict(
                        f"{where}: a row changed or went since it was read (compare-and-set failed)"
                    )
                else:
                    op_failed = deferred[failed].op if failed is not None and failed < len(deferred) else op
                    failure = self._fail(wrapped, where, op_failed, deadline.expired)
            if failure is not None:
                self._deferred.clear()
                raise failure  # outside the except block: no reference to the driver's error
            self._pending = self._fresh = False
            del self._deferred[: len(deferred)]
            for write, written in zip(deferred, rows, strict=False):
                if write.on_rows is not None:
                    write.on_rows(written)
            return rows[len(deferred) :]
        raise AssertionError("unreachable")  # pragma: no cover

    def _restartable(self, exc: Exception, wrapped: sa.exc.DBAPIError, fresh: bool) -> bool:
        """Whether a transaction's failed first round trip (nothing of it had run) is made
        again on a new connection: the connection was dead (the pre-ping, on a connection just
        taken from the pool), or the names prepared on it are gone (a ``DISCARD ALL`` or
        ``DEALLOCATE`` by someone else; the executor has forgotten them)."""
        if getattr(exc, "sqlstate", None) == "26000":
            return True
        return fresh and self._store.pool_pre_ping and is_disconnect(wrapped)

    def _ran_before_refusal(self, deferred: Sequence[_Deferred], ran: Sequence[list[dict[str, Any]]]) -> None:
        """After a refusal (see :meth:`commit_with`): the deferred writes ran, the rest did not."""
        self._pending = self._fresh = False
        del self._deferred[: len(deferred)]
        for write, written in zip(deferred, ran, strict=False):
            if write.on_rows is not None:
                write.on_rows(written)

    def _run_pipeline(
        self,
        conn: sa.Connection,
        pending: bool,
        queries: Sequence[tuple[sa.Executable, Mapping[str, Any]]],
        *,
        commit: bool = False,
        refusable: bool = False,
    ) -> list[list[dict[str, Any]]]:
        """The round trip of :meth:`pipeline`, on :mod:`~fittwin_adapters.postgres.pipeline`."""
        driver = conn.connection.driver_connection
        assert driver is not None
        statements = []
        for statement, params in queries:
            lean, binds = self._store.compiled(statement)
            statements.append((lean, binds(params)))
        # A whole transaction in one round trip (its start and its commit in this pipeline)
        # needs neither BEGIN nor COMMIT: the statements of a pipeline up to its Sync run as one
        # implicit transaction, committed at the Sync or, after an error, rolled back whole.
        # (Not when a query may refuse: an implicit transaction has no savepoints.)
        whole = pending and commit and not refusable
        before: list[bytes | tuple[lean_pipeline.Statement, Mapping[str, str]]] = []
        if pending:
            if not whole:
                before.append(b"BEGIN")
            before.append((_SETTINGS, self._store.setting_values(conn, self._begun_as)))
        after = [_COMMIT] if commit and not whole else []
        prepare = self._store.prepare_statements
        return lean_pipeline.run(driver, statements, before=before, after=after, prepare=prepare)

    # ------------------------------------------------------------------ execution

    def execute(
        self,
        statement: sa.Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        table: str,
        op: Operation = "read",
    ) -> sa.CursorResult[Any]:
        """Run a statement in the current transaction, translating driver errors (text
        PostgreSQL cannot take becomes a :class:`ValidationError` naming the column)."""
        conn = self.connection()
        deadline = self._store.deadline(conn)
        failure: FitTwinError | None = None
        try:
            with deadline:
                return conn.execute(statement, params)
        except sa.exc.DBAPIError as exc:
            if not is_refused_text(exc):
                failure = self._fail(exc, table, op, deadline.expired)
        except UnicodeEncodeError:
            pass
        if failure is not None:
            raise failure
        # Raised outside the except blocks: the driver's error (which quotes the text) is
        # neither the cause nor the context of what the caller sees.
        raise self._refuse_text(table, params or _inline_params(statement))

    def copy(self, sql: str, rows: Sequence[tuple[Any, ...]], *, table: str) -> None:
        """``COPY … FROM STDIN`` the rows on the current transaction's connection."""
        conn = self.connection()
        deadline = self._store.deadline(conn)
        try:
            driver = conn.connection.driver_connection
            assert driver is not None
            with deadline, driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except UnicodeEncodeError:
            pass
        except Exception as exc:
            import psycopg

            if not isinstance(exc, psycopg.Error):
                raise
            wrapped = sa.exc.DBAPIError(sql, None, exc)
            refused = is_refused_text(wrapped)
            failure = None if refused else self._fail(wrapped, table, "insert", deadline.expired)
            del wrapped
        else:
            return
        raise failure or self._refuse_text(table, rows)

    def now(self) -> datetime:
        """The store clock's time (stamped on ``updated_at`` by stock changes)."""
        return self._store.clock.now()

    def _refuse_text(self, table: str, params: Any) -> ValidationError:
        # The driver refused a parameter before sending it: the connection is fine, but the
        # statement did not run, so the unit of work goes no further (as after any refusal).
        if self._tx is not None:
            self._failed = True
        return refused_text(table, params)

    def _fail(
        self, exc: sa.exc.DBAPIError, table: str, op: Operation, timed_out: bool = False
    ) -> FitTwinError:
        error = self._store.unanswered() if timed_out else translate(exc, table=table, op=op)
        if timed_out or is_disconnect(exc) or isinstance(error, StoreUnavailable):
            self._discard()
        elif self._tx is not None:
            self._failed = True  # PostgreSQL aborted the transaction
        return error

    def _discard(self) -> None:
        # The connection is gone or unusable: invalidate it so the pool never hands it out
        # again; the server rolled the transaction back when the session ended.
        self._tx = None
        self._pending = self._fresh = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.invalidate()
                conn.close()
            except sa.exc.DBAPIError:
                pass


# ============================================================================ store


class PostgresStore:
    """FitTwin's store on PostgreSQL 15: ``PostgresStore("postgresql+psycopg://user@host/db")``.

    Every FitTwin object lives in the PostgreSQL schema ``schema`` (``fittwin`` by default;
    ``public`` for deployments made before schemas were configurable). Run :meth:`migrate` (or
    ``fittwin db upgrade``) once to create it.

    ``url`` may be a ready SQLAlchemy :class:`~sqlalchemy.Engine` instead (on psycopg 3): the
    host's pool is then used as it is, pool options are refused, and :meth:`close` leaves it
    open (its owner disposes it). Otherwise the store makes its own pool: ``pool_size`` and
    ``max_overflow`` size it, ``pool_timeout`` is how long a unit of work waits for a
    connection, ``pool_recycle`` how old a connection may get, ``connect_timeout`` bounds
    establishing one. With ``pool_pre_ping`` (on any engine) a connection found dead by a
    transaction's first round trip is replaced and that round trip made again, once.

    ``statement_timeout_ms``, ``lock_timeout_ms`` and ``idle_in_transaction_timeout_ms`` apply
    to FitTwin's own transactions (``None`` turns one off); a call still unanswered
    :attr:`call_bound` seconds after it was sent is abandoned and its connection dropped. A URL
    that is not a PostgreSQL URL raises :class:`ConfigurationError`; a server that cannot be
    reached :class:`StoreUnavailable`.

    Unit-of-work statements are prepared once per connection; ``prepare_statements=False``
    sends them unnamed instead, for a pooler in transaction mode that does not keep prepared
    statements (PgBouncer before 1.21, or without ``max_prepared_statements``).
    """

    def __init__(
        self,
        url: str | URL | sa.Engine,
        *,
        schema: str | None = None,
        clock: Clock | None = None,
        ids: Ids | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float | None = None,
        pool_recycle: int | None = DEFAULT_POOL_RECYCLE,
        pool_pre_ping: bool = True,
        connect_timeout: int | None = None,
        statement_timeout_ms: int | None = DEFAULT_STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS,
        idle_in_transaction_timeout_ms: int | None = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        check_connection: bool = True,
        prepare_statements: bool = True,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.ids = ids
        self.settings = SessionSettings(
            DEFAULT_SCHEMA if schema is None else schema,
            statement_timeout_ms,
            lock_timeout_ms,
            idle_in_transaction_timeout_ms,
        )
        self.schema = self.settings.schema
        self.pool_pre_ping = pool_pre_ping
        self.prepare_statements = prepare_statements
        """Whether unit-of-work statements are prepared once per connection (see the docs'
        *Round trips*); off behind a pooler that does not keep prepared statements."""
        self._implicit_schema = schema is None
        pool: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
            "connect_timeout": connect_timeout,
        }
        if isinstance(url, sa.Engine):
            given = sorted(name for name, value in pool.items() if value is not None)
            if pool_recycle != DEFAULT_POOL_RECYCLE:
                given.append("pool_recycle")
            if given:
                raise ConfigurationError(
                    f"{', '.join(given)} configure a pool, and a ready engine brings its own: "
                    "set them in create_engine(...)"
                )
            if url.dialect.name != "postgresql" or url.dialect.driver != "psycopg":
                raise ConfigurationError("FitTwin needs an engine on postgresql+psycopg:// (psycopg 3)")
            base, self._owns_engine = url, False
        else:
            base = make_engine(
                url,
                schema=self.schema,
                pool_recycle=pool_recycle,
                **{name: value for name, value in pool.items() if value is not None},
            )
            self._owns_engine = True
        self._base_engine = base
        self.engine: sa.Engine = base.execution_options(schema_translate_map={None: self.schema})
        """The engine FitTwin's statements run on: table names are qualified with the schema."""
        self._search_path: str | None = None
        self._compiled: dict[Any, tuple[lean_pipeline.Statement, _Binds]] = {}
        self._setting_values: dict[tuple[Any, ...], dict[str, str]] = {}
        self._discovery = discovery_sql(self.schema)
        if check_connection:
            try:
                with self._admin(bounded=False):
                    pass
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def call_bound(self) -> float | None:
        """Seconds FitTwin waits for PostgreSQL to answer a call before it gives the connection
        up and raises :class:`StoreUnavailable` (``statement_timeout_ms`` plus two seconds;
        ``None`` with statements unbounded)."""
        return self.settings.call_bound

    def connect(self) -> sa.Connection:
        """A pooled connection (:class:`StoreUnavailable` when the server cannot be reached or
        no connection frees up within ``pool_timeout``)."""
        try:
            return self.engine.connect()
        except sa.exc.TimeoutError:
            raise StoreUnavailable(
                "every pooled PostgreSQL connection is in use and none came free within pool_timeout: "
                "raise pool_size/max_overflow or hold units of work for less time"
            ) from None
        except sa.exc.DBAPIError as exc:
            failure = translate(exc, table="connection", op="read")
        raise failure

    def open_transaction(
        self, actor: Actor, *, bounded: bool = True, isolation: str | None = None, start: bool = True
    ) -> tuple[sa.Connection, sa.RootTransaction]:
        """A pooled connection with a transaction begun and :meth:`begin` done.

        The driver runs in autocommit mode and FitTwin sends its own ``BEGIN`` together with
        the settings, so a transaction starts in one round trip, not two. With ``start=False``
        nothing is sent yet: the caller sends ``BEGIN`` and the settings with its first statement
        (see :class:`PostgresUnitOfWork`).

        That first round trip doubles as the pool's pre-ping, at no extra cost: when it finds
        the connection dead (the server restarted, the backend was terminated, a firewall cut
        it), nothing has run yet, so with ``pool_pre_ping`` the connection is discarded
        (SQLAlchemy then recycles every connection pooled before it) and the transaction opened
        again on a new one, once. A call the watchdog cut off is not retried."""
        attempts = 2 if self.pool_pre_ping else 1
        for attempt in range(1, attempts + 1):
            conn = self.connect()
            deadline = self.deadline(conn) if bounded else UNBOUNDED
            try:
                with deadline:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                    if self._search_path is None:
                        self._search_path = self._discover(conn)
                        conn.rollback()  # the discovery's (autocommitted) SQLAlchemy transaction
                    tx = conn.begin()
                    if start:
                        self.begin(conn, actor, bounded=bounded, isolation=isolation)
            except sa.exc.DBAPIError as exc:
                _discard(conn)
                if attempt < attempts and not deadline.expired and is_disconnect(exc):
                    continue
                failure = (
                    self.unanswered() if deadline.expired else translate(exc, table="connection", op="read")
                )
            except BaseException:
                _discard(conn)
                raise
            else:
                return conn, tx
            raise failure
        raise AssertionError("unreachable")  # pragma: no cover

    def deadline(self, conn: sa.Connection | None, seconds: float | None = None) -> Deadline | Unbounded:
        """The watchdog's deadline for one call on ``conn`` (default: :attr:`call_bound`)."""
        if conn is None:
            return UNBOUNDED
        return WATCHDOG.deadline(driver_socket(conn), self.call_bound if seconds is None else seconds)

    def compiled(self, statement: sa.Executable) -> tuple[lean_pipeline.Statement, _Binds]:
        """A built statement as the lean pipeline's SQL (table names in the store's schema) and
        the function turning its parameters into psycopg's, compiled once per statement."""
        found = self._compiled.get(statement)
        if found is None:
            assert isinstance(statement, sa.ClauseElement)
            compiled = statement.compile(
                dialect=self.engine.dialect,
                schema_translate_map={None: self.schema},
                render_schema_translate=True,
            )
            found = (lean_pipeline.Statement(compiled.string), _binder(compiled))
            self._compiled[statement] = found
        return found

    def unanswered(self) -> StoreUnavailable:
        """The error of a call the watchdog cut off."""
        return StoreUnavailable(
            f"PostgreSQL did not answer within {self.call_bound:g} s (a stuck network or server): "
            "the connection was dropped and the unit of work rolled back"
        )

    def begin(
        self, conn: sa.Connection, actor: Actor, *, bounded: bool = True, isolation: str | None = None
    ) -> None:
        """Begin a transaction on ``conn`` (in the driver's autocommit mode, see
        :meth:`open_transaction`) and set the schema, UTC, the time-outs (off unless
        ``bounded``) and ``actor`` for it, in one round trip."""
        driver = conn.connection.driver_connection
        assert driver is not None
        begin = b"BEGIN" if isolation is None else f"BEGIN {isolation}".encode()
        settings = (_SETTINGS, self.setting_values(conn, actor, bounded=bounded))
        try:
            # Unnamed: a transaction begun here has no pipeline of its own to start again
            # from should prepared names have gone (see PostgresUnitOfWork.pipeline).
            lean_pipeline.run(driver, [], before=[begin, settings], prepare=False)
        except lean_pipeline.PipelineFailed as failed:
            raise failed.error from None

    def setting_values(self, conn: sa.Connection, actor: Actor, *, bounded: bool = True) -> Mapping[str, str]:
        """The values of :data:`~fittwin_adapters.postgres.engine.BEGIN_SQL` for a transaction
        of ``actor`` (the time-outs off unless ``bounded``), kept per actor: the one source
        of the settings, for :meth:`begin` and the unit of work's first pipeline."""
        if self._search_path is None:
            self._search_path = self._discover(conn)
        key = (self._search_path, bounded, actor.type, actor.id)
        found = self._setting_values.get(key)
        if found is None:
            found = self.settings.parameters(self._search_path)
            if not bounded:
                found.update(statement_timeout="0", lock_timeout="0", idle_timeout="0")
            found.update(_actor_settings(actor))
            if len(self._setting_values) >= _STARTS_KEPT:
                self._setting_values.clear()
            self._setting_values[key] = found
        return found

    def _discover(self, conn: sa.Connection) -> str:
        """The search path; and, when the schema was not named, refuse to silently start an
        empty FitTwin beside one that already lives in another schema."""
        row = conn.execute(self._discovery).one()
        path, deployed = str(row[0]), list(row[1] or ())
        if self._implicit_schema and deployed and self.schema not in deployed:
            raise legacy_schema_error(self.schema, deployed)
        return path

    def unit_of_work(self, actor: Actor | None = None) -> PostgresUnitOfWork:
        """A new unit of work acting as ``actor`` (the system when ``None``)."""
        # Its repositories are set by bind_repositories, which mypy cannot follow.
        return PostgresUnitOfWork(self, actor or Actor.system())  # type: ignore[abstract]

    def close(self) -> None:
        """Close every pooled connection — of the store's own pool; an engine handed in stays
        as it is (its owner disposes it)."""
        if self._owns_engine:
            self._base_engine.dispose()

    # ------------------------------------------------------------------ schema and partitions

    def migrate(self, revision: str = "head", *, ahead_months: int = 3) -> None:
        """Create or upgrade the schema to ``revision``, then the partitions ahead."""
        from fittwin_adapters.postgres.migrate import upgrade

        upgrade(self._base_engine, revision, schema=self.schema, ahead_months=ahead_months)
        self._search_path = None  # the first migration may have installed the extensions

    def revision(self) -> str | None:
        """The migration revision the store's schema is at (``None`` before the first migration)."""
        from fittwin_adapters.postgres.migrate import current_revision

        return current_revision(self._base_engine, schema=self.schema)

    def maintain_partitions(
        self, ahead_months: int = 3, retain_months: int | None = None, now: datetime | None = None
    ) -> partitions.PartitionReport:
        """Create this month's and the next ``ahead_months`` partitions of ``orders`` and
        ``event_logs``; drop ``event_logs`` months past ``retain_months`` (see
        :func:`fittwin_adapters.postgres.partitions.maintain_partitions`)."""
        if now is None:
            now = self.clock.now()
        with self._admin(bounded=False) as conn:
            return partitions.maintain_partitions(
                conn, ahead_months=ahead_months, retain_months=retain_months, now=now, schema=self.schema
            )

    def purge_event_logs(self, before: datetime, *, dry_run: bool = False) -> int:
        """Drop the ``event_logs`` months that ended by ``before``; how many rows went (or,
        with ``dry_run``, would go). Whole partitions only: rows of a month still running
        and rows in the DEFAULT partition stay."""
        with self._admin(bounded=False) as conn:
            return partitions.purge_event_logs(conn, before, dry_run=dry_run, schema=self.schema)

    # ------------------------------------------------------------------ analytics

    def referral_funnel(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        referrer_user_id: UUID | None = None,
        period: Period = "month",
    ) -> list[dict[str, Any]]:
        """Per referrer and period: links, clicks, conversions, fraud flags, rewards by status (in SQL)."""
        return self._analytics(
            sql_analytics.referral_funnel,
            since=since,
            until=until,
            referrer_user_id=referrer_user_id,
            period=period,
        )

    def reward_liability(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        referrer_user_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per ledger status and currency: entries and their amount in minor units (in SQL)."""
        return self._analytics(
            sql_analytics.reward_liability, since=since, until=until, referrer_user_id=referrer_user_id
        )

    def orders_by_status(
        self, *, since: datetime | None = None, until: datetime | None = None, period: Period = "month"
    ) -> list[dict[str, Any]]:
        """Per period, status and currency: orders, subtotal, total and refunded minor units (in SQL)."""
        return self._analytics(sql_analytics.orders_by_status, since=since, until=until, period=period)

    def size_recommendations(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product and recommended size: lines, units and confidence (in SQL)."""
        return self._analytics(
            sql_analytics.size_recommendations,
            since=since,
            until=until,
            product_id=product_id,
            brand_id=brand_id,
        )

    def returns_by_size(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, recommended and bought size: lines and units bought, delivered, returned (in SQL)."""
        return self._analytics(
            sql_analytics.returns_by_size, since=since, until=until, product_id=product_id, brand_id=brand_id
        )

    def returns_by_reason(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, bought size, return reason and zone: returned lines and units (in SQL)."""
        return self._analytics(
            sql_analytics.returns_by_reason,
            since=since,
            until=until,
            product_id=product_id,
            brand_id=brand_id,
        )

    def _analytics(self, query: Any, **filters: Any) -> list[dict[str, Any]]:
        # One read transaction: the funnel's three statements see one snapshot.
        with self._admin(isolation="ISOLATION LEVEL REPEATABLE READ READ ONLY") as conn:
            result: list[dict[str, Any]] = query(
                lambda stmt: [tuple(row) for row in conn.execute(stmt)], **filters
            )
            return result

    # ------------------------------------------------------------------ raw rows

    def raw_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as stored, JSON-able (the converter's scalar formats)."""
        if table not in STATEMENTS:
            raise ValueError(f"no table {table!r}")
        s = STATEMENTS[table]
        with self._admin() as conn:
            rows = conn.execute(sa.select(s.table).order_by(*s.order)).mappings().all()
        return [{column: unstructure(value) for column, value in row.items()} for row in rows]

    @contextmanager
    def _admin(self, *, bounded: bool = True, isolation: str | None = None) -> Iterator[sa.Connection]:
        """A transaction outside units of work (analytics, raw rows, partition maintenance);
        maintenance runs with the time-outs off (``bounded=False``), as migrations do."""
        conn, tx = self.open_transaction(Actor.system(), bounded=bounded, isolation=isolation)
        deadline = self.deadline(conn) if bounded else UNBOUNDED
        try:
            with deadline, tx:
                yield conn
        except sa.exc.DBAPIError as exc:
            failure = self.unanswered() if deadline.expired else translate(exc, table="store", op="read")
        else:
            return
        finally:
            with suppress(sa.exc.DBAPIError):
                conn.close()
        raise failure  # outside the except block: no reference to the driver's error


def _bound(queries: Sequence[tuple[sa.Executable, Mapping[str, Any]]]) -> Any:
    """The parameters of ``queries``, for :func:`refused_text` to find the column at fault."""
    return queries[0][1] if len(queries) == 1 else [params for _, params in queries]


_Binds = Callable[[Mapping[str, Any]], dict[str, Any]]
"""A statement's parameters as psycopg takes them, from the caller's (see :func:`_binder`)."""


def _driver_error(caught: Exception) -> tuple[Exception, list[list[dict[str, Any]]]] | None:
    """psycopg's error behind what a pipeline raised, and the rows of the statements that ran
    before the one that failed; ``None`` if it is no driver error."""
    import psycopg

    if isinstance(caught, lean_pipeline.PipelineFailed):
        return caught.error, caught.rows
    return (caught, []) if isinstance(caught, psycopg.Error) else None


def _binder(compiled: Any) -> _Binds:
    """The function turning a statement's parameters into psycopg's for ``compiled``:
    SQLAlchemy's ``construct_params`` and bind processors, with the lookups it repeats on every
    call (names, escaping, defaults of the parameters not given) done once, here."""
    processors: dict[str, Any] = dict(getattr(compiled, "_bind_processors", {}))
    binds = compiled.bind_names
    if any(bind.callable is not None for bind in binds) or compiled.escaped_bind_names:
        # defaults computed per call, or names escaped: SQLAlchemy's own way, every time
        def constructed(params: Mapping[str, Any]) -> dict[str, Any]:
            values: dict[str, Any] = compiled.construct_params(params)
            for name, process in processors.items():
                if name in values and values[name] is not None:
                    values[name] = process(values[name])
            return values

        return constructed
    defaults: dict[str, Any] = compiled.construct_params(_check=False)
    plan = tuple(
        (name, bind.key, bind.required, processors.get(name), defaults.get(name))
        for bind, name in binds.items()
    )

    def bound(params: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, key, required, process, default in plan:
            if key in params:
                value = params[key]
            elif name in params:
                value = params[name]
            elif required:
                raise sa.exc.InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = default
            values[name] = value if process is None or value is None else process(value)
        return values

    return bound


class _Refused(Exception):
    """A query of :meth:`PostgresUnitOfWork.commit_with` refused (see there)."""


def _refused(exc: Exception, failed: int | None, refusable: range | None, deferred: int) -> bool:
    """Whether the pipeline error ``exc`` at statement ``failed`` (counting ``deferred``
    writes ahead of the queries) is a refusal of one of the queries at ``refusable``."""
    return (
        refusable is not None
        and failed is not None
        and failed - deferred in refusable
        and getattr(exc, "sqlstate", None) == "22012"
    )


def _discard(conn: sa.Connection) -> None:
    """Give a connection up for good: invalidated, so the pool never hands it out again."""
    with suppress(sa.exc.DBAPIError):
        conn.invalidate()
        conn.close()


__all__ = [
    "STATEMENTS",
    "PostgresAppendOnlyRepository",
    "PostgresOrderRepository",
    "PostgresReadRepository",
    "PostgresRepository",
    "PostgresStore",
    "PostgresUnitOfWork",
    "PostgresVariantRepository",
    "TableStatements",
]
