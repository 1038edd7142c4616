"""A ready-made shop built through the services: an active brand with an owner, a size chart,
a published product with variants, and a shopper with an address and a card."""

from __future__ import annotations

from typing import Any

import attrs

from fittwin_adapters.demo import TEE_CHART
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import BodyMetrics

PASSWORD = "correct horse battery staple"


@attrs.define
class Shop:
    """Handles to everything :func:`open_shop` created."""

    ft: FitTwin
    platform: Actor
    brand: Any
    owner: Any
    owner_actor: Actor
    chart: Any
    product: Any
    variants: dict[str, Any]
    shopper: Any
    address: Any
    card: Any

    def place(self, items: list[tuple[Any, int]] | None = None, **kwargs: Any) -> Any:
        """Place an order for the shopper (one M tee unless told otherwise)."""
        user_id = kwargs.pop("user_id", self.shopper.id)
        kwargs.setdefault("actor", Actor.shopper(user_id))
        return self.ft.orders.place(
            user_id,
            items if items is not None else [(self.variants["M"].id, 1)],
            shipping_address_id=kwargs.pop("shipping_address_id", self.address.id),
            billing_address_id=kwargs.pop("billing_address_id", self.address.id),
            payment_method_id=kwargs.pop("payment_method_id", self.card.id),
            **kwargs,
        )

    def pay(self, order: Any) -> Any:
        """Succeed the order's payment at the fake provider and deliver the webhook."""
        payload, header = self.ft.context.payments.succeed(order.payment_intent_ref)  # type: ignore[attr-defined]
        return self.ft.orders.handle_payment_webhook(payload, header)

    def new_shopper(self, tag: str, **kwargs: Any) -> tuple[Any, Any, Any]:
        """Another shopper with an address and a card: ``(profile, address, card)``."""
        user = self.ft.accounts.register(
            f"{tag}@example.com",
            PASSWORD,
            tag,
            BodyMetrics(height_cm=175, weight_kg=70, chest_cm=98),
            consents={"terms": True},
            **{"actor": Actor.anonymous(), **kwargs},
        )
        address = self.ft.accounts.add_address(
            user.id,
            type="shipping",
            line1=f"{tag} street 1",
            city="Lyon",
            postal_code="69001",
            country="FR",
            actor=Actor.shopper(user.id),
        )
        card = self.ft.accounts.add_payment_method(
            user.id, f"pm_{tag}", brand="visa", last4="1111", actor=Actor.shopper(user.id)
        )
        return user, address, card


def open_shop(ft: FitTwin, tag: str = "shop", *, stock: int = 10) -> Shop:
    """Build the shop on ``ft``."""
    platform = Actor.platform(ft.context.ids.new_id())
    brand = ft.brands.create(f"{tag} brand", {"email": f"{tag}@brand.example"}, actor=platform)
    ft.brands.submit_kyc(brand.id, actor=platform)
    brand = ft.brands.activate(brand.id, actor=platform)
    invite = ft.brands.invite_user(brand.id, f"owner@{tag}.example", "owner", actor=platform)
    owner = ft.brands.accept_invite(invite.invite_token)
    owner_actor = Actor.brand_user(owner.id)
    chart = ft.catalog.create_size_chart(brand.id, "tops", TEE_CHART, actor=owner_actor)
    product = ft.catalog.create_product(
        brand.id, title=f"{tag} tee", category="tops/t-shirts", size_chart_id=chart.id, actor=owner_actor
    )
    variants = {
        size: ft.catalog.add_variant(
            product.id,
            sku=f"{tag.upper()}-{size}",
            size_label=size,
            price_cents=2500,
            currency="EUR",
            inventory=stock,
            actor=owner_actor,
        )
        for size in ("S", "M", "L")
    }
    product = ft.catalog.publish_product(product.id, actor=owner_actor)
    shopper = ft.accounts.register(
        f"{tag}.ada@example.com",
        PASSWORD,
        f"{tag}_ada",
        BodyMetrics(height_cm=168, weight_kg=61, chest_cm=97),
        consents={"terms": True},
        name="Ada Lovelace",
        phone="+44 20 7946 0000",
        actor=Actor.anonymous(),
    )
    address = ft.accounts.add_address(
        shopper.id,
        type="shipping",
        line1="12 Analytical Row",
        city="London",
        postal_code="SW1A 1AA",
        country="GB",
        actor=Actor.shopper(shopper.id),
    )
    card = ft.accounts.add_payment_method(
        shopper.id, f"pm_{tag}_ada", brand="visa", last4="4242", actor=Actor.shopper(shopper.id)
    )
    return Shop(ft, platform, brand, owner, owner_actor, chart, product, variants, shopper, address, card)
