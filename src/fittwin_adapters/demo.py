"""The story ``fittwin demo`` tells: a brand onboards, publishes a product with a size chart, a
shopper registers, gets a size recommendation, orders, pays, and the order walks its lifecycle.

Every step runs on the real services of the :class:`~fittwin_core.FitTwin` it is given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from fittwin_core import FitTwin
from fittwin_core.domain import Actor, BodyMetrics, Order
from fittwin_core.domain.money import Money

TEE_CHART = {
    "kind": "body",
    "zones": {"chest": {"tolerance": 2.0, "weight": 1.0}, "waist": {"tolerance": 3.0, "weight": 0.6}},
    "sizes": [
        {"label": "S", "chest": [86, 94], "waist": [72, 80]},
        {"label": "M", "chest": [94, 102], "waist": [80, 88]},
        {"label": "L", "chest": [102, 110], "waist": [88, 96]},
        {"label": "XL", "chest": [110, 118], "waist": [96, 104]},
    ],
}
"""A body size chart for a tee (cm): each size's chest and waist range."""


class Story:
    """Prints the demo as numbered steps with a short result each."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0

    def title(self, text: str) -> None:
        """A section heading."""
        print(f"\n{text}\n{'─' * len(text)}", file=self.out)

    def say(self, what: str, result: str = "") -> None:
        """One numbered step."""
        self.step += 1
        line = f"{self.step:>2}. {what}"
        if result:
            line = f"{line:<58} {result}"
        print(line, file=self.out)

    def table(self, rows: list[tuple[str, ...]]) -> None:
        """Aligned rows, indented under the current step."""
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "    " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)),
                file=self.out,
            )


def run_story(
    ft: FitTwin, out: TextIO = sys.stdout, *, extensions: list[Callable[..., Any]] | None = None
) -> dict[str, Any]:
    """Tell the demo story on ``ft``; returns the main objects created (for tests)."""
    story = Story(out)
    platform = Actor.platform(ft.context.ids.new_id())

    story.title("Brand onboarding")
    brand = ft.brands.create(
        "Northwind Apparel", {"email": "partners@northwind.example", "name": "Ines Ortega"}, actor=platform
    )
    story.say("Platform admin creates the brand", brand.onboarding_status.value)
    ft.brands.submit_kyc(brand.id, actor=platform)
    brand = ft.brands.activate(brand.id, actor=platform)
    story.say("KYC submitted and approved", brand.onboarding_status.value)
    invite = ft.brands.invite_user(brand.id, "owner@northwind.example", "owner", actor=platform)
    owner = ft.brands.accept_invite(invite.invite_token or "")
    story.say("Owner invited and accepted the invitation", f"{owner.role.value}, {owner.status.value}")
    acting_owner = Actor.brand_user(owner.id)
    hook = ft.brands.add_webhook(
        brand.id,
        "https://northwind.example/hooks",
        ["order.sent_to_brand", "variant.low_stock"],
        actor=acting_owner,
    )
    story.say(
        "Owner subscribes to order and stock webhooks", f"subscription {str(hook.subscription_id)[:8]}…"
    )

    story.title("Catalog")
    chart = ft.catalog.create_size_chart(brand.id, "tops", TEE_CHART, actor=acting_owner)
    story.say("Size chart for tops (body measurements, cm)", ", ".join(ft.fit.sizes(chart.id)))
    fit_map = ft.catalog.create_fit_map(
        brand.id, "tops", {"offset": {"chest": -1.0}, "stretch": {"chest": 0.03}}, actor=acting_owner
    )
    product = ft.catalog.create_product(
        brand.id,
        title="Merino crew tee",
        category="tops/t-shirts",
        size_chart_id=chart.id,
        fit_map_id=fit_map.id,
        description="Fine merino, regular fit.",
        actor=acting_owner,
    )
    variants = {
        size: ft.catalog.add_variant(
            product.id,
            sku=f"NW-TEE-{size}",
            size_label=size,
            price_cents=4900,
            currency="EUR",
            inventory=8,
            color="navy",
            actor=acting_owner,
        )
        for size in ("S", "M", "L", "XL")
    }
    product = ft.catalog.publish_product(product.id, actor=acting_owner)
    story.say(f"'{product.title}' published with {len(variants)} variants", Money(4900, "EUR").format())

    story.title("Shopper")
    shopper = ft.accounts.register(
        "ada@example.com",
        "correct horse battery staple",
        "ada",
        BodyMetrics(height_cm=168.0, weight_kg=61.0, chest_cm=97.0),
        consents={"terms": True, "marketing": False},
        name="Ada Lovelace",
        phone="+44 20 7946 0000",
        style_preferences={"fit_prefs": "regular"},
    )
    story.say("Ada registers (name and phone sealed at rest)", f"@{shopper.username}")
    ft.accounts.authenticate("ADA@example.com ", "correct horse battery staple")
    story.say("Ada signs in (email case-folded, argon2id verified)", "ok")
    address = ft.accounts.add_address(
        shopper.id,
        type="shipping",
        line1="12 Analytical Row",
        city="London",
        postal_code="sw1a 1aa",
        country="GB",
        make_default_billing=True,
    )
    card = ft.accounts.add_payment_method(shopper.id, "pm_card_visa_ada", brand="visa", last4="4242")
    story.say("Address and card on file", "card •••• 4242")

    story.title("Fit and checkout")
    rec = ft.fit.recommend(shopper.id, product.id)
    story.say("Size recommendation", f"{rec.size_label} ({rec.confidence}% confident)")
    story.table([(z.zone, f"{z.body_cm:.1f} cm", z.verdict.value) for z in rec.zones])
    size = rec.size_label or "M"
    order = ft.orders.place(
        shopper.id,
        [(variants[size].id, 1)],
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        idempotency_key="checkout-1",
    )
    story.say(f"Order placed for one tee in {size}", f"{order.total.format()}, {order.status.value}")
    again = ft.orders.place(
        shopper.id,
        [(variants[size].id, 1)],
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        idempotency_key="checkout-1",
    )
    story.say(
        "Checkout retried with the same idempotency key",
        "same order" if again.id == order.id else "NEW ORDER",
    )
    order = _pay(ft, order)
    story.say("Payment webhook (signed) arrives twice", f"{order.status.value}, applied once")

    story.title("Order lifecycle")
    for step, move in (
        ("Sent to the brand (webhook signed for the brand)", ft.orders.send_to_brand),
        ("Brand ships it", lambda oid: ft.orders.mark_fulfilled(oid, actor=acting_owner)),
        ("Carrier delivers", ft.orders.mark_delivered),
        ("Ada keeps it: order closed", ft.orders.close),
    ):
        order = move(order.id)
        story.say(step, order.status.value)
    stock = ft.catalog.variant(variants[size].id).inventory
    story.say(f"Stock of {size} after the sale", str(stock))
    audit = ft.audit.events(entity_id=order.id, actor=platform)
    story.say("Audit trail of the order", f"{len(audit)} records")

    results: dict[str, Any] = {
        "brand": brand,
        "owner": owner,
        "product": product,
        "variants": variants,
        "shopper": shopper,
        "address": address,
        "card": card,
        "order": order,
        "recommendation": rec,
        "platform": platform,
        "story": story,
    }
    for extension in extensions or []:
        extension(ft, story, results)
    story.title("Summary")
    sent = getattr(ft.context.webhooks, "sent", [])
    story.table(
        [
            ("brand", f"{brand.name} ({brand.onboarding_status.value})"),
            ("product", f"{product.title}: {len(variants)} variants"),
            ("shopper", f"@{shopper.username}, recommended {rec.size_label}"),
            ("order", f"{order.total.format()} → {order.status.value} ({order.close_reason})"),
            ("brand webhooks", f"{len(sent)} signed and handed to the sender"),
        ]
    )
    return results


def _pay(ft: FitTwin, order: Order) -> Order:
    """Drive the fake provider: the payment succeeds and its webhook is delivered twice."""
    payments: Any = ft.context.payments
    if not hasattr(payments, "succeed"):
        return ft.orders.mark_paid(order.id)
    payload, header = payments.succeed(order.payment_intent_ref)
    paid = ft.orders.handle_payment_webhook(payload, header)
    duplicate = ft.orders.handle_payment_webhook(payload, header)
    assert duplicate is None
    assert paid is not None
    return paid


__all__ = ["TEE_CHART", "Story", "run_story"]
