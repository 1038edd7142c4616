"""``PostgresStore``: the store ports on PostgreSQL 15 with SQLAlchemy Core and psycopg 3.

Statements are built once per table at import time and reused; entities go in as native
values (UUID, datetime, enum labels, bytes) with JSON columns unstructured by the shared
converter, and come back through the same converter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

import attrs
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import analytics as sql_analytics
from fittwin_adapters.postgres import partitions
from fittwin_adapters.postgres.engine import make_engine
from fittwin_adapters.postgres.errors import Operation, is_disconnect, translate
from fittwin_adapters.postgres.jsoncodec import dumps
from fittwin_adapters.postgres.tables import column_kind, tables
from fittwin_core.domain import (
    Actor,
    ProductVariant,
)
from fittwin_core.domain.analytics import Period
from fittwin_core.domain.converter import structure, unstructure
from fittwin_core.domain.errors import (
    Conflict,
    FitTwinError,
    InsufficientInventory,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.ports import Clock, Compare, Ids, Repositories, bind_repositories
from fittwin_core.schema import TABLES
from fittwin_core.schema import Table as CatalogTable
from fittwin_core.system import SystemClock

E = TypeVar("E")


# ============================================================================ statements


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
        self.copy_sql = f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN"  # catalogued names only
        self._guarded: dict[tuple[tuple[str, bool], ...], sa.Update] = {}

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

    def copy_row(self, entity: Any) -> tuple[Any, ...]:
        """The entity as one row for ``COPY … FROM STDIN``."""
        params = self.params(entity)
        return tuple(
            Jsonb(params[name], dumps=dumps) if kind == "json" and params[name] is not None else params[name]
            for name, kind in self.kinds
        )

    def entity_of(self, row: sa.RowMapping) -> Any:
        """Build the entity from a row."""
        return structure(dict(row), self.entity)


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
        row = self._uow.execute(self._s.get, self._s.key_params(key), table=self._s.name).mappings().first()
        return None if row is None else self._s.entity_of(row)

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

    def count(self, **filters: Any) -> int:
        """How many rows match."""
        stmt = sa.select(sa.func.count()).select_from(self._s.table).where(*self._conditions(filters))
        return int(self._uow.execute(stmt, table=self._s.name).scalar_one())

    def add(self, entity: E) -> None:
        """Insert a row."""
        self._uow.execute(self._s.insert, self._s.params(entity), table=self._s.name, op="insert")

    def add_many(self, entities: Iterable[E]) -> None:
        """Insert many rows in one ``COPY`` (the bulk path; triggers fire as for inserts)."""
        rows = [self._s.copy_row(entity) for entity in entities]
        if not rows:
            return
        self._uow.copy(self._s.copy_sql, rows, table=self._s.name)

    def _conditions(self, filters: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
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
            operand = self._s.scalar(name, value.value)
            if value.op == "!=":
                conditions.append(column.is_distinct_from(operand))
            else:
                conditions.append(column.operate(_OPERATORS[value.op], operand))
        return conditions


_OPERATORS: dict[str, Any] = {
    "<": sa.sql.operators.lt,
    "<=": sa.sql.operators.le,
    ">": sa.sql.operators.gt,
    ">=": sa.sql.operators.ge,
}


class PostgresAppendOnlyRepository(PostgresReadRepository[E]):
    """A table whose rows are only added (``event_logs``)."""


class PostgresRepository(PostgresReadRepository[E]):
    """Full access to one table inside a unit of work."""

    def lock(self, key: Any) -> E:
        """Read the row and hold it (``SELECT … FOR UPDATE``) until the unit of work ends."""
        row = self._uow.execute(self._s.lock, self._s.key_params(key), table=self._s.name).mappings().first()
        if row is None:
            raise NotFound(self._s.name, key)
        return self._s.entity_of(row)  # type: ignore[no-any-return]

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
        result = self._uow.execute(stmt, params, table=s.name, op="update")
        if result.rowcount == 0:
            if self._uow.execute(s.exists, s.key_params(key), table=s.name).first() is None:
                raise NotFound(s.name, key)
            raise Conflict(f"{s.name} {key} changed since it was read (compare-and-set failed)")

    def delete(self, key: Any) -> None:
        """Delete the row (:class:`NotFound` if missing, :class:`Conflict` if referenced)."""
        result = self._uow.execute(self._s.delete, self._s.key_params(key), table=self._s.name, op="delete")
        if result.rowcount == 0:
            raise NotFound(self._s.name, key)


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
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise ValidationError("delta", "must be an integer")
        params: dict[str, Any] = {"k_id": variant_id, "delta": delta, "now": self._uow.now()}
        name = self._s.name
        if clamp_at_zero:
            row = self._uow.execute(_CLAMP, params, table=name, op="update").mappings().first()
            if row is None:
                raise NotFound(name, variant_id)
            values = dict(row)
            applied = int(values.pop("applied"))
            return self._s.entity_of(values), applied  # type: ignore[arg-type]
        row = self._uow.execute(_TAKE, params, table=name, op="update").mappings().first()
        if row is None:
            current = self._uow.execute(_CURRENT, {"k_id": variant_id}, table=name).first()
            if current is None:
                raise NotFound(name, variant_id)
            raise InsufficientInventory(variant_id, -delta, int(current.inventory))
        return self._s.entity_of(row), delta


# ============================================================================ unit of work


_SET_ACTOR = sa.text(
    "SELECT set_config('fittwin.actor_type', :actor_type, true), "
    "set_config('fittwin.actor_id', :actor_id, true), set_config('fittwin.library', 'on', true)"
)


def _aborted() -> Conflict:
    return Conflict(
        "a statement of this unit of work was refused, which aborted its transaction: "
        "call rollback() (or leave the with block) before going on"
    )


class PostgresUnitOfWork(Repositories):
    """One PostgreSQL transaction (READ COMMITTED) with a repository per table.

    Nothing is visible to others until :meth:`commit`; leaving the ``with`` block without
    committing rolls back. After a commit the unit of work goes on in a new transaction. The
    actor is written into transaction-local settings at the start of every transaction, where
    the audit triggers read it.
    """

    def __init__(self, store: PostgresStore, actor: Actor) -> None:
        self.actor = actor
        self._store = store
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None
        self._failed = False
        bind_repositories(self, self._repository)

    def _repository(self, table: CatalogTable) -> object:
        statements = STATEMENTS[table.name]
        if table.name == "product_variants":
            return PostgresVariantRepository(self, statements)
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
        tx, self._tx = self._tx, None
        try:
            tx.commit()
        except sa.exc.DBAPIError as exc:
            raise self._fail(exc, "commit", "update") from None

    def rollback(self) -> None:
        """Discard the changes made since the last commit."""
        self._failed = False
        if self._tx is None:
            return
        tx, self._tx = self._tx, None
        try:
            tx.rollback()
        except sa.exc.DBAPIError:
            self._discard()

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
        if self._tx is not None and self._conn is not None:
            if self._failed:
                raise _aborted()
            return self._conn
        if self._conn is None:
            self._conn = self._store.connect()
        try:
            self._tx = self._conn.begin()
            self._conn.execute(
                _SET_ACTOR,
                {
                    "actor_type": self.actor.type.value,
                    "actor_id": "" if self.actor.id is None else str(self.actor.id),
                },
            )
        except sa.exc.DBAPIError as exc:
            raise self._fail(exc, "begin", "read") from None
        return self._conn

    # ------------------------------------------------------------------ execution

    def execute(
        self,
        statement: sa.Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        table: str,
        op: Operation = "read",
    ) -> sa.CursorResult[Any]:
        """Run a statement in the current transaction, translating driver errors."""
        conn = self.connection()
        try:
            return conn.execute(statement, params)
        except sa.exc.DBAPIError as exc:
            raise self._fail(exc, table, op) from None

    def copy(self, sql: str, rows: Sequence[tuple[Any, ...]], *, table: str) -> None:
        """``COPY … FROM STDIN`` the rows on the current transaction's connection."""
        conn = self.connection()
        try:
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                wrapped = sa.exc.DBAPIError(sql, None, exc)
                raise self._fail(wrapped, table, "insert") from None
            raise

    def now(self) -> datetime:
        """The store clock's time (stamped on ``updated_at`` by stock changes)."""
        return self._store.clock.now()

    def _fail(self, exc: sa.exc.DBAPIError, table: str, op: Operation) -> FitTwinError:
        error = translate(exc, table=table, op=op)
        if is_disconnect(exc) or isinstance(error, StoreUnavailable):
            self._discard()
        elif self._tx is not None:
            self._failed = True  # PostgreSQL aborted the transaction
        return error

    def _discard(self) -> None:
        # The connection is gone or unusable: invalidate it so the pool never hands it out
        # again; the server rolled the transaction back when the session ended.
        self._tx = None
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

    Run :meth:`migrate` (or ``fittwin db upgrade``) once to create the schema. ``pool_size``
    and ``max_overflow`` size the connection pool (a unit of work holds one connection while
    it is open); ``statement_timeout_ms`` bounds every statement. A URL that is not a
    PostgreSQL URL raises :class:`ConfigurationError`; a server that cannot be reached
    :class:`StoreUnavailable`.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Clock | None = None,
        ids: Ids | None = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        statement_timeout_ms: int | None = None,
        check_connection: bool = True,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.ids = ids
        self.engine = make_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, statement_timeout_ms=statement_timeout_ms
        )
        if check_connection:
            with self.connect():
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> sa.Connection:
        """A pooled connection (:class:`StoreUnavailable` when the server cannot be reached)."""
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise translate(exc, table="connection", op="read") from None

    def unit_of_work(self, actor: Actor | None = None) -> PostgresUnitOfWork:
        """A new unit of work acting as ``actor`` (the system when ``None``)."""
        # Its repositories are set by bind_repositories, which mypy cannot follow.
        return PostgresUnitOfWork(self, actor or Actor.system())  # type: ignore[abstract]

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # ------------------------------------------------------------------ schema and partitions

    def migrate(self, revision: str = "head", *, ahead_months: int = 3) -> None:
        """Create or upgrade the schema to ``revision``, then the partitions ahead."""
        from fittwin_adapters.postgres.migrate import upgrade

        upgrade(self.engine, revision, ahead_months=ahead_months)

    def maintain_partitions(
        self, ahead_months: int = 3, retain_months: int | None = None, now: datetime | None = None
    ) -> partitions.PartitionReport:
        """Create this month's and the next ``ahead_months`` partitions of ``orders`` and
        ``event_logs``; drop ``event_logs`` months past ``retain_months`` (see
        :func:`fittwin_adapters.postgres.partitions.maintain_partitions`)."""
        if now is None:
            now = self.clock.now()
        with self._admin() as conn:
            return partitions.maintain_partitions(
                conn, ahead_months=ahead_months, retain_months=retain_months, now=now
            )

    def purge_event_logs(self, before: datetime, *, dry_run: bool = False) -> int:
        """Drop the ``event_logs`` months that ended by ``before``; how many rows went (or,
        with ``dry_run``, would go). Whole partitions only: rows of a month still running
        and rows in the DEFAULT partition stay."""
        with self._admin() as conn:
            return partitions.purge_event_logs(conn, before, dry_run=dry_run)

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
        with self._admin() as conn:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
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
    def _admin(self) -> Iterator[sa.Connection]:
        conn = self.connect()
        try:
            with conn.begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            raise translate(exc, table="store", op="read") from None
        finally:
            conn.close()


__all__ = [
    "STATEMENTS",
    "PostgresAppendOnlyRepository",
    "PostgresReadRepository",
    "PostgresRepository",
    "PostgresStore",
    "PostgresUnitOfWork",
    "PostgresVariantRepository",
    "TableStatements",
]
