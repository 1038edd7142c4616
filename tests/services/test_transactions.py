"""``ft.transaction(actor=...)``: several calls, one unit of work — committed once at the end,
rolled back on any error, after-commit work only after the commit; on both stores."""

from __future__ import annotations

from typing import Any

import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    BodyMetrics,
    Conflict,
    OrderStatus,
    TransientConflict,
    ValidationError,
)
from tests.support.shop import PASSWORD, Shop, open_shop
from tests.support.snapshots import snapshot

VISITOR = Actor.anonymous()
METRICS = BodyMetrics(height_cm=170, weight_kg=65, chest_cm=96)


def sign_up(tx: Any, tag: str) -> tuple[Any, Actor]:
    user = tx.accounts.register(
        f"{tag}@example.com", PASSWORD, tag, METRICS, consents={"terms": True}, actor=VISITOR
    )
    return user, Actor.shopper(user.id)


def address(tx: Any, user: Any, me: Actor, country: str = "FR") -> Any:
    return tx.accounts.add_address(
        user.id, type="shipping", line1="1 rue X", city="Lyon", postal_code="69001", country=country, actor=me
    )


def test_a_failing_last_call_leaves_nothing_written(ft: FitTwin) -> None:
    shop = open_shop(ft)  # its shopper already holds the card token pm_shop_ada
    before = snapshot(ft.context.store)
    with pytest.raises(Conflict, match="already registered"), ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "newbie")
        address(tx, user, me)
        tx.accounts.add_payment_method(user.id, shop.card.psp_token_id, actor=me)  # taken: fails
    assert snapshot(ft.context.store) == before
    with pytest.raises(AuthenticationFailed):
        ft.accounts.authenticate("newbie@example.com", PASSWORD)
    # The retry is a clean start, not "an account with this email already exists".
    with ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "newbie")
        address(tx, user, me)
        tx.accounts.add_payment_method(user.id, "pm_newbie", actor=me)
    assert ft.accounts.authenticate("newbie@example.com", PASSWORD).id == user.id
    assert [m.psp_token_id for m in ft.accounts.payment_methods(user.id, actor=me).items] == ["pm_newbie"]


def test_a_validation_error_in_the_middle_rolls_back_the_block(ft: FitTwin) -> None:
    before = snapshot(ft.context.store)
    with pytest.raises(ValidationError) as caught, ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "ada")
        address(tx, user, me, country="Britain")
    assert caught.value.field == "country"
    assert snapshot(ft.context.store) == before


def test_nothing_is_visible_before_the_commit_and_everything_after(ft: FitTwin) -> None:
    with ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "ada")
        home = address(tx, user, me)
        assert tx.accounts.addresses(user.id, actor=me).items == (home,)  # the block sees its own writes
        with pytest.raises(AuthenticationFailed):  # another unit of work does not, yet
            ft.accounts.authenticate("ada@example.com", PASSWORD)
    assert ft.accounts.authenticate("ada@example.com", PASSWORD).id == user.id
    assert ft.accounts.addresses(user.id, actor=me).items == (home,)


def test_each_call_checks_its_own_actor(ft: FitTwin) -> None:
    shop = open_shop(ft)
    before = snapshot(ft.context.store)
    with pytest.raises(Exception, match="may not") as caught, ft.transaction(actor=VISITOR) as tx:
        user, _ = sign_up(tx, "eve")
        address(tx, shop.shopper, Actor.shopper(user.id))  # someone else's account
    assert type(caught.value).__name__ == "PermissionDenied"
    assert snapshot(ft.context.store) == before


def test_arguments_refused_before_any_write_leave_the_transaction_usable(ft: FitTwin) -> None:
    with ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "ada")
        with pytest.raises(ValidationError):
            address(tx, user, me, country="nowhere")
        address(tx, user, me)
    assert len(ft.accounts.addresses(user.id, actor=me).items) == 1


def test_a_caught_error_still_dooms_the_transaction(ft: FitTwin) -> None:
    before = snapshot(ft.context.store)
    with pytest.raises(Conflict, match="nothing it did was committed"), ft.transaction(actor=VISITOR) as tx:
        user, me = sign_up(tx, "ada")
        tx.accounts.add_payment_method(user.id, "pm_ada", actor=me)
        with pytest.raises(Conflict, match="already registered"):  # refused inside the unit of work
            tx.accounts.add_payment_method(user.id, "pm_ada", actor=me)
        with pytest.raises(Conflict, match="aborted"):
            address(tx, user, me)
    assert snapshot(ft.context.store) == before


def test_audit_rows_record_the_actor_of_each_call(ft: FitTwin) -> None:
    shop = open_shop(ft)
    platform = Actor.platform(ft.context.ids.new_id())
    with ft.transaction(actor=platform) as tx:
        tx.catalog.set_inventory(shop.variants["S"].id, 7, actor=shop.owner_actor)
        tx.catalog.set_inventory(shop.variants["L"].id, 8, actor=platform)
    rows = {
        e.entity_id: e
        for e in ft.audit.events(entity_type="product_variants", action="update", actor=platform).items
    }
    assert rows[shop.variants["S"].id].actor == shop.owner_actor
    assert rows[shop.variants["L"].id].actor == platform


def test_payments_and_brand_webhooks_wait_for_the_commit(ft: FitTwin) -> None:
    shop = open_shop(ft)
    sent = ft.context.webhooks.sent  # type: ignore[attr-defined]
    ft.brands.add_webhook(
        shop.brand.id, "https://hooks.example/in", ["variant.low_stock"], actor=shop.owner_actor
    )
    me = Actor.shopper(shop.shopper.id)
    with ft.transaction(actor=me) as tx:
        order = tx.orders.place(
            shop.shopper.id,
            [(shop.variants["M"].id, 6)],  # 10 → 4: low stock, a webhook
            shipping_address_id=shop.address.id,
            billing_address_id=shop.address.id,
            payment_method_id=shop.card.id,
            actor=me,
        )
        assert order.status == OrderStatus.CREATED and order.payment_intent_ref is None
        assert [w for w in sent if w.url == "https://hooks.example/in"] == []
    assert ft.orders.get(order.id, actor=me).payment_intent_ref is not None
    assert len([w for w in sent if w.url == "https://hooks.example/in"]) == 1


@pytest.mark.parametrize(
    "qty",
    [
        6,  # leaves 4 of 10, below the low-stock threshold: an event for the brand, not sent
        1,  # leaves 9: called on its own it would commit with its stock, not in a block
    ],
)
def test_a_rolled_back_transaction_sends_nothing_and_opens_no_payment(ft: FitTwin, qty: int) -> None:
    shop: Shop = open_shop(ft)
    sent = ft.context.webhooks.sent  # type: ignore[attr-defined]
    ft.brands.add_webhook(
        shop.brand.id, "https://hooks.example/in", ["variant.low_stock"], actor=shop.owner_actor
    )
    me = Actor.shopper(shop.shopper.id)
    before = snapshot(ft.context.store)
    with pytest.raises(ValidationError), ft.transaction(actor=me) as tx:
        shop_place = tx.orders.place(
            shop.shopper.id,
            [(shop.variants["M"].id, qty)],
            shipping_address_id=shop.address.id,
            billing_address_id=shop.address.id,
            payment_method_id=shop.card.id,
            actor=me,
        )
        assert shop_place.id is not None
        tx.accounts.update_profile(shop.shopper.id, username="bad name!", actor=me)
    assert snapshot(ft.context.store) == before
    assert [w for w in sent if w.url == "https://hooks.example/in"] == []
    assert "intents=0" in repr(ft.context.payments)


def test_a_transient_conflict_surfaces_instead_of_being_retried(ft: FitTwin) -> None:
    attempts: list[int] = []

    def work(uow: Any) -> None:
        attempts.append(1)
        raise TransientConflict("serialization failure")

    with pytest.raises(TransientConflict), ft.transaction(actor=Actor.system()) as tx:
        tx.orders.transaction(work, actor=Actor.system())
    assert len(attempts) == 1
    attempts.clear()
    with pytest.raises(TransientConflict):
        ft.orders.transaction(work, actor=Actor.system())  # a single call retries itself
    assert len(attempts) == ft.context.settings.transaction_attempts > 1


def test_a_transaction_is_used_once(ft: FitTwin) -> None:
    tx = ft.transaction(actor=VISITOR)
    with pytest.raises(Conflict, match="not been started"):
        sign_up(tx, "early")
    with tx:
        sign_up(tx, "ada")
    with pytest.raises(Conflict, match="already"), tx:
        pass
