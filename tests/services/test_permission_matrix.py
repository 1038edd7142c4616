"""The whole permission matrix: every action × every role × own/other brand or shopper, on
both stores, with the expectations written out here from API.md and ARCHITECTURE.md — never
read from the implementation's table:

* staff (platform admin, system) may do anything;
* a brand user acts only on its own brand; owner ⊃ manager ⊃ analyst; analysts only read;
* a shopper acts only about themselves; an anonymous visitor registers, browses, clicks.

One world per backend (module scope). Each action's scenario makes what the call needs; an
allowed call must succeed (or fail on a business rule *after* the permission check, where the
scenario says so), a refused one is ``PermissionDenied`` and leaves the subject usable for the
next actor. On PostgreSQL the full matrix runs too (about 15 s).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.demo import TEE_CHART
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import BodyMetrics, InvalidTransition, NotFound, PermissionDenied
from fittwin_core.pagination import every
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import PASSWORD, Shop, open_shop

ACTORS = (
    "admin",
    "system",
    "own_owner",
    "own_manager",
    "own_analyst",
    "other_owner",
    "other_manager",
    "other_analyst",
    "self",
    "other_shopper",
    "anonymous",
)
STAFF = {"admin", "system"}
OWNER = STAFF | {"own_owner"}
MANAGERS = OWNER | {"own_manager"}
BRAND_READERS = MANAGERS | {"own_analyst"}
SELF = STAFF | {"self"}
EVERYONE = set(ACTORS)

# action → who may, from the specification.
EXPECTED: dict[str, set[str]] = {
    "accounts.register": STAFF | {"anonymous"},
    "accounts.read": SELF,
    "accounts.update": SELF,
    "accounts.change_password": SELF,
    "accounts.verify_phone": STAFF,
    "accounts.manage_addresses": SELF,
    "accounts.find_addresses": STAFF,
    "accounts.manage_payment_methods": SELF,
    "avatars.read": SELF,
    "avatars.manage": SELF,
    "avatars.clean_up": STAFF,
    "brands.create": STAFF,
    "brands.read": BRAND_READERS,
    "brands.submit_kyc": OWNER,
    "brands.activate": STAFF,
    "brands.suspend": STAFF,
    "brands.invite_owner": OWNER,
    "brands.invite_manager": MANAGERS,
    "brands.invite_analyst": MANAGERS,
    "brands.revoke_owner": OWNER,
    "brands.revoke_manager": MANAGERS,
    "brands.revoke_analyst": MANAGERS,
    "brands.list_users": BRAND_READERS,
    "brands.manage_webhooks": OWNER,
    "catalog.read": EVERYONE,
    "catalog.create_size_chart": MANAGERS,
    "catalog.create_fit_map": MANAGERS,
    "catalog.create_product": MANAGERS,
    "catalog.publish_product": MANAGERS,
    "catalog.archive_product": MANAGERS,
    "catalog.add_variant": MANAGERS,
    "catalog.set_inventory": MANAGERS,
    "catalog.set_backorder": MANAGERS,
    "fit.recommend": SELF,
    "orders.read": SELF | BRAND_READERS,
    "orders.place": SELF,
    "orders.pay": STAFF,
    "orders.cancel": SELF,
    "orders.send_to_brand": STAFF,
    "orders.fulfil": MANAGERS,
    "orders.deliver": MANAGERS,
    "orders.request_return": SELF,
    "orders.close": STAFF,
    "orders.receive_return": MANAGERS,
    "orders.close_expired_returns": STAFF,
    # effects (issue 11): the provider's truth and the outbox are operators' business
    "orders.reconcile": STAFF,
    "orders.cancel_abandoned": STAFF,
    "effects.dispatch": STAFF,
    "effects.read": STAFF,
    "effects.retry": STAFF,
    # pagination: a brand's orders are read by that brand's users (any role) and staff
    "orders.list_for_brand": BRAND_READERS,
    "referrals.create": SELF,
    "referrals.read": SELF,
    "referrals.record_click": EVERYONE,
    "referrals.record_clicks": STAFF,
    "rewards.read": SELF,
    "rewards.release_due": STAFF,
    "rewards.mark_paid": STAFF,
    "rewards.reinstate": {"admin"},  # a person's judgement, not a job's
    "privacy.export_user": SELF,
    "privacy.erase_user": STAFF,
    "privacy.purge_expired": STAFF,
    "privacy.rotate_data_keys": STAFF,
    "audit.read": STAFF,
    "analytics.read": STAFF,
    "analytics.fit": BRAND_READERS,
    "analytics.export": STAFF,
}


@attrs.define
class World:
    ft: FitTwin
    shop: Shop  # brand A ("own") and shopper X ("self")
    rival: Shop  # brand B ("other") and shopper Y ("other_shopper")
    actors: dict[str, Actor]
    counter: Iterator[int] = attrs.field(factory=itertools.count)

    def tag(self) -> str:
        return f"t{next(self.counter)}"


def _members(ft: FitTwin, shop: Shop, platform: Actor) -> dict[str, Actor]:
    out = {"owner": shop.owner_actor}
    for role in ("manager", "analyst"):
        invite = ft.brands.invite_user(shop.brand.id, f"{role}@{shop.brand.id}.example", role, actor=platform)
        out[role] = Actor.brand_user(ft.brands.accept_invite(invite.invite_token).id)
    return out


@pytest.fixture(scope="module", params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    clock = FrozenClock()
    ids = SequentialIds(clock)
    url = None
    if request.param == "memory":
        store: Any = MemoryStore(clock=clock, ids=ids)
    else:
        from fittwin_adapters.postgres import PostgresStore

        databases = request.getfixturevalue("postgres_databases")
        url = databases.new_database()
        store = PostgresStore(url, clock=clock, ids=ids)
    ft = connect(
        store,
        objects=FsspecObjectStore(f"memory://fittwin-matrix/{uuid.uuid4().hex}"),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    shop, rival = open_shop(ft, "own", stock=100_000), open_shop(ft, "rival", stock=10)
    platform = shop.platform
    own, other = _members(ft, shop, platform), _members(ft, rival, platform)
    actors = {
        "admin": platform,
        "system": Actor.system(),
        **{f"own_{role}": actor for role, actor in own.items()},
        **{f"other_{role}": actor for role, actor in other.items()},
        "self": Actor.shopper(shop.shopper.id),
        "other_shopper": Actor.shopper(rival.shopper.id),
        "anonymous": Actor.anonymous(),
    }
    try:
        yield World(ft, shop, rival, actors)
    finally:
        ft.close()
        if url is not None:
            request.getfixturevalue("postgres_databases").drop(url)


# ----------------------------------------------------------------------------- scenarios

SYSTEM = Actor.system()
Call = Callable[[Actor], object]


@attrs.frozen
class Scenario:
    """``prepare(world)`` returns the call to make as each actor; a fresh one is prepared after
    every call that went through. ``after_check`` lists the business-rule errors an allowed
    actor may meet once past the permission check."""

    prepare: Callable[[World], Call]
    after_check: tuple[type[Exception], ...] = ()


def order_at(w: World, *moves: str) -> Any:
    """A fresh order of shopper X for brand A's tee, moved by staff through ``moves``."""
    order = w.shop.place()
    for move in moves:
        order = w.shop.pay(order) if move == "pay" else getattr(w.ft.orders, move)(order.id, actor=SYSTEM)
    return order


SHIPPED = ("pay", "send_to_brand", "mark_fulfilled")
DELIVERED = (*SHIPPED, "mark_delivered")


def _register(w: World) -> Call:
    tag = w.tag()
    body = BodyMetrics(height_cm=170, weight_kg=65)
    return lambda a: w.ft.accounts.register(
        f"{tag}@example.com", PASSWORD, tag, body, consents={"terms": True}, actor=a
    )


def _fresh_shopper(w: World) -> Any:
    return _register(w)(SYSTEM)


def _invited(w: World, role: str) -> Any:
    return w.ft.brands.invite_user(w.shop.brand.id, f"{w.tag()}@brand.example", role, actor=SYSTEM)


def _draft(w: World, *, with_variant: bool) -> Any:
    ft, brand = w.ft, w.shop.brand
    product = ft.catalog.create_product(
        brand.id, title=w.tag(), category="tops/t-shirts", size_chart_id=w.shop.chart.id, actor=SYSTEM
    )
    if with_variant:
        ft.catalog.add_variant(
            product.id,
            sku=w.tag(),
            size_label="M",
            price_cents=100,
            currency="EUR",
            inventory=1,
            actor=SYSTEM,
        )
    return product


def _suspend(w: World) -> Call:
    def call(a: Actor) -> object:
        w.ft.brands.suspend(w.shop.brand.id, actor=a)
        return w.ft.brands.activate(w.shop.brand.id, actor=SYSTEM)  # back to business

    return call


def _link(w: World) -> Any:
    return w.ft.referrals.create(w.shop.shopper.id, actor=SYSTEM)


X = lambda w: w.shop.shopper.id  # noqa: E731
A = lambda w: w.shop.brand.id  # noqa: E731


def given(
    make: Callable[[World], Any], call: Callable[[World, Any, Actor], object]
) -> Callable[[World], Call]:
    """A scenario whose call needs a fresh ``make(world)`` (an order, a link, a member, ...)."""

    def prepare(w: World) -> Call:
        thing = make(w)
        return lambda a: call(w, thing, a)

    return prepare


def _invite(role: str) -> Scenario:
    return Scenario(
        given(
            lambda w: f"{w.tag()}@brand.example",
            lambda w, email, a: w.ft.brands.invite_user(A(w), email, role, actor=a),
        )
    )


def _revoke(role: str) -> Scenario:
    return Scenario(
        given(lambda w: _invited(w, role), lambda w, m, a: w.ft.brands.revoke_user(m.id, actor=a))
    )


def _move(move: str, *path: str) -> Scenario:
    return Scenario(
        given(lambda w: order_at(w, *path), lambda w, o, a: getattr(w.ft.orders, move)(o.id, actor=a))
    )


SCENARIOS: dict[str, Scenario] = {
    "accounts.register": Scenario(_register),
    "accounts.read": Scenario(lambda w: lambda a: w.ft.accounts.get(X(w), actor=a)),
    "accounts.update": Scenario(lambda w: lambda a: w.ft.accounts.update_profile(X(w), name="Ada", actor=a)),
    "accounts.change_password": Scenario(
        lambda w: lambda a: w.ft.accounts.change_password(X(w), PASSWORD, PASSWORD, actor=a)
    ),
    "accounts.verify_phone": Scenario(lambda w: lambda a: w.ft.accounts.mark_phone_verified(X(w), actor=a)),
    "accounts.manage_addresses": Scenario(
        lambda w: (
            lambda a: w.ft.accounts.add_address(
                X(w), type="shipping", line1="1 Row", city="Lyon", postal_code="69001", country="FR", actor=a
            )
        )
    ),
    "accounts.find_addresses": Scenario(
        lambda w: lambda a: w.ft.accounts.find_addresses(country="GB", postal_code="SW1A 1AA", actor=a)
    ),
    "accounts.manage_payment_methods": Scenario(
        given(
            lambda w: f"pm_{w.tag()}",
            lambda w, token, a: w.ft.accounts.add_payment_method(X(w), token, actor=a),
        )
    ),
    "avatars.read": Scenario(lambda w: lambda a: w.ft.avatars.for_user(X(w), actor=a)),
    "avatars.manage": Scenario(
        lambda w: lambda a: w.ft.avatars.request(X(w), {"quick_estimate": True}, actor=a)
    ),
    "avatars.clean_up": Scenario(lambda w: lambda a: w.ft.avatars.clean_up(actor=a)),
    "brands.create": Scenario(
        given(
            lambda w: w.tag(), lambda w, name, a: w.ft.brands.create(name, {"email": "x@b.example"}, actor=a)
        )
    ),
    "brands.read": Scenario(lambda w: lambda a: w.ft.brands.get(A(w), actor=a)),
    "brands.submit_kyc": Scenario(
        lambda w: lambda a: w.ft.brands.submit_kyc(A(w), actor=a), after_check=(InvalidTransition,)
    ),
    "brands.activate": Scenario(lambda w: lambda a: w.ft.brands.activate(A(w), actor=a)),
    "brands.suspend": Scenario(_suspend),
    "brands.invite_owner": _invite("owner"),
    "brands.invite_manager": _invite("manager"),
    "brands.invite_analyst": _invite("analyst"),
    "brands.revoke_owner": _revoke("owner"),
    "brands.revoke_manager": _revoke("manager"),
    "brands.revoke_analyst": _revoke("analyst"),
    "brands.list_users": Scenario(lambda w: lambda a: w.ft.brands.users(A(w), actor=a)),
    "brands.manage_webhooks": Scenario(
        lambda w: (
            lambda a: w.ft.brands.add_webhook(
                A(w), "https://hooks.example/in", ["order.sent_to_brand"], actor=a
            )
        )
    ),
    "catalog.read": Scenario(lambda w: lambda a: w.ft.catalog.product(w.shop.product.id, actor=a)),
    "catalog.create_size_chart": Scenario(
        lambda w: lambda a: w.ft.catalog.create_size_chart(A(w), "tops", TEE_CHART, actor=a)
    ),
    "catalog.create_fit_map": Scenario(
        lambda w: lambda a: w.ft.catalog.create_fit_map(A(w), "tops", {}, actor=a)
    ),
    "catalog.create_product": Scenario(
        lambda w: (
            lambda a: w.ft.catalog.create_product(
                A(w), title="Tee", category="tops/t-shirts", size_chart_id=w.shop.chart.id, actor=a
            )
        )
    ),
    "catalog.publish_product": Scenario(
        given(
            lambda w: _draft(w, with_variant=True),
            lambda w, p, a: w.ft.catalog.publish_product(p.id, actor=a),
        )
    ),
    "catalog.archive_product": Scenario(
        given(
            lambda w: _draft(w, with_variant=False),
            lambda w, p, a: w.ft.catalog.archive_product(p.id, actor=a),
        )
    ),
    "catalog.add_variant": Scenario(
        given(
            lambda w: w.tag().upper(),
            lambda w, sku, a: w.ft.catalog.add_variant(
                w.shop.product.id,
                sku=sku,
                size_label="M",
                price_cents=2500,
                currency="EUR",
                inventory=1,
                actor=a,
            ),
        )
    ),
    "catalog.set_inventory": Scenario(
        lambda w: lambda a: w.ft.catalog.set_inventory(w.shop.variants["S"].id, 50, actor=a)
    ),
    "catalog.set_backorder": Scenario(
        lambda w: lambda a: w.ft.catalog.set_backorder(w.shop.variants["S"].id, False, actor=a)
    ),
    "fit.recommend": Scenario(lambda w: lambda a: w.ft.fit.recommend(X(w), w.shop.product.id, actor=a)),
    "orders.read": Scenario(given(order_at, lambda w, o, a: w.ft.orders.get(o.id, actor=a))),
    "orders.place": Scenario(lambda w: lambda a: w.shop.place(actor=a)),
    "orders.pay": _move("mark_paid"),
    "orders.cancel": _move("cancel"),
    "orders.send_to_brand": _move("send_to_brand", "pay"),
    "orders.fulfil": _move("mark_fulfilled", "pay", "send_to_brand"),
    "orders.deliver": _move("mark_delivered", *SHIPPED),
    "orders.request_return": _move("request_return", *DELIVERED),
    "orders.close": _move("close", *DELIVERED),
    "orders.receive_return": _move("close", *DELIVERED, "request_return"),
    "orders.close_expired_returns": Scenario(lambda w: lambda a: w.ft.orders.close_expired_returns(actor=a)),
    "orders.list_for_brand": Scenario(lambda w: lambda a: w.ft.orders.for_brand(A(w), limit=1, actor=a)),
    "orders.reconcile": _move("reconcile"),
    "orders.cancel_abandoned": Scenario(lambda w: lambda a: w.ft.orders.cancel_abandoned(actor=a)),
    "effects.dispatch": Scenario(lambda w: lambda a: w.ft.effects.dispatch(actor=a)),
    "effects.read": Scenario(lambda w: lambda a: w.ft.effects.failed(actor=a)),
    "effects.retry": Scenario(
        lambda w: lambda a: w.ft.effects.retry(uuid.uuid4(), actor=a), after_check=(NotFound,)
    ),
    "referrals.create": Scenario(lambda w: lambda a: w.ft.referrals.create(X(w), actor=a)),
    "referrals.read": Scenario(given(_link, lambda w, link, a: w.ft.referrals.get(link.rid, actor=a))),
    "referrals.record_click": Scenario(
        given(
            _link,
            lambda w, link, a: w.ft.referrals.record_click(
                link.rid, ip="192.0.2.1", user_agent="ua", actor=a
            ),
        )
    ),
    "referrals.record_clicks": Scenario(
        given(
            _link,
            lambda w, link, a: w.ft.referrals.record_clicks([{"rid": link.rid, "ip": "192.0.2.2"}], actor=a),
        )
    ),
    "rewards.read": Scenario(lambda w: lambda a: w.ft.rewards.statement(X(w), actor=a)),
    "rewards.release_due": Scenario(lambda w: lambda a: w.ft.rewards.release_due(actor=a)),
    "rewards.mark_paid": Scenario(lambda w: lambda a: w.ft.rewards.mark_paid([], actor=a)),
    "rewards.reinstate": Scenario(
        lambda w: lambda a: w.ft.rewards.reinstate(uuid.uuid4(), actor=a), after_check=(NotFound,)
    ),
    "privacy.export_user": Scenario(lambda w: lambda a: w.ft.privacy.export_user(X(w), actor=a)),
    "privacy.erase_user": Scenario(
        given(_fresh_shopper, lambda w, user, a: w.ft.privacy.erase_user(user.id, actor=a))
    ),
    "privacy.purge_expired": Scenario(lambda w: lambda a: w.ft.privacy.purge_expired(dry_run=True, actor=a)),
    "privacy.rotate_data_keys": Scenario(lambda w: lambda a: w.ft.privacy.rotate_data_keys(actor=a)),
    "audit.read": Scenario(lambda w: lambda a: w.ft.audit.events(limit=1, actor=a)),
    "analytics.read": Scenario(lambda w: lambda a: w.ft.analytics.summary(actor=a)),
    "analytics.fit": Scenario(
        lambda w: lambda a: w.ft.analytics.size_recommendations(brand_id=A(w), actor=a)
    ),
    "analytics.export": Scenario(
        lambda w: (
            lambda a: w.ft.analytics.export_parquet(f"memory://matrix/{w.tag()}", tables=["orders"], actor=a)
        )
    ),
}


def test_every_action_has_an_expectation_and_a_scenario() -> None:
    assert set(SCENARIOS) == set(EXPECTED)


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_who_may_perform(world: World, action: str) -> None:
    scenario = SCENARIOS[action]
    call = scenario.prepare(world)
    wrong: list[str] = []
    for name in ACTORS:
        try:
            call(world.actors[name])
        except PermissionDenied:
            if name in EXPECTED[action]:
                wrong.append(f"{name} was refused")
            continue
        except scenario.after_check:
            pass  # past the permission check, stopped by a business rule
        if name not in EXPECTED[action]:
            wrong.append(f"{name} was let through")
        call = scenario.prepare(world)  # what went through may have used the subject up
    assert not wrong, f"{action}: " + "; ".join(wrong)


def test_secrets_are_shown_to_staff_only(world: World) -> None:
    ft, shop = world.ft, world.shop
    for name in ACTORS:
        if name not in SELF:
            continue
        shown = ft.accounts.get(shop.shopper.id, actor=world.actors[name]).password_hash
        assert (shown != "<redacted>") == (name in STAFF), name
        assert shown.startswith("$argon2id$") == (name in STAFF)
    pending = ft.brands.invite_user(shop.brand.id, f"{world.tag()}@brand.example", "analyst", actor=SYSTEM)
    for name in sorted(BRAND_READERS):
        members = every(lambda after: ft.brands.users(shop.brand.id, actor=world.actors[name], after=after))
        (listed,) = [u for u in members if u.id == pending.id]
        assert (listed.invite_token == pending.invite_token) == (name in STAFF), name
        assert (listed.invite_token is None) == (name not in STAFF), name


def test_no_op_and_illegal_moves_need_the_permission_too(world: World) -> None:
    ft, a = world.ft, world.actors
    shipped = order_at(world, *SHIPPED)
    assert ft.orders.mark_fulfilled(shipped.id, actor=a["own_manager"]).status.value == "fulfilled"  # no-op
    for name in ("own_analyst", "other_manager", "self"):
        with pytest.raises(PermissionDenied):
            ft.orders.mark_fulfilled(shipped.id, actor=a[name])
    fresh = order_at(world)
    with pytest.raises(InvalidTransition):  # allowed to fulfil, but not from "created"
        ft.orders.mark_fulfilled(fresh.id, actor=a["own_manager"])
    with pytest.raises(PermissionDenied):  # refused before the table is even consulted
        ft.orders.mark_fulfilled(fresh.id, actor=a["own_analyst"])
    ft.orders.cancel(fresh.id, actor=a["self"])
    assert ft.orders.cancel(fresh.id, actor=a["self"]).status.value == "closed"  # no-op
    with pytest.raises(PermissionDenied):
        ft.orders.cancel(fresh.id, actor=a["other_shopper"])


def test_refusals_say_who_may_not_do_what(world: World) -> None:
    ft, a, x = world.ft, world.actors, world.shop.shopper.id
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: ft.accounts.get(x, actor=a["other_shopper"]),
            "a shopper may not accounts.read about another shopper",
        ),
        (
            lambda: ft.accounts.mark_phone_verified(x, actor=a["self"]),
            "a shopper may not accounts.verify_phone",
        ),
        (lambda: ft.audit.events(actor=a["self"]), "a shopper may not audit.read"),
        (lambda: ft.accounts.get(x, actor=a["anonymous"]), "an anonymous visitor may not accounts.read"),
        (
            lambda: ft.rewards.reinstate(uuid.uuid4(), actor=a["system"]),
            "the system may not rewards.reinstate",
        ),
        (lambda: ft.accounts.get(x, actor=a["own_owner"]), "a brand user may not accounts.read"),
        (
            lambda: ft.catalog.create_fit_map(A(world), "tops", {}, actor=a["own_analyst"]),
            "a brand analyst may not catalog.create_fit_map",
        ),
        (
            lambda: ft.catalog.create_fit_map(A(world), "tops", {}, actor=a["other_owner"]),
            "a brand owner may not catalog.create_fit_map for another brand",
        ),
        (
            lambda: ft.brands.users(A(world), actor=Actor.brand_user(uuid.uuid4())),
            "the brand user is not active",
        ),
    ]
    for call, message in cases:
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert str(caught.value) == message
