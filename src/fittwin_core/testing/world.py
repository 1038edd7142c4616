"""A small, consistent set of rows — one per table, foreign keys satisfied — for store tests.

>>> from fittwin_adapters.memory import MemoryStore
>>> world = seed_world(MemoryStore())
>>> sorted(world.rows)[:3]
['addresses', 'avatars', 'brand_users']
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Address,
    AddressType,
    Avatar,
    AvatarSources,
    BodyMetrics,
    Brand,
    BrandRole,
    BrandUser,
    Consents,
    DataKey,
    EffectKind,
    FitMap,
    FitMapProposal,
    IdempotencyRecord,
    Order,
    OrderItem,
    OutboxEffect,
    PaymentMethod,
    PrimaryContact,
    Product,
    ProductVariant,
    Referral,
    ReferralEvent,
    ReferralEventType,
    ReferralPolicy,
    RewardLedgerEntry,
    SizeChart,
    Totals,
    UserProfile,
)
from fittwin_core.domain.ids import encode_rid, uuid7
from fittwin_core.ports import Store

WORLD_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_SEALED = "fte1.worldkey.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _id(n: int) -> UUID:
    return uuid7(int(WORLD_TIME.timestamp() * 1000), 10_000 + n)


@attrs.frozen
class World:
    """The rows :func:`seed_world` stored, by table name."""

    rows: dict[str, Any]

    def __getitem__(self, table: str) -> Any:
        return self.rows[table]


def build_world(tag: str = "w") -> World:
    """Build (without storing) one row per table, foreign keys pointing at each other.

    ``tag`` keeps unique columns (emails, usernames, skus, brand names) distinct between worlds.
    """
    t = WORLD_TIME
    salt = sum(map(ord, tag))
    ids = {
        name: _id(salt * 100 + n)
        for n, name in enumerate(
            [
                "user",
                "address",
                "pm",
                "avatar",
                "brand",
                "brand_user",
                "chart",
                "fitmap",
                "product",
                "variant",
                "order",
                "item",
                "event",
                "reward",
                "proposal",
                "effect",
            ]
        )
    }
    rid = encode_rid(bytes([salt % 256]) * 15 + b"\x00")
    user = UserProfile(
        id=ids["user"],
        email=f"{tag}.shopper@example.com",
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",  # noqa: S106 — a fixed dummy hash
        username=f"{tag}_shopper",
        body_metrics=BodyMetrics(height_cm=172.0, weight_kg=68.0, chest_cm=94.0),
        consents=Consents(terms=True),
        name=_SEALED,
        created_at=t,
        updated_at=t,
    )
    address = Address(
        id=ids["address"],
        user_id=user.id,
        type=AddressType.SHIPPING,
        line1=_SEALED,
        city=_SEALED,
        postal_code=_SEALED,
        country=_SEALED,
        postal_code_bidx="0" * 32,
        country_bidx="1" * 32,
        created_at=t,
        updated_at=t,
    )
    payment_method = PaymentMethod(
        id=ids["pm"],
        user_id=user.id,
        psp_token_id=f"pm_{tag}_world",
        brand="visa",
        last4="4242",
        expires_at=date(2030, 1, 31),
        billing_address_id=address.id,
        created_at=t,
        updated_at=t,
    )
    avatar = Avatar(
        id=ids["avatar"], user_id=user.id, version=1, sources=AvatarSources(), created_at=t, updated_at=t
    )
    brand = Brand(
        id=ids["brand"],
        name=f"{tag} Apparel",
        primary_contact=PrimaryContact(email=f"{tag}.brand@example.com"),
        created_at=t,
        updated_at=t,
    )
    brand_user = BrandUser(
        id=ids["brand_user"],
        brand_id=brand.id,
        email=f"{tag}.owner@example.com",
        role=BrandRole.OWNER,
        created_at=t,
        updated_at=t,
    )
    chart = SizeChart(
        id=ids["chart"],
        brand_id=brand.id,
        garment_type="tops",
        measurement_rules={"sizes": {"M": {"chest": [92, 100]}}},
        created_at=t,
        updated_at=t,
    )
    fit_map = FitMap(
        id=ids["fitmap"], brand_id=brand.id, garment_type="tops", rule_set={}, created_at=t, updated_at=t
    )
    product = Product(
        id=ids["product"],
        brand_id=brand.id,
        title=f"{tag} tee",
        category="tops/t-shirts",
        size_chart_id=chart.id,
        fit_map_id=fit_map.id,
        created_at=t,
        updated_at=t,
    )
    variant = ProductVariant(
        id=ids["variant"],
        product_id=product.id,
        sku=f"{tag.upper()}-TEE-M",
        size_label="M",
        price_cents=2500,
        currency="EUR",
        inventory=10,
        created_at=t,
        updated_at=t,
    )
    referral = Referral(
        rid=rid,
        referrer_user_id=user.id,
        target_product_id=product.id,
        share_url=f"https://fittwin.example/r/{rid}",
        policy_snapshot=ReferralPolicy(reward_percent="10"),
        created_at=t,
    )
    order = Order(
        id=ids["order"],
        user_id=user.id,
        totals=Totals.compute(subtotal=2500, currency="EUR"),
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_intent_ref=f"pi_{tag}_world",
        rid=rid,
        created_at=t,
        updated_at=t,
    )
    item = OrderItem(
        id=ids["item"],
        order_id=order.id,
        product_id=product.id,
        brand_id=product.brand_id,
        variant_id=variant.id,
        sku=variant.sku,
        size_label="M",
        qty=1,
        reserved_qty=1,
        unit_price_cents=2500,
        currency="EUR",
        created_at=t,
    )
    event = ReferralEvent(
        id=ids["event"], rid=rid, event_type=ReferralEventType.CONVERSION, order_id=order.id, created_at=t
    )
    reward = RewardLedgerEntry(
        id=ids["reward"],
        rid=rid,
        order_id=order.id,
        amount_cents=250,
        currency="EUR",
        created_at=t,
        updated_at=t,
    )
    data_key = DataKey(
        owner_id=user.id,
        key_id=f"{tag}key",
        kek_id="kek1",
        wrapped_key=b"\x01" * 60,
        created_at=t,
        updated_at=t,
    )
    idempotency = IdempotencyRecord(
        scope="orders.place", key=f"{tag}-key", request_hash="a" * 64, result_id=order.id, created_at=t
    )
    proposal = FitMapProposal(
        id=ids["proposal"],
        fit_map_id=fit_map.id,
        brand_id=brand.id,
        garment_type="tops",
        rule_set={"offset": {"chest": -1.0}},
        evidence={"chest": {"current_cm": 0.0, "proposed_cm": -1.0}},
        created_at=t,
        updated_at=t,
    )
    effect = OutboxEffect(
        id=ids["effect"],
        kind=EffectKind.BRAND_WEBHOOK,
        order_id=order.id,
        payload={"brand_id": str(brand.id), "event": "order.sent_to_brand"},
        idempotency_key=f"{tag}-effect",
        available_at=t,
        created_at=t,
        updated_at=t,
    )
    rows: dict[str, Any] = {
        "user_profiles": user,
        "addresses": address,
        "payment_methods": payment_method,
        "avatars": avatar,
        "brands": brand,
        "brand_users": brand_user,
        "size_charts": chart,
        "fit_maps": fit_map,
        "products": product,
        "product_variants": variant,
        "referrals": referral,
        "orders": order,
        "order_items": item,
        "referral_events": event,
        "reward_ledger_entries": reward,
        "data_keys": data_key,
        "idempotency_keys": idempotency,
        "fit_map_proposals": proposal,
        "outbox": effect,
    }
    return World(rows)


def seed_world(store: Store, tag: str = "w") -> World:
    """Store :func:`build_world`'s rows (parents first) in one unit of work and return them."""
    world = build_world(tag)
    with store.unit_of_work() as uow:
        for table, row in world.rows.items():
            getattr(uow, table).add(row)
        uow.commit()
    return world


__all__ = ["WORLD_TIME", "World", "build_world", "seed_world"]
