"""The race contract: multi-row invariants hold while several workers run at once.

A race test sets a scenario up through the services, lets N workers run their part of it at
the same moment (each in its own thread, or on PostgreSQL each in its own process with its
own :class:`FitTwin` and connection pool), and then checks one invariant against numbers
written in the test. Subclass :class:`RaceContract` and provide a ``race`` fixture
returning a :class:`Race`: the FitTwin the test sets up with, and the :class:`Racers` that
run the workers::

    class TestMyRaces(RaceContract):
        @pytest.fixture
        def race(self):
            ft = connect(...)
            return Race(ft, ThreadRacers(ft))

The memory store serialises writers (the first write of a unit of work takes its writer
lock until it ends), so interleavings that happen after a transaction's first write cannot
occur there; the PostgreSQL run, with processes, is the one that finds a missing lock, and
``CI=true`` makes it mandatory. See ``docs/testing.md`` (Races).

Adding a scenario: write each worker's part as a module-level function ``(ft, arg) ->
JSON-able value`` (processes import it by name), set the data up in a test method of
:class:`RaceContract` (or of a subclass of it), run ``race.racers.run([(part, arg), ...])``
once per trial, and assert the invariant on what the store holds afterwards.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from uuid import UUID

import attrs
import pytest

from fittwin_core.app import FitTwin
from fittwin_core.domain import (
    Actor,
    AvatarSources,
    AvatarStatus,
    BodyMetrics,
    BrandRole,
    BrandUserStatus,
    EffectKind,
    FitTwinError,
    OrderStatus,
    ReferralEventType,
    ReferralPolicy,
    RewardStatus,
    VariantStatus,
)
from fittwin_core.services.base import Settings

RACE_SETTINGS = Settings(
    referral_policy=ReferralPolicy(reward_percent=Decimal("10"), hold_days=0, velocity_limit=3),
)
"""The settings every racing FitTwin runs with: rewards due on delivery (``hold_days=0``), so
the release job has work at once; three conversions per ip or device a day."""

Part = Callable[[FitTwin, Any], Any]
"""One worker's part of a scenario: called with the worker's FitTwin and its argument."""


@attrs.frozen
class Outcome:
    """What one worker's part did: its return value, or the class name of the
    :class:`FitTwinError` it raised (``None`` when it returned)."""

    value: Any = None
    error: str | None = None


class Racers(Protocol):
    """Runs the parts of one trial at the same moment, one worker each."""

    size: int
    """The most parts one trial may have."""

    def run(self, parts: Sequence[tuple[Part, Any]]) -> list[Outcome]:
        """Start every part at once (after a barrier) and wait for all; their outcomes in order."""
        ...

    def close(self) -> None:
        """Stop the workers."""
        ...


def _attempt(part: Part, ft: FitTwin, arg: Any) -> Outcome:
    try:
        return Outcome(value=part(ft, arg))
    except FitTwinError as exc:
        return Outcome(error=type(exc).__name__)


class ThreadRacers:
    """Workers as threads sharing one :class:`FitTwin` (the memory store)."""

    def __init__(self, ft: FitTwin, size: int = 4) -> None:
        self.ft = ft
        self.size = size

    def run(self, parts: Sequence[tuple[Part, Any]]) -> list[Outcome]:
        """Run the parts in threads released together by a barrier."""
        if not 0 < len(parts) <= self.size:
            raise ValueError(f"a trial has 1 to {self.size} parts")
        barrier = threading.Barrier(len(parts))
        outcomes: list[Outcome | None] = [None] * len(parts)

        def worker(index: int, part: Part, arg: Any) -> None:
            barrier.wait(timeout=30)
            outcomes[index] = _attempt(part, self.ft, arg)

        threads = [
            threading.Thread(target=worker, args=(n, part, arg), daemon=True)
            for n, (part, arg) in enumerate(parts)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        if any(o is None for o in outcomes):
            raise AssertionError("a racing thread did not finish (a deadlock?)")
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        """Nothing to stop: threads end with their trial."""


# ---------------------------------------------------------------------------- processes

_worker_ft: FitTwin | None = None
_worker_barrier: Any = None


def _start_worker(factory: Callable[[], FitTwin], barrier: Any) -> None:
    global _worker_ft, _worker_barrier  # noqa: PLW0603 - one FitTwin per worker process
    _worker_ft = factory()
    _worker_barrier = barrier


def _run_in_worker(task: tuple[Part | None, Any]) -> Outcome | None:
    part, arg = task
    _worker_barrier.wait(timeout=60)  # every worker holds one task: they start together
    if part is None:
        return None
    assert _worker_ft is not None
    return _attempt(part, _worker_ft, arg)


class ProcessRacers:
    """Workers as processes (``spawn``), each with its own :class:`FitTwin` built by
    ``factory`` — a picklable callable, such as a :func:`functools.partial` of a module-level
    function — on the same database and object store.

    Every trial hands each worker exactly one task (idle workers get an empty one) and a
    barrier shared by all of them releases them together, so the parts of a trial always run
    in different processes at the same moment."""

    def __init__(self, factory: Callable[[], FitTwin], size: int = 4) -> None:
        context = multiprocessing.get_context("spawn")
        self.size = size
        self._pool = context.Pool(size, initializer=_start_worker, initargs=(factory, context.Barrier(size)))

    def run(self, parts: Sequence[tuple[Part, Any]]) -> list[Outcome]:
        """Run the parts in the worker processes, released together."""
        if not 0 < len(parts) <= self.size:
            raise ValueError(f"a trial has 1 to {self.size} parts")
        tasks: list[tuple[Part | None, Any]] = [*parts, *[(None, None)] * (self.size - len(parts))]
        results = self._pool.map(_run_in_worker, tasks, chunksize=1)
        return [r for r in results[: len(parts)] if r is not None]

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.terminate()
        self._pool.join()


@attrs.frozen
class Race:
    """A race fixture: ``ft`` sets the scenario up and checks it; ``racers`` run the workers
    on the same store."""

    ft: FitTwin
    racers: Racers


# ---------------------------------------------------------------------------- parts


def _place_unit(ft: FitTwin, user: str, variant: str, address: str, card: str) -> Any:
    """One order of one unit of ``variant``, by the shopper, shipped and billed to ``address``."""
    return ft.orders.place(
        UUID(user),
        [(UUID(variant), 1)],
        shipping_address_id=UUID(address),
        billing_address_id=UUID(address),
        payment_method_id=UUID(card),
        actor=Actor.shopper(UUID(user)),
    )


def place_one(ft: FitTwin, arg: tuple[str, str, str, str, int]) -> list[str]:
    """Place ``count`` orders of one unit each; the ids placed (sold out: stop)."""
    user, variant, address, card, count = arg
    placed = []
    for _ in range(count):
        try:
            order = _place_unit(ft, user, variant, address, card)
        except FitTwinError as exc:
            if type(exc).__name__ == "InsufficientInventory":
                break
            raise
        placed.append(str(order.id))
    return placed


def mark_paid(ft: FitTwin, order_ids: list[str]) -> int:
    """Mark each order paid (as the payment webhook does); how many."""
    for order_id in order_ids:
        ft.orders.mark_paid(UUID(order_id), actor=Actor.system())
    return len(order_ids)


def deliver_webhooks(ft: FitTwin, webhooks: list[tuple[bytes, str]]) -> int:
    """Deliver signed payment webhooks (payload, signature header); how many."""
    for payload, header in webhooks:
        ft.orders.handle_payment_webhook(payload, header)
    return len(webhooks)


def revoke(ft: FitTwin, arg: tuple[str, str]) -> str:
    """Brand user ``arg[0]`` revokes brand user ``arg[1]``."""
    by, target = arg
    return ft.brands.revoke_user(UUID(target), actor=Actor.brand_user(UUID(by))).status.value


def complete_avatar(ft: FitTwin, arg: tuple[str, int]) -> str:
    """Complete the avatar with worker ``arg[1]``'s own mesh."""
    avatar_id, worker = arg
    done = ft.avatars.complete(UUID(avatar_id), _mesh(worker), confidence=80, actor=Actor.system())
    return done.status.value


def erase(ft: FitTwin, user_id: str) -> int:
    """Erase the shopper; how many addresses the erasure changed."""
    return ft.privacy.erase_user(UUID(user_id), actor=Actor.system()).addresses


def place_until_refused(ft: FitTwin, arg: tuple[str, str, str, str, int]) -> int:
    """Place up to ``count`` one-unit orders, stopping at the first refusal (the shopper was
    erased meanwhile); how many were placed."""
    user, variant, address, card, count = arg
    placed = 0
    for _ in range(count):
        try:
            _place_unit(ft, user, variant, address, card)
        except FitTwinError:
            break
        placed += 1
    return placed


def erase_after(ft: FitTwin, arg: tuple[str, float]) -> int:
    """After ``arg[1]`` seconds, erase the shopper ``arg[0]``; how many addresses it changed."""
    user_id, delay = arg
    time.sleep(delay)
    return erase(ft, user_id)


def add_address(ft: FitTwin, arg: tuple[str, float]) -> str:
    """After ``arg[1]`` seconds, add an address for the shopper ``arg[0]``, as they would."""
    user_id, delay = arg
    time.sleep(delay)
    uid = UUID(user_id)
    address = ft.accounts.add_address(
        uid,
        type="shipping",
        line1="9 Racing Lane",
        city="Lyon",
        postal_code="69002",
        country="FR",
        actor=Actor.shopper(uid),
    )
    return str(address.id)


def update_name(ft: FitTwin, arg: tuple[str, float]) -> str:
    """After ``arg[1]`` seconds, set the name of shopper ``arg[0]``, as they would."""
    user_id, delay = arg
    time.sleep(delay)
    uid = UUID(user_id)
    ft.accounts.update_profile(uid, name="Racing Name", actor=Actor.shopper(uid))
    return "updated"


def release_due(ft: FitTwin, delay: float) -> tuple[int, int]:
    """After ``delay`` seconds, run the nightly release job: entries released and skipped."""
    time.sleep(delay)
    released = ft.rewards.release_due(actor=Actor.system())
    return len(released), len(released.skipped)


def request_returns(ft: FitTwin, order_ids: list[str]) -> int:
    """Ask to return each order; how many."""
    for order_id in order_ids:
        ft.orders.request_return(UUID(order_id), actor=Actor.system())
    return len(order_ids)


def move_each(ft: FitTwin, arg: tuple[str, str, list[str]]) -> list[str]:
    """Move each order by ``action`` (``cancel`` as the shopper ``user``, ``send_to_brand`` as
    the system): per order, the status it was left in or the class of the error refusing it."""
    action, user, order_ids = arg
    actor = Actor.shopper(UUID(user)) if action == "cancel" else Actor.system()
    move = getattr(ft.orders, action)
    results = []
    for order_id in order_ids:
        try:
            results.append(move(UUID(order_id), actor=actor).status.value)
        except FitTwinError as exc:
            results.append(type(exc).__name__)
    return results


def _tag(ft: FitTwin) -> str:
    return ft.context.ids.new_token().hex[:12]


def _mesh(worker: int) -> bytes:
    return b"glTF" + bytes([worker]) * 64


# ---------------------------------------------------------------------------- the contract


@attrs.frozen
class _Shop:
    platform: Actor
    brand_id: UUID
    variant_id: UUID


class RaceContract:
    """Multi-row invariants under concurrency; subclasses provide the ``race`` fixture."""

    trials: ClassVar[int] = 20
    """Trials of the two-worker races (last owner, avatar completion, erasure vs writes)."""

    @pytest.fixture
    def race(self) -> Race:
        """A :class:`Race` on the store under test."""
        raise NotImplementedError("subclasses provide a `race` fixture")

    # -- set-up helpers ------------------------------------------------------------------

    def _shop(self, ft: FitTwin, inventory: int = 1000) -> _Shop:
        platform = Actor.platform(ft.context.ids.new_id())
        brand = ft.brands.create(f"Racing {_tag(ft)}", {"email": "ops@racing.example"}, actor=platform)
        ft.brands.submit_kyc(brand.id, actor=platform)
        ft.brands.activate(brand.id, actor=platform)
        chart = ft.catalog.create_size_chart(
            brand.id,
            "tops",
            {"zones": {"chest": {"tolerance": 2.0}}, "sizes": [{"label": "M", "chest": [90, 104]}]},
            actor=platform,
        )
        product = ft.catalog.create_product(
            brand.id, title="Tee", category="tops/t-shirts", size_chart_id=chart.id, actor=platform
        )
        variant = ft.catalog.add_variant(
            product.id,
            sku=f"TEE-{_tag(ft)}",
            size_label="M",
            price_cents=2000,
            currency="EUR",
            inventory=inventory,
            actor=platform,
        )
        ft.catalog.publish_product(product.id, actor=platform)
        return _Shop(platform, brand.id, variant.id)

    def _shopper(self, ft: FitTwin, name: str) -> tuple[UUID, UUID, UUID]:
        tag = f"{name}{_tag(ft)}"  # scenarios may share one store: every account is new
        user = ft.accounts.register(
            f"{tag}@example.com",
            "correct horse battery staple",
            tag,
            BodyMetrics(height_cm=170, weight_kg=65, chest_cm=97),
            consents={"terms": True},
            actor=Actor.anonymous(),
        )
        me = Actor.shopper(user.id)
        home = ft.accounts.add_address(
            user.id,
            type="shipping",
            line1="1 Rue Test",
            city="Lyon",
            postal_code="69001",
            country="FR",
            actor=me,
        )
        card = ft.accounts.add_payment_method(user.id, f"pm_{tag}", actor=me)
        return user.id, home.id, card.id

    def _order(
        self, ft: FitTwin, buyer: tuple[UUID, UUID, UUID], variant: UUID, rid: str | None = None
    ) -> UUID:
        user, home, card = buyer
        order = ft.orders.place(
            user,
            [(variant, 1)],
            shipping_address_id=home,
            billing_address_id=home,
            payment_method_id=card,
            rid=rid,
            actor=Actor.shopper(user),
        )
        return order.id

    def _payments(self, ft: FitTwin, orders: list[UUID], workers: int) -> list[tuple[Part, Any]]:
        """The orders' payments shared out between ``workers``: signed ``payment_intent.succeeded``
        webhooks where the gateway can play them (the fake), otherwise ``mark_paid``."""
        succeed = getattr(ft.context.payments, "succeed", None)
        if succeed is None:
            ids = [str(o) for o in orders]
            return [(mark_paid, ids[n::workers]) for n in range(workers)]
        hooks = []
        for order_id in orders:
            intent = ft.orders.get(order_id, actor=Actor.system()).payment_intent_ref
            payload, header = succeed(intent)
            hooks.append((bytes(payload), str(header)))
        return [(deliver_webhooks, hooks[n::workers]) for n in range(workers)]

    # -- stock ---------------------------------------------------------------------------

    def test_racing_buyers_sell_exactly_the_stock(self, race: Race) -> None:
        ft = race.ft
        shop = self._shop(ft, inventory=7)
        buyers = [self._shopper(ft, f"stock{n}") for n in range(race.racers.size)]
        parts = [(place_one, (str(u), str(shop.variant_id), str(h), str(c), 4)) for u, h, c in buyers]

        outcomes = race.racers.run(parts)

        assert [o.error for o in outcomes] == [None] * len(parts)
        sold = [order for o in outcomes for order in o.value]
        assert len(sold) == 7  # 4 workers wanting 4 each, 7 in stock: exactly 7 sold
        with ft.context.store.unit_of_work() as uow:
            assert uow.product_variants.get(shop.variant_id).inventory == 0
            assert sum(i.qty for i in uow.order_items.where(variant_id=shop.variant_id)) == 7

    def test_racing_buyers_across_the_low_stock_threshold_hear_of_it_once(self, race: Race) -> None:
        # A checkout that reads more stock than it leaves above the threshold commits with the
        # stock in one round trip on PostgreSQL; racing ones find less than they read, are
        # refused that way and go on as checkouts near the threshold. Exactly one order takes
        # the stock from above the threshold to it, so its brand hears of it once.
        ft = race.ft
        threshold = ft.context.settings.low_stock_threshold
        stock = threshold + 3 * race.racers.size
        shop = self._shop(ft, inventory=stock)
        ft.brands.add_webhook(
            shop.brand_id, "https://hooks.racing.example/in", ["variant.low_stock"], actor=Actor.system()
        )
        buyers = [self._shopper(ft, f"low{n}") for n in range(race.racers.size)]
        parts = [(place_one, (str(u), str(shop.variant_id), str(h), str(c), stock)) for u, h, c in buyers]

        outcomes = race.racers.run(parts)

        assert [o.error for o in outcomes] == [None] * len(parts)
        assert len([order for o in outcomes for order in o.value]) == stock
        with ft.context.store.unit_of_work() as uow:
            variant = uow.product_variants.get(shop.variant_id)
            hooks = [
                e.payload
                for e in uow.outbox.where(kind=EffectKind.BRAND_WEBHOOK)
                if e.payload["brand_id"] == str(shop.brand_id)
            ]
        assert (variant.inventory, variant.status) == (0, VariantStatus.OUT_OF_STOCK)
        seen = [(h["event"], h["data"]["inventory"]) for h in hooks]
        assert seen == [("variant.low_stock", threshold)], seen

    # -- cancel vs move (decision 8: lock the row before deciding) -------------------------

    def test_a_cancel_racing_a_send_to_brand_leaves_each_order_refunded_or_shipped_never_both(
        self, race: Race
    ) -> None:
        ft = race.ft
        shop = self._shop(ft)
        buyer = self._shopper(ft, "canceller")
        orders = [self._order(ft, buyer, shop.variant_id) for _ in range(self.trials)]
        for order_id in orders:
            ft.orders.mark_paid(order_id, actor=Actor.system())
        ids = [str(o) for o in orders]
        workers = race.racers.size
        parts: list[tuple[Part, Any]] = [
            (move_each, ("cancel" if n % 2 == 0 else "send_to_brand", str(buyer[0]), ids))
            for n in range(workers)
        ]

        outcomes = race.racers.run(parts)

        assert [o.error for o in outcomes] == [None] * workers, outcomes
        for order_id in orders:
            order = ft.orders.get(order_id, actor=Actor.system())
            refunds = [
                e for e in ft.effects.for_order(order_id, actor=Actor.system()) if e.kind.value == "refund"
            ]
            if order.status == OrderStatus.CLOSED:  # cancelled: refunded in full, once
                assert order.refunded_cents == order.totals.total, order
                assert [e.payload["amount"] for e in refunds] == [order.totals.total], refunds
            else:  # shipped: nothing refunded, no refund on its way
                assert order.status == OrderStatus.SENT_TO_BRAND, order
                assert (order.refunded_cents, refunds) == (0, []), (order, refunds)

    # -- referral velocity ---------------------------------------------------------------

    def test_parallel_payment_webhooks_through_one_click_convert_exactly_as_the_velocity_rule_says(
        self, race: Race
    ) -> None:
        ft = race.ft
        shop = self._shop(ft)
        referrer = self._shopper(ft, "referrer")
        buyer = self._shopper(ft, "buyer")
        for trial in range(2):
            link = ft.referrals.create(referrer[0], actor=Actor.shopper(referrer[0]))
            ft.referrals.record_click(
                link.rid,
                ip="203.0.113.7",
                user_agent="race",
                device_fingerprint="phone",
                actor=Actor.anonymous(),
            )
            orders = [self._order(ft, buyer, shop.variant_id, link.rid) for _ in range(10)]
            parts = self._payments(ft, orders, race.racers.size)

            outcomes = race.racers.run(parts)

            assert [o.error for o in outcomes] == [None] * len(parts), (trial, outcomes)
            with ft.context.store.unit_of_work() as uow:
                events = uow.referral_events.where(rid=link.rid)
                entries = uow.reward_ledger_entries.where(rid=link.rid)
            kinds = sorted(e.event_type.value for e in events if e.event_type != ReferralEventType.CLICK)
            # The rule: at most 3 conversions per ip or device a day, the rest flagged.
            assert kinds == ["conversion"] * 3 + ["fraud_flag"] * 7, (trial, kinds, outcomes)
            assert sorted(e.status.value for e in entries) == ["cancelled"] * 7 + ["pending_hold"] * 3
            assert len({e.order_id for e in entries}) == 10  # one entry per order

    # -- the last brand owner ------------------------------------------------------------

    def test_two_owners_revoking_each_other_leave_the_brand_an_owner(self, race: Race) -> None:
        ft = race.ft
        platform = Actor.platform(ft.context.ids.new_id())
        for trial in range(self.trials):
            brand = ft.brands.create(
                f"Pair {trial} {_tag(ft)}", {"email": "ops@pair.example"}, actor=platform
            )
            owners = []
            for n in range(2):
                invited = ft.brands.invite_user(
                    brand.id, f"owner{n}@pair.example", BrandRole.OWNER, actor=platform
                )
                assert invited.invite_token is not None
                owners.append(str(ft.brands.accept_invite(invited.invite_token).id))
            a, b = owners

            outcomes = race.racers.run([(revoke, (a, b)), (revoke, (b, a))])

            with ft.context.store.unit_of_work() as uow:
                active = uow.brand_users.count(
                    brand_id=brand.id, role=BrandRole.OWNER, status=BrandUserStatus.ACTIVE
                )
            assert active == 1, (trial, outcomes)  # one revoked the other, never both
            # The loser was either revoked before it acted (no longer an owner) or saw the last owner.
            assert sorted(o.error or "ok" for o in outcomes) in (
                ["Conflict", "ok"],
                ["PermissionDenied", "ok"],
            ), (trial, outcomes)

    # -- avatar completion ---------------------------------------------------------------

    def test_one_version_completed_by_two_workers_ends_with_row_and_object_agreeing(self, race: Race) -> None:
        ft = race.ft
        user, _, _ = self._shopper(ft, "avatar")
        me = Actor.shopper(user)
        sources = AvatarSources(measurements={"chest_cm": 97})
        for trial in range(self.trials):
            avatar = ft.avatars.request(user, sources, actor=me)

            outcomes = race.racers.run([(complete_avatar, (str(avatar.id), w)) for w in (1, 2)])

            winners = [n for n, o in enumerate(outcomes, start=1) if o.error is None]
            assert len(winners) == 1, (trial, outcomes)  # one completion wins, the other is refused
            assert [o.error for o in outcomes if o.error] in (["Conflict"], ["InvalidTransition"]), outcomes
            done = ft.avatars.get(avatar.id, actor=me)
            assert done.status == AvatarStatus.READY and done.mesh_ref is not None
            assert ft.avatars.mesh(avatar.id, actor=me) == _mesh(winners[0]), trial
            with ft.context.store.unit_of_work() as uow:
                assert uow.idempotency_keys.count(scope="avatars.complete") == 0  # no claim left behind

    # -- erasure vs writes ---------------------------------------------------------------

    def test_erasure_racing_new_data_leaves_nothing_readable(self, race: Race) -> None:
        ft = race.ft
        for trial in range(self.trials):
            user, _, _ = self._shopper(ft, f"erased{trial}")
            uid = str(user)

            # Staggered starts, so that across the trials the writes land before, inside and
            # after the erasure's transaction (it first hashes a password, outside of it).
            delay = (trial % 10) * 0.01
            outcomes = race.racers.run(
                [(erase, uid), (add_address, (uid, delay)), (update_name, (uid, delay))]
            )

            assert outcomes[0].error is None, outcomes
            assert {o.error for o in outcomes[1:]} <= {None, "ValidationError"}, outcomes
            exported = ft.privacy.export_user(user, actor=Actor.system())
            assert exported["erased"] is True
            assert exported["profile"]["name"] is None, (trial, outcomes)
            sealed = ("line1", "line2", "city", "state", "postal_code", "country")
            assert [a[c] for a in exported["addresses"] for c in sealed] == [None] * (
                6 * len(exported["addresses"])
            ), (trial, outcomes)
            assert all(a["deleted_at"] is not None for a in exported["addresses"]), (trial, outcomes)
            assert exported["data_keys"] == [], (trial, outcomes)  # no fresh data key outlives it

    def test_checkouts_racing_the_shoppers_erasure_keep_no_payment_token(self, race: Race) -> None:
        # A checkout reads the shopper locked: it ends before the erasure starts (and the
        # erasure clears its order's payment token) or waits and is refused. Were the order
        # inserted after the erasure had passed, its token would outlive the erasure.
        ft = race.ft
        shop = self._shop(ft)
        for trial in range(self.trials // 2):
            user, home, card = self._shopper(ft, f"leaving{trial}")
            delay = (trial % 5) * 0.02
            outcomes = race.racers.run(
                [
                    (place_until_refused, (str(user), str(shop.variant_id), str(home), str(card), 40)),
                    (erase_after, (str(user), delay)),
                ]
            )
            assert [o.error for o in outcomes] == [None, None], outcomes
            with ft.context.store.unit_of_work() as uow:
                orders = uow.orders.where(user_id=user)
                assert len(orders) == outcomes[0].value, (trial, outcomes)
                assert [o.id for o in orders if o.psp_token_id is not None] == [], (trial, outcomes)
                assert uow.user_profiles.get(user).erased_at is not None

    def test_an_erased_referrer_earns_nothing_and_the_buyer_keeps_the_order(self, race: Race) -> None:
        ft = race.ft
        shop = self._shop(ft)
        referrer = self._shopper(ft, "gone")
        buyer = self._shopper(ft, "stays")
        link = ft.referrals.create(referrer[0], actor=Actor.shopper(referrer[0]))
        ft.referrals.record_click(link.rid, ip="198.51.100.4", user_agent="race", actor=Actor.anonymous())
        orders = [str(self._order(ft, buyer, shop.variant_id, link.rid)) for _ in range(3)]

        outcomes = race.racers.run([(erase, str(referrer[0])), (mark_paid, orders)])

        assert [o.error for o in outcomes] == [None, None]
        with ft.context.store.unit_of_work() as uow:
            erased_at = uow.user_profiles.get(referrer[0]).erased_at
            assert erased_at is not None
            assert uow.referrals.get(link.rid).expires_at == erased_at  # the link ended with erasure
            entries = uow.reward_ledger_entries.where(rid=link.rid)
            assert len(entries) == len({e.order_id for e in entries}) <= 3  # paid before it, at most
            for order_id in orders:
                order = uow.orders.get(UUID(order_id))
                assert order.status == OrderStatus.PAID and order.rid == link.rid
        later = self._order(ft, buyer, shop.variant_id, link.rid)
        ft.orders.mark_paid(later, actor=Actor.system())
        assert ft.rewards.entries(order_id=later, actor=Actor.system()).items == ()

    # -- ledger release vs returns -------------------------------------------------------

    def test_the_release_job_racing_returns_completes_and_returned_money_nets_to_zero(
        self, race: Race
    ) -> None:
        ft = race.ft
        shop = self._shop(ft)
        referrer = self._shopper(ft, "earner")
        buyer = self._shopper(ft, "returner")
        for trial in range(3):
            link = ft.referrals.create(referrer[0], actor=Actor.shopper(referrer[0]))
            orders = []
            for n in range(8):  # one click per order: under the velocity limit
                ft.referrals.record_click(
                    link.rid,
                    ip=f"192.0.2.{trial * 10 + n}",
                    user_agent="race",
                    device_fingerprint=f"d{trial}{n}",
                    actor=Actor.anonymous(),
                )
                order_id = self._order(ft, buyer, shop.variant_id, link.rid)
                for step in (
                    ft.orders.mark_paid,
                    ft.orders.send_to_brand,
                    ft.orders.mark_fulfilled,
                    ft.orders.mark_delivered,
                ):
                    step(order_id, actor=Actor.system())
                orders.append(order_id)
            returned = [str(o) for o in reversed(orders[::2])]  # against the job's id order
            # Two runs of the job overlap (a re-run while the first is still going) and two
            # shoppers return orders meanwhile.
            parts: list[tuple[Part, Any]] = [
                (release_due, 0.0),
                (release_due, 0.005 * trial),
                (request_returns, returned[::2]),
                (request_returns, returned[1::2]),
            ]

            outcomes = race.racers.run(parts)

            assert [o.error for o in outcomes] == [None] * 4, (trial, outcomes)  # every batch completed
            ft.rewards.release_due(actor=Actor.system())  # a re-run picks up anything skipped
            with ft.context.store.unit_of_work() as uow:
                for order_id in orders:
                    entries = uow.reward_ledger_entries.where(order_id=order_id)
                    owed = sum(
                        e.amount_cents
                        for e in entries
                        if e.status in (RewardStatus.PAYABLE, RewardStatus.PAID)
                    )
                    assert not [e for e in entries if e.status == RewardStatus.PENDING_HOLD], trial
                    if str(order_id) in returned:
                        assert owed == 0, (trial, entries)  # returned: the money nets to zero
                    else:
                        assert owed == 200, (trial, entries)  # kept: 10 % of 20.00 EUR, released


__all__ = [
    "RACE_SETTINGS",
    "Outcome",
    "Part",
    "ProcessRacers",
    "Race",
    "RaceContract",
    "Racers",
    "ThreadRacers",
    "add_address",
    "complete_avatar",
    "deliver_webhooks",
    "erase",
    "erase_after",
    "mark_paid",
    "move_each",
    "place_one",
    "place_until_refused",
    "release_due",
    "request_returns",
    "revoke",
    "update_name",
]
