"""The embedded default store: every table in memory, with the database's guarantees.

Transactions: a unit of work buffers its writes; nothing is visible to others until
``commit()``, and leaving without a commit discards them. Writers are serialised: the first
write (or ``lock()``) of a unit of work takes the store's write lock until it commits or rolls
back, so every check made at statement time — unique keys, foreign keys, compare-and-set,
guarded stock decrements — still holds at commit. Readers never wait: they see the last
committed state plus their own writes (READ COMMITTED, like the PostgreSQL store).

The store enforces what the schema says (:mod:`fittwin_core.schema`): primary and unique keys
(case-insensitive where the database compares case-insensitively, partial where the index is),
foreign keys on write and ``ON DELETE RESTRICT``, and it writes the same audit rows into
``event_logs`` that PostgreSQL's triggers write, with the unit of work's actor.

Entities are immutable, so rows are stored and handed out as they are, without copies.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

import attrs

from fittwin_core import outbox
from fittwin_core.domain import (
    Actor,
    Conflict,
    EventLog,
    InsufficientInventory,
    JsonMap,
    NotFound,
    Notification,
    Order,
    OrderItem,
    OrderStatus,
    OutboxEffect,
    OutboxStatus,
    PermissionDenied,
    ProductVariant,
    TransientConflict,
    ValidationError,
    VariantStatus,
    analytics,
    rules,
)
from fittwin_core.domain.analytics import Period, Window
from fittwin_core.domain.audit import SYSTEM, TRIGGER_ACTIONS, audit_diff
from fittwin_core.domain.converter import unstructure
from fittwin_core.domain.ids import uuid7_datetime
from fittwin_core.ports import (
    CheckoutRows,
    Clock,
    Compare,
    Enqueued,
    Ids,
    Repositories,
    StockChange,
    bind_repositories,
    changed_columns,
    check_delta,
    read_checkout,
)
from fittwin_core.schema import TABLES, Table, UniqueKey
from fittwin_core.system import SystemClock, SystemIds

E = TypeVar("E")
Key = Hashable


class _Deleted:
    def __repr__(self) -> str:
        return "<deleted>"


_DELETED = _Deleted()


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _TableData:
    """Committed rows of one table plus the indexes the store keeps over them."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: dict[Key, Any] = {}
        self.uniques: dict[str, dict[tuple[Any, ...], Key]] = {u.name: {} for u in table.uniques}
        self.indexes: dict[str, dict[Any, set[Key]]] = {}

    def index(self, column: str) -> dict[Any, set[Key]]:
        """An equality index over ``column``, built on first use and maintained on commit."""
        built = self.indexes.get(column)
        if built is None:
            built = {}
            for key, row in self.rows.items():
                built.setdefault(self.index_value(column, getattr(row, column)), set()).add(key)
            self.indexes[column] = built
        return built

    def index_value(self, column: str, value: Any) -> Any:
        return _fold(value) if column in self.table.citext_columns else value

    def remove(self, key: Key) -> None:
        old = self.rows.pop(key, None)
        if old is None:
            return
        for unique in self.table.uniques:
            folded = _unique_value(unique, old)
            if folded is not None and self.uniques[unique.name].get(folded) == key:
                del self.uniques[unique.name][folded]
        for column, index in self.indexes.items():
            keys = index.get(self.index_value(column, getattr(old, column)))
            if keys is not None:
                keys.discard(key)

    def put(self, key: Key, row: Any) -> None:
        self.rows[key] = row
        for unique in self.table.uniques:
            folded = _unique_value(unique, row)
            if folded is not None:
                self.uniques[unique.name][folded] = key
        for column, index in self.indexes.items():
            index.setdefault(self.index_value(column, getattr(row, column)), set()).add(key)


def _unique_value(unique: UniqueKey, row: Any) -> tuple[Any, ...] | None:
    """The indexed value of ``row`` for ``unique``, or ``None`` when the index does not apply
    (a NULL column, or a row outside a partial index)."""
    for column, allowed in unique.only_when:
        if getattr(row, column) not in allowed:
            return None
    values = []
    for column in unique.columns:
        value = getattr(row, column)
        if value is None:
            return None
        values.append(_fold(value) if column in unique.case_insensitive else value)
    return tuple(values)


class MemoryStore:
    """The in-memory store: transactional, thread-safe, and as strict as the database.

    ``lock_timeout`` bounds how long a writer waits for another unit of work to finish
    (then :class:`~fittwin_core.domain.errors.TransientConflict`, which services retry).
    """

    def __init__(
        self, *, clock: Clock | None = None, ids: Ids | None = None, lock_timeout: float = 10.0
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.ids: Ids = ids or SystemIds()
        self.lock_timeout = lock_timeout
        self._data = {name: _TableData(table) for name, table in TABLES.items()}
        self._state = threading.RLock()
        self._writer = threading.Lock()
        self._writer_thread: int | None = None
        self._referrers: dict[str, list[tuple[str, str]]] = {name: [] for name in TABLES}
        for table in TABLES.values():
            for fk in table.foreign_keys:
                self._referrers[fk.table].append((table.name, fk.column))

    def unit_of_work(self, actor: Actor | None = None) -> MemoryUnitOfWork:
        """A new unit of work acting as ``actor`` (the system when ``None``)."""
        # Its repositories are set by bind_repositories, which mypy cannot follow.
        return MemoryUnitOfWork(self, actor or SYSTEM)  # type: ignore[abstract]

    def close(self) -> None:
        """Nothing to release; provided for symmetry with other stores."""

    def raw_rows(self, table: str) -> list[dict[str, Any]]:
        """Every committed row of ``table`` in its stored (JSON) form."""
        with self._state:
            rows = list(self._data[table].rows.values())
        return [unstructure(row) for row in rows]

    def purge_event_logs(self, before: datetime, *, dry_run: bool = False) -> int:
        """Drop event log rows of every month that ended before ``before``'s month began.

        Mirrors PostgreSQL, where retention drops whole monthly partitions: a row goes when the
        month of its UUIDv7 id lies entirely before the month of ``before``.
        """
        cutoff = before.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        data = self._data["event_logs"]
        with self._writer_lock(), self._state:
            expired = [key for key, row in data.rows.items() if uuid7_datetime(row.id) < cutoff]
            if not dry_run:
                for key in expired:
                    data.remove(key)
        return len(expired)

    # -- analytics (the AnalyticsQueries capability) ----------------------------------------

    def referral_funnel(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        referrer_user_id: UUID | None = None,
        period: Period = "month",
    ) -> list[dict[str, Any]]:
        """Per referrer and period: links, clicks, conversions, fraud flags, rewards by status."""
        referrals, events, entries = self._rows("referrals", "referral_events", "reward_ledger_entries")
        return analytics.referral_funnel(
            referrals,
            events,
            entries,
            window=Window(since, until),
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
        """Per ledger status and currency: entries and their amount in minor units."""
        referrals, entries = self._rows("referrals", "reward_ledger_entries")
        return analytics.reward_liability(
            referrals, entries, window=Window(since, until), referrer_user_id=referrer_user_id
        )

    def orders_by_status(
        self, *, since: datetime | None = None, until: datetime | None = None, period: Period = "month"
    ) -> list[dict[str, Any]]:
        """Per period, status and currency: orders, subtotal, total and refunded minor units."""
        (orders,) = self._rows("orders")
        return analytics.orders_by_status(orders, window=Window(since, until), period=period)

    def size_recommendations(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product and recommended size: lines, units and the recommendations' confidence."""
        products, items = self._rows("products", "order_items")
        chosen = analytics.product_filter(products, product_id=product_id, brand_id=brand_id)
        return analytics.size_recommendations(items, window=Window(since, until), products=chosen)

    def returns_by_size(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, recommended size and bought size: lines and units bought, delivered, returned."""
        products, items, orders = self._rows("products", "order_items", "orders")
        chosen = analytics.product_filter(products, product_id=product_id, brand_id=brand_id)
        return analytics.returns_by_size(
            items, {o.id: o for o in orders}, window=Window(since, until), products=chosen
        )

    def returns_by_reason(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, bought size, return reason and zone: returned lines and units."""
        products, items, orders = self._rows("products", "order_items", "orders")
        chosen = analytics.product_filter(products, product_id=product_id, brand_id=brand_id)
        return analytics.returns_by_reason(
            items, {o.id: o for o in orders}, window=Window(since, until), products=chosen
        )

    def _rows(self, *tables: str) -> list[list[Any]]:
        # One consistent snapshot of committed rows across the tables asked for.
        with self._state:
            return [list(self._data[table].rows.values()) for table in tables]

    # -- internals -------------------------------------------------------------------------

    def _writer_lock(self) -> _WriterLock:
        return _WriterLock(self)

    def _acquire(self) -> None:
        me = threading.get_ident()
        if self._writer_thread == me:
            raise Conflict(
                "another unit of work in this thread is writing: the memory store does not "
                "support nested units of work that both write; commit or leave the first one"
            )
        if not self._writer.acquire(timeout=self.lock_timeout):
            raise TransientConflict("timed out waiting for another unit of work to finish writing")
        self._writer_thread = me

    def _release(self) -> None:
        self._writer_thread = None
        self._writer.release()

    def _committed(self, table: str, key: Key) -> Any:
        # Under the state lock: a commit replaces a row by removing and re-adding it, and a
        # read between the two must not find a committed row missing.
        with self._state:
            return self._data[table].rows.get(key)

    def _apply(self, writes: Mapping[str, Mapping[Key, Any]]) -> None:
        with self._state:
            for name, changes in writes.items():
                data = self._data[name]
                for key in changes:
                    data.remove(key)
                for key, row in changes.items():
                    if row is not _DELETED:
                        data.put(key, row)


class _WriterLock:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._acquire()

    def __exit__(self, *exc: object) -> None:
        self.store._release()


class MemoryUnitOfWork(Repositories):
    """A transaction over a :class:`MemoryStore`, with a repository per table."""

    def __init__(self, store: MemoryStore, actor: Actor) -> None:
        self.store = store
        self.actor = actor
        self._writes: dict[str, dict[Key, Any]] = {name: {} for name in TABLES}
        self._writing = False
        self._failed = False
        bind_repositories(self, self._repository)

    def _repository(self, table: Table) -> object:
        if table.name == "product_variants":
            return MemoryVariantRepository(self, table.name)
        if table.name == "orders":
            return MemoryOrderRepository(self, table.name)
        if table.name == "outbox":
            return MemoryOutboxRepository(self, table.name)
        if table.append_only:
            return MemoryAppendOnlyRepository[Any](self, table.name)
        return MemoryRepository[Any](self, table.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        """Make this unit of work's changes visible; it can go on with a new transaction.

        After a statement broke a constraint the transaction is aborted (as in PostgreSQL):
        committing raises :class:`Conflict` instead of silently dropping work; roll back."""
        self._check_usable()
        try:
            if any(self._writes.values()):
                self.store._apply(self._writes)
        finally:
            self._reset()

    def rollback(self) -> None:
        """Discard the changes made since the last commit."""
        self._reset()

    def act_as(self, actor: Actor) -> None:
        """Record ``actor`` on the audit rows of the statements that follow."""
        self.actor = actor

    def relax_durability(self) -> None:
        """Nothing to relax: this store's commits write nothing to disk."""

    def load_checkout(
        self,
        user_id: UUID,
        address_ids: Iterable[UUID],
        payment_method_id: UUID,
        variant_ids: Iterable[UUID],
    ) -> CheckoutRows:
        """What placing an order reads (see the port), table by table, under the store's write
        lock (which is how this store locks the shopper's row)."""
        self._begin_write()
        return read_checkout(self, user_id, address_ids, payment_method_id, variant_ids)

    def _reset(self) -> None:
        self._failed = False
        for changes in self._writes.values():
            changes.clear()
        if self._writing:
            self._writing = False
            self.store._release()

    # -- helpers for repositories ----------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failed:
            raise Conflict(
                "a statement of this unit of work was refused, which aborted its transaction: "
                "call rollback() (or leave the with block) before going on"
            )

    def _violation(self, error: Exception) -> Exception:
        """Record that a statement broke a constraint (which aborts the transaction)."""
        self._failed = True
        return error

    def _begin_write(self) -> None:
        self._check_usable()
        if not self._writing:
            self.store._acquire()
            self._writing = True

    def _current(self, table: str, key: Key) -> Any:
        self._check_usable()
        changes = self._writes[table]
        if key in changes:
            row = changes[key]
            return None if row is _DELETED else row
        return self.store._committed(table, key)

    def _audit(self, table: Table, op: str, old: Any, new: Any) -> None:
        if not table.audited:
            return
        metadata = audit_diff(
            op,
            None if old is None else unstructure(old),
            None if new is None else unstructure(new),
            secret_columns=table.secret_columns,
        )
        if metadata is None:
            return
        row = new if new is not None else old
        entry = _audit_row(
            self.store.ids.new_id(),
            self.actor,
            op,
            table.name,
            getattr(row, table.key[0]),
            JsonMap(metadata),
            self.store.clock.now(),
        )
        self._writes["event_logs"][entry.id] = entry


_EVENT_LOG_FIELDS = (
    "id",
    "actor_type",
    "actor_id",
    "action",
    "entity_type",
    "entity_id",
    "metadata",
    "created_at",
)
if tuple(a.name for a in attrs.fields(EventLog)) != _EVENT_LOG_FIELDS:  # pragma: no cover - guards _audit_row
    raise ImportError("EventLog changed: update fittwin_adapters.memory.store._audit_row")


def _audit_row(
    event_id: UUID, actor: Actor, op: str, table: str, entity_id: UUID, metadata: JsonMap, at: datetime
) -> EventLog:
    """The audit row of one row change, as ``EventLog(...)`` builds it without running its
    validators again on values that passed them already: the actor was validated when it was
    built, ``op`` and ``table`` come from the store and the schema, ``entity_id`` is the key of
    a validated row and ``metadata`` a frozen :class:`JsonMap`. The id and the time come from
    the store's ports and are checked here. A test checks it equals ``EventLog(...)``."""
    rules.uuid.check("id", event_id)
    rules.aware_datetime.check("created_at", at)
    entry = object.__new__(EventLog)
    values = (event_id, actor.type, actor.id, op, table, entity_id, metadata, at)
    for name, value in zip(_EVENT_LOG_FIELDS, values, strict=True):
        object.__setattr__(entry, name, value)
    return entry


class MemoryAppendOnlyRepository(Generic[E]):
    """Rows of one table in a :class:`MemoryUnitOfWork`: reads and inserts."""

    def __init__(self, uow: MemoryUnitOfWork, table: str) -> None:
        self._uow = uow
        self._table = TABLES[table]
        self._data = uow.store._data[table]
        self._columns = frozenset(self._table.columns)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._table.name}>"

    # -- reads -----------------------------------------------------------------------------

    def _key_of(self, entity: Any) -> Key:
        values: tuple[Key, ...] = tuple(getattr(entity, column) for column in self._table.key)
        return values[0] if len(values) == 1 else values

    def _normal_key(self, key: Any) -> Key:
        if len(self._table.key) == 1 and isinstance(key, tuple) and len(key) == 1:
            first: Key = key[0]
            return first
        normal: Key = key
        return normal

    def find(self, key: Any) -> E | None:
        """The row with this primary key, or ``None``."""
        row: E | None = self._uow._current(self._table.name, self._normal_key(key))
        return row

    def get(self, key: Any) -> E:
        """The row with this primary key; :class:`NotFound` otherwise."""
        row = self.find(key)
        if row is None:
            raise NotFound(self._table.name, key)
        return row

    def get_many(self, keys: Iterable[Any]) -> list[E]:
        """The rows with these keys that exist, in the order of ``keys``."""
        return [row for key in keys if (row := self.find(key)) is not None]

    def where(
        self, *, order_by: str | Sequence[str] = (), limit: int | None = None, **filters: Any
    ) -> list[E]:
        """Rows matching every filter; see :meth:`fittwin_core.ports.ReadRepository.where`."""
        orders = (order_by,) if isinstance(order_by, str) else tuple(order_by)
        self._check_columns([*filters, *(o.lstrip("-") for o in orders)])
        rows = [row for row in self._candidates(filters) if self._matches(row, filters)]
        for spec in reversed(orders):
            rows.sort(key=_column_sort_key(spec.lstrip("-")), reverse=spec.startswith("-"))
        return rows if limit is None else rows[:limit]

    def count(self, **filters: Any) -> int:
        """How many rows match."""
        return len(self.where(**filters))

    def _check_columns(self, columns: Iterable[str]) -> None:
        unknown = sorted(set(columns) - self._columns)
        if unknown:
            raise ValueError(f"{self._table.name} has no column(s) {', '.join(unknown)}")

    def _candidates(self, filters: Mapping[str, Any]) -> Iterator[Any]:
        changes = self._uow._writes[self._table.name]
        indexed = next(
            (
                (column, value)
                for column, value in filters.items()
                if value is not None and not isinstance(value, Compare) and isinstance(value, Hashable)
            ),
            None,
        )
        self._uow._check_usable()
        with self._uow.store._state:
            if indexed is None:
                keys: Iterable[Key] = list(self._data.rows)
                changed: list[Key] = list(changes)
            else:
                column, value = indexed
                wanted = self._data.index_value(column, value)
                keys = list(self._data.index(column).get(wanted, ()))
                # Of this unit of work's own writes, only rows holding the indexed value (and
                # deletions, which may hide committed ones) can match.
                changed = [
                    k
                    for k, row in changes.items()
                    if row is _DELETED or self._data.index_value(column, getattr(row, column)) == wanted
                ]
        seen: set[Key] = set()
        for key in itertools.chain(keys, changed):
            if key in seen:
                continue
            seen.add(key)
            row = self._uow._current(self._table.name, key)
            if row is not None:
                yield row

    def _matches(self, row: Any, filters: Mapping[str, Any]) -> bool:
        citext = self._table.citext_columns
        for column, condition in filters.items():
            value = getattr(row, column)
            if column in citext:
                if not _satisfies(_fold(value), _fold_filter(condition)):
                    return False
            elif not _satisfies(value, condition):
                return False
        return True

    # -- writes ----------------------------------------------------------------------------

    def _refuse_forged(self, entity: Any) -> None:
        # The stores write row-change audit rows themselves; nobody adds one by hand.
        if self._table.append_only and getattr(entity, "action", None) in TRIGGER_ACTIONS:
            raise self._uow._violation(
                PermissionDenied(f"{self._table.name}: row-change records are written by the store only")
            )

    def add(self, entity: E) -> None:
        """Insert a row (unique and foreign keys checked now)."""
        self._check_type(entity)
        self._refuse_forged(entity)
        self._uow._begin_write()
        key = self._key_of(entity)
        if self._uow._current(self._table.name, key) is not None:
            raise self._uow._violation(
                Conflict(f"{self._table.name}: a row with this primary key already exists")
            )
        self._check_uniques(entity, key)
        self._check_references(entity)
        self._uow._writes[self._table.name][key] = entity
        self._uow._audit(self._table, "insert", None, entity)

    def add_many(self, entities: Iterable[E]) -> None:  # noqa: PLR0912 - one pass, every check of add()
        """Insert many rows (the bulk path: unique keys are checked against one index of the
        batch and this unit of work's writes, instead of a scan per row)."""
        rows = list(entities)
        if not rows:
            return
        for entity in rows:
            self._check_type(entity)
            self._refuse_forged(entity)
        self._uow._begin_write()
        name = self._table.name
        changes = self._uow._writes[name]
        taken: dict[str, dict[tuple[Any, ...], Key]] = {u.name: {} for u in self._table.uniques}
        for other_key, other in changes.items():
            if other is _DELETED:
                continue
            for unique in self._table.uniques:
                value = _unique_value(unique, other)
                if value is not None:
                    taken[unique.name][value] = other_key
        for entity in rows:
            key = self._key_of(entity)
            if self._uow._current(name, key) is not None:
                raise self._uow._violation(Conflict(f"{name}: a row with this primary key already exists"))
            for unique in self._table.uniques:
                value = _unique_value(unique, entity)
                if value is None:
                    continue
                holder = taken[unique.name].get(value)
                if holder is None:
                    with self._uow.store._state:
                        committed = self._data.uniques[unique.name].get(value)
                    if committed is not None:
                        current = self._uow._current(name, committed)
                        holder = (
                            committed
                            if current is not None and _unique_value(unique, current) == value
                            else None
                        )
                if holder is not None and holder != key:
                    raise self._uow._violation(Conflict(f"{name}: {unique.name} is already taken"))
                taken[unique.name][value] = key
            self._check_references(entity)
            changes[key] = entity
            self._uow._audit(self._table, "insert", None, entity)

    def _check_type(self, entity: Any) -> None:
        if not isinstance(entity, self._table.entity):
            raise ValidationError(self._table.name, f"rows must be {self._table.entity.__name__} entities")

    def _check_uniques(self, entity: Any, key: Key) -> None:
        for unique in self._table.uniques:
            value = _unique_value(unique, entity)
            if value is None:
                continue
            with self._uow.store._state:
                holder = self._data.uniques[unique.name].get(value)
            if holder is not None and holder != key:
                current = self._uow._current(self._table.name, holder)
                if current is not None and _unique_value(unique, current) == value:
                    raise self._uow._violation(
                        Conflict(f"{self._table.name}: {unique.name} is already taken")
                    )
            for other_key, other in self._uow._writes[self._table.name].items():
                if other_key != key and other is not _DELETED and _unique_value(unique, other) == value:
                    raise self._uow._violation(
                        Conflict(f"{self._table.name}: {unique.name} is already taken")
                    )

    def _check_references(self, entity: Any) -> None:
        for fk in self._table.foreign_keys:
            value = getattr(entity, fk.column)
            if value is not None and self._uow._current(fk.table, value) is None:
                raise self._uow._violation(NotFound(fk.table, value))


class MemoryRepository(MemoryAppendOnlyRepository[E]):
    """Rows of one table in a :class:`MemoryUnitOfWork`: full access."""

    def lock(self, key: Any) -> E:
        """Read the row holding the store's write lock (nothing else can change it meanwhile)."""
        self._uow._begin_write()
        return self.get(key)

    def update(self, entity: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Replace the row; with ``expected``, only if it still holds those values (compare-and-set)."""
        self._check_type(entity)
        self._uow._begin_write()
        key = self._key_of(entity)
        current = self._uow._current(self._table.name, key)
        if current is None:
            raise NotFound(self._table.name, key)
        for column, value in (expected or {}).items():
            self._check_columns([column])
            if not _satisfies(getattr(current, column), value):
                raise Conflict(f"{self._table.name} {key} was changed concurrently ({column} differs)")
        self._check_uniques(entity, key)
        self._check_references(entity)
        self._uow._writes[self._table.name][key] = entity
        self._uow._audit(self._table, "update", current, entity)

    def update_changed(self, before: E, after: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Write the fields that differ from ``before`` onto the row as it is now (see the port)."""
        self._check_type(after)
        changes = changed_columns(before, after)
        if not changes:
            return
        self._uow._begin_write()
        key = self._key_of(after)
        current = self._uow._current(self._table.name, key)
        if current is None:
            raise Conflict(f"{self._table.name} {key} is gone (compare-and-set failed)")
        self.update(attrs.evolve(current, **changes), expected=expected)

    def delete(self, key: Any) -> None:
        """Delete the row, unless another row still references it."""
        self._uow._begin_write()
        key = self._normal_key(key)
        current = self._uow._current(self._table.name, key)
        if current is None:
            raise NotFound(self._table.name, key)
        for table, column in self._uow.store._referrers[self._table.name]:
            referrer = MemoryAppendOnlyRepository[Any](self._uow, table)
            if referrer.where(limit=1, **{column: key}):
                raise self._uow._violation(
                    Conflict(f"{self._table.name} {key} is still referenced by {table}.{column}")
                )
        self._uow._writes[self._table.name][key] = _DELETED
        self._uow._audit(self._table, "delete", current, None)


class MemoryOrderRepository(MemoryRepository[Order]):
    """``orders`` with orders by brand (see the port)."""

    def add_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange] = ()
    ) -> list[tuple[ProductVariant, int]]:
        """Take the stock (all or none), then insert the order and its lines (see the port)."""
        taken = self._uow.product_variants.adjust_inventory_many(stock)
        self.add(order)
        self._uow.order_items.add_many(items)
        return taken

    def commit_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange], above: int
    ) -> list[tuple[ProductVariant, int]] | None:
        """:meth:`add_with_items` and the commit when every change leaves more than ``above``
        in stock of an active variant; otherwise ``None`` and nothing done (see the port)."""
        self._uow._begin_write()
        left: dict[UUID, int] = {}
        for change in stock:
            check_delta(change.delta)
            current = self._uow._current("product_variants", change.variant_id)
            if change.clamp_at_zero or current is None or current.status != VariantStatus.ACTIVE:
                return None
            left[change.variant_id] = left.get(change.variant_id, current.inventory) + change.delta
            if left[change.variant_id] <= above:
                return None
        taken = self.add_with_items(order, items, stock=stock)
        self._uow.commit()
        return taken

    def append_notification(self, order_id: UUID, entry: Notification) -> None:
        """Append ``entry`` to the order's notification log; a missing order is left alone."""
        self._uow._begin_write()
        current = self._uow._current(self._table.name, order_id)
        if current is not None:
            self.update(attrs.evolve(current, notifications=(*(current.notifications or ()), entry)))

    def for_brand(
        self,
        brand_id: UUID,
        *,
        status: OrderStatus | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Orders with a line of ``brand_id``, in id order (see the port's ``OrderRepository``)."""
        lines = self._uow.order_items.where(brand_id=brand_id)
        ids = sorted({line.order_id for line in lines if after is None or line.order_id > after})
        found = [order for order in self.get_many(ids) if status is None or order.status == status]
        return found if limit is None else found[:limit]


class MemoryOutboxRepository(MemoryRepository[OutboxEffect]):
    """``outbox`` with claims under the store's write lock (one writer at a time, so a claim
    never sees a row another unit of work is changing: the equivalent of ``SKIP LOCKED``)."""

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        claimer: UUID,
        limit: int,
        ids: Iterable[UUID] | None = None,
    ) -> list[OutboxEffect]:
        """Claim up to ``limit`` due effects in id order (see the port's ``OutboxRepository``)."""
        self._uow._begin_write()
        if ids is None:
            candidates = self.where(status=OutboxStatus.PENDING, order_by="id")
        else:
            candidates = sorted(self.get_many(sorted(set(ids))), key=lambda e: e.id)
        due = [effect for effect in candidates if outbox.claimable(effect, now)][: max(0, limit)]
        taken = [outbox.claimed(e, claimer=claimer, lease_until=lease_until, now=now) for e in due]
        for effect in taken:
            self.update(effect)
        return taken

    def enqueue(self, effect: OutboxEffect) -> Enqueued:
        """Insert ``effect`` unless its idempotency key is taken (see the port)."""
        if self.where(idempotency_key=effect.idempotency_key, limit=1):
            return Enqueued(inserted=False)
        self.add(effect)
        return Enqueued(inserted=True)

    def complete(self, effect: OutboxEffect, *, claimer: UUID, at: datetime, outcome: str) -> OutboxEffect:
        """Record a successful attempt (see the port)."""
        return outbox.complete(self, effect, claimer=claimer, at=at, outcome=outcome)

    def fail(
        self, effect: OutboxEffect, *, claimer: UUID, at: datetime, error: str, retry_at: datetime | None
    ) -> OutboxEffect:
        """Record a failed attempt (see the port)."""
        return outbox.fail(self, effect, claimer=claimer, at=at, error=error, retry_at=retry_at)


class MemoryVariantRepository(MemoryRepository[ProductVariant]):
    """``product_variants`` with guarded stock changes."""

    def adjust_inventory(
        self, variant_id: UUID, delta: int, *, clamp_at_zero: bool = False
    ) -> tuple[ProductVariant, int]:
        """Add ``delta`` to the stock atomically; never below zero (see the port)."""
        check_delta(delta)
        current = self.lock(variant_id)
        applied = delta
        if current.inventory + delta < 0:
            if not clamp_at_zero:
                raise InsufficientInventory(variant_id, -delta, current.inventory)
            applied = -current.inventory
        updated = attrs.evolve(
            current, inventory=current.inventory + applied, updated_at=self._uow.store.clock.now()
        )
        self.update(updated)
        return updated, applied

    def adjust_inventory_many(self, changes: Sequence[StockChange]) -> list[tuple[ProductVariant, int]]:
        """Each change in order, all or none (see the port): checked first, then applied."""
        stock: dict[UUID, int] = {}
        for change in changes:
            check_delta(change.delta)
            if change.variant_id not in stock:
                stock[change.variant_id] = self.lock(change.variant_id).inventory
            have = stock[change.variant_id]
            if have + change.delta < 0 and not change.clamp_at_zero:
                raise InsufficientInventory(change.variant_id, -change.delta, have)
            stock[change.variant_id] = max(have + change.delta, 0)
        return [
            self.adjust_inventory(change.variant_id, change.delta, clamp_at_zero=change.clamp_at_zero)
            for change in changes
        ]


def _column_sort_key(column: str) -> Callable[[Any], tuple[bool, Any]]:
    # NULLs sort last ascending and first descending, as in PostgreSQL.
    def key(row: Any) -> tuple[bool, Any]:
        value = getattr(row, column)
        return (value is None, value if value is not None else 0)

    return key


def _fold_filter(condition: Any) -> Any:
    if isinstance(condition, Compare):
        target = condition.value
        folded = tuple(_fold(v) for v in target) if isinstance(target, tuple) else _fold(target)
        return Compare(condition.op, folded)
    return _fold(condition)


def _satisfies(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Compare):
        return value is None if condition is None else (value is not None and value == condition)
    op, target = condition.op, condition.value
    if op == "!=":
        return bool(value != target)
    if value is None:
        return False
    if op == "in":
        return value in target
    if op == "not in":
        return None not in target and value not in target
    if op == "within":
        start, stop = target
        return start is not None and stop is not None and bool(start <= value < stop)
    if target is None:
        return False
    if op == "<":
        return bool(value < target)
    if op == "<=":
        return bool(value <= target)
    if op == ">":
        return bool(value > target)
    if op == ">=":
        return bool(value >= target)
    raise ValueError(f"unknown operator {op!r}")


__all__ = [
    "MemoryAppendOnlyRepository",
    "MemoryOrderRepository",
    "MemoryRepository",
    "MemoryStore",
    "MemoryUnitOfWork",
    "MemoryVariantRepository",
]
