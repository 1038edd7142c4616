"""The synthetic shop: plausible bodies, a full year of trade through the services, reproducible,
with a progress bar; and ``fittwin demo --shoppers N``."""

from __future__ import annotations

import io
import random
import statistics
from datetime import UTC, datetime

import pytest

from fittwin_adapters.cli import main
from fittwin_adapters.connect import connect
from fittwin_adapters.synthetic import (
    PASSWORD,
    SyntheticPasswordHasher,
    body,
    connect_synthetic,
    generate,
)
from fittwin_core.domain import Actor, ConfigurationError, ValidationError

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
    assert 75 < min(chests) and max(chests) < 140


def test_a_year_of_trade_through_the_services() -> None:
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
    assert "100%" in captured.err  # the progress bar


def test_demo_refuses_a_bad_shopper_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--shoppers", "0"])
    assert stopped.value.code == 2
    assert "--shoppers" in capsys.readouterr().err
