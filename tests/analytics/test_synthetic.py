"""The synthetic shop: plausible bodies, a year of trade built in bulk under the domain rules,
outcomes decided by a hidden truth that the library learns back, reproducible, with a progress
bar; and ``fittwin demo --shoppers N``."""

from __future__ import annotations

import gc
import io
import itertools
import random
import statistics
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

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
    EventLog,
    OrderItem,
    OrderStatus,
    ReturnReasonCode,
    RewardStatus,
    ValidationError,
)
from fittwin_core.domain.converter import unstructure
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


# The order lifecycle as the specification draws it (data-model.md, "Order status"): the moves
# a stored order's history may be made of, and what each target stamps on the order.
_LEGAL_MOVES = {
    ("created", "paid"),
    ("created", "closed"),
    ("paid", "sent_to_brand"),
    ("paid", "closed"),
    ("sent_to_brand", "fulfilled"),
    ("fulfilled", "delivered"),
    ("delivered", "return_requested"),
    ("delivered", "closed"),
    ("return_requested", "closed"),
}
_AUDITED = ("orders", "product_variants", "payment_methods", "reward_ledger_entries")
# What audit rows never show (issue 14: no payment token, and of a payment method neither
# brand, last4 nor expiry; only that the field is there).
_SECRET = {
    "orders": {"psp_token_id"},
    "payment_methods": {"psp_token_id", "brand", "last4", "expires_at"},
}


_FORWARD = ("created", "paid", "sent_to_brand", "fulfilled", "delivered")


def _path(status: str, close_reason: str | None, paid: bool) -> list[str]:
    """The statuses an order went through to reach ``status`` (for a closed order, how it was
    closed tells which way it went)."""
    if status == "return_requested" or close_reason == "returned":
        path = [*_FORWARD, "return_requested"]
    elif status in _FORWARD:
        path = list(_FORWARD[: _FORWARD.index(status) + 1])
    elif close_reason == "completed":
        path = list(_FORWARD)
    else:  # cancelled, before or after payment
        path = ["created", "paid"] if paid else ["created"]
    return [*path, "closed"] if status == "closed" else path


def _as_audited(table: str, row: object) -> dict[str, object]:
    """What an audit row's ``new`` shows of ``row``: its JSON form without the bookkeeping
    timestamps, secrets redacted (a NULL stays NULL)."""
    data = unstructure(row)
    return {
        column: ("<redacted>" if column in _SECRET.get(table, ()) and value is not None else value)
        for column, value in data.items()
        if column not in ("created_at", "updated_at")
    }


def test_a_generated_shop_passes_the_domain_rules_row_by_row() -> None:
    """Every row of a small generated shop checked against rules written here from the spec:
    totals from the lines, stock, at most one reward per order, status histories made of legal
    moves with matching stamps, and audit rows that replay to each stored row."""
    ft = connect_synthetic(now=NOW, seed=17)
    report = generate(ft, shoppers=160, months=8, progress=False, seed=17)
    assert report.refused_steps == 0 and report.orders > 150
    with ft.context.store.unit_of_work() as uow:
        orders = {o.id: o for o in uow.orders.where()}
        items_of: dict[UUID, list[OrderItem]] = {}
        for item in uow.order_items.where():
            items_of.setdefault(item.order_id, []).append(item)
        variants = {v.id: v for v in uow.product_variants.where()}
        ledger = uow.reward_ledger_entries.where()
        conversions = uow.referral_events.where(event_type="conversion")
        logs = uow.event_logs.where(order_by="id")
        rows = {table: {r.id: r for r in getattr(uow, table).where()} for table in _AUDITED}
    assert len(orders) == report.orders
    # Totals are the lines' prices; an order's line says what it sold.
    sold: Counter[object] = Counter()
    for order in orders.values():
        lines = items_of[order.id]
        assert len(lines) == 1  # the generator sells one line per order
        subtotal = sum(line.unit_price_cents * line.qty for line in lines)
        t = order.totals
        assert t.subtotal == subtotal and t.total == t.subtotal + t.tax + t.shipping - t.discounts
        assert all(line.currency == t.currency for line in lines)
        if order.close_reason != CloseReason.CANCELLED:
            for line in lines:
                sold[line.variant_id] += line.reserved_qty
    # Stock: what was sold came out of the million each variant started with, never below zero.
    for variant in variants.values():
        assert variant.inventory == 1_000_000 - sold[variant.id] >= 0
    # Rewards: at most one ledger entry and one conversion per order, each of a referred order.
    assert max(Counter(e.order_id for e in ledger).values(), default=0) <= 1
    assert max(Counter(e.order_id for e in conversions).values(), default=0) <= 1
    assert all(orders[e.order_id].rid == e.rid for e in ledger)
    # Audit rows: per audited row one insert, then updates whose diffs replay to the stored row.
    history: dict[tuple[str, UUID], list[EventLog]] = {}
    for log in logs:
        history.setdefault((log.entity_type, log.entity_id), []).append(log)
    for table in _AUDITED:
        for key, row in rows[table].items():
            entries = history.get((table, key), [])
            assert [e.action for e in entries[:1]] == ["insert"], (table, key)
            assert all(e.action == "update" for e in entries[1:])
            state = dict(entries[0].metadata["new"])
            statuses = [state.get("status")]
            for entry in entries[1:]:
                old, new = entry.metadata["old"], entry.metadata["new"]
                assert all(state[c] == old[c] for c in old)  # each diff starts where the last ended
                state.update(new)
                if "status" in new:
                    statuses.append(new["status"])
            assert state == _as_audited(table, row), (table, key)
            if table == "orders":
                order = rows["orders"][key]
                reason = None if order.close_reason is None else order.close_reason.value
                path = _path(order.status.value, reason, order.paid_at is not None)
                # A referred order is written at placement and at every move, as the order
                # service writes it; any other order once, as it settled.
                assert statuses == (path if order.rid is not None else [order.status.value])
    # Status and stamps: every order's status is the end of a path of legal moves, and carries
    # the stamps of that path, in time order.
    for order in orders.values():
        reason = None if order.close_reason is None else order.close_reason.value
        path = _path(order.status.value, reason, order.paid_at is not None)
        assert path[-1] == order.status.value
        assert all(move in _LEGAL_MOVES for move in itertools.pairwise(path)), path
        assert (order.paid_at is not None) == ("paid" in path)
        assert (order.delivered_at is not None) == ("delivered" in path)
        assert (order.closed_at is not None) == ("closed" in path) == (order.close_reason is not None)
        stamps = [s for s in (order.created_at, order.paid_at, order.delivered_at, order.closed_at) if s]
        assert stamps == sorted(stamps) and order.updated_at >= stamps[-1]
        refunded = order.close_reason == CloseReason.RETURNED or (
            order.close_reason == CloseReason.CANCELLED and order.paid_at is not None
        )
        assert order.refunded_cents == (order.totals.total if refunded else 0)
        assert order.created_at < NOW


def test_a_run_pauses_cycle_collection_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import fittwin_adapters.synthetic as synthetic

    seen: list[bool] = []
    play = synthetic._Run.play

    def spy(self: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return play(self, **kwargs)

    def fail(self: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the run failed")

    assert gc.isenabled()
    monkeypatch.setattr(synthetic._Run, "play", spy)
    generate(connect_synthetic(now=NOW), shoppers=3, months=1, progress=False)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        generate(connect_synthetic(now=NOW), shoppers=3, months=1, progress=False)
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
    monkeypatch.setattr(synthetic._Run, "play", fail)
    with pytest.raises(RuntimeError, match="failed"):
        generate(connect_synthetic(now=NOW), shoppers=3, months=1, progress=False)
    assert gc.isenabled()
