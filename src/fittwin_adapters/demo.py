"""The story ``fittwin demo`` tells, chapter by chapter, on the real services of a FitTwin.

A brand onboards and publishes a product with a size chart; a shopper registers, gets a size
recommendation, orders and pays; the order walks its lifecycle; a referral earns a reward; the
shopper gets an avatar, exports her data and has it erased. Every chapter is a function
of ``(ft, story, cast)`` so capabilities can add their own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs

from fittwin_core import FitTwin
from fittwin_core.domain import Actor, AuthenticationFailed, BodyMetrics, ConfigurationError, Order
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

PASSWORD = "correct horse battery staple"  # noqa: S105 — the demo shopper's published password


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
            line = f"{line:<62} {result}"
        print(line, file=self.out)

    def table(self, rows: Sequence[tuple[str, ...]]) -> None:
        """Aligned rows, indented under the current step."""
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            print(f"    {cells}".rstrip(), file=self.out)


@attrs.define
class Cast:
    """Who and what the story created so far (later chapters build on earlier ones)."""

    platform: Actor
    brand: Any = None
    owner: Actor | None = None
    product: Any = None
    variants: dict[str, Any] = attrs.field(factory=dict)
    shopper: Any = None
    address: Any = None
    card: Any = None
    order: Order | None = None
    recommendation: Any = None
    summary: list[tuple[str, str]] = attrs.field(factory=list)


Chapter = Callable[[FitTwin, Story, Cast], None]


def brand_onboarding(ft: FitTwin, story: Story, cast: Cast) -> None:
    """A platform admin onboards a brand; its owner accepts the invitation."""
    story.title("Brand onboarding")
    platform = cast.platform
    brand = ft.brands.create(
        "Northwind Apparel", {"email": "partners@northwind.example", "name": "Ines Ortega"}, actor=platform
    )
    story.say("Platform admin creates the brand", brand.onboarding_status.value)
    ft.brands.submit_kyc(brand.id, actor=platform)
    brand = ft.brands.activate(brand.id, actor=platform)
    story.say("KYC submitted and approved", brand.onboarding_status.value)
    invite = ft.brands.invite_user(brand.id, "owner@northwind.example", "owner", actor=platform)
    member = ft.brands.accept_invite(invite.invite_token or "")
    story.say("Owner invited and accepted the invitation", f"{member.role.value}, {member.status.value}")
    owner = Actor.brand_user(member.id)
    hook = ft.brands.add_webhook(
        brand.id, "https://northwind.example/hooks", ["order.sent_to_brand", "variant.low_stock"], actor=owner
    )
    story.say(
        "Owner subscribes to order and stock webhooks", f"subscription {str(hook.subscription_id)[:8]}…"
    )
    cast.brand, cast.owner = brand, owner
    cast.summary.append(("brand", f"{brand.name} ({brand.onboarding_status.value})"))


def catalog(ft: FitTwin, story: Story, cast: Cast) -> None:
    """The owner publishes a tee with a size chart, a fit map and four sizes."""
    story.title("Catalog")
    owner = cast.owner
    assert owner is not None
    chart = ft.catalog.create_size_chart(cast.brand.id, "tops", TEE_CHART, actor=owner)
    story.say(
        "Size chart for tops (body measurements, cm)",
        ", ".join(ft.fit.sizes(chart.id, actor=Actor.anonymous())),
    )
    fit_map = ft.catalog.create_fit_map(
        cast.brand.id, "tops", {"offset": {"chest": -1.0}, "stretch": {"chest": 0.03}}, actor=owner
    )
    product = ft.catalog.create_product(
        cast.brand.id,
        title="Merino crew tee",
        category="tops/t-shirts",
        size_chart_id=chart.id,
        fit_map_id=fit_map.id,
        description="Fine merino, regular fit.",
        actor=owner,
    )
    cast.variants = {
        size: ft.catalog.add_variant(
            product.id,
            sku=f"NW-TEE-{size}",
            size_label=size,
            price_cents=4900,
            currency="EUR",
            inventory=8,
            color="navy",
            actor=owner,
        )
        for size in ft.fit.sizes(chart.id, actor=Actor.anonymous())
    }
    cast.product = ft.catalog.publish_product(product.id, actor=owner)
    story.say(f"'{product.title}' published with {len(cast.variants)} variants", Money(4900, "EUR").format())
    cast.summary.append(("product", f"{product.title}: {len(cast.variants)} variants"))


def shopper(ft: FitTwin, story: Story, cast: Cast) -> None:
    """A shopper registers, signs in, and keeps an address and a card on file."""
    story.title("Shopper")
    user = ft.accounts.register(
        "ada@example.com",
        PASSWORD,
        "ada",
        BodyMetrics(height_cm=168.0, weight_kg=61.0, chest_cm=97.0),
        consents={"terms": True, "marketing": False},
        name="Ada Lovelace",
        phone="+44 20 7946 0000",
        style_preferences={"fit_prefs": "regular"},
        actor=Actor.anonymous(),
    )
    story.say("Ada registers (name and phone sealed at rest)", f"@{user.username}")
    ft.accounts.authenticate("ADA@example.com ", PASSWORD)
    story.say("Ada signs in (email case-folded, argon2id verified)", "ok")
    cast.address = ft.accounts.add_address(
        user.id,
        type="shipping",
        line1="12 Analytical Row",
        city="London",
        postal_code="sw1a 1aa",
        country="GB",
        make_default_billing=True,
        actor=Actor.shopper(user.id),
    )
    cast.card = ft.accounts.add_payment_method(
        user.id, "pm_card_visa_ada", brand="visa", last4="4242", actor=Actor.shopper(user.id)
    )
    story.say("Address and card on file", "card •••• 4242")
    cast.shopper = user


def checkout(ft: FitTwin, story: Story, cast: Cast) -> None:
    """The shopper gets a size recommendation, orders, and pays (the webhook arrives twice)."""
    story.title("Fit and checkout")
    rec = ft.fit.recommend(cast.shopper.id, cast.product.id, actor=Actor.shopper(cast.shopper.id))
    story.say("Size recommendation", f"{rec.size_label} ({rec.confidence}% confident)")
    story.table(
        [
            (z.zone, f"{z.body_cm:.1f} cm" + (" (estimated)" if z.estimated else ""), z.verdict.value)
            for z in rec.zones
        ]
    )
    size = rec.size_label or "M"
    order = place(ft, cast, [(cast.variants[size].id, 1)], idempotency_key="checkout-1")
    story.say(f"Order placed for one tee in {size}", f"{order.total.format()}, {order.status.value}")
    again = place(ft, cast, [(cast.variants[size].id, 1)], idempotency_key="checkout-1")
    story.say(
        "Checkout retried with the same idempotency key", "same order" if again.id == order.id else "NEW"
    )
    cast.order = pay(ft, order)
    story.say("Payment webhook (signed) arrives twice", f"{cast.order.status.value}, applied once")
    cast.recommendation = rec
    cast.summary.append(("shopper", f"@{cast.shopper.username}, recommended {rec.size_label}"))


def lifecycle(ft: FitTwin, story: Story, cast: Cast) -> None:
    """The order goes to the brand, ships, is delivered and closes."""
    story.title("Order lifecycle")
    assert cast.order is not None and cast.owner is not None
    order, owner = cast.order, cast.owner
    order = ft.orders.send_to_brand(order.id, actor=Actor.system())
    story.say("Sent to the brand (webhook signed for the brand)", order.status.value)
    order = ft.orders.mark_fulfilled(order.id, actor=owner)
    story.say("Brand ships it", order.status.value)
    order = ft.orders.mark_delivered(order.id, actor=Actor.system())
    story.say("Carrier delivers", order.status.value)
    order = ft.orders.close(order.id, actor=Actor.system())
    story.say("Ada keeps it: order closed", f"{order.status.value} ({order.close_reason})")
    (item,) = ft.orders.items(order.id, actor=Actor.system())
    story.say(
        f"Stock of {item.size_label} after the sale",
        str(ft.catalog.variant(item.variant_id, actor=Actor.anonymous()).inventory),
    )
    trail = ft.audit.events(entity_id=order.id, actor=cast.platform)
    story.say("Audit trail of the order", f"{len(trail.items)} records")
    cast.order = order
    cast.summary.append(("order", f"{order.total.format()} → {order.status.value}"))


def referral(ft: FitTwin, story: Story, cast: Cast) -> None:
    """Ada shares a link, Grace clicks and buys, the reward is held, released and paid out;
    Ada buying through her own link is flagged."""
    story.title("Referral reward")
    link = ft.referrals.create(
        cast.shopper.id, target_product_id=cast.product.id, actor=Actor.shopper(cast.shopper.id)
    )
    story.say("Ada shares a link", link.share_url)
    grace = ft.accounts.register(
        "grace@example.com",
        PASSWORD,
        "grace",
        BodyMetrics(height_cm=171.0, weight_kg=66.0),
        consents={"terms": True},
        actor=Actor.anonymous(),
    )
    home = ft.accounts.add_address(
        grace.id,
        type="shipping",
        line1="1 Harbour St",
        city="Leith",
        postal_code="EH6 6QQ",
        country="GB",
        actor=Actor.shopper(grace.id),
    )
    card = ft.accounts.add_payment_method(
        grace.id, "pm_card_visa_grace", brand="visa", last4="1881", actor=Actor.shopper(grace.id)
    )
    ft.referrals.record_click(
        link.rid,
        ip="203.0.113.9",
        user_agent="Mozilla/5.0 (demo)",
        device_fingerprint="grace-phone",
        actor=Actor.anonymous(),
    )
    story.say("Grace clicks it (only keyed hashes of ip and device kept)", "1 click")
    rec = ft.fit.recommend(grace.id, cast.product.id, actor=Actor.shopper(grace.id))
    order = place(
        ft,
        cast,
        [(cast.variants[rec.size_label or "M"].id, 2)],
        user_id=grace.id,
        shipping_address_id=home.id,
        billing_address_id=home.id,
        payment_method_id=card.id,
        rid=link.rid,
    )
    order = pay(ft, order)
    (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    story.say(
        f"Grace buys two tees in {rec.size_label} ({rec.confidence}% confident)",
        f"{order.total.format()}, paid",
    )
    story.say("Ada's reward: 10 % of the subtotal, held", f"{entry.amount.format()} {entry.status.value}")
    ft.orders.send_to_brand(order.id, actor=Actor.system())
    ft.orders.mark_fulfilled(order.id, actor=Actor.system())
    ft.orders.mark_delivered(order.id, actor=Actor.system())
    (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    story.say("Delivered: the reward waits out the return window", f"until {entry.hold_until}")
    advance = getattr(ft.context.clock, "advance", None)
    if advance is not None:
        advance(days=link.policy_snapshot.hold_days)
        released = ft.rewards.release_due(actor=Actor.system())
        story.say(
            f"{link.policy_snapshot.hold_days} days later the nightly job releases it",
            f"{len(released)} payable",
        )
        balance = ft.rewards.balance(cast.shopper.id, actor=Actor.shopper(cast.shopper.id))
        story.say("Ada's balance", ", ".join(m.format() for m in balance.values()))
        ft.rewards.mark_paid([entry.id], actor=Actor.system())
        story.say("Payout recorded", ft.rewards.get(entry.id, actor=Actor.system()).status.value)
    ft.referrals.record_click(
        link.rid, ip="198.51.100.4", user_agent="Mozilla/5.0 (demo)", actor=Actor.anonymous()
    )
    pay(ft, place(ft, cast, [(cast.variants["S"].id, 1)], rid=link.rid))
    (flag,) = ft.referrals.events(link.rid, event_type="fraud_flag", actor=Actor.system()).items
    story.say("Ada buys through her own link", f"flagged: {flag.metadata['reason']}")
    cast.summary.append(
        ("referral", f"{entry.amount.format()} paid to @{cast.shopper.username}; 1 self-referral flagged")
    )


def _mesh(version: int) -> bytes:
    """A stand-in binary glTF mesh (the header of one, and some payload)."""
    return b"glTF" + version.to_bytes(4, "little") + bytes(range(256)) * 4


def avatar(ft: FitTwin, story: Story, cast: Cast) -> None:
    """The shopper gets an avatar, then regenerates it: the old mesh goes."""
    story.title("Avatar")
    user = cast.shopper
    first = ft.avatars.request(
        user.id, {"measurements": {"chest_cm": 97.0}, "quick_estimate": True}, actor=Actor.shopper(user.id)
    )
    story.say("Ada asks for an avatar from her measurements", f"v{first.version} {first.status.value}")
    first = ft.avatars.complete(first.id, _mesh(1), confidence=72, actor=Actor.system())
    story.say("The mesh is uploaded, then the avatar marked ready", f"{first.mesh_ref}")
    try:
        where = ft.avatars.mesh_url(first.id, expires_in=600, actor=Actor.system())
        story.say("A signed URL for the viewer (10 minutes)", where.split("?", 1)[0])
    except ConfigurationError:
        story.say(
            "Signed URLs need S3; memory:// serves the bytes",
            f"{len(ft.avatars.mesh(first.id, actor=Actor.system()))} bytes",
        )
    second = ft.avatars.request(
        user.id, {"measurements": {"chest_cm": 97.0, "waist_cm": 82.0}}, actor=Actor.shopper(user.id)
    )
    second = ft.avatars.complete(second.id, _mesh(2), confidence=88, actor=Actor.system())
    first = ft.avatars.get(first.id, actor=Actor.system())
    gone = not ft.context.objects.exists(f"avatars/{user.id}/v1.glb", region=user.region)
    story.say(
        f"Regenerated as v{second.version} ({second.confidence}% confident)",
        "v1 mesh deleted" if gone and first.mesh_ref is None else "v1 mesh KEPT",
    )
    cast.summary.append(("avatar", f"v{second.version} ready, earlier meshes deleted"))


def data_rights(ft: FitTwin, story: Story, cast: Cast) -> None:
    """The shopper exports her data, then has it erased: login fails, order totals stay."""
    story.title("Data-subject requests")
    user = cast.shopper
    export = ft.privacy.export_user(user.id, actor=Actor.shopper(user.id))
    size = len(json.dumps(export))
    sections = [name for name, rows in export.items() if isinstance(rows, list) and rows]
    story.say("Ada exports everything held about her", f"{size:,} bytes of JSON, {len(sections)} kinds")
    story.table([(name, str(len(export[name]))) for name in sections])
    own = Actor.shopper(user.id)
    totals = sorted((o.id, o.totals.total) for o in ft.orders.for_user(user.id, actor=own).items)
    report = ft.privacy.erase_user(user.id, actor=cast.platform)
    story.say(
        "A platform admin erases her data",
        f"key shredded, {report.addresses} address(es), {report.avatars} avatar(s)",
    )
    try:
        ft.accounts.authenticate("ada@example.com", PASSWORD)
        story.say("Ada tries to sign in", "SIGNED IN")
    except AuthenticationFailed:
        story.say("Ada tries to sign in", "refused")
    kept = sorted((o.id, o.totals.total) for o in ft.orders.for_user(user.id, actor=own).items)
    total = sum(amount for _, amount in kept)
    currency = cast.variants["M"].currency if cast.variants else "EUR"
    story.say(
        f"Her {len(kept)} order(s) keep their totals",
        f"{Money(total, currency).format()}" + ("" if kept == totals else " CHANGED"),
    )
    again = ft.privacy.erase_user(user.id, actor=cast.platform)
    story.say("Erasing again changes nothing", "already erased" if again.already_erased else "ERASED AGAIN")
    cast.summary.append(("privacy", f"export of {size:,} bytes; erased, {len(kept)} order(s) intact"))


STORY: tuple[Chapter, ...] = (
    brand_onboarding,
    catalog,
    shopper,
    checkout,
    lifecycle,
    referral,
    avatar,
    data_rights,
)
"""The chapters ``fittwin demo`` tells, in order."""


def run_story(ft: FitTwin, out: TextIO = sys.stdout, *, chapters: Sequence[Chapter] = STORY) -> Cast:
    """Tell the story on ``ft`` and print a summary; returns what it created (for tests)."""
    story = Story(out)
    cast = Cast(platform=Actor.platform(ft.context.ids.new_id()))
    for chapter in chapters:
        chapter(ft, story, cast)
    story.title("Summary")
    sent = getattr(ft.context.webhooks, "sent", [])
    story.table([*cast.summary, ("brand webhooks", f"{len(sent)} signed and handed to the sender")])
    return cast


def place(ft: FitTwin, cast: Cast, items: list[tuple[Any, int]], **kwargs: Any) -> Order:
    """Place an order for the cast's shopper with their address and card, acting as them."""
    user_id = kwargs.pop("user_id", cast.shopper.id)
    kwargs.setdefault("actor", Actor.shopper(user_id))
    return ft.orders.place(
        user_id,
        items,
        shipping_address_id=kwargs.pop("shipping_address_id", cast.address.id),
        billing_address_id=kwargs.pop("billing_address_id", cast.address.id),
        payment_method_id=kwargs.pop("payment_method_id", cast.card.id),
        **kwargs,
    )


def pay(ft: FitTwin, order: Order) -> Order:
    """Drive the fake provider: the payment succeeds and its webhook is delivered twice
    (without a fake provider, the order is simply marked paid)."""
    payments: Any = ft.context.payments
    if not hasattr(payments, "succeed"):
        return ft.orders.mark_paid(order.id, actor=Actor.system())
    payload, header = payments.succeed(order.payment_intent_ref)
    paid = ft.orders.handle_payment_webhook(payload, header)
    duplicate = ft.orders.handle_payment_webhook(payload, header)
    if paid is None or duplicate is not None:
        raise AssertionError("a payment webhook must apply exactly once")
    return paid


__all__ = ["STORY", "TEE_CHART", "Cast", "Chapter", "Story", "pay", "place", "run_story"]
