"""The analytics queries in SQL: aggregations run in PostgreSQL, only the grouped rows come back.

Each function builds one SQLAlchemy Core ``SELECT … GROUP BY`` (three for the funnel, whose
parts live in different tables) with only the filters given, so the planner sees plain
predicates and can use the data model's indexes:

* per referrer: ``idx_referrals_referrer`` → ``idx_referral_events_rid_type`` /
  ``idx_reward_ledger_rid_status`` (the rid leads both);
* per product or brand: ``idx_product_variants_product_status`` → ``idx_order_items_variant``,
  then ``orders`` by primary key (partition by partition, pruned at run time);
* without a filter the query has to read the whole table once, and does so in one scan.

Results are the rows :mod:`fittwin_core.domain.analytics` defines, in its canonical order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from fittwin_adapters.postgres.partitions import id_conditions
from fittwin_adapters.postgres.tables import tables
from fittwin_core.domain import analytics
from fittwin_core.domain.analytics import PERIODS, Period

Row = dict[str, Any]
Run = Callable[[sa.Select[Any]], list[tuple[Any, ...]]]

_R = tables["referrals"]
_E = tables["referral_events"]
_L = tables["reward_ledger_entries"]
_O = tables["orders"]
_I = tables["order_items"]
_V = tables["product_variants"]
_P = tables["products"]


def bucket(column: sa.ColumnElement[Any], period: Period) -> sa.ColumnElement[Any]:
    """The first day (UTC) of the period holding the ``timestamptz`` ``column``."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    # A literal, not a bind parameter: GROUP BY must see the very expression the SELECT has.
    unit: sa.ColumnElement[str] = sa.literal_column(f"'{period}'")
    return sa.cast(sa.func.date_trunc(unit, sa.func.timezone("UTC", column)), sa.Date)


def _window(column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def _orders_of(since: datetime | None, until: datetime | None) -> list[Any]:
    """Id bounds on ``orders`` for lines created in the window: a line is created with its
    order, so the join reads only the order partitions the window reaches."""
    return id_conditions(_O.c.id, since, until)


def _int(value: Any) -> int:
    # sum(bigint) is numeric in PostgreSQL; counts are bigint.
    if value is None:
        return 0
    return int(value)


def _day(value: date) -> str:
    return value.isoformat()


# ============================================================================ referrals


def referral_funnel(
    run: Run,
    *,
    since: datetime | None,
    until: datetime | None,
    referrer_user_id: UUID | None,
    period: Period,
) -> list[Row]:
    """Per referrer and period: links, clicks, conversions, fraud flags, rewards by status."""
    who = [] if referrer_user_id is None else [_R.c.referrer_user_id == referrer_user_id]

    def counted(table: sa.Table, counts: list[Any], extra: list[Any]) -> sa.Select[Any]:
        when = bucket(table.c.created_at, period)
        source = _R if table is _R else table.join(_R, _R.c.rid == table.c.rid)
        return (
            sa.select(_R.c.referrer_user_id, when, *counts)
            .select_from(source)
            .where(*who, *extra, *_window(table.c.created_at, since, until))
            .group_by(_R.c.referrer_user_id, when)
        )

    rows: dict[tuple[str, str], Row] = {}

    def merge(result: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
        for referrer, day, *values in result:
            key = (str(referrer), _day(day))
            row = rows.setdefault(
                key,
                {"referrer_user_id": key[0], "period": key[1]} | dict.fromkeys(analytics.FUNNEL_COUNTS, 0),
            )
            for column, value in zip(columns, values, strict=True):
                row[column] = _int(value)

    merge(run(counted(_R, [sa.func.count()], [])), ("links",))
    event_columns = ("clicks", "conversions", "fraud_flags")
    merge(
        run(
            counted(
                _E,
                [
                    sa.func.count().filter(_E.c.event_type == kind)
                    for kind in ("click", "conversion", "fraud_flag")
                ],
                [],
            )
        ),
        event_columns,
    )
    reward_columns = tuple(f"rewards_{status}" for status in analytics.REWARD_STATUSES)
    merge(
        run(
            counted(
                _L,
                [sa.func.count().filter(_L.c.status == status) for status in analytics.REWARD_STATUSES],
                [_L.c.amount_cents > 0],
            )
        ),
        reward_columns,
    )
    # A group with nothing counted in this window never appears (as in the reference).
    kept = (r for r in rows.values() if any(r[c] for c in analytics.FUNNEL_COUNTS))
    return analytics.in_order("referral_funnel", kept)


def reward_liability(
    run: Run, *, since: datetime | None, until: datetime | None, referrer_user_id: UUID | None
) -> list[Row]:
    """Per ledger status and currency: entries and their amount in minor units."""
    stmt = sa.select(_L.c.status, _L.c.currency, sa.func.count(), sa.func.sum(_L.c.amount_cents))
    if referrer_user_id is not None:
        stmt = stmt.select_from(_L.join(_R, _R.c.rid == _L.c.rid)).where(
            _R.c.referrer_user_id == referrer_user_id
        )
    stmt = stmt.where(*_window(_L.c.created_at, since, until)).group_by(_L.c.status, _L.c.currency)
    return analytics.in_order(
        "reward_liability",
        (
            {"status": str(status), "currency": currency, "entries": _int(n), "amount_cents": _int(amount)}
            for status, currency, n, amount in run(stmt)
        ),
    )


# ============================================================================ orders


def orders_by_status(
    run: Run, *, since: datetime | None, until: datetime | None, period: Period
) -> list[Row]:
    """Per period, status and currency: orders, subtotal, total and refunded minor units."""
    when = bucket(_O.c.created_at, period)
    currency = _O.c.totals["currency"].astext
    stmt = (
        sa.select(
            when,
            _O.c.status,
            currency,
            sa.func.count(),
            sa.func.sum(_O.c.totals["subtotal"].astext.cast(sa.BigInteger)),
            sa.func.sum(_O.c.totals["total"].astext.cast(sa.BigInteger)),
            sa.func.sum(_O.c.refunded_cents),
        )
        .where(*_window(_O.c.created_at, since, until), *id_conditions(_O.c.id, since, until))
        .group_by(when, _O.c.status, currency)
    )
    return analytics.in_order(
        "orders_by_status",
        (
            {
                "period": _day(day),
                "status": str(status),
                "currency": cur,
                "orders": _int(n),
                "subtotal_cents": _int(sub),
                "total_cents": _int(tot),
                "refunded_cents": _int(ref),
            }
            for day, status, cur, n, sub, tot, ref in run(stmt)
        ),
    )


# ============================================================================ fit


def _products(product_id: UUID | None, brand_id: UUID | None) -> list[Any]:
    """Conditions on ``order_items`` for a product or brand filter, reaching the lines through
    the variant index (``order_items`` has no index on ``product_id``)."""
    conditions: list[Any] = []
    if product_id is not None:
        variants = sa.select(_V.c.id).where(_V.c.product_id == product_id)
        conditions += [_I.c.variant_id.in_(variants), _I.c.product_id == product_id]
    if brand_id is not None:
        variants = sa.select(_V.c.id).join(_P, _P.c.id == _V.c.product_id).where(_P.c.brand_id == brand_id)
        conditions.append(_I.c.variant_id.in_(variants))
    return conditions


_RECOMMENDED = _I.c.fit_summary["size_label"].astext
_CONFIDENCE = _I.c.fit_summary["confidence"].astext.cast(sa.Integer)
_BETWEEN = _I.c.fit_summary["between_sizes"].astext.cast(sa.Boolean)


def size_recommendations(
    run: Run,
    *,
    since: datetime | None,
    until: datetime | None,
    product_id: UUID | None,
    brand_id: UUID | None,
) -> list[Row]:
    """Per product and recommended size: lines, units and the recommendations' confidence."""
    stmt = (
        sa.select(
            _I.c.product_id,
            _RECOMMENDED,
            sa.func.count(),
            sa.func.sum(_I.c.qty),
            sa.func.count(_I.c.fit_summary),
            sa.func.sum(_CONFIDENCE),
            sa.func.min(_CONFIDENCE),
            sa.func.max(_CONFIDENCE),
            sa.func.count().filter(_BETWEEN),
        )
        .where(*_products(product_id, brand_id), *_window(_I.c.created_at, since, until))
        .group_by(_I.c.product_id, _RECOMMENDED)
    )
    return analytics.in_order(
        "size_recommendations",
        (
            {
                "product_id": str(product),
                "recommended_size": recommended,
                "lines": _int(lines),
                "units": _int(units),
                "with_summary": _int(with_summary),
                "confidence_sum": _int(total),
                "confidence_min": low,
                "confidence_max": high,
                "between_sizes": _int(between),
            }
            for product, recommended, lines, units, with_summary, total, low, high, between in run(stmt)
        ),
    )


def returns_by_size(
    run: Run,
    *,
    since: datetime | None,
    until: datetime | None,
    product_id: UUID | None,
    brand_id: UUID | None,
) -> list[Row]:
    """Per product, recommended size and bought size: lines and units bought, delivered, returned."""
    delivered = _O.c.delivered_at.is_not(None)
    returned = sa.or_(_O.c.status == "return_requested", _O.c.close_reason == "returned")
    stmt = (
        sa.select(
            _I.c.product_id,
            _RECOMMENDED,
            _I.c.size_label,
            sa.func.count(),
            sa.func.sum(_I.c.qty),
            sa.func.count().filter(delivered),
            sa.func.sum(_I.c.qty).filter(delivered),
            sa.func.count().filter(returned),
            sa.func.sum(_I.c.qty).filter(returned),
        )
        .select_from(_I.join(_O, _O.c.id == _I.c.order_id))
        .where(
            *_products(product_id, brand_id),
            *_window(_I.c.created_at, since, until),
            *_orders_of(since, until),
        )
        .group_by(_I.c.product_id, _RECOMMENDED, _I.c.size_label)
    )
    return analytics.in_order(
        "returns_by_size",
        (
            {
                "product_id": str(product),
                "recommended_size": recommended,
                "bought_size": bought,
                **{
                    column: _int(value) for column, value in zip(analytics.RETURN_COUNTS, counts, strict=True)
                },
            }
            for product, recommended, bought, *counts in run(stmt)
        ),
    )


_REASON = _I.c.return_reason["reason"].astext
_ZONE = _I.c.return_reason["zone"].astext


def returns_by_reason(
    run: Run,
    *,
    since: datetime | None,
    until: datetime | None,
    product_id: UUID | None,
    brand_id: UUID | None,
) -> list[Row]:
    """Per product, bought size, return reason and zone: returned lines and units."""
    returned = sa.or_(_O.c.status == "return_requested", _O.c.close_reason == "returned")
    stmt = (
        sa.select(_I.c.product_id, _I.c.size_label, _REASON, _ZONE, sa.func.count(), sa.func.sum(_I.c.qty))
        .select_from(_I.join(_O, _O.c.id == _I.c.order_id))
        .where(
            returned,
            *_products(product_id, brand_id),
            *_window(_I.c.created_at, since, until),
            *_orders_of(since, until),
        )
        .group_by(_I.c.product_id, _I.c.size_label, _REASON, _ZONE)
    )
    return analytics.in_order(
        "returns_by_reason",
        (
            {
                "product_id": str(product),
                "bought_size": bought,
                "reason": reason,
                "zone": zone,
                "lines": _int(lines),
                "units": _int(units),
            }
            for product, bought, reason, zone, lines, units in run(stmt)
        ),
    )


__all__ = [
    "bucket",
    "orders_by_status",
    "referral_funnel",
    "returns_by_reason",
    "returns_by_size",
    "reward_liability",
    "size_recommendations",
]
