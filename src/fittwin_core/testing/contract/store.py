"""The store contract: what every ``Store`` adapter must do, tested once for all of them.

Subclass :class:`StoreContract` and provide a ``store`` fixture returning a fresh, empty
store; run pytest. The memory store and the PostgreSQL store both pass it unchanged::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            return MyStore(...)

Optional capabilities (``RawRows``, ``EventLogRetention``) are tested when the store has them.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_core.domain import (
    Actor,
    ActorType,
    BrandStatus,
    BrandUserStatus,
    Conflict,
    EffectKind,
    EventLog,
    FitTwinError,
    InsufficientInventory,
    JsonMap,
    NotFound,
    Notification,
    NotificationChannel,
    OrderStatus,
    OutboxEffect,
    OutboxStatus,
    PermissionDenied,
    ValidationError,
    VariantStatus,
)
from fittwin_core.domain.audit import audit_diff
from fittwin_core.domain.converter import unstructure
from fittwin_core.domain.ids import encode_rid, uuid7
from fittwin_core.ports import (
    EventLogRetention,
    RawRows,
    StockChange,
    Store,
    UnitOfWork,
    after,
    at_most,
    before,
    not_equal,
    one_of,
    read_checkout,
    within,
)
from fittwin_core.schema import TABLES, ForeignKey, Table, UniqueKey
from fittwin_core.testing import strategies as fst
from fittwin_core.testing.world import WORLD_TIME, World, seed_world

_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_fresh = itertools.count(1)
_UNIQUES = [(table, unique) for table in TABLES.values() for unique in table.uniques]
_FOREIGN_KEYS = [(table, fk) for table in TABLES.values() for fk in table.foreign_keys]


def fresh_id() -> UUID:
    """A UUIDv7 no other test row uses."""
    return uuid7(int(WORLD_TIME.timestamp() * 1000), 5_000_000 + next(_fresh))


def _fresh_key_value(table: Table, column: str) -> Any:
    return encode_rid(uuid4().bytes) if column == "rid" else fresh_id()


def uniquify(table: Table, row: Any) -> Any:
    """A copy of ``row`` with a fresh primary key and fresh values in every unique column."""
    n = next(_fresh)
    if table.name == "idempotency_keys":
        return attrs.evolve(row, key=f"k{n}-{row.key}"[:255])
    changes: dict[str, Any] = {column: _fresh_key_value(table, column) for column in table.key}
    for unique in table.uniques:
        for column in unique.columns:
            value = getattr(row, column)
            if column == "email":
                changes[column] = f"u{n}.{value}"[-254:] if len(value) < 240 else f"u{n}@example.com"
            elif column == "username":
                changes[column] = f"u{n}_{value}"[:32]
            elif column == "version":
                changes[column] = 10_000 + n
            elif column == "payment_intent_ref" and value is not None:
                changes[column] = f"pi_u{n}_{value}"[:255]
            elif column == "idempotency_key":
                changes[column] = f"u{n}-{value}"[:255]
            elif column in {"sku", "psp_token_id"}:
                changes[column] = f"U{n}-{value}"[:64]
            elif column == "name":
                changes[column] = f"{n} {value}"[:200]
    return attrs.evolve(row, **changes)


def row_key(table: Table, row: Any) -> Any:
    """The primary key of ``row`` as repositories take it."""
    values = tuple(getattr(row, column) for column in table.key)
    return values[0] if len(values) == 1 else values


def _with_case_variants(row: Any, unique: UniqueKey) -> Any:
    """``row`` with its case-insensitive unique columns upper-cased, where still valid."""
    for column in unique.case_insensitive:
        with contextlib.suppress(FitTwinError):  # e.g. emails must be stored normalised
            row = attrs.evolve(row, **{column: getattr(row, column).upper()})
    return row


def _order_of(world: World, qty: int) -> tuple[Any, list[Any]]:
    """A new order of the world's shopper with one line of ``qty`` of the world's variant."""
    order = uniquify(TABLES["orders"], world["orders"])
    line = attrs.evolve(
        uniquify(TABLES["order_items"], world["order_items"]), order_id=order.id, qty=qty, reserved_qty=qty
    )
    return order, [line]


class StoreContract:
    """Behaviour every store shares: keys, references, transactions, concurrency, audit."""

    @pytest.fixture
    def store(self) -> Store:
        """A fresh, empty store (provided by the adapter's test class)."""
        raise NotImplementedError("subclasses provide a `store` fixture")

    @pytest.fixture
    def world(self, store: Store) -> World:
        """One consistent row per table, stored."""
        return seed_world(store)

    def repo(self, uow: Any, table: str) -> Any:
        """The repository of ``table`` in ``uow``."""
        return getattr(uow, table)

    # ------------------------------------------------------------------ reading and writing

    def test_stored_rows_read_back_equal(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow:
            for name, row in world.rows.items():
                assert self.repo(uow, name).get(row_key(TABLES[name], row)) == row

    @pytest.mark.parametrize("table_name", sorted(TABLES))
    def test_generated_rows_round_trip(self, store: Store, world: World, table_name: str) -> None:
        table = TABLES[table_name]
        overrides = {
            fk.column: st.just(row_key(TABLES[fk.table], world[fk.table])) for fk in table.foreign_keys
        }

        @_SETTINGS
        @given(fst.for_type(table.entity, **overrides))
        def check(row: Any) -> None:
            row = uniquify(table, row)
            with store.unit_of_work() as uow:
                self.repo(uow, table_name).add(row)
                uow.commit()
            with store.unit_of_work() as uow:
                stored = self.repo(uow, table_name).get(row_key(table, row))
            assert stored == row
            assert unstructure(stored) == unstructure(row)

        check()

    def test_missing_rows(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(NotFound):
                uow.orders.get(fresh_id())
            assert uow.orders.find(fresh_id()) is None
            assert uow.referrals.find(encode_rid(b"\x07" * 16)) is None
            first, second = world["user_profiles"], world["orders"]
            assert uow.user_profiles.get_many([fresh_id(), first.id]) == [first]
            assert uow.orders.get_many([]) == []
            assert uow.orders.get_many([second.id, second.id]) == [second, second]
            assert uow.idempotency_keys.get(("orders.place", "w-key")) == world["idempotency_keys"]

    def test_add_with_a_taken_primary_key_conflicts(self, store: Store, world: World) -> None:
        brand = world["brands"]
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.brands.add(attrs.evolve(brand, name="Another name"))

    @pytest.mark.parametrize(("table", "unique"), _UNIQUES, ids=lambda v: getattr(v, "name", ""))
    def test_unique_keys_conflict(self, store: Store, world: World, table: Table, unique: UniqueKey) -> None:
        original = world[table.name]
        partial = {column: type(getattr(original, column))(values[0]) for column, values in unique.only_when}
        if partial:  # a partial index: make the stored row fall under it
            original = attrs.evolve(original, **partial)
            with store.unit_of_work() as uow:
                self.repo(uow, table.name).update(original)
                uow.commit()
        duplicate = attrs.evolve(
            uniquify(table, original), **{c: getattr(original, c) for c in unique.columns}
        )
        duplicate = _with_case_variants(duplicate, unique)
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            self.repo(uow, table.name).add(duplicate)
        with store.unit_of_work() as uow:
            assert self.repo(uow, table.name).find(row_key(table, duplicate)) is None

    def test_unique_key_conflicts_on_update_too(self, store: Store, world: World) -> None:
        table = TABLES["product_variants"]
        other = uniquify(table, world["product_variants"])
        with store.unit_of_work() as uow:
            uow.product_variants.add(other)
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.product_variants.update(attrs.evolve(other, sku=world["product_variants"].sku))

    def test_partial_unique_index_ignores_rows_outside_it(self, store: Store, world: World) -> None:
        owner = world["brand_users"]  # invited
        table = TABLES["brand_users"]
        invited_again = attrs.evolve(uniquify(table, owner), email=owner.email)
        revoked = attrs.evolve(uniquify(table, owner), email=owner.email, status=BrandUserStatus.REVOKED)
        with store.unit_of_work() as uow:
            uow.brand_users.add(invited_again)
            uow.brand_users.add(revoked)
            uow.brand_users.update(attrs.evolve(owner, status=BrandUserStatus.ACTIVE))
            with pytest.raises(Conflict):
                uow.brand_users.update(attrs.evolve(invited_again, status=BrandUserStatus.ACTIVE))

    @pytest.mark.parametrize(
        ("table", "fk"), _FOREIGN_KEYS, ids=lambda v: getattr(v, "name", getattr(v, "column", ""))
    )
    def test_references_to_missing_rows_are_refused(
        self, store: Store, world: World, table: Table, fk: ForeignKey
    ) -> None:
        row = uniquify(table, world[table.name])
        missing = encode_rid(uuid4().bytes) if fk.ref_column == "rid" else fresh_id()
        with store.unit_of_work() as uow, pytest.raises(NotFound):
            self.repo(uow, table.name).add(attrs.evolve(row, **{fk.column: missing}))
        with store.unit_of_work() as uow:
            assert self.repo(uow, table.name).find(row_key(table, row)) is None

    def test_update_checks_references(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow, pytest.raises(NotFound):
            uow.products.update(attrs.evolve(world["products"], size_chart_id=fresh_id()))

    def test_deleting_a_referenced_row_conflicts(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.user_profiles.delete(world["user_profiles"].id)
        with store.unit_of_work() as uow:
            assert uow.user_profiles.find(world["user_profiles"].id) == world["user_profiles"]
            uow.order_items.delete(world["order_items"].id)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.order_items.find(world["order_items"].id) is None
            with pytest.raises(NotFound):
                uow.order_items.delete(world["order_items"].id)

    def test_update_of_a_missing_row_raises_not_found(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow, pytest.raises(NotFound):
            uow.brands.update(attrs.evolve(world["brands"], id=fresh_id()))

    def test_lock_reads_the_current_row(self, store: Store, world: World) -> None:
        with store.unit_of_work() as uow:
            assert uow.product_variants.lock(world["product_variants"].id) == world["product_variants"]
            with pytest.raises(NotFound):
                uow.product_variants.lock(fresh_id())

    # ------------------------------------------------------------------ transactions

    def test_changes_are_invisible_until_commit(self, store: Store, world: World) -> None:
        table = TABLES["brands"]
        brand = uniquify(table, world["brands"])
        writer = store.unit_of_work()
        reader = store.unit_of_work()
        with writer, reader:
            writer.brands.add(brand)
            assert writer.brands.get(brand.id) == brand  # a unit of work sees its own writes
            assert reader.brands.find(brand.id) is None
            assert reader.brands.where(name=brand.name) == []
            writer.commit()
            assert reader.brands.find(brand.id) == brand

    def test_leaving_without_commit_rolls_back(self, store: Store, world: World) -> None:
        brand = uniquify(TABLES["brands"], world["brands"])
        with store.unit_of_work() as uow:
            uow.brands.add(brand)
        with store.unit_of_work() as uow:
            assert uow.brands.find(brand.id) is None

    def test_an_exception_rolls_back(self, store: Store, world: World) -> None:
        brand = uniquify(TABLES["brands"], world["brands"])

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.unit_of_work() as uow:
            uow.brands.add(brand)
            raise Boom
        with store.unit_of_work() as uow:
            assert uow.brands.find(brand.id) is None

    def test_explicit_rollback_discards_and_work_goes_on(self, store: Store, world: World) -> None:
        table = TABLES["brands"]
        first, second = uniquify(table, world["brands"]), uniquify(table, world["brands"])
        with store.unit_of_work() as uow:
            uow.brands.add(first)
            uow.rollback()
            uow.brands.add(second)
            uow.commit()
            assert uow.brands.find(first.id) is None
        with store.unit_of_work() as uow:
            assert uow.brands.find(second.id) == second

    def test_a_failed_statement_leaves_the_unit_of_work_usable_after_rollback(
        self, store: Store, world: World
    ) -> None:
        brand = uniquify(TABLES["brands"], world["brands"])
        with store.unit_of_work() as uow:
            with pytest.raises(Conflict):
                uow.brands.add(world["brands"])
            uow.rollback()
            uow.brands.add(brand)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.brands.get(brand.id) == brand

    def test_a_constraint_violation_aborts_the_transaction(self, store: Store, world: World) -> None:
        brand = world["brands"]
        with store.unit_of_work() as uow:
            with pytest.raises(Conflict):
                uow.brands.add(brand)
            with pytest.raises(Conflict, match="rollback"):
                uow.brands.find(brand.id)
            with pytest.raises(Conflict, match="rollback"):
                uow.commit()
            uow.rollback()
            assert uow.brands.find(brand.id) == brand
        with store.unit_of_work() as uow:
            with pytest.raises(NotFound):
                uow.order_items.add(
                    attrs.evolve(uniquify(TABLES["order_items"], world["order_items"]), order_id=fresh_id())
                )
            with pytest.raises(Conflict, match="rollback"):
                uow.orders.where(user_id=world["user_profiles"].id)

    def test_guard_failures_leave_the_transaction_usable(self, store: Store, world: World) -> None:
        order, variant = world["orders"], world["product_variants"]
        with store.unit_of_work() as uow:
            with pytest.raises(Conflict):
                uow.orders.update(
                    attrs.evolve(order, status=OrderStatus.PAID), expected={"status": OrderStatus.PAID}
                )
            with pytest.raises(InsufficientInventory):
                uow.product_variants.adjust_inventory(variant.id, -100)
            with pytest.raises(NotFound):
                uow.orders.update(attrs.evolve(order, id=fresh_id()))
            uow.product_variants.adjust_inventory(variant.id, -1)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.product_variants.get(variant.id).inventory == 9

    def test_compare_and_set(self, store: Store, world: World) -> None:
        order = world["orders"]
        paid = attrs.evolve(order, status=OrderStatus.PAID, paid_at=WORLD_TIME)
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.orders.update(paid, expected={"status": OrderStatus.PAID})
        with store.unit_of_work() as uow:
            assert uow.orders.get(order.id) == order
            uow.orders.update(paid, expected={"status": OrderStatus.CREATED})
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.orders.get(order.id) == paid

    def test_concurrent_compare_and_set_has_one_winner(self, store: Store, world: World) -> None:
        order = world["orders"]
        results = self._race(8, lambda n: self._move_order(store, order, n))
        assert results.count("won") == 1, results
        assert all(r in {"won", "conflict"} for r in results), results

    def _move_order(self, store: Store, order: Any, n: int) -> str:
        with store.unit_of_work() as uow:
            current = uow.orders.get(order.id)
            moved = attrs.evolve(current, status=OrderStatus.PAID, payment_intent_ref=f"pi_{n}")
            try:
                uow.orders.update(moved, expected={"status": OrderStatus.CREATED})
                uow.commit()
            except Conflict:
                return "conflict"
            return "won"

    # ------------------------------------------------------------------ stock

    def test_inventory_never_goes_negative(self, store: Store, world: World) -> None:
        variant = world["product_variants"]  # 10 in stock
        with store.unit_of_work() as uow:
            with pytest.raises(InsufficientInventory) as raised:
                uow.product_variants.adjust_inventory(variant.id, -11)
            assert raised.value.available == 10
        with store.unit_of_work() as uow:
            assert uow.product_variants.get(variant.id).inventory == 10
            updated, applied = uow.product_variants.adjust_inventory(variant.id, -4)
            assert (updated.inventory, applied) == (6, -4)
            updated, applied = uow.product_variants.adjust_inventory(variant.id, -9, clamp_at_zero=True)
            assert (updated.inventory, applied) == (0, -6)
            updated, applied = uow.product_variants.adjust_inventory(variant.id, 3)
            assert (updated.inventory, applied) == (3, 3)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.product_variants.get(variant.id).inventory == 3
            with pytest.raises(NotFound):
                uow.product_variants.adjust_inventory(fresh_id(), -1)

    def test_stock_changes_in_one_go_are_all_or_none(self, store: Store, world: World) -> None:
        first = world["product_variants"]  # 10 in stock
        second = uniquify(TABLES["product_variants"], first)
        with store.unit_of_work() as uow:
            uow.product_variants.add(second)
            uow.commit()
        with store.unit_of_work() as uow:
            with pytest.raises(InsufficientInventory) as raised:
                uow.product_variants.adjust_inventory_many(
                    [StockChange(first.id, -4), StockChange(second.id, -11)]
                )
            assert (raised.value.variant_id, raised.value.available) == (second.id, 10)
            assert [uow.product_variants.get(v.id).inventory for v in (first, second)] == [10, 10]
            taken = uow.product_variants.adjust_inventory_many(
                [StockChange(first.id, -4), StockChange(second.id, -12, clamp_at_zero=True)]
            )
            assert [(variant.id, variant.inventory, applied) for variant, applied in taken] == [
                (first.id, 6, -4),
                (second.id, 0, -10),
            ]
            uow.commit()
        with store.unit_of_work() as uow:
            assert [uow.product_variants.get(v.id).inventory for v in (first, second)] == [6, 0]
            assert uow.product_variants.adjust_inventory_many([]) == []
            with pytest.raises(NotFound):
                uow.product_variants.adjust_inventory_many([StockChange(fresh_id(), -1)])

    def test_an_order_and_its_lines_go_in_together(self, store: Store, world: World) -> None:
        order = uniquify(TABLES["orders"], world["orders"])
        lines = [
            attrs.evolve(uniquify(TABLES["order_items"], world["order_items"]), order_id=order.id)
            for _ in range(3)
        ]
        with store.unit_of_work() as uow:
            uow.orders.add_with_items(order, lines)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.orders.get(order.id) == order
            assert uow.order_items.where(order_id=order.id, order_by="id") == sorted(
                lines, key=lambda i: i.id
            )
            with pytest.raises(Conflict):
                uow.orders.add_with_items(uniquify(TABLES["orders"], order), [lines[0]])

    def test_an_order_takes_its_stock_with_its_insert_all_or_none(self, store: Store, world: World) -> None:
        variant = world["product_variants"]  # 10 in stock
        too_many, lines = _order_of(world, 11)
        with store.unit_of_work() as uow:
            with pytest.raises(InsufficientInventory) as raised:
                uow.orders.add_with_items(too_many, lines, stock=[StockChange(variant.id, -11)])
            assert raised.value.available == 10
            assert uow.orders.find(too_many.id) is None
            assert uow.order_items.where(order_id=too_many.id) == []
            assert uow.product_variants.get(variant.id).inventory == 10
            fits, lines = _order_of(world, 4)
            taken = uow.orders.add_with_items(fits, lines, stock=[StockChange(variant.id, -4)])
            assert [(v.id, v.inventory, applied) for v, applied in taken] == [(variant.id, 6, -4)]
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.orders.get(fits.id) == fits
            assert uow.order_items.where(order_id=fits.id) == lines
            assert uow.product_variants.get(variant.id).inventory == 6

    def test_an_order_commits_with_its_stock_only_while_the_stock_stays_above(
        self, store: Store, world: World
    ) -> None:
        variant = world["product_variants"]  # 10 in stock, active
        other = uniquify(TABLES["product_variants"], variant)
        one = [StockChange(variant.id, -1)]
        placed: list[Any] = []

        def commits(uow: UnitOfWork, above: int) -> bool:
            order, lines = _order_of(world, 1)
            taken = uow.orders.commit_with_items(order, lines, stock=one, above=above)
            if taken is None:
                assert uow.orders.find(order.id) is None
                assert uow.order_items.where(order_id=order.id) == []
                return False
            placed.append(order)
            assert [(v.id, applied) for v, applied in taken] == [(variant.id, -1)]
            return True

        with store.unit_of_work() as uow:
            uow.product_variants.add(other)  # written before the refusals: stays
            # refusals between commits (each commit goes on in a new transaction), in runs
            # longer than a driver waits before it prepares a statement
            outcomes = [commits(uow, above) for above in [100] + [0] * 5 + [100] * 3 + [3]]
            assert outcomes == [False] + [True] * 5 + [False] * 3 + [True]
            assert uow.product_variants.get(variant.id).inventory == 4
            clamped = [StockChange(variant.id, -1, clamp_at_zero=True)]
            order, lines = _order_of(world, 1)
            assert uow.orders.commit_with_items(order, lines, stock=clamped, above=0) is None
            with pytest.raises(ValidationError):
                uow.orders.commit_with_items(order, lines, stock=[StockChange(variant.id, True)], above=0)
            assert uow.orders.find(order.id) is None
            stockless, lines = _order_of(world, 1)  # no stock to take: committed with its lines
            assert uow.orders.commit_with_items(stockless, lines, stock=[], above=0) == []
            placed.append(stockless)
        # committed, though the block ended without a commit of its own
        with store.unit_of_work() as uow:
            assert [uow.orders.get(o.id) for o in placed] == placed
            assert [len(uow.order_items.where(order_id=o.id)) for o in placed] == [1] * 7
            assert uow.product_variants.get(variant.id).inventory == 4
            assert uow.product_variants.get(other.id) == other
            uow.product_variants.update(attrs.evolve(other, status=VariantStatus.BACKORDER))
            uow.commit()
            late, lines = _order_of(world, 1)
            stock = [StockChange(other.id, -1)]
            assert uow.orders.commit_with_items(late, lines, stock=stock, above=0) is None  # not active
            assert uow.orders.find(late.id) is None

    def test_a_checkout_reads_what_it_names(self, store: Store, world: World) -> None:
        user, variant = world["user_profiles"], world["product_variants"]
        address, method = world["addresses"], world["payment_methods"]
        product = world["products"]
        with store.unit_of_work() as uow:
            found = uow.load_checkout(user.id, [address.id, fresh_id()], method.id, [variant.id, fresh_id()])
            expected = read_checkout(uow, user.id, [address.id], method.id, [variant.id])
        assert found == expected
        assert found.user == user and found.payment_method == method
        assert found.data_key == world["data_keys"] and dict(found.addresses) == {address.id: address}
        assert dict(found.variants) == {variant.id: variant}
        assert dict(found.products) == {product.id: product}
        assert dict(found.brands) == {world["brands"].id: world["brands"]}
        assert dict(found.size_charts) == {world["size_charts"].id: world["size_charts"]}
        assert dict(found.fit_maps) == (
            {} if product.fit_map_id is None else {world["fit_maps"].id: world["fit_maps"]}
        )
        with store.unit_of_work() as uow:
            nothing = uow.load_checkout(fresh_id(), [], fresh_id(), [])
        assert (nothing.user, nothing.payment_method, nothing.data_key) == (None, None, None)
        assert not (nothing.addresses or nothing.variants or nothing.products or nothing.brands)

    def test_racing_buyers_sell_exactly_the_stock(self, store: Store, world: World) -> None:
        variant = world["product_variants"]

        def buy(_: int) -> str:
            sold = 0
            for _attempt in range(4):
                with store.unit_of_work() as uow:
                    try:
                        uow.product_variants.adjust_inventory(variant.id, -1)
                        uow.commit()
                        sold += 1
                    except InsufficientInventory:
                        pass
            return str(sold)

        results = self._race(6, buy)
        assert sum(map(int, results)) == 10
        with store.unit_of_work() as uow:
            assert uow.product_variants.get(variant.id).inventory == 0

    def test_racing_inserts_of_one_unique_key_have_one_winner(self, store: Store, world: World) -> None:
        table = TABLES["user_profiles"]
        email = "race@example.com"

        def register(_: int) -> str:
            row = attrs.evolve(uniquify(table, world["user_profiles"]), email=email)
            with store.unit_of_work() as uow:
                try:
                    uow.user_profiles.add(row)
                    uow.commit()
                except Conflict:
                    return "conflict"
                return "won"

        results = self._race(6, register)
        assert results.count("won") == 1, results

    def _race(self, workers: int, work: Callable[[int], str]) -> list[str]:
        start = threading.Barrier(workers)
        results: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def run(n: int) -> None:
            try:
                start.wait()
                outcome = work(n)
            except BaseException as exc:  # reported by the assertion below
                with lock:
                    errors.append(exc)
                return
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        return results

    # ------------------------------------------------------------------ queries

    def test_where_filters_orders_and_limits(self, store: Store, world: World) -> None:
        table = TABLES["product_variants"]
        base = world["product_variants"]
        variants = [
            attrs.evolve(uniquify(table, base), inventory=n, color=None if n % 2 else f"c{n}")
            for n in range(6)
        ]
        with store.unit_of_work() as uow:
            uow.product_variants.add_many(variants)
            uow.commit()
        product = base.product_id
        with store.unit_of_work() as uow:
            repo = uow.product_variants
            assert repo.count(product_id=product) == 7
            assert [
                v.inventory
                for v in repo.where(product_id=product, inventory=at_most(2), order_by="inventory")
            ] == [
                0,
                1,
                2,
            ]
            assert [v.inventory for v in repo.where(product_id=product, order_by="-inventory", limit=2)] == [
                10,
                5,
            ]
            assert {v.inventory for v in repo.where(inventory=one_of([1, 3, 99]))} == {1, 3}
            assert {v.inventory for v in repo.where(product_id=product, color=None)} == {1, 3, 5, 10}
            assert {v.inventory for v in repo.where(product_id=product, inventory=before(2))} == {0, 1}
            assert {v.inventory for v in repo.where(product_id=product, inventory=after(4))} == {5, 10}
            assert repo.count(product_id=product, color=not_equal("c2")) == 6
            assert {v.inventory for v in repo.where(product_id=product, inventory=within(1, 4))} == {1, 2, 3}
            assert repo.where(product_id=product, inventory=within(3, 3)) == []
            assert repo.where(product_id=fresh_id()) == []
            with pytest.raises(ValueError, match="no column"):
                repo.where(nope=1)

    def test_orders_by_brand(self, store: Store, world: World) -> None:
        brand, product, item = world["brands"], world["products"], world["order_items"]
        rival = uniquify(TABLES["brands"], brand)
        rival_product = attrs.evolve(uniquify(TABLES["products"], product), brand_id=rival.id)
        orders = [
            attrs.evolve(uniquify(TABLES["orders"], world["orders"]), status=status)
            for status in [OrderStatus.CREATED, OrderStatus.PAID] * 3
        ]

        def line(order: Any, of: Any) -> Any:
            fresh = uniquify(TABLES["order_items"], item)
            return attrs.evolve(fresh, order_id=order.id, product_id=of.id, brand_id=of.brand_id)

        lines = [line(orders[0], product), line(orders[0], product), line(orders[1], rival_product)]
        lines += [line(orders[2], product), line(orders[2], rival_product)]
        lines += [line(o, product) for o in orders[3:5]] + [line(orders[5], rival_product)]
        with store.unit_of_work() as uow:
            uow.brands.add(rival)
            uow.products.add(rival_product)
            uow.orders.add_many(orders)
            uow.order_items.add_many(lines)
            uow.commit()
        mine = [world["orders"].id, orders[0].id, orders[2].id, orders[3].id, orders[4].id]
        with store.unit_of_work() as uow:
            assert [o.id for o in uow.orders.for_brand(brand.id)] == mine  # each order once, by id
            assert [o.id for o in uow.orders.for_brand(brand.id, limit=2)] == mine[:2]
            assert [o.id for o in uow.orders.for_brand(brand.id, after=mine[1], limit=2)] == mine[2:4]
            assert [o.id for o in uow.orders.for_brand(brand.id, status=OrderStatus.PAID)] == [orders[3].id]
            rivals = [orders[1].id, orders[2].id, orders[5].id]
            assert [o.id for o in uow.orders.for_brand(rival.id)] == rivals
            assert uow.orders.for_brand(rival.id, after=orders[5].id) == []
            assert uow.orders.for_brand(fresh_id()) == []

    def test_where_sees_own_uncommitted_changes(self, store: Store, world: World) -> None:
        variant = world["product_variants"]
        with store.unit_of_work() as uow:
            uow.product_variants.update(attrs.evolve(variant, inventory=77))
            assert [v.inventory for v in uow.product_variants.where(product_id=variant.product_id)] == [77]
            assert uow.product_variants.where(inventory=10) == []
            uow.order_items.delete(world["order_items"].id)
            assert uow.order_items.where(order_id=world["orders"].id) == []

    def test_emails_compare_case_insensitively(self, store: Store, world: World) -> None:
        user = world["user_profiles"]
        with store.unit_of_work() as uow:
            assert uow.user_profiles.where(email=user.email.upper()) == [user]

    # ------------------------------------------------------------------ audit

    def test_privileged_changes_are_audited(self, store: Store, world: World) -> None:
        admin = Actor.platform(fresh_id())
        table = TABLES["brands"]
        brand = uniquify(table, world["brands"])
        moved = attrs.evolve(
            brand, onboarding_status=BrandStatus.KYC_PENDING, updated_at=WORLD_TIME + timedelta(1)
        )
        touched = attrs.evolve(moved, updated_at=WORLD_TIME + timedelta(2))
        with store.unit_of_work(admin) as uow:
            uow.brands.add(brand)
            uow.brands.update(moved)
            uow.brands.update(touched)  # only updated_at changed: no audit row
            uow.brands.delete(brand.id)
            uow.commit()
        with store.unit_of_work() as uow:
            rows = {r.action: r for r in uow.event_logs.where(entity_id=brand.id)}
        assert sorted(rows) == ["delete", "insert", "update"]
        for row in rows.values():
            assert (row.entity_type, row.actor_type, row.actor_id) == (
                "brands",
                ActorType.PLATFORM_ADMIN,
                admin.id,
            )
        secret = table.secret_columns
        assert rows["insert"].metadata == audit_diff(
            "insert", None, unstructure(brand), secret_columns=secret
        )
        assert rows["update"].metadata == audit_diff(
            "update", unstructure(brand), unstructure(moved), secret_columns=secret
        )
        assert rows["delete"].metadata == audit_diff(
            "delete", unstructure(touched), None, secret_columns=secret
        )
        assert rows["insert"].metadata["new"]["primary_contact"] == "<redacted>"
        assert rows["update"].metadata == {
            "op": "update",
            "old": {"onboarding_status": "invited"},
            "new": {"onboarding_status": "kyc_pending"},
        }

    def test_stock_changes_are_audited_as_the_system_by_default(self, store: Store, world: World) -> None:
        variant = world["product_variants"]
        with store.unit_of_work() as uow:
            uow.product_variants.adjust_inventory(variant.id, -2)
            uow.commit()
        with store.unit_of_work() as uow:
            (row,) = uow.event_logs.where(entity_id=variant.id, action="update")
        assert row.actor == Actor.system()
        assert row.metadata["old"] == {"inventory": 10}
        assert row.metadata["new"] == {"inventory": 8}

    def test_audit_rows_roll_back_with_their_unit_of_work(self, store: Store, world: World) -> None:
        brand = uniquify(TABLES["brands"], world["brands"])
        with store.unit_of_work() as uow:
            uow.brands.add(brand)
        with store.unit_of_work() as uow:
            assert uow.event_logs.where(entity_id=brand.id) == []

    def test_unaudited_tables_write_no_audit_rows(self, store: Store, world: World) -> None:
        record = uniquify(TABLES["idempotency_keys"], world["idempotency_keys"])
        with store.unit_of_work() as uow:
            before = uow.event_logs.count()
            uow.idempotency_keys.add(record)
            uow.commit()
            assert uow.event_logs.count() == before

    def test_personal_data_changes_are_audited_with_values_redacted(self, store: Store, world: World) -> None:
        user = uniquify(TABLES["user_profiles"], world["user_profiles"])
        with store.unit_of_work() as uow:
            uow.user_profiles.add(user)
            uow.commit()
        moved = attrs.evolve(user, email=f"moved-{user.id.hex[:12]}@example.com", updated_at=WORLD_TIME)
        with store.unit_of_work() as uow:
            uow.user_profiles.update(moved)
            uow.commit()
        with store.unit_of_work() as uow:
            rows = uow.event_logs.where(entity_id=user.id, order_by="id")
        assert [r.action for r in rows] == ["insert", "update"]
        # Which personal field changed, never its value (old or new).
        assert rows[1].metadata == {
            "op": "update",
            "old": {"email": "<redacted>"},
            "new": {"email": "<redacted>"},
        }
        assert user.email not in repr(rows[0].metadata) and moved.email not in repr(rows[1].metadata)

    def test_data_keys_are_audited_by_owner(self, store: Store, world: World) -> None:
        key = attrs.evolve(world["data_keys"], owner_id=fresh_id())
        with store.unit_of_work() as uow:
            uow.data_keys.add(key)
            uow.commit()
        with store.unit_of_work() as uow:
            uow.data_keys.delete(key.owner_id)
            uow.commit()
        with store.unit_of_work() as uow:
            rows = uow.event_logs.where(entity_id=key.owner_id, order_by="id")
        assert [(r.action, r.entity_type) for r in rows] == [("insert", "data_keys"), ("delete", "data_keys")]
        assert rows[1].metadata["old"]["wrapped_key"] == "<redacted>"

    @pytest.mark.parametrize("action", ["insert", "update", "delete"])
    def test_row_change_records_cannot_be_added_by_hand(self, store: Store, action: str) -> None:
        forged = EventLog(
            id=fresh_id(),
            actor_type=ActorType.SYSTEM,
            action=action,
            entity_type="orders",
            entity_id=fresh_id(),
            metadata=JsonMap({"op": action}),
            created_at=WORLD_TIME,
        )
        with store.unit_of_work() as uow, pytest.raises(PermissionDenied):
            uow.event_logs.add(forged)
        with store.unit_of_work() as uow:
            assert uow.event_logs.find(forged.id) is None

    def test_event_logs_accept_direct_records(self, store: Store) -> None:
        record = EventLog(
            id=fresh_id(),
            actor_type=ActorType.SYSTEM,
            action="user.erase",
            entity_type="user_profiles",
            entity_id=fresh_id(),
            metadata=JsonMap({"fields": ["email"]}),
            created_at=WORLD_TIME,
        )
        with store.unit_of_work() as uow:
            uow.event_logs.add(record)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.event_logs.get(record.id) == record

    # ------------------------------------------------------------------ capabilities

    # ------------------------------------------------------------------ outbox

    def _effects(self, store: Store, n: int, **changes: Any) -> list[OutboxEffect]:
        effects = [
            OutboxEffect(
                id=uuid7(int(WORLD_TIME.timestamp() * 1000), next(_fresh)),
                kind=EffectKind.REFUND,
                payload={"n": k},
                idempotency_key=f"effect-{uuid4().hex}",
                available_at=WORLD_TIME,
                created_at=WORLD_TIME,
                updated_at=WORLD_TIME,
            )
            for k in range(n)
        ]
        effects = [attrs.evolve(e, **changes) for e in effects]
        with store.unit_of_work() as uow:
            uow.outbox.add_many(effects)
            uow.commit()
        return effects

    def _claim(self, store: Store, claimer: UUID, now: datetime, limit: int = 100) -> list[OutboxEffect]:
        with store.unit_of_work() as uow:
            taken = uow.outbox.claim(
                now=now, lease_until=now + timedelta(minutes=1), claimer=claimer, limit=limit
            )
            uow.commit()
        return taken

    def test_outbox_claims_due_effects_in_id_order_with_a_lease(self, store: Store) -> None:
        due = self._effects(store, 3)
        self._effects(store, 1, available_at=WORLD_TIME + timedelta(hours=1))
        self._effects(store, 1, status=OutboxStatus.DEAD)
        me, other = uuid4(), uuid4()
        taken = self._claim(store, me, WORLD_TIME, limit=2)
        assert [e.id for e in taken] == [e.id for e in due[:2]]
        assert all(e.claimed_by == me and e.lease_until == WORLD_TIME + timedelta(minutes=1) for e in taken)
        assert [e.id for e in self._claim(store, other, WORLD_TIME)] == [due[2].id]  # the leased two skipped
        assert self._claim(store, other, WORLD_TIME + timedelta(seconds=30)) == []
        expired = self._claim(store, other, WORLD_TIME + timedelta(minutes=2))  # leases over: claimable again
        assert {e.id for e in expired} == {e.id for e in due}
        with store.unit_of_work() as uow:
            only = uow.outbox.claim(
                now=WORLD_TIME + timedelta(hours=2),
                lease_until=WORLD_TIME + timedelta(hours=3),
                claimer=me,
                limit=10,
                ids=[due[1].id],
            )
        assert [e.id for e in only] == [due[1].id]

    def test_outbox_outcomes_are_recorded_by_the_claimer_only(self, store: Store) -> None:
        first, second, third = self._effects(store, 3)
        me = uuid4()
        claimed = {e.id: e for e in self._claim(store, me, WORLD_TIME)}
        later = WORLD_TIME + timedelta(seconds=5)
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.outbox.complete(claimed[first.id], claimer=uuid4(), at=later, outcome="sent")
        with store.unit_of_work() as uow, pytest.raises(Conflict):  # a copy that is no claim
            uow.outbox.complete(first, claimer=me, at=later, outcome="sent")
        with store.unit_of_work() as uow:
            done = uow.outbox.complete(claimed[first.id], claimer=me, at=later, outcome="sent")
            retry = uow.outbox.fail(
                claimed[second.id],
                claimer=me,
                at=later,
                error="HTTP 500",
                retry_at=later + timedelta(seconds=2),
            )
            dead = uow.outbox.fail(claimed[third.id], claimer=me, at=later, error="refused", retry_at=None)
            uow.commit()
        with store.unit_of_work() as uow:
            stored = {e.id: e for e in uow.outbox.where(order_by="id")}
        assert stored[first.id] == done
        assert (done.status, done.attempts, done.delivered_at, done.claimed_by) == (
            OutboxStatus.DELIVERED,
            1,
            later,
            None,
        )
        assert [(a.ok, a.detail) for a in done.history] == [(True, "sent")]
        assert (stored[second.id].status, stored[second.id].attempts) == (OutboxStatus.PENDING, 1)
        assert stored[second.id] == retry and retry.history[0].detail == "HTTP 500"
        assert (stored[third.id].status, stored[third.id].outcome) == (OutboxStatus.DEAD, "refused")
        assert dead.claimed_by is None
        assert self._claim(store, me, later + timedelta(seconds=1)) == []  # backing off
        assert [e.id for e in self._claim(store, me, later + timedelta(seconds=2))] == [second.id]
        # The claim's copy once the row moved on (delivered): refused by the commit at the latest,
        # and nothing of that unit of work is written.
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.outbox.complete(claimed[first.id], claimer=me, at=later, outcome="twice")
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.get(first.id) == done

    def test_an_effect_enqueued_again_under_its_key_is_not_inserted(self, store: Store) -> None:
        (first,) = self._effects(store, 1)
        again = attrs.evolve(first, id=uuid4(), payload={"n": "again"})
        fresh = attrs.evolve(first, id=uuid4(), idempotency_key=f"{first.idempotency_key}:other")
        with store.unit_of_work() as uow:
            repeated, new = uow.outbox.enqueue(again), uow.outbox.enqueue(fresh)
            uow.commit()
        assert (repeated.inserted, new.inserted) == (False, True)
        with store.unit_of_work() as uow:
            assert uow.outbox.get(first.id) == first
            assert uow.outbox.find(again.id) is None and uow.outbox.get(fresh.id) == fresh

    def test_a_guarded_change_of_a_row_that_moved_on_commits_nothing(self, store: Store) -> None:
        (effect,) = self._effects(store, 1)
        (other,) = self._effects(store, 1)
        with store.unit_of_work() as uow:
            uow.outbox.update(attrs.evolve(effect, attempts=7))  # someone else's write
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.outbox.update_changed(other, attrs.evolve(other, attempts=1))  # sent later...
            uow.outbox.update_changed(effect, attrs.evolve(effect, attempts=1), expected={"attempts": 0})
            uow.commit()
        with store.unit_of_work() as uow:
            assert (uow.outbox.get(effect.id).attempts, uow.outbox.get(other.id).attempts) == (7, 0)
            # only the columns that differ are written: another writer's columns are kept
            uow.outbox.update_changed(effect, attrs.evolve(effect, outcome="kept"))
            uow.commit()
        with store.unit_of_work() as uow:
            assert (uow.outbox.get(effect.id).attempts, uow.outbox.get(effect.id).outcome) == (7, "kept")

    def test_a_changed_row_is_read_back_and_audited_as_the_actor_who_changed_it(
        self, store: Store, world: World
    ) -> None:
        # PostgreSQL sends the change with the unit of work's next round trip: a read in the
        # same unit of work sees it all the same, and a change of actor in between does not
        # move it to the next actor's name.
        staff, other = Actor.platform(fresh_id()), Actor.platform(fresh_id())
        brand = uniquify(TABLES["brands"], world["brands"])
        moved = attrs.evolve(brand, onboarding_status=BrandStatus.KYC_PENDING)
        with store.unit_of_work(staff) as uow:
            uow.brands.add(brand)
            uow.brands.update_changed(brand, moved)
            uow.act_as(other)
            assert uow.brands.get(brand.id) == moved
            uow.commit()
        with store.unit_of_work() as uow:
            (row,) = uow.event_logs.where(entity_id=brand.id, action="update")
            assert uow.brands.get(brand.id) == moved
        assert row.actor == staff
        assert row.metadata == {
            "op": "update",
            "old": {"onboarding_status": "invited"},
            "new": {"onboarding_status": "kyc_pending"},
        }

    def test_a_relaxed_transaction_commits_and_rolls_back_like_any_other(self, store: Store) -> None:
        # relax_durability changes when a commit returns (PostgreSQL: before the disk), never what
        # it commits: the writes around it commit together, or not at all.
        (effect, other) = self._effects(store, 2)
        with store.unit_of_work() as uow:
            uow.outbox.update_changed(effect, attrs.evolve(effect, attempts=1))
            uow.relax_durability()
            uow.outbox.update_changed(other, attrs.evolve(other, attempts=2))
            uow.commit()
            uow.relax_durability()  # the next transaction: rolled back with the block
            uow.outbox.update_changed(attrs.evolve(effect, attempts=1), attrs.evolve(effect, attempts=9))
        with store.unit_of_work() as uow:
            assert (uow.outbox.get(effect.id).attempts, uow.outbox.get(other.id).attempts) == (1, 2)

    def test_a_guarded_change_of_a_row_that_is_gone_is_a_conflict(self, store: Store) -> None:
        (effect,) = self._effects(store, 1)
        with store.unit_of_work() as uow:
            uow.outbox.delete(effect.id)
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(Conflict):
            uow.outbox.update_changed(effect, attrs.evolve(effect, attempts=1))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.find(effect.id) is None

    def test_notifications_are_appended_to_the_order_and_a_missing_order_is_left_alone(
        self, store: Store, world: World
    ) -> None:
        order = world["orders"]
        sent = [
            Notification(channel=NotificationChannel.EMAIL, kind=kind, sent_at=WORLD_TIME, status="sent")
            for kind in ("order_placed", "order_paid")
        ]
        with store.unit_of_work() as uow:
            for entry in sent:
                uow.orders.append_notification(order.id, entry)
            uow.orders.append_notification(fresh_id(), sent[0])  # no such order: no error
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.orders.get(order.id).notifications == (*(order.notifications or ()), *sent)

    def test_concurrent_dispatchers_claim_disjoint_effects(self, store: Store) -> None:
        effects = self._effects(store, 24)
        taken: list[UUID] = []

        def claim(n: int) -> str:
            got = [e.id for e in self._claim(store, uuid4(), WORLD_TIME, limit=5)]
            taken.extend(got)  # list.extend is atomic under the GIL
            return str(len(got))

        counts = [int(c) for c in self._race(6, claim)]
        assert all(c <= 5 for c in counts)
        assert len(taken) == len(set(taken))  # nobody claimed what another holds
        with store.unit_of_work() as uow:  # a claimer that met only held rows left the rest due
            taken += [
                e.id
                for e in uow.outbox.claim(
                    now=WORLD_TIME, lease_until=WORLD_TIME + timedelta(minutes=1), claimer=uuid4(), limit=100
                )
            ]
            uow.commit()
        assert len(taken) == len(set(taken)) == 24
        assert set(taken) == {e.id for e in effects}

    @pytest.fixture
    def raw(self, store: Store) -> RawRows:
        """The store as :class:`RawRows` (skips stores without the capability)."""
        if not isinstance(store, RawRows):
            pytest.skip("store does not expose raw rows")
        return store

    def test_raw_rows_are_the_stored_json(self, raw: RawRows, world: World) -> None:
        for name, row in world.rows.items():
            assert unstructure(row) in raw.raw_rows(name), name

    @pytest.fixture
    def retention(self, store: Store) -> EventLogRetention:
        """The store as :class:`EventLogRetention` (skips stores without the capability)."""
        if not isinstance(store, EventLogRetention):
            pytest.skip("store has no event log retention")
        return store

    def test_event_log_retention_drops_whole_past_months(
        self, store: Store, retention: EventLogRetention
    ) -> None:
        def record(month_start: datetime, n: int) -> EventLog:
            moment = month_start + timedelta(days=3)
            return EventLog(
                id=uuid7(int(moment.timestamp() * 1000), n),
                actor_type=ActorType.SYSTEM,
                action="test",
                entity_type="tests",
                entity_id=fresh_id(),
                created_at=moment,
            )

        old = [record(datetime(2025, 3, 1, tzinfo=UTC), n) for n in range(3)]
        recent = [record(datetime(2025, 6, 1, tzinfo=UTC), n) for n in range(2)]
        with store.unit_of_work() as uow:
            uow.event_logs.add_many([*old, *recent])
            uow.commit()
        cutoff = datetime(2025, 6, 20, tzinfo=UTC)
        assert retention.purge_event_logs(cutoff, dry_run=True) == 3
        with store.unit_of_work() as uow:
            assert uow.event_logs.count(action="test") == 5
        assert retention.purge_event_logs(cutoff) == 3
        with store.unit_of_work() as uow:
            assert {r.id for r in uow.event_logs.where(action="test")} == {r.id for r in recent}


__all__ = ["StoreContract", "fresh_id", "row_key", "uniquify"]
