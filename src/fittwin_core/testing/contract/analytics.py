"""The analytics contract: every store answering ``AnalyticsQueries`` gives the same rows.

Subclass :class:`AnalyticsContract` and provide two fixtures: ``ft``, a :class:`FitTwin` on the
store under test, and ``clock``, the :class:`~fittwin_core.testing.clock.FrozenClock` that
``ft`` runs on (and whose time its ids follow)::

    class TestMyAnalytics(AnalyticsContract):
        @pytest.fixture
        def ft(self, clock): ...

The data is built through the services (a small shop over three months: referral clicks,
conversions, a self-referral, a cancelled order, deliveries, returns, rewards held, released
and paid out, two brands and two currencies), then every query is checked twice: against the
numbers worked out by hand for that story, and against the reference functions of
:mod:`fittwin_core.domain.analytics` run over the rows read back through the repositories.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import pytest

from fittwin_core.app import FitTwin
from fittwin_core.domain import Actor, BodyMetrics, analytics
from fittwin_core.domain.analytics import Window
from fittwin_core.ports import AnalyticsQueries, UnitOfWork
from fittwin_core.testing.clock import FrozenClock

JAN = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)  # exactly on a month boundary
MAR = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)

TEE_CHART = {
    "zones": {"chest": {"tolerance": 2.0}},
    "sizes": [
        {"label": "S", "chest": [86, 94]},
        {"label": "M", "chest": [94, 102]},
        {"label": "L", "chest": [102, 110]},
    ],
}
SHOE_CHART = {
    "zones": {"foot_length": {"tolerance": 0.3}},
    "sizes": [{"label": "40", "foot_length": [25.0, 25.7]}, {"label": "41", "foot_length": [25.7, 26.4]}],
}


@attrs.define
class Story:
    """What the contract's story created (ids to filter by)."""

    ada: Any
    bob: Any
    tee: Any
    shoe: Any
    north: Any
    south: Any
    link: Any
    orders: dict[str, Any] = attrs.field(factory=dict)


def _shopper(ft: FitTwin, tag: str, body: BodyMetrics) -> tuple[Any, Any, Any]:
    user = ft.accounts.register(
        f"{tag}@example.com",
        "correct horse battery staple",
        tag,
        body,
        consents={"terms": True},
        actor=Actor.anonymous(),
    )
    home = ft.accounts.add_address(
        user.id,
        type="shipping",
        line1=f"{tag} road 1",
        city="Lyon",
        postal_code="69001",
        country="FR",
        actor=Actor.shopper(user.id),
    )
    card = ft.accounts.add_payment_method(
        user.id, f"pm_{tag}", brand="visa", last4="4242", actor=Actor.shopper(user.id)
    )
    return user, home, card


def pay(ft: FitTwin, order: Any) -> Any:
    """Take the order's payment: through the gateway's test hook where it has one
    (``FakePayments.succeed``, then the signed webhook), otherwise by marking it paid."""
    succeed = getattr(ft.context.payments, "succeed", None)
    if succeed is None or order.payment_intent_ref is None:
        return ft.orders.mark_paid(order.id, actor=Actor.system())
    payload, header = succeed(order.payment_intent_ref)
    return ft.orders.handle_payment_webhook(payload, header)


def build_story(ft: FitTwin, clock: FrozenClock) -> Story:
    """Build the contract's data set through the services."""
    clock.set(JAN - timedelta(days=3))
    platform = Actor.platform(ft.context.ids.new_id())
    brands = []
    for name in ("North", "South"):
        brand = ft.brands.create(name, {"email": f"ops@{name.lower()}.example"}, actor=platform)
        ft.brands.submit_kyc(brand.id, actor=platform)
        brands.append(ft.brands.activate(brand.id, actor=platform))
    north, south = brands
    products = []
    for brand, title, chart_rules, sizes, price, currency in (
        (north, "Tee", TEE_CHART, ("S", "M", "L"), 2500, "EUR"),
        (south, "Runner", SHOE_CHART, ("40", "41"), 9000, "USD"),
    ):
        chart = ft.catalog.create_size_chart(brand.id, "tops", chart_rules, actor=platform)
        product = ft.catalog.create_product(
            brand.id, title=title, category="tops/t-shirts", size_chart_id=chart.id, actor=platform
        )
        variants = {
            size: ft.catalog.add_variant(
                product.id,
                sku=f"{title.upper()}-{size}",
                size_label=size,
                price_cents=price,
                currency=currency,
                inventory=50,
                actor=platform,
            )
            for size in sizes
        }
        ft.catalog.publish_product(product.id, actor=platform)
        products.append((product, variants))
    (tee, tee_sizes), (shoe, shoe_sizes) = products
    people = {
        "ada": _shopper(ft, "ada", BodyMetrics(height_cm=168, weight_kg=61, chest_cm=97)),  # M
        "bob": _shopper(ft, "bob", BodyMetrics(height_cm=183, weight_kg=84, chest_cm=106)),  # L
        "cy": _shopper(ft, "cy", BodyMetrics(height_cm=160, weight_kg=52, chest_cm=90)),  # S
        "dee": _shopper(ft, "dee", BodyMetrics(height_cm=171, weight_kg=66)),  # no foot length
    }

    def place(who: str, variant: Any, qty: int = 1, rid: str | None = None) -> Any:
        user, home, card = people[who]
        return ft.orders.place(
            user.id,
            [(variant.id, qty)],
            shipping_address_id=home.id,
            billing_address_id=home.id,
            payment_method_id=card.id,
            rid=rid,
            actor=Actor.shopper(user.id),
        )

    ada = people["ada"][0]
    link = ft.referrals.create(ada.id, target_product_id=tee.id, actor=Actor.shopper(ada.id))
    clock.set(JAN)
    for n, who in enumerate(("bob", "cy", "ada")):
        ft.referrals.record_click(
            link.rid,
            ip=f"203.0.113.{n + 1}",
            user_agent="test",
            device_fingerprint=who,
            actor=Actor.anonymous(),
        )
    story = Story(ada, people["bob"][0], tee, shoe, north, south, link)
    o = story.orders
    clock.advance(hours=1)
    o["kept"] = pay(ft, place("bob", tee_sizes["L"], 2, link.rid))
    o["returned_jan"] = pay(ft, place("cy", tee_sizes["M"], rid=link.rid))
    for key in ("kept", "returned_jan"):
        ft.orders.send_to_brand(o[key].id, actor=Actor.system())
        ft.orders.mark_fulfilled(o[key].id, actor=Actor.system())
        o[key] = ft.orders.mark_delivered(o[key].id, actor=Actor.system())
    clock.advance(days=2)
    o["returned_jan"] = ft.orders.request_return(o["returned_jan"].id, actor=Actor.system())
    clock.set(FEB)
    o["self"] = pay(ft, place("ada", tee_sizes["M"], rid=link.rid))
    o["shoes"] = pay(ft, place("dee", shoe_sizes["41"]))
    o["cancelled"] = ft.orders.cancel(place("bob", tee_sizes["L"]).id, actor=Actor.system())
    clock.set(MAR)
    o["kept"] = ft.orders.close(o["kept"].id, actor=Actor.system())
    (entry,) = ft.rewards.release_due(actor=Actor.system())
    ft.rewards.mark_paid([entry.id], actor=Actor.system())
    o["wrong_size"] = pay(ft, place("bob", tee_sizes["S"]))
    ft.orders.send_to_brand(o["wrong_size"].id, actor=Actor.system())
    ft.orders.mark_fulfilled(o["wrong_size"].id, actor=Actor.system())
    ft.orders.mark_delivered(o["wrong_size"].id, actor=Actor.system())
    (wrong_line,) = ft.orders.items(o["wrong_size"].id, actor=Actor.system())
    ft.orders.request_return(
        o["wrong_size"].id,
        reasons={wrong_line.id: {"reason": "too_small", "zone": "chest"}},
        actor=Actor.system(),
    )
    o["wrong_size"] = ft.orders.close(o["wrong_size"].id, actor=Actor.system())  # the return is received
    ft.referrals.create(story.bob.id, actor=Actor.shopper(story.bob.id))  # a link nobody clicked
    return story


def reference(ft: FitTwin, query: str, **filters: Any) -> list[dict[str, Any]]:
    """The rows ``query`` must return, from the reference functions over rows read back
    through the repositories."""
    with ft.context.store.unit_of_work() as uow:
        return reference_rows(uow, query, **filters)


def reference_rows(uow: UnitOfWork, query: str, **filters: Any) -> list[dict[str, Any]]:
    """Answer ``query`` the naive way: read whole tables through ``uow``'s repositories and
    aggregate them with the reference functions of :mod:`fittwin_core.domain.analytics`."""
    window = Window(filters.get("since"), filters.get("until"))
    referrals = uow.referrals.where()
    if query == "referral_funnel":
        return analytics.referral_funnel(
            referrals,
            uow.referral_events.where(),
            uow.reward_ledger_entries.where(),
            window=window,
            referrer_user_id=filters.get("referrer_user_id"),
            period=filters.get("period", "month"),
        )
    if query == "reward_liability":
        return analytics.reward_liability(
            referrals,
            uow.reward_ledger_entries.where(),
            window=window,
            referrer_user_id=filters.get("referrer_user_id"),
        )
    if query == "orders_by_status":
        return analytics.orders_by_status(
            uow.orders.where(), window=window, period=filters.get("period", "month")
        )
    chosen = analytics.product_filter(
        uow.products.where(), product_id=filters.get("product_id"), brand_id=filters.get("brand_id")
    )
    if query == "size_recommendations":
        return analytics.size_recommendations(uow.order_items.where(), window=window, products=chosen)
    orders = {o.id: o for o in uow.orders.where()}
    if query == "returns_by_reason":
        return analytics.returns_by_reason(uow.order_items.where(), orders, window=window, products=chosen)
    return analytics.returns_by_size(uow.order_items.where(), orders, window=window, products=chosen)


def _filters(story: Story) -> list[tuple[str, dict[str, Any]]]:
    times = [
        {},
        {"since": FEB},
        {"until": FEB},
        {"since": JAN + timedelta(hours=1), "until": MAR},
    ]
    out: list[tuple[str, dict[str, Any]]] = []
    for window, period in itertools.product(times, ("day", "week", "month")):
        out.append(("referral_funnel", {**window, "period": period}))
        out.append(("orders_by_status", {**window, "period": period}))
    for window in times:
        for who in (None, story.ada.id, story.bob.id):
            out.append(("referral_funnel", {**window, "referrer_user_id": who}))
            out.append(("reward_liability", {**window, "referrer_user_id": who}))
        for product_id, brand_id in ((None, None), (story.tee.id, None), (None, story.south.id)):
            for query in ("size_recommendations", "returns_by_size", "returns_by_reason"):
                out.append((query, {**window, "product_id": product_id, "brand_id": brand_id}))
    return out


class AnalyticsContract:
    """What every ``AnalyticsQueries`` store answers for the same data."""

    @pytest.fixture
    def ft(self, clock: FrozenClock) -> FitTwin:
        """A FitTwin on the store under test, running on ``clock`` (provided by subclasses)."""
        raise NotImplementedError("subclasses provide an `ft` fixture")

    @pytest.fixture
    def story(self, ft: FitTwin, clock: FrozenClock) -> Story:
        """The contract's data set, built through the services."""
        return build_story(ft, clock)

    @pytest.fixture
    def queries(self, ft: FitTwin) -> AnalyticsQueries:
        """The store, as an analytics capability."""
        store = ft.context.store
        assert isinstance(store, AnalyticsQueries)
        return store

    def test_empty_store_answers_no_rows(self, queries: AnalyticsQueries) -> None:
        assert queries.referral_funnel() == []
        assert queries.reward_liability() == []
        assert queries.orders_by_status() == []
        assert queries.size_recommendations() == []
        assert queries.returns_by_size() == []
        assert queries.returns_by_reason() == []

    def test_referral_funnel_counts_each_step_in_its_month(
        self, queries: AnalyticsQueries, story: Story
    ) -> None:
        ada, bob = str(story.ada.id), str(story.bob.id)
        assert ada < bob  # ada registered first: her rows come first
        zero = dict.fromkeys(analytics.FUNNEL_COUNTS, 0)
        assert queries.referral_funnel() == [
            {
                "referrer_user_id": ada,
                "period": "2026-01-01",
                **zero,
                "links": 1,
                "clicks": 3,
                "conversions": 2,
                "rewards_paid": 1,  # bob's kept order: released and paid out
                "rewards_cancelled": 1,  # cy's returned order
            },
            {"referrer_user_id": ada, "period": "2026-02-01", **zero, "fraud_flags": 1},
            {"referrer_user_id": bob, "period": "2026-03-01", **zero, "links": 1},
        ]
        assert queries.referral_funnel(referrer_user_id=story.bob.id) == [
            {"referrer_user_id": bob, "period": "2026-03-01", **zero, "links": 1}
        ]
        # since is inclusive, until exclusive: the self-referral sits exactly on 1 February.
        assert [r["fraud_flags"] for r in queries.referral_funnel(since=FEB)] == [1, 0]
        assert sum(r["fraud_flags"] for r in queries.referral_funnel(until=FEB)) == 0

    def test_reward_liability_sums_by_status_and_currency(
        self, queries: AnalyticsQueries, story: Story
    ) -> None:
        assert queries.reward_liability() == [
            {"status": "paid", "currency": "EUR", "entries": 1, "amount_cents": 500},
            {"status": "cancelled", "currency": "EUR", "entries": 1, "amount_cents": 250},
        ]
        assert queries.reward_liability(referrer_user_id=story.bob.id) == []
        assert queries.reward_liability(since=FEB) == []

    def test_orders_by_status_per_month_and_currency(self, queries: AnalyticsQueries, story: Story) -> None:
        rows = queries.orders_by_status()
        assert [(r["period"], r["status"], r["currency"], r["orders"]) for r in rows] == [
            ("2026-01-01", "return_requested", "EUR", 1),
            ("2026-01-01", "closed", "EUR", 1),
            ("2026-02-01", "paid", "EUR", 1),
            ("2026-02-01", "paid", "USD", 1),
            ("2026-02-01", "closed", "EUR", 1),
            ("2026-03-01", "closed", "EUR", 1),
        ]
        totals = {(r["period"], r["status"], r["currency"]): r for r in rows}
        assert totals[("2026-01-01", "closed", "EUR")]["subtotal_cents"] == 5000
        assert totals[("2026-02-01", "paid", "USD")]["subtotal_cents"] == 9000
        march = totals[("2026-03-01", "closed", "EUR")]
        assert (
            march["refunded_cents"] == march["total_cents"] >= march["subtotal_cents"] == 2500
        )  # refunded in full
        assert [r["period"] for r in queries.orders_by_status(until=FEB, period="week")] == [
            "2026-01-05",
            "2026-01-05",
        ]

    def test_size_recommendations_per_product(self, queries: AnalyticsQueries, story: Story) -> None:
        tee, shoe = str(story.tee.id), str(story.shoe.id)
        rows = {(r["product_id"], r["recommended_size"]): r for r in queries.size_recommendations()}
        assert set(rows) == {(tee, "S"), (tee, "M"), (tee, "L"), (shoe, None)}
        assert rows[(tee, "L")]["lines"] == 3  # bob three times (one cancelled)
        assert rows[(tee, "L")]["units"] == 4
        assert rows[(shoe, None)]["with_summary"] == 1  # a summary saying nothing fits
        assert rows[(shoe, None)]["confidence_max"] == 0
        for row in rows.values():
            assert (
                row["confidence_min"] <= row["confidence_sum"] / row["with_summary"] <= row["confidence_max"]
            )
        only_south = queries.size_recommendations(brand_id=story.south.id)
        assert [(r["product_id"], r["recommended_size"]) for r in only_south] == [(shoe, None)]

    def test_returns_by_recommended_and_bought_size(self, queries: AnalyticsQueries, story: Story) -> None:
        tee = str(story.tee.id)
        rows = {
            (r["recommended_size"], r["bought_size"]): r
            for r in queries.returns_by_size(product_id=story.tee.id)
        }
        assert rows[("L", "S")] == {
            "product_id": tee,
            "recommended_size": "L",
            "bought_size": "S",
            "lines": 1,
            "units": 1,
            "delivered_lines": 1,
            "delivered_units": 1,
            "returned_lines": 1,
            "returned_units": 1,
        }
        assert rows[("L", "L")]["units"] == 3 and rows[("L", "L")]["returned_units"] == 0
        assert rows[("L", "L")]["delivered_units"] == 2
        assert rows[("S", "M")]["returned_lines"] == 1  # cy bought M against an S recommendation
        assert rows[("M", "M")]["delivered_lines"] == 0

    def test_returns_by_reason_count_each_returned_line_under_its_reason(
        self, queries: AnalyticsQueries, story: Story
    ) -> None:
        tee = str(story.tee.id)
        assert queries.returns_by_reason(product_id=story.tee.id) == [
            # cy's January return gave no reason; bob's S came back too small at the chest
            {"product_id": tee, "bought_size": "M", "reason": None, "zone": None, "lines": 1, "units": 1},
            {
                "product_id": tee,
                "bought_size": "S",
                "reason": "too_small",
                "zone": "chest",
                "lines": 1,
                "units": 1,
            },
        ]
        assert queries.returns_by_reason(brand_id=story.south.id) == []
        assert queries.returns_by_reason(since=MAR) == queries.returns_by_reason(product_id=story.tee.id)[1:]

    def test_every_query_matches_the_reference(
        self, ft: FitTwin, queries: AnalyticsQueries, story: Story
    ) -> None:
        for query, filters in _filters(story):
            assert getattr(queries, query)(**filters) == reference(ft, query, **filters), (query, filters)

    def test_rows_are_json_able(self, queries: AnalyticsQueries, story: Story) -> None:
        import json

        for query in analytics.SORT_KEYS:
            rows = getattr(queries, query)()
            assert rows
            assert json.loads(json.dumps(rows)) == rows

    def test_unknown_ids_filter_everything_out(self, queries: AnalyticsQueries, story: Story) -> None:
        nobody = UUID(int=1)
        assert queries.referral_funnel(referrer_user_id=nobody) == []
        assert queries.reward_liability(referrer_user_id=nobody) == []
        assert queries.size_recommendations(product_id=nobody) == []
        assert queries.returns_by_size(brand_id=nobody) == []


__all__ = ["AnalyticsContract", "Story", "build_story", "reference"]
