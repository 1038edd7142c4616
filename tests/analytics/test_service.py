"""``ft.analytics`` as DataFrames: shapes and types, filters, permissions, and missing pieces."""

from __future__ import annotations

import sys
from datetime import date, datetime

import pandas as pd
import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import ConfigurationError, PermissionDenied, ValidationError
from fittwin_core.services.analytics import COLUMNS
from fittwin_core.services.base import Context
from fittwin_core.testing.contract.analytics import FEB, Story

QUERIES = [
    "referral_funnel",
    "reward_liability",
    "orders_by_status",
    "size_recommendations",
    "returns_by_size",
]


@pytest.mark.parametrize("query", QUERIES)
def test_an_empty_store_gives_empty_frames_with_the_columns(ft: FitTwin, query: str) -> None:
    frame = getattr(ft.analytics, query)(actor=Actor.system())
    assert frame.empty
    assert list(frame.columns)[: len(COLUMNS[query])] == list(COLUMNS[query])


def test_money_stays_integer_minor_units_beside_a_currency(ft: FitTwin, story: Story) -> None:
    orders = ft.analytics.orders_by_status(actor=Actor.system())
    for column in ("subtotal_cents", "total_cents", "refunded_cents", "orders"):
        assert orders[column].dtype == "int64"
    assert orders["period"].dtype.kind == "M"
    assert set(orders["currency"]) == {"EUR", "USD"}
    liability = ft.analytics.reward_liability(actor=Actor.system())
    assert liability["amount_cents"].dtype == "int64"
    assert liability.set_index("status").loc["paid", "amount_cents"] == 500


def test_funnel_per_period_and_per_referrer(ft: FitTwin, story: Story) -> None:
    both = ft.analytics.referral_funnel(actor=Actor.system())
    per_period = ft.analytics.referral_funnel(by="period", actor=Actor.system())
    per_referrer = ft.analytics.referral_funnel(by="referrer", actor=Actor.system())
    assert list(per_period["period"].dt.strftime("%Y-%m")) == ["2026-01", "2026-02", "2026-03"]
    assert per_period["clicks"].sum() == both["clicks"].sum() == 3
    ada = per_referrer.set_index("referrer_user_id").loc[str(story.ada.id)]
    assert (ada["clicks"], ada["conversions"], ada["fraud_flags"]) == (3, 2, 1)
    weekly = ft.analytics.referral_funnel(period="week", by="period", actor=Actor.system())
    assert weekly["period"].dt.day_of_week.eq(0).all()  # ISO weeks start on Monday


def test_fit_frames_add_shares_confidence_and_return_rates(ft: FitTwin, story: Story) -> None:
    recs = ft.analytics.size_recommendations(product_id=story.tee.id, actor=Actor.system())
    assert recs["share"].sum() == pytest.approx(1.0)
    assert recs["confidence_mean"].between(0, 100).all()
    assert str(recs["confidence_min"].dtype) == "Int64"
    returns = ft.analytics.returns_by_size(product_id=story.tee.id, actor=Actor.system()).set_index(
        ["recommended_size", "bought_size"]
    )
    assert returns.loc[("L", "S"), "return_rate"] == 1.0
    assert returns.loc[("L", "L"), "return_rate"] == 0.0
    assert pd.isna(returns.loc[("M", "M"), "return_rate"])  # nothing delivered yet
    assert bool(returns.loc[("L", "L"), "matches"]) and not bool(returns.loc[("L", "S"), "matches"])
    shoes = ft.analytics.returns_by_size(brand_id=story.south.id, actor=Actor.system())
    assert not shoes["matches"].any()  # no size fitted: never counted as a match


def test_dates_and_aware_datetimes_bound_the_window(ft: FitTwin, story: Story) -> None:
    by_date = ft.analytics.orders_by_status(since=date(2026, 2, 1), actor=Actor.system())
    by_time = ft.analytics.orders_by_status(since=FEB, actor=Actor.system())
    pd.testing.assert_frame_equal(by_date, by_time)
    assert by_date["orders"].sum() == 4
    assert ft.analytics.orders_by_status(until=date(2026, 2, 1), actor=Actor.system())["orders"].sum() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"until": "2026-01-01"}, "until"),
        ({"since": date(2026, 2, 1), "until": date(2026, 2, 1)}, "until"),
        ({"period": "quarter"}, "period"),
        ({"referrer_user_id": "not-a-uuid"}, "referrer_user_id"),
        ({"by": "brand"}, "by"),
    ],
)
def test_bad_filters_are_validation_errors(ft: FitTwin, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ft.analytics.referral_funnel(**kwargs, actor=Actor.system())  # type: ignore[arg-type]
    assert caught.value.field == field


def test_shoppers_may_not_read_analytics(ft: FitTwin, story: Story) -> None:
    shopper = Actor.shopper(story.ada.id)
    for query in QUERIES:
        with pytest.raises(PermissionDenied):
            getattr(ft.analytics, query)(actor=shopper)
    with pytest.raises(PermissionDenied):
        ft.analytics.summary(actor=shopper)
    with pytest.raises(PermissionDenied):
        ft.analytics.export_parquet("memory://nowhere", actor=shopper)


def test_brand_analysts_read_the_fit_views_of_their_own_brand_only(ft: FitTwin, story: Story) -> None:
    platform = Actor.platform(ft.context.ids.new_id())
    invite = ft.brands.invite_user(story.north.id, "analyst@north.example", "analyst", actor=platform)
    analyst = Actor.brand_user(ft.brands.accept_invite(invite.invite_token).id)
    own = ft.analytics.size_recommendations(actor=analyst)
    assert set(own["product_id"]) == {str(story.tee.id)}  # scoped to North without asking
    assert set(ft.analytics.returns_by_size(actor=analyst)["product_id"]) == {str(story.tee.id)}
    with pytest.raises(PermissionDenied):
        ft.analytics.size_recommendations(brand_id=story.south.id, actor=analyst)
    with pytest.raises(PermissionDenied):
        ft.analytics.returns_by_size(product_id=story.shoe.id, actor=analyst)
    with pytest.raises(PermissionDenied):
        ft.analytics.referral_funnel(actor=analyst)


def test_missing_pandas_names_the_extra(ft: FitTwin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ConfigurationError, match=r"fittwin\[notebook\]"):
        ft.analytics.orders_by_status(actor=Actor.system())
    assert ft.analytics.summary(actor=Actor.system()).orders == {}  # the summary needs no pandas


class _PlainStore:
    """A store without the analytics capability."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def unit_of_work(self, actor: Actor | None = None) -> object:
        return self._inner.unit_of_work(actor)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


def test_a_store_without_the_capability_is_a_configuration_error(ft: FitTwin) -> None:
    import attrs

    plain = FitTwin(attrs.evolve(ft.context, store=_PlainStore(ft.context.store)))
    with pytest.raises(ConfigurationError, match="does not answer analytics queries"):
        plain.analytics.reward_liability(actor=Actor.system())


def test_export_without_a_sink_is_a_configuration_error(ft: FitTwin) -> None:
    import attrs

    bare: Context = attrs.evolve(ft.context, exports=None)
    with pytest.raises(ConfigurationError, match="export"):
        FitTwin(bare).analytics.export_parquet("memory://x", actor=Actor.system())


def test_summary_gives_the_headline_numbers(ft: FitTwin, story: Story) -> None:
    summary = ft.analytics.summary(actor=Actor.system())
    assert summary.orders == {"paid": 2, "return_requested": 1, "closed": 3}
    assert summary.funnel["clicks"] == 3 and summary.funnel["rewards_paid"] == 1
    assert summary.liability == {"paid": {"EUR": 500}, "cancelled": {"EUR": 250}}
    assert summary.recommended_lines == 5  # every tee line; the shoe had no size to recommend
    assert summary.bought_recommended == 3
    assert summary.returned_units == {"recommended": 0, "other": 2}
    text = dict(summary.lines())
    assert text["referral funnel"] == "2 links → 3 clicks → 2 conversions (1 flagged)"
    assert text["bought the recommended size"] == "60% of 5 lines"
