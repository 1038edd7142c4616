"""Ports: the protocols FitTwin's services use to reach the outside world.

Adapters in :mod:`fittwin_adapters` implement them; every adapter of a port passes the same
contract suite (:mod:`fittwin_core.testing.contract`). Ports are small capabilities rather
than one interface: a store, an object store, a payment gateway, a cipher, a password hasher,
a clock, an id source, a pricing rule and a webhook sender.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar, runtime_checkable
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Address,
    Avatar,
    Brand,
    BrandUser,
    DataKey,
    EventLog,
    FitMap,
    FitMapProposal,
    IdempotencyRecord,
    Notification,
    Order,
    OrderItem,
    OrderStatus,
    OutboxEffect,
    PaymentMethod,
    Product,
    ProductVariant,
    Referral,
    ReferralEvent,
    RewardLedgerEntry,
    SizeChart,
    UserProfile,
    ValidationError,
)
from fittwin_core.domain.analytics import ExportColumn, Period
from fittwin_core.domain.rules import redacted
from fittwin_core.schema import TABLES, Table

E = TypeVar("E")

# ============================================================================ store


Operator = Literal["<", "<=", ">", ">=", "!=", "in", "not in", "within"]


@attrs.frozen
class Compare:
    """A filter other than equality, for :meth:`Repository.where`."""

    op: Operator
    value: Any


def before(value: Any) -> Compare:
    """Column ``< value``."""
    return Compare("<", value)


def at_most(value: Any) -> Compare:
    """Column ``<= value``."""
    return Compare("<=", value)


def after(value: Any) -> Compare:
    """Column ``> value``."""
    return Compare(">", value)


def at_least(value: Any) -> Compare:
    """Column ``>= value``."""
    return Compare(">=", value)


def within(start: Any, stop: Any) -> Compare:
    """``start <= column < stop`` (a half-open range, as Python's ``range``)."""
    return Compare("within", (start, stop))


def not_equal(value: Any) -> Compare:
    """Column ``!= value`` (``IS DISTINCT FROM``: ``None`` counts as a value)."""
    return Compare("!=", value)


def one_of(values: Iterable[Any]) -> Compare:
    """Column ``IN (values)``."""
    return Compare("in", tuple(values))


def none_of(values: Iterable[Any]) -> Compare:
    """Column ``NOT IN (values)``."""
    return Compare("not in", tuple(values))


Filter = Any
"""A filter value: a plain value means equality (``None`` means ``IS NULL``), a
:class:`Compare` anything else."""


class ReadRepository(Protocol[E]):
    """Read access to the rows of one table, as entities."""

    def get(self, key: Any) -> E:
        """The row with primary key ``key`` (a tuple for composite keys); :class:`NotFound` otherwise."""
        ...

    def find(self, key: Any) -> E | None:
        """The row with primary key ``key``, or ``None``."""
        ...

    def get_many(self, keys: Iterable[Any]) -> list[E]:
        """The rows with these keys that exist, in the order of ``keys``."""
        ...

    def where(
        self, *, order_by: str | Sequence[str] = (), limit: int | None = None, **filters: Filter
    ) -> list[E]:
        """Rows matching every filter (``column=value`` or ``column=Compare(...)``).

        ``order_by`` names columns, ``"-column"`` for descending; ties keep no particular order
        unless broken by another column. Unknown columns raise ``ValueError`` (a programming
        error, not bad input)."""
        ...

    def count(self, **filters: Filter) -> int:
        """How many rows match."""
        ...


class AppendOnlyRepository(ReadRepository[E], Protocol[E]):
    """Rows that are only ever added (``event_logs``)."""

    def add(self, entity: E) -> None:
        """Insert a row."""
        ...

    def add_many(self, entities: Iterable[E]) -> None:
        """Insert many rows in one go (the bulk path)."""
        ...


class Repository(AppendOnlyRepository[E], Protocol[E]):
    """Full access to the rows of one table.

    Writes enforce what the database would: :class:`Conflict` for a taken unique key,
    :class:`NotFound` for a reference to a missing row, :class:`Conflict` for deleting a row
    still referenced (``ON DELETE RESTRICT``).
    """

    def lock(self, key: Any) -> E:
        """Read the row and hold it against concurrent writers until the unit of work ends
        (``SELECT … FOR UPDATE``). Lock several rows in key order to avoid deadlocks."""
        ...

    def update(self, entity: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Replace the row with ``entity``.

        With ``expected``, this is a compare-and-set: it applies only when the stored row
        currently holds those column values (``UPDATE … WHERE id = :id AND status = :from``),
        and raises :class:`Conflict` otherwise. :class:`NotFound` when the row is gone.
        """
        ...

    def update_changed(self, before: E, after: E, *, expected: Mapping[str, Any] | None = None) -> None:
        """Write the columns in which ``after`` differs from ``before`` (the row as this unit
        of work read it), and only those: one ``UPDATE`` of the changed columns, so a column
        another writer changed meanwhile is kept. With ``expected``, a compare-and-set as in
        :meth:`update`. When nothing differs, nothing is written or checked.

        :class:`Conflict` when the row does not hold ``expected`` or is gone. The write may
        travel with the unit of work's next round trip (PostgreSQL sends it with the next
        statement or with the commit), and so may its :class:`Conflict`: the unit of work is
        then spoilt, as after any refused statement. Use it for rows this unit of work holds
        (:meth:`lock`), where the check is the last defence, not the decision.
        """
        ...

    def delete(self, key: Any) -> None:
        """Delete the row (:class:`NotFound` if missing, :class:`Conflict` if referenced)."""
        ...


class VariantRepository(Repository[ProductVariant], Protocol):
    """``product_variants`` with guarded stock changes."""

    def adjust_inventory(
        self, variant_id: UUID, delta: int, *, clamp_at_zero: bool = False
    ) -> tuple[ProductVariant, int]:
        """Add ``delta`` (negative to take stock) to the inventory atomically; return the
        updated variant and the delta actually applied.

        Taking more than there is raises :class:`InsufficientInventory` and changes nothing,
        unless ``clamp_at_zero`` (backorders): then stock stops at 0 and the applied delta
        says how much was taken. Inventory never goes negative.
        """
        ...

    def adjust_inventory_many(self, changes: Sequence[StockChange]) -> list[tuple[ProductVariant, int]]:
        """:meth:`adjust_inventory` for each change, in the order given (sort by variant id to
        take the row locks in one order), in one go: all or none. The first change that would
        take more than there is raises :class:`InsufficientInventory` and none is applied."""
        ...


@attrs.define
class Enqueued:
    """Whether :meth:`OutboxRepository.enqueue` inserted its effect: ``None`` until the store
    has run the statement (by the commit at the latest), then ``True``, or ``False`` when an
    effect with the same idempotency key was there already."""

    inserted: bool | None = None


def changed_columns(before: Any, after: Any) -> dict[str, Any]:
    """The fields of entity ``after`` whose values differ from ``before``'s (same type), by name:
    what :meth:`Repository.update_changed` writes."""
    if type(after) is not type(before):
        raise TypeError(f"{type(after).__name__} compared with {type(before).__name__}")
    return {
        field.name: getattr(after, field.name)
        for field in attrs.fields(type(after))
        if getattr(after, field.name) != getattr(before, field.name)
    }


@attrs.frozen
class StockChange:
    """One stock change of :meth:`VariantRepository.adjust_inventory_many`."""

    variant_id: UUID
    delta: int
    clamp_at_zero: bool = False


def check_delta(delta: object) -> None:
    """A stock change's delta is an integer (not a bool): :class:`ValidationError` otherwise
    (every store's stock methods check it before anything changes)."""
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise ValidationError("delta", "must be an integer")


class OrderRepository(Repository[Order], Protocol):
    """``orders`` with the one query that needs their lines: orders by brand."""

    def add_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange] = ()
    ) -> list[tuple[ProductVariant, int]]:
        """Take the ``stock`` changes (as :meth:`VariantRepository.adjust_inventory_many`) and
        insert the order and its lines, together (one round trip on PostgreSQL): when a change
        would take more than there is, :class:`InsufficientInventory` and nothing is taken or
        inserted. The stock changes' results, in order."""
        ...

    def commit_with_items(
        self, order: Order, items: Sequence[OrderItem], *, stock: Sequence[StockChange], above: int
    ) -> list[tuple[ProductVariant, int]] | None:
        """:meth:`add_with_items` and the unit of work's commit, together (one round trip on
        PostgreSQL), when every change of ``stock`` (none clamped at zero) leaves more than
        ``above`` of its variant in stock, and the variant ``active``: then nothing written
        after the stock could depend on it. The stock changes' results, committed. Otherwise
        ``None``: nothing is taken, inserted or committed, the unit of work goes on in the
        same transaction (what it wrote before stays), and the caller takes the stock with
        :meth:`add_with_items`."""
        ...

    def for_brand(
        self,
        brand_id: UUID,
        *,
        status: OrderStatus | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Orders with at least one line of ``brand_id`` (``order_items.brand_id``), in ``id``
        order, only those of ``status`` when given and with an id above ``after``; at most
        ``limit``. The store reads that many orders, not every line of the brand."""
        ...

    def append_notification(self, order_id: UUID, entry: Notification) -> None:
        """Append ``entry`` to the order's ``notifications`` log in one statement, without
        reading the row (PostgreSQL: ``notifications || entry``, sent with the next round
        trip). An order that is gone (purged) is left alone: no error."""
        ...


class OutboxRepository(Repository[OutboxEffect], Protocol):
    """``outbox``: effects waiting for delivery, claimed by dispatchers with a lease."""

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        claimer: UUID,
        limit: int,
        ids: Iterable[UUID] | None = None,
    ) -> list[OutboxEffect]:
        """Claim up to ``limit`` due effects (``pending``, ``available_at <= now``, no live lease)
        in id order, marking them ``claimed_by=claimer`` until ``lease_until``; with ``ids``,
        only those. Rows another unit of work holds are skipped, never waited for (PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``), so concurrent dispatchers claim disjoint effects."""
        ...

    def enqueue(self, effect: OutboxEffect) -> Enqueued:
        """Insert ``effect`` unless an effect with its ``idempotency_key`` exists (then nothing
        happens, no error): one ``INSERT … ON CONFLICT DO NOTHING``, sent with the unit of
        work's next round trip on PostgreSQL. The :class:`Enqueued` returned tells whether the
        row went in once the statement has run (after the commit at the latest)."""
        ...

    def complete(self, effect: OutboxEffect, *, claimer: UUID, at: datetime, outcome: str) -> OutboxEffect:
        """Record a successful attempt of ``effect`` as :meth:`claim` returned it to
        ``claimer``: ``delivered``, lease released; the row written. :class:`Conflict` (by the
        commit at the latest, see :meth:`Repository.update_changed`) if ``claimer`` no longer
        holds it (its lease expired and another dispatcher claimed it)."""
        ...

    def fail(
        self, effect: OutboxEffect, *, claimer: UUID, at: datetime, error: str, retry_at: datetime | None
    ) -> OutboxEffect:
        """Record a failed attempt of a claimed ``effect``: ``pending`` again from ``retry_at``,
        or ``dead`` when ``retry_at`` is ``None``. :class:`Conflict` as for :meth:`complete`."""
        ...


class Repositories(Protocol):
    """A repository per table of :data:`fittwin_core.schema.TABLES`, named after the table.

    Stores' units of work inherit these declarations and fill them with
    :func:`bind_repositories`, so the list of tables is written down once.
    """

    user_profiles: Repository[UserProfile]
    avatars: Repository[Avatar]
    brands: Repository[Brand]
    brand_users: Repository[BrandUser]
    products: Repository[Product]
    product_variants: VariantRepository
    size_charts: Repository[SizeChart]
    fit_maps: Repository[FitMap]
    orders: OrderRepository
    order_items: Repository[OrderItem]
    addresses: Repository[Address]
    payment_methods: Repository[PaymentMethod]
    referrals: Repository[Referral]
    referral_events: Repository[ReferralEvent]
    event_logs: AppendOnlyRepository[EventLog]
    reward_ledger_entries: Repository[RewardLedgerEntry]
    data_keys: Repository[DataKey]
    idempotency_keys: Repository[IdempotencyRecord]
    fit_map_proposals: Repository[FitMapProposal]
    outbox: OutboxRepository


@attrs.frozen
class CheckoutRows:
    """What placing an order reads, each row by id (absent ones are missing): the shopper,
    their addresses, payment method and data key, and for the ordered variants their products,
    the products' brands, size charts and fit maps. See :func:`read_checkout`."""

    user: UserProfile | None
    addresses: Mapping[UUID, Address]
    payment_method: PaymentMethod | None
    data_key: DataKey | None
    variants: Mapping[UUID, ProductVariant]
    products: Mapping[UUID, Product]
    brands: Mapping[UUID, Brand]
    size_charts: Mapping[UUID, SizeChart]
    fit_maps: Mapping[UUID, FitMap]


def read_checkout(
    uow: Repositories,
    user_id: UUID,
    address_ids: Iterable[UUID],
    payment_method_id: UUID,
    variant_ids: Iterable[UUID],
) -> CheckoutRows:
    """The rows of a checkout read table by table through the repositories (the memory
    store's :meth:`UnitOfWork.load_checkout`; PostgreSQL reads the same in one round trip)."""
    variants = {v.id: v for v in uow.product_variants.get_many(set(variant_ids))}
    products = {p.id: p for p in uow.products.get_many({v.product_id for v in variants.values()})}
    fit_map_ids = {p.fit_map_id for p in products.values() if p.fit_map_id is not None}
    return CheckoutRows(
        user=uow.user_profiles.find(user_id),
        addresses={a.id: a for a in uow.addresses.get_many(set(address_ids))},
        payment_method=uow.payment_methods.find(payment_method_id),
        data_key=uow.data_keys.find(user_id),
        variants=variants,
        products=products,
        brands={b.id: b for b in uow.brands.get_many({p.brand_id for p in products.values()})},
        size_charts={c.id: c for c in uow.size_charts.get_many({p.size_chart_id for p in products.values()})},
        fit_maps={f.id: f for f in uow.fit_maps.get_many(fit_map_ids)},
    )


def bind_repositories(uow: Repositories, make: Callable[[Table], object]) -> None:
    """Give ``uow`` one repository per table of the catalog, built by the store's ``make``."""
    for table in TABLES.values():
        setattr(uow, table.name, make(table))


@runtime_checkable
class UnitOfWork(Repositories, Protocol):
    """One transaction over the store, with a repository per table (see :class:`Repositories`).

    Use it as a context manager: nothing is visible to other units of work until
    :meth:`commit`; leaving the block without committing (or with an exception) rolls back.
    ``actor`` is recorded on the audit rows the transaction causes.
    """

    actor: Actor

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make the changes durable and visible; the unit of work can then go on with a new transaction."""
        ...

    def rollback(self) -> None:
        """Discard the changes made since the last commit."""
        ...

    def act_as(self, actor: Actor) -> None:
        """Record ``actor`` (instead of the unit of work's) on the audit rows of the statements
        that follow, until the next call; used when one transaction spans calls by several
        actors (``ft.transaction``)."""
        ...

    def relax_durability(self) -> None:
        """Let the current transaction's commit return before it is safely on disk: a crash of
        the database server just after the commit may lose the whole transaction, never a part
        of it. Only for writes a later run redoes when they are lost, such as the outcome of an
        outbox effect (the effect is then delivered again, under its idempotency key). A store
        whose commits cost no disk write ignores it."""
        ...

    def load_checkout(
        self,
        user_id: UUID,
        address_ids: Iterable[UUID],
        payment_method_id: UUID,
        variant_ids: Iterable[UUID],
    ) -> CheckoutRows:
        """Everything placing an order reads (see :class:`CheckoutRows`), as
        :func:`read_checkout` reads it, in as few round trips as the store can, with the
        shopper's row locked as :meth:`Repository.lock` locks it (placing an order serialises
        with the shopper's erasure)."""
        ...


@runtime_checkable
class Store(Protocol):
    """A persistence backend (memory, PostgreSQL, ...)."""

    def unit_of_work(self, actor: Actor | None = None) -> UnitOfWork:
        """A new unit of work acting as ``actor`` (the system when ``None``)."""
        ...

    def close(self) -> None:
        """Release connections and other resources."""
        ...


@runtime_checkable
class RawRows(Protocol):
    """Capability: the rows exactly as the store holds them (used by privacy tests)."""

    def raw_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as stored, JSON-able."""
        ...


@runtime_checkable
class EventLogRetention(Protocol):
    """Capability: dropping old audit records as a whole (partitions on PostgreSQL)."""

    def purge_event_logs(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove event log rows created before ``before``; how many went (or would go)."""
        ...


@runtime_checkable
class AnalyticsQueries(Protocol):
    """Capability: the aggregate queries behind ``ft.analytics``, computed where the data lives
    (in SQL on PostgreSQL, never by loading whole tables into Python).

    Every method returns plain rows (dicts of JSON-able values: UUIDs and dates as strings,
    money as integer minor units beside its currency) in the canonical order of
    :data:`fittwin_core.domain.analytics.SORT_KEYS`, exactly the rows the reference functions of
    :mod:`fittwin_core.domain.analytics` compute; the analytics contract checks it. ``since`` is
    inclusive, ``until`` exclusive; ``period`` buckets start in UTC.
    """

    def referral_funnel(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        referrer_user_id: UUID | None = None,
        period: Period = "month",
    ) -> list[dict[str, Any]]:
        """Per referrer and period: links, clicks, conversions, fraud flags, rewards by status."""
        ...

    def reward_liability(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        referrer_user_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per ledger status and currency: entries and their amount in minor units."""
        ...

    def orders_by_status(
        self, *, since: datetime | None = None, until: datetime | None = None, period: Period = "month"
    ) -> list[dict[str, Any]]:
        """Per period, status and currency: orders, subtotal, total and refunded minor units."""
        ...

    def size_recommendations(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product and recommended size: lines, units and the recommendations' confidence."""
        ...

    def returns_by_size(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, recommended size and bought size: lines and units bought, delivered, returned."""
        ...

    def returns_by_reason(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Per product, bought size, return reason and zone: returned lines and units."""
        ...


# ============================================================================ clock and ids


class Clock(Protocol):
    """The time, always time-zone aware (UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class Ids(Protocol):
    """Fresh identifiers."""

    def new_id(self) -> UUID:
        """A UUIDv7, later than every id this source returned before."""
        ...

    def new_rid(self) -> str:
        """A referral id: 128 random bits, base64url without padding (22 characters)."""
        ...

    def new_token(self) -> UUID:
        """An unguessable random token (UUIDv4), e.g. for brand invitations."""
        ...


# ============================================================================ security


@attrs.frozen
class WrappedKey:
    """A data key as stored: its id, the key-encryption key that wraps it, and the wrapped bytes."""

    key_id: str
    kek_id: str
    blob: bytes = attrs.field(repr=redacted)


class KeyRing(Protocol):
    """Key-encryption keys (KEKs): wrap and unwrap data keys. Local for development; a KMS
    in production is a host's adapter."""

    @property
    def current_kek_id(self) -> str:
        """The KEK new data keys are wrapped with."""
        ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` with the current KEK: ``(kek_id, blob)``."""
        ...

    def unwrap(self, kek_id: str, blob: bytes) -> bytes:
        """Recover a data key; :class:`AuthenticationFailed` if the blob was tampered with
        or the KEK is unknown."""
        ...


class FieldCipher(Protocol):
    """Envelope encryption of single fields with per-owner data keys.

    Ciphertext is a string ``fte1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``
    (AES-256-GCM, 96-bit random nonce). The associated data binds it to one table, column and
    row, so a ciphertext copied elsewhere does not decrypt.
    """

    def new_data_key(self) -> WrappedKey:
        """Generate a random data key and return it wrapped under the current KEK."""
        ...

    def encrypt(self, key: WrappedKey, plaintext: str, *, aad: bytes) -> str:
        """Seal ``plaintext`` under ``key`` bound to ``aad``."""
        ...

    def decrypt(self, key: WrappedKey, ciphertext: str, *, aad: bytes) -> str:
        """Open a sealed value; :class:`AuthenticationFailed` if it was not sealed under
        ``key`` for ``aad``, or was tampered with."""
        ...

    def rewrap(self, key: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current KEK (rotation; rows stay as they are)."""
        ...

    def forget(self, key_id: str) -> None:
        """Drop any cached plaintext of this data key (after crypto-shredding it)."""
        ...

    def blind_index(self, column: str, value: str) -> str:
        """A keyed hash for equality search on an encrypted column (lower-case hex),
        with a key derived per ``column``."""
        ...


def field_aad(table: str, column: str, row_id: object) -> bytes:
    """The associated data binding a sealed value to its place: table ‖ column ‖ row id."""
    return b"\x1f".join((table.encode(), column.encode(), str(row_id).encode()))


class PasswordHasher(Protocol):
    """One-way password hashing (argon2id in :mod:`fittwin_adapters.crypto`)."""

    def hash(self, password: str) -> str:
        """The encoded hash of ``password`` (salted, parameters included)."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; ``False`` for a mismatch or a malformed hash."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than the current ones."""
        ...


# ============================================================================ objects


@attrs.frozen
class StoredObject:
    """What the object store knows about a stored object."""

    key: str
    size: int
    content_type: str
    checksum: str
    """``sha256:<hex>`` of the bytes."""


class ObjectStore(Protocol):
    """Media (avatar meshes, photos) by key. ``region`` picks the bucket or prefix that keeps a
    user's media in their region; ``None`` uses the default location."""

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        region: str | None = None,
    ) -> StoredObject:
        """Store ``data`` under ``key`` (replacing any object there)."""
        ...

    def get(self, key: str, *, region: str | None = None) -> bytes:
        """The bytes under ``key``; :class:`NotFound` if there are none."""
        ...

    def info(self, key: str, *, region: str | None = None) -> StoredObject:
        """Size, content type and checksum of the object; :class:`NotFound` if absent."""
        ...

    def exists(self, key: str, *, region: str | None = None) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str, *, region: str | None = None) -> None:
        """Remove the object (no error if it is already gone)."""
        ...

    def signed_url(self, key: str, *, expires_in: int = 3600, region: str | None = None) -> str:
        """A time-limited URL to fetch the object (presigned on S3); :class:`ConfigurationError`
        where the backend cannot sign."""
        ...


# ============================================================================ analytics export


@attrs.frozen
class ExportedFile:
    """One file an export wrote: the table, its month partition, where it is and how many rows."""

    table: str
    month: str
    path: str
    rows: int


class TableWriter(Protocol):
    """Writes one table's rows, month by month, and makes them visible on :meth:`commit`."""

    def write(self, month: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append ``rows`` (values typed as the table's columns) to month ``"YYYY-MM"``."""
        ...

    def commit(self) -> list[ExportedFile]:
        """Put every written month in place, replacing what was there, and remove the table's
        other months from the replaced range; the files written."""
        ...

    def abort(self) -> None:
        """Discard what was written; the existing files stay as they were."""
        ...


class ExportSink(Protocol):
    """Columnar files for analytics engines (Parquet on any fsspec URL in
    :mod:`fittwin_adapters.export`), partitioned Hive-style: ``<url>/<table>/month=YYYY-MM/``."""

    def open_table(
        self,
        url: str,
        table: str,
        columns: Sequence[ExportColumn],
        *,
        replace_from: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> TableWriter:
        """A writer for ``table`` under ``url``. On commit the months written replace the
        existing ones, and months from ``replace_from`` (``"YYYY-MM"``; ``None``: all) on that
        received no rows are removed."""
        ...


# ============================================================================ payments


@attrs.frozen
class PaymentIntent:
    """A payment at the provider (a Stripe PaymentIntent)."""

    id: str
    status: str
    """Stripe's status: ``requires_payment_method``, ``processing``, ``succeeded``, ``canceled``, ..."""
    amount: int
    currency: str
    client_secret: str | None = attrs.field(default=None, repr=redacted)
    amount_refunded: int = 0
    """Refunded so far (from the latest charge, when the provider's answer includes it)."""


@attrs.frozen
class Refund:
    """A refund at the provider."""

    id: str
    payment_intent_id: str
    amount: int
    status: str


@attrs.frozen
class PaymentEvent:
    """A verified webhook event from the payment provider."""

    id: str
    type: str
    """``payment_intent.succeeded``, ``payment_intent.payment_failed``, ``charge.refunded``, ..."""
    payment_intent_id: str | None
    amount: int | None = None
    currency: str | None = None


class PaymentGateway(Protocol):
    """The payment provider: Stripe in production, ``FakePayments`` embedded."""

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        payment_method: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """Create (or, for a repeated idempotency key, return) a payment for ``amount`` minor units."""
        ...

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        """The payment's current state."""
        ...

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentIntent:
        """Cancel a payment that has not succeeded."""
        ...

    def refund(self, payment_intent_id: str, *, amount: int, idempotency_key: str) -> Refund:
        """Refund ``amount`` minor units of a succeeded payment."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Verify a webhook's signature and timestamp and return its event;
        :class:`AuthenticationFailed` for a bad or stale signature, :class:`ValidationError`
        for a payload that is not an event."""
        ...


# ============================================================================ pricing, webhooks


@attrs.frozen(kw_only=True)
class PriceLine:
    """One order line as the pricing rules see it."""

    variant_id: UUID
    product_id: UUID
    qty: int
    unit_price_cents: int


@attrs.frozen(kw_only=True)
class Quote:
    """Tax, shipping and discounts for an order, in minor units of its currency."""

    tax: int = 0
    shipping: int = 0
    discounts: int = 0


class Pricing(Protocol):
    """Tax, shipping and discount rules (a host's own; FitTwin ships a flat-rate default)."""

    def quote(
        self, *, lines: Sequence[PriceLine], currency: str, subtotal: int, shipping_country: str | None
    ) -> Quote:
        """Price an order."""
        ...


@attrs.frozen
class OutgoingWebhook:
    """A signed webhook, ready for the host to send."""

    url: str
    event: str
    payload: bytes
    headers: Mapping[str, str]


class WebhookSender(Protocol):
    """Delivers signed webhooks to brands, driven by the outbox (which retries).

    ``fittwin_adapters.http.HttpWebhookSender`` POSTs them; the default keeps them in memory.
    """

    def send(self, webhook: OutgoingWebhook) -> None:
        """Deliver one webhook; raise (any exception) when it was not accepted, so the outbox
        retries it later with the same event id."""
        ...


@attrs.frozen(kw_only=True)
class ShopperNotification:
    """A message to a shopper about an order: which template, for whom, by which channel.

    It carries ids and the template name, never the message text or contact details: the
    host's notifier renders the template and looks the recipient up.
    """

    user_id: UUID
    order_id: UUID
    template: str
    """``order_placed``, ``order_paid``, ``order_shipped``, ``order_delivered``, ``order_refunded``."""
    channel: str = "email"
    data: Mapping[str, Any] = attrs.field(factory=dict)
    """Non-personal facts for the template (amounts, currency, status)."""


class Notifier(Protocol):
    """Sends shopper notifications (email, SMS), driven by the outbox (which retries)."""

    def notify(self, notification: ShopperNotification) -> None:
        """Send one notification; raise when it could not be sent."""
        ...


__all__ = [
    "AnalyticsQueries",
    "AppendOnlyRepository",
    "CheckoutRows",
    "Clock",
    "Compare",
    "EventLogRetention",
    "ExportSink",
    "ExportedFile",
    "FieldCipher",
    "Filter",
    "Ids",
    "KeyRing",
    "Notifier",
    "ObjectStore",
    "OrderRepository",
    "OutboxRepository",
    "OutgoingWebhook",
    "PasswordHasher",
    "PaymentEvent",
    "PaymentGateway",
    "PaymentIntent",
    "PriceLine",
    "Pricing",
    "Quote",
    "RawRows",
    "ReadRepository",
    "Refund",
    "Repositories",
    "Repository",
    "ShopperNotification",
    "StockChange",
    "Store",
    "StoredObject",
    "TableWriter",
    "UnitOfWork",
    "VariantRepository",
    "WebhookSender",
    "WrappedKey",
    "after",
    "at_least",
    "at_most",
    "before",
    "bind_repositories",
    "check_delta",
    "field_aad",
    "none_of",
    "not_equal",
    "one_of",
    "read_checkout",
    "within",
]
