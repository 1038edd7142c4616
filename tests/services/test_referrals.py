"""Referral links, clicks, attribution, fraud flags and the reward ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.disabled import NoKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    InvalidTransition,
    Money,
    NotFound,
    PermissionDenied,
    ReferralPolicy,
    RewardStatus,
    Rounding,
    ValidationError,
)
from fittwin_core.domain.ids import RID_PATTERN
from fittwin_core.ports import RawRows
from fittwin_core.services.base import Settings
from fittwin_core.services.referrals import Click
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop
from tests.support.snapshots import snapshot

IP = "203.0.113.7"
DEVICE = "device-fingerprint-42"


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def buy_through(
    shop: Shop, rid: str, buyer: tuple[Any, Any, Any] | None = None, *, size: str = "M", qty: int = 1
) -> Any:
    user, address, card = buyer or (shop.shopper, shop.address, shop.card)
    order = shop.place(
        [(shop.variants[size].id, qty)],
        user_id=user.id,
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        rid=rid,
    )
    return shop.pay(order)


def deliver(shop: Shop, order: Any) -> Any:
    for move in (shop.ft.orders.send_to_brand, shop.ft.orders.mark_fulfilled, shop.ft.orders.mark_delivered):
        order = move(order.id, actor=Actor.system())
    return order


# ---------------------------------------------------------------------------- links and clicks


def test_links_freeze_the_policy_in_force(shop: Shop, clock: FrozenClock) -> None:
    referral = shop.ft.referrals.create(
        shop.shopper.id, target_product_id=shop.product.id, actor=Actor.shopper(shop.shopper.id)
    )
    assert RID_PATTERN.fullmatch(referral.rid)
    assert referral.share_url == f"https://fittwin.example/r/{referral.rid}"
    assert referral.policy_snapshot.reward_percent == Decimal("10")
    assert referral.policy_snapshot.rounding == Rounding.HALF_EVEN
    generous = Settings(
        referral_policy=ReferralPolicy(reward_percent="15.5", hold_days=7),
        share_base_url="https://ft.example/go?r={rid}",
    )
    other = connect(  # links carry no sealed field: no key ring needed
        shop.ft.context.store,
        clock=clock,
        ids=shop.ft.context.ids,
        settings=generous,
        keyring=NoKeyRing(),
        payments=shop.ft.context.payments,
    )
    newer = other.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    assert (newer.policy_snapshot.reward_percent, newer.share_url) == (
        Decimal("15.5"),
        f"https://ft.example/go?r={newer.rid}",
    )
    assert other.referrals.get(referral.rid, actor=Actor.system()).policy_snapshot.reward_percent == Decimal(
        "10"
    )
    with pytest.raises(ValidationError, match="future"):
        shop.ft.referrals.create(
            shop.shopper.id, expires_at=clock.now(), actor=Actor.shopper(shop.shopper.id)
        )
    with pytest.raises(PermissionDenied):
        shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.owner.id))


def test_clicks_keep_only_keyed_hashes_and_count_once_per_window(shop: Shop, clock: FrozenClock) -> None:
    referral = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    first = shop.ft.referrals.record_click(
        referral.rid, ip=IP, user_agent="Mozilla/5.0", device_fingerprint=DEVICE, actor=Actor.anonymous()
    )
    assert first is not None and first.ip_hash is not None and first.metadata["user_agent"] == "Mozilla/5.0"
    clock.advance(minutes=59)
    assert (
        shop.ft.referrals.record_click(
            referral.rid, ip=IP, user_agent="Mozilla/5.0", device_fingerprint=DEVICE, actor=Actor.anonymous()
        )
        is None
    )
    assert (
        shop.ft.referrals.record_click(
            referral.rid, ip=IP, user_agent="x", device_fingerprint="other", actor=Actor.anonymous()
        )
        is not None
    )
    clock.advance(minutes=2)
    assert (
        shop.ft.referrals.record_click(
            referral.rid, ip=IP, user_agent="x", device_fingerprint=DEVICE, actor=Actor.anonymous()
        )
        is not None
    )
    assert len(shop.ft.referrals.events(referral.rid, event_type="click", actor=Actor.system()).items) == 3
    store = shop.ft.context.store
    assert isinstance(store, RawRows)
    everything = json.dumps(
        {table: store.raw_rows(table) for table in ("referral_events", "referrals", "event_logs")}
    )
    assert IP not in everything and DEVICE not in everything


def test_unknown_or_expired_links_record_nothing(shop: Shop, clock: FrozenClock) -> None:
    referral = shop.ft.referrals.create(
        shop.shopper.id, expires_at=clock.now() + timedelta(hours=1), actor=Actor.shopper(shop.shopper.id)
    )
    before = snapshot(shop.ft.context.store)
    with pytest.raises(NotFound):
        shop.ft.referrals.record_click("A" * 21 + "Q", ip=IP, user_agent="x", actor=Actor.anonymous())
    with pytest.raises(ValidationError):
        shop.ft.referrals.record_click("nope", ip=IP, user_agent="x", actor=Actor.anonymous())
    with pytest.raises(ValidationError) as raised:
        shop.ft.referrals.record_click(referral.rid, ip="999.1.1.1", user_agent="x", actor=Actor.anonymous())
    assert raised.value.field == "ip"
    clock.advance(hours=2)
    with pytest.raises(ValidationError, match="expired"):
        shop.ft.referrals.record_click(referral.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    assert snapshot(shop.ft.context.store) == before


def test_bulk_ingest(shop: Shop, clock: FrozenClock) -> None:
    link = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    other = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_click(link.rid, ip="198.51.100.1", user_agent="x", actor=Actor.anonymous())
    now = clock.now()
    clicks = [
        Click(rid=link.rid, ip="198.51.100.1", at=now + timedelta(minutes=10)),  # repeats the stored click
        Click(rid=link.rid, ip="198.51.100.2", at=now),
        {
            "rid": link.rid,
            "ip": "198.51.100.2",
            "at": now + timedelta(minutes=30),
        },  # repeats within the batch
        {"rid": other.rid, "ip": "2001:db8::1", "device_fingerprint": DEVICE, "at": now},
        Click(rid=link.rid, ip="198.51.100.2", at=now + timedelta(minutes=61)),
    ]
    assert shop.ft.referrals.record_clicks(clicks, actor=Actor.system()) == 3
    assert len(shop.ft.referrals.events(link.rid, actor=Actor.system()).items) == 3
    before = snapshot(shop.ft.context.store)
    with pytest.raises(NotFound):
        shop.ft.referrals.record_clicks(
            [Click(rid=link.rid, ip="192.0.2.1"), Click(rid="B" * 21 + "w", ip="192.0.2.1")],
            actor=Actor.system(),
        )
    with pytest.raises(ValidationError) as raised:
        shop.ft.referrals.record_clicks(
            [Click(rid=link.rid, ip="192.0.2.1"), {"rid": link.rid}], actor=Actor.system()
        )
    assert raised.value.field == "clicks[1]"
    assert snapshot(shop.ft.context.store) == before
    assert shop.ft.referrals.record_clicks([], actor=Actor.system()) == 0


# ---------------------------------------------------------------------------- attribution and fraud


def test_a_paid_order_through_a_clicked_link_converts_once(shop: Shop) -> None:
    friend = shop.new_shopper("grace")
    link = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_click(
        link.rid, ip=IP, user_agent="x", device_fingerprint=DEVICE, actor=Actor.anonymous()
    )
    order = buy_through(shop, link.rid, friend, qty=3)
    payload, header = shop.ft.context.payments.webhooks()[-1]  # type: ignore[attr-defined]
    for _ in range(3):
        assert shop.ft.orders.handle_payment_webhook(payload, header) is None
        shop.ft.orders.mark_paid(order.id, actor=Actor.system())
    conversions = shop.ft.referrals.events(link.rid, event_type="conversion", actor=Actor.system()).items
    assert [c.order_id for c in conversions] == [order.id]
    (entry,) = shop.ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    assert (entry.status, entry.amount_cents, entry.currency, entry.hold_until) == (
        RewardStatus.PENDING_HOLD,
        750,
        "EUR",
        None,
    )


def test_no_click_in_the_window_or_an_expired_link_earns_nothing(shop: Shop, clock: FrozenClock) -> None:
    friend = shop.new_shopper("grace")
    stale = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_click(stale.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    clock.advance(days=31)
    order = buy_through(shop, stale.rid, friend)
    assert shop.ft.rewards.entries(order_id=order.id, actor=Actor.system()).items == ()
    unclicked = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    assert (
        shop.ft.rewards.entries(
            order_id=buy_through(shop, unclicked.rid, friend).id, actor=Actor.system()
        ).items
        == ()
    )
    expiring = shop.ft.referrals.create(
        shop.shopper.id, expires_at=clock.now() + timedelta(hours=1), actor=Actor.shopper(shop.shopper.id)
    )
    shop.ft.referrals.record_click(expiring.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    placed = shop.place(
        user_id=friend[0].id,
        shipping_address_id=friend[1].id,
        billing_address_id=friend[1].id,
        payment_method_id=friend[2].id,
        rid=expiring.rid,
    )
    clock.advance(hours=2)
    shop.pay(placed)
    assert shop.ft.rewards.entries(order_id=placed.id, actor=Actor.system()).items == ()
    assert shop.ft.referrals.events(expiring.rid, event_type="conversion", actor=Actor.system()).items == ()


def test_the_last_click_wins(shop: Shop, clock: FrozenClock) -> None:
    friend = shop.new_shopper("grace")
    link = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_click(link.rid, ip="192.0.2.1", user_agent="first", actor=Actor.anonymous())
    clock.advance(hours=3)
    last = shop.ft.referrals.record_click(
        link.rid, ip="192.0.2.2", user_agent="last", actor=Actor.anonymous()
    )
    clock.advance(hours=1)
    buy_through(shop, link.rid, friend)
    (conversion,) = shop.ft.referrals.events(link.rid, event_type="conversion", actor=Actor.system()).items
    assert last is not None and conversion.metadata["click_id"] == str(last.id)
    assert conversion.ip_hash == last.ip_hash


def test_self_referral_is_flagged_without_reward(shop: Shop) -> None:
    link = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    order = buy_through(shop, link.rid)
    (flag,) = shop.ft.referrals.events(link.rid, event_type="fraud_flag", actor=Actor.system()).items
    assert (flag.order_id, flag.metadata["kind"], flag.metadata["score"]) == (order.id, "self_referral", 100)
    assert shop.ft.rewards.entries(order_id=order.id, actor=Actor.system()).items == ()
    assert shop.ft.referrals.events(link.rid, event_type="conversion", actor=Actor.system()).items == ()


def test_paying_with_the_referrers_card_is_self_referral(shop: Shop) -> None:
    ft = shop.ft
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    shop.pay(shop.place())  # the referrer's own earlier order with their card
    ft.accounts.remove_payment_method(shop.card.id, actor=Actor.shopper(shop.shopper.id))
    user, address, _ = shop.new_shopper("mallory")
    stolen = ft.accounts.add_payment_method(user.id, shop.card.psp_token_id, actor=Actor.shopper(user.id))
    order = buy_through(shop, link.rid, (user, address, stolen))
    (flag,) = ft.referrals.events(link.rid, event_type="fraud_flag", actor=Actor.system()).items
    assert flag.order_id == order.id and "card" in flag.metadata["reason"]
    assert ft.rewards.entries(order_id=order.id, actor=Actor.system()).items == ()


def test_velocity_flags_and_cancels_then_a_platform_admin_reinstates(shop: Shop) -> None:
    ft = shop.ft
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    orders = []
    for n in range(4):
        buyer = shop.new_shopper(f"bot{n}")
        ft.referrals.record_click(
            link.rid, ip=IP, user_agent="bot", device_fingerprint=f"dev{n}", actor=Actor.anonymous()
        )
        orders.append(buy_through(shop, link.rid, buyer))
    statuses = [ft.rewards.entries(order_id=o.id, actor=Actor.system()).items[0].status for o in orders]
    assert statuses == [RewardStatus.PENDING_HOLD] * 3 + [RewardStatus.CANCELLED]
    (flag,) = ft.referrals.events(link.rid, event_type="fraud_flag", actor=Actor.system()).items
    assert (
        flag.metadata["kind"] == "velocity"
        and flag.metadata["score"] >= 50
        and "4 conversions" in flag.metadata["reason"]
    )
    flagged = ft.rewards.entries(order_id=orders[3].id, actor=Actor.system()).items[0]
    with pytest.raises(PermissionDenied):
        ft.rewards.reinstate(flagged.id, actor=Actor.system())
    reinstated = ft.rewards.reinstate(flagged.id, actor=shop.platform)
    assert reinstated.status == RewardStatus.PENDING_HOLD
    with pytest.raises(InvalidTransition):
        ft.rewards.reinstate(
            ft.rewards.entries(order_id=orders[0].id, actor=Actor.system()).items[0].id, actor=shop.platform
        )


# ---------------------------------------------------------------------------- the ledger


def test_hold_release_payout_and_balance(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    friend = shop.new_shopper("grace")
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    order = deliver(shop, buy_through(shop, link.rid, friend, qty=2))
    (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    assert entry.hold_until == clock.now().date() + timedelta(days=30)
    with pytest.raises(ValidationError, match="after the current date"):
        ft.rewards.release_due(entry.hold_until, actor=Actor.system())
    clock.advance(days=29)
    assert ft.rewards.release_due(actor=Actor.system()) == []
    assert ft.rewards.balance(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)) == {}
    clock.advance(days=1)
    (released,) = ft.rewards.release_due(entry.hold_until, actor=Actor.system())
    assert released.status == RewardStatus.PAYABLE
    assert ft.rewards.balance(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)) == {
        "EUR": Money(500, "EUR")
    }
    with pytest.raises(PermissionDenied):
        ft.rewards.mark_paid([entry.id], actor=Actor.shopper(shop.shopper.id))
    (paid,) = ft.rewards.mark_paid([entry.id], actor=Actor.system())
    assert (
        paid.status == RewardStatus.PAID
        and ft.rewards.balance(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)) == {}
    )
    with pytest.raises(InvalidTransition):
        ft.rewards.mark_paid([entry.id], actor=Actor.system())
    statement = ft.rewards.statement(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    assert statement.totals == {"paid": {"EUR": 500}} and statement.entries == (paid,)


def test_a_return_cancels_a_held_reward(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    friend = shop.new_shopper("grace")
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    order = deliver(shop, buy_through(shop, link.rid, friend))
    ft.orders.request_return(order.id, actor=Actor.system())
    assert [e.status for e in ft.rewards.entries(order_id=order.id, actor=Actor.system()).items] == [
        RewardStatus.CANCELLED
    ]
    clock.advance(days=60)
    assert ft.rewards.release_due(actor=Actor.system()) == []


def test_a_return_after_payout_is_clawed_back_once(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    friend = shop.new_shopper("grace")
    link = ft.referrals.create(shop.shopper.id, expires_at=None, actor=Actor.shopper(shop.shopper.id))
    ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    order = deliver(shop, buy_through(shop, link.rid, friend))
    (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    clock.advance(days=30)
    ft.rewards.release_due(actor=Actor.system())
    ft.rewards.mark_paid([entry.id], actor=Actor.system())
    ft.orders.request_return(order.id, actor=Actor.system())
    ft.orders.close(order.id, actor=Actor.system())
    entries = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    assert sorted((e.amount_cents, e.status) for e in entries) == [
        (-250, RewardStatus.PAYABLE),
        (250, RewardStatus.PAID),
    ]
    assert sum(e.amount_cents for e in entries) == 0
    assert ft.rewards.balance(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)) == {
        "EUR": Money(-250, "EUR")
    }


def test_rewards_round_per_policy(store: Any, clock: FrozenClock, ids: Any) -> None:
    payments = FakePayments(clock=clock)  # one provider: event ids must stay unique in the store
    keyring = LocalKeyRing.generate()  # one key ring: both FitTwins read the same store
    for rounding, expected in ((Rounding.HALF_EVEN, 52), (Rounding.HALF_UP, 53)):
        policy = ReferralPolicy(reward_percent="5", rounding=rounding)
        ft = connect(
            store,
            clock=clock,
            ids=ids,
            keyring=keyring,
            hasher=Argon2PasswordHasher.owasp_minimum(),
            payments=payments,
            settings=Settings(referral_policy=policy),
        )
        shop = open_shop(ft, f"round-{rounding.value.replace('_', '-')}")
        friend = shop.new_shopper(f"friend{rounding.value}")
        link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
        ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
        variant = ft.catalog.add_variant(
            shop.product.id,
            sku=f"R-{rounding.value}",
            size_label="S",
            price_cents=1050,
            currency="EUR",
            inventory=5,
            color="red",
            actor=shop.owner_actor,
        )
        order = shop.pay(
            shop.place(
                [(variant.id, 1)],
                user_id=friend[0].id,
                shipping_address_id=friend[1].id,
                billing_address_id=friend[1].id,
                payment_method_id=friend[2].id,
                rid=link.rid,
            )
        )
        (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
        assert entry.amount_cents == expected  # 5 % of 10.50 EUR is 52.5 cents
