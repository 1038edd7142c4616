"""An erased account takes no new data, and its share links earn nothing (docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import AvatarSources, OrderStatus, ValidationError
from tests.support.shop import PASSWORD, Shop, open_shop


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


# Every write about a shopper, as the shopper (or staff) would make it after the erasure: each
# must be refused naming the account, and change nothing.
WRITES: dict[str, Callable[[Shop, Any], Any]] = {
    "update_profile": lambda s, uid: s.ft.accounts.update_profile(
        uid, name="Back Again", actor=Actor.shopper(uid)
    ),
    "change_email": lambda s, uid: s.ft.accounts.change_email(
        uid, "back@example.com", actor=Actor.shopper(uid)
    ),
    "change_password": lambda s, uid: s.ft.accounts.change_password(
        uid, PASSWORD, "another long passphrase", actor=Actor.shopper(uid)
    ),
    "add_address": lambda s, uid: s.ft.accounts.add_address(
        uid,
        type="shipping",
        line1="2 New St",
        city="Lyon",
        postal_code="69003",
        country="FR",
        actor=Actor.shopper(uid),
    ),
    "set_billing_address": lambda s, uid: s.ft.accounts.set_billing_address(
        uid, None, actor=Actor.shopper(uid)
    ),
    "add_payment_method": lambda s, uid: s.ft.accounts.add_payment_method(
        uid, "pm_new", actor=Actor.shopper(uid)
    ),
    "set_default_payment_method": lambda s, uid: s.ft.accounts.set_default_payment_method(
        uid, None, actor=Actor.shopper(uid)
    ),
    "mark_phone_verified": lambda s, uid: s.ft.accounts.mark_phone_verified(uid, actor=Actor.system()),
    "avatars.request": lambda s, uid: s.ft.avatars.request(
        uid, AvatarSources(measurements={"chest_cm": 97}), actor=Actor.shopper(uid)
    ),
    "referrals.create": lambda s, uid: s.ft.referrals.create(uid, actor=Actor.shopper(uid)),
    "orders.place": lambda s, uid: s.place(user_id=uid),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_write_about_an_erased_shopper_is_refused(shop: Shop, write: str) -> None:
    uid = shop.shopper.id
    shop.ft.privacy.erase_user(uid, actor=Actor.system())
    before = shop.ft.privacy.export_user(uid, actor=Actor.system())

    with pytest.raises(ValidationError) as refused:
        WRITES[write](shop, uid)

    assert refused.value.field in ("user_id", "referrer_user_id")
    assert "erased" in refused.value.rule
    after = shop.ft.privacy.export_user(uid, actor=Actor.system())
    for section in ("profile", "addresses", "payment_methods", "avatars", "orders", "referrals", "data_keys"):
        assert after[section] == before[section], section


def test_erasure_ends_the_shoppers_links_and_a_later_purchase_earns_them_nothing(shop: Shop) -> None:
    ft = shop.ft
    referrer = shop.shopper.id
    link = ft.referrals.create(referrer, actor=Actor.shopper(referrer))
    buyer, address, card = shop.new_shopper("friend")
    ft.referrals.record_click(link.rid, ip="203.0.113.9", user_agent="x", actor=Actor.anonymous())
    placed = shop.place(
        user_id=buyer.id,
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        rid=link.rid,
    )  # placed before the erasure, paid after it

    report = ft.privacy.erase_user(referrer, actor=Actor.system())

    assert report.referral_links == 1
    ended = ft.referrals.get(link.rid, actor=Actor.system())
    assert ended.expires_at is not None and ended.is_expired(ended.expires_at)
    paid = shop.pay(placed)
    assert paid.status == OrderStatus.PAID and paid.rid == link.rid  # the buyer's order is unaffected
    assert ft.rewards.entries(order_id=paid.id, actor=Actor.system()).items == ()
    assert ft.referrals.events(link.rid, event_type="conversion", actor=Actor.system()).items == ()
    with pytest.raises(ValidationError, match="expired"):
        ft.referrals.record_click(link.rid, ip="203.0.113.10", user_agent="x", actor=Actor.anonymous())
    assert ft.privacy.erase_user(referrer, actor=Actor.system()).referral_links == 0  # a repeat: nothing left
