"""The synthetic shop: plausible bodies, a year of trade built in bulk under the domain rules,
outcomes decided by a hidden truth that the library learns back, reproducible, with a progress
bar; and ``fittwin demo --shoppers N``."""

from __future__ import annotations

import io
import random
import statistics
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from fittwin_adapters.cli import main
from fittwin_adapters.connect import connect
from fittwin_adapters.synthetic import (
    LINES,
    PASSWORD,
    HiddenTruth,
    SyntheticPasswordHasher,
    body,
    connect_synthetic,
    generate,
)
from fittwin_core import FitTwin
from fittwin_core.domain import (
    Actor,
    CloseReason,
    ConfigurationError,
    OrderStatus,
    ReturnReasonCode,
    RewardStatus,
    ValidationError,
)
from fittwin_core.fit import Chart

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_bodies_are_plausible_adults() -> None:
    rng = random.Random(3)
    drawn = [body(rng) for _ in range(400)]
    for sex, mean in (("male", 176.0), ("female", 162.5)):
        heights = [b.height_cm for b, s in drawn if s == sex]
        assert abs(statistics.mean(heights) - mean) < 2.0
    bmis = [b.weight_kg / (b.height_cm / 100) ** 2 for b, _ in drawn]
    assert 23 < statistics.median(bmis) < 29
    chests = [b.chest_cm for b, _ in drawn if b.chest_cm is not None]
    assert 0.6 < len(chests) / len(drawn) < 0.9  # the rest is left for the estimator
    assert 75 < min(chests) and max(chests) < 150


def test_a_year_of_trade_under_the_domain_rules() -> None:
    ft = connect_synthetic(now=NOW, seed=11)
    bar = io.StringIO()
    report = generate(ft, shoppers=80, months=6, progress=bar)
    assert report.refused_steps == 0
    assert report.shoppers == 80 and report.orders > 60 and report.clicks > 0 and report.returns > 0
    assert report.end == NOW == ft.context.clock.now()
    assert (
        bar.getvalue().rstrip().endswith(f"80 shoppers, {report.orders} orders") or "100%" in bar.getvalue()
    )
    assert "100%" in bar.getvalue().splitlines()[-1]
    orders = ft.analytics.orders_by_status(actor=Actor.system())
    assert orders["orders"].sum() == report.orders
    assert orders["period"].min() >= datetime(2025, 12, 1) and orders["period"].max() <= datetime(2026, 6, 1)
    assert {"closed", "delivered"} <= set(orders["status"])
    funnel = ft.analytics.referral_funnel(by="period", actor=Actor.system())
    assert funnel["conversions"].sum() > 0 and funnel["clicks"].sum() >= funnel["conversions"].sum()
    returns = (
        ft.analytics.returns_by_size(actor=Actor.system())
        .groupby("matches")[["delivered_units", "returned_units"]]
        .sum()
    )
    rate = returns["returned_units"] / returns["delivered_units"]
    assert rate[False] > rate[True]  # wrong sizes come back more often
    assert ft.accounts.authenticate("shopper0@synthetic.example", PASSWORD).username == "shopper0"


def test_the_same_seed_gives_the_same_shop() -> None:
    first = connect_synthetic(now=NOW, seed=5)
    second = connect_synthetic(now=NOW, seed=5)
    a = generate(first, shoppers=30, months=2, progress=False)
    b = generate(second, shoppers=30, months=2, progress=False)
    assert (a.orders, a.clicks, a.returns) == (b.orders, b.clicks, b.returns)
    assert first.analytics.summary(actor=Actor.system()) == second.analytics.summary(actor=Actor.system())


def test_generation_needs_a_movable_clock_and_sane_sizes() -> None:
    with pytest.raises(ConfigurationError, match="movable clock"):
        generate(connect(), shoppers=1, progress=False)
    ft = connect_synthetic(now=NOW)
    for kwargs in ({"shoppers": 0}, {"months": 0}, {"brands": 99}, {"orders_per_shopper": 0}):
        with pytest.raises(ValidationError):
            generate(ft, progress=False, **kwargs)  # type: ignore[arg-type]


def test_the_synthetic_hasher_hashes_each_password_once() -> None:
    hasher = SyntheticPasswordHasher()
    first = hasher.hash(PASSWORD)
    assert hasher.hash(PASSWORD) == first and first.startswith("$argon2id$")
    assert hasher.verify(first, PASSWORD) and not hasher.verify(first, "wrong")
    assert hasher.hash("another password") != first
    assert not hasher.needs_rehash(first)


def test_demo_with_synthetic_shoppers_prints_the_analytics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--shoppers", "40"]) == 0
    captured = capsys.readouterr()
    assert "Synthetic shop: 40 shoppers" in captured.out
    assert "\nAnalytics\n" in captured.out and "referral funnel" in captured.out
    assert "bought the recommended size" in captured.out
    assert captured.err == ""  # stderr is not a terminal here: no progress frames


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_bar_shows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    report = generate(connect_synthetic(now=NOW, seed=3), shoppers=5, months=1)
    if terminal:
        assert "100%" in err.getvalue().split("\r")[-1] and f"{report.orders} orders" in err.getvalue()
    else:
        assert err.getvalue() == ""


def test_demo_refuses_a_bad_shopper_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--shoppers", "0"])
    assert stopped.value.code == 2
    assert "--shoppers" in capsys.readouterr().err


def test_the_bulk_shop_obeys_the_domain_rules() -> None:
    ft = connect_synthetic(now=NOW, seed=13)
    report = generate(ft, shoppers=150, months=8, progress=False)
    assert report.orders > 150 and report.size_returns > 0
    with ft.context.store.unit_of_work() as uow:
        orders = {o.id: o for o in uow.orders.where()}
        items = uow.order_items.where()
        sold: Counter[object] = Counter()
        for item in items:
            order = orders[item.order_id]
            if order.close_reason != CloseReason.CANCELLED:
                sold[item.variant_id] += item.reserved_qty
            if order.status == OrderStatus.RETURN_REQUESTED or order.close_reason == CloseReason.RETURNED:
                assert item.return_reason is not None  # every returned line says why
            else:
                assert item.return_reason is None
        for variant in uow.product_variants.where():
            assert variant.inventory == 1_000_000 - sold[variant.id] >= 0
        for order in orders.values():
            assert order.totals.total == order.totals.subtotal + order.totals.tax + order.totals.shipping
            refunded = order.close_reason == CloseReason.RETURNED or (
                order.close_reason == CloseReason.CANCELLED and order.paid_at is not None
            )
            assert order.refunded_cents == (order.totals.total if refunded else 0)
            if order.status in (
                OrderStatus.DELIVERED,
                OrderStatus.RETURN_REQUESTED,
            ) or order.close_reason in (
                CloseReason.COMPLETED,
                CloseReason.RETURNED,
            ):
                assert order.paid_at is not None and order.delivered_at is not None
        for entry in uow.reward_ledger_entries.where():
            order = orders[entry.order_id]
            assert order.rid == entry.rid
            if order.close_reason == CloseReason.RETURNED and entry.amount_cents > 0:
                assert entry.status in (RewardStatus.CANCELLED, RewardStatus.PAID)
        conversions = uow.referral_events.where(event_type="conversion")
        assert {e.order_id for e in conversions} <= {e.order_id for e in uow.reward_ledger_entries.where()}


def test_outcomes_come_from_the_hidden_truth_not_from_the_engine() -> None:
    chart = Chart.from_rules(LINES["tops"][1], garment_type="tops")
    truth = HiddenTruth(offsets={1: {"chest": -3.0}}, noise_cm=0.0)
    m = chart.labels.index("M")  # chest 94-102, room 3 cm
    rng = random.Random(1)
    fits = {"chest": 103.0, "waist": 84.0}
    assert truth.outcome(rng, 0, "tops", chart, m, fits) is None  # within the room of a true-to-chart M
    assert truth.outcome(rng, 1, "tops", chart, m, fits) == (
        ReturnReasonCode.TOO_SMALL,
        "chest",
    )  # 3 cm small
    assert truth.outcome(rng, 0, "tops", chart, m, {"chest": 90.0, "waist": 84.0}) == (
        ReturnReasonCode.TOO_LARGE,
        "chest",
    )


def _size_return_rate(ft: FitTwin, brand_id: object, since: datetime, until: datetime | None = None) -> float:
    reasons = ft.analytics.returns_by_reason(
        brand_id=brand_id, since=since, until=until, actor=Actor.system()
    )
    size = reasons[reasons["reason"].isin(["too_small", "too_large"])]["lines"].sum()
    delivered = ft.analytics.returns_by_size(
        brand_id=brand_id, since=since, until=until, actor=Actor.system()
    )["delivered_lines"].sum()
    return float(size / delivered)


def test_a_brand_secretly_small_at_the_chest_is_learned_and_accepting_the_proposal_cuts_its_returns() -> None:
    ft = connect_synthetic(now=NOW, seed=21)
    truth = HiddenTruth(offsets={1: {"chest": -3.0}})
    generate(ft, shoppers=1200, months=6, brands=2, lines=("tops",), truth=truth, progress=False, seed=21)
    platform = Actor.platform(ft.context.ids.new_id())
    (proposal,) = ft.catalog.propose_fit_offsets("tops", actor=platform)  # nothing for the honest brand
    small = ft.brands.get(proposal.brand_id, actor=Actor.system())
    assert small.name == "Fjord & Pine"  # brand 1
    chest = proposal.evidence["chest"]
    assert abs(chest["proposed_cm"] - (-3.0)) <= 1.0
    assert chest["interval_cm"][0] <= chest["proposed_cm"] <= chest["interval_cm"][1]
    assert set(proposal.evidence) == {"chest"}
    before = _size_return_rate(ft, small.id, NOW - timedelta(days=183), NOW)
    ft.catalog.accept_fit_proposal(proposal.id, actor=platform)
    ft.context.clock.set(NOW + timedelta(days=183))  # type: ignore[attr-defined]
    generate(ft, shoppers=1200, months=6, brands=2, lines=("tops",), truth=truth, progress=False, seed=22)
    after = _size_return_rate(ft, small.id, NOW)
    assert after < before * 0.8  # the brand's size returns fall by a fifth or more
