"""What the analytics queries mean, as pure functions over entities.

Each function here is the reference definition of one analytics query: the memory store runs
it over its rows, the PostgreSQL store computes the same rows in SQL, and the analytics
contract checks that both agree. Rows are plain dicts of JSON-able values (UUIDs and dates as
strings, money as integer minor units next to its currency) in a canonical order.

Time: every row is placed by the ``created_at`` of the record it counts (a click by its click
time, a reward by the time it was earned, an order line by the time the order was placed).
``since`` is inclusive, ``until`` exclusive. Periods start in UTC: a ``day``, an ISO ``week``
(Monday) or a calendar ``month``, labelled by their first day (``"2026-01-01"``).

The module also holds the export allow-list: which tables and columns may leave FitTwin for
columnar analytics (no sealed column, no email, username or name, no ip or device hash, no
body measurements).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import attrs

from fittwin_core.domain.brands import Brand
from fittwin_core.domain.catalog import Product, ProductVariant
from fittwin_core.domain.orders import CloseReason, Order, OrderItem, OrderStatus
from fittwin_core.domain.referrals import Referral, ReferralEvent, ReferralEventType
from fittwin_core.domain.rewards import RewardLedgerEntry, RewardStatus

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
"""The time buckets queries group by."""

Row = dict[str, Any]

REWARD_STATUSES: tuple[str, ...] = tuple(s.value for s in RewardStatus)
ORDER_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus)


# ============================================================================ time


def period_start(moment: datetime, period: Period) -> date:
    """The first day (UTC) of the ``period`` holding ``moment``."""
    day = moment.astimezone(UTC).date()
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


@attrs.frozen
class Window:
    """A time range ``[since, until)``; either end may be open (``None``)."""

    since: datetime | None = None
    until: datetime | None = None

    def __contains__(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until


# ============================================================================ canonical order


def _text_key(value: str | None) -> tuple[bool, str]:
    # None first, then by code point (not by any database collation).
    return (value is not None, value or "")


def _status_key(value: str, labels: tuple[str, ...]) -> int:
    return labels.index(value)


SORT_KEYS: Mapping[str, Callable[[Row], tuple[Any, ...]]] = {
    "referral_funnel": lambda r: (r["referrer_user_id"], r["period"]),
    "reward_liability": lambda r: (_status_key(r["status"], REWARD_STATUSES), r["currency"]),
    "orders_by_status": lambda r: (
        r["period"],
        _status_key(r["status"], ORDER_STATUSES),
        r["currency"],
    ),
    "size_recommendations": lambda r: (r["product_id"], _text_key(r["recommended_size"])),
    "returns_by_size": lambda r: (
        r["product_id"],
        _text_key(r["recommended_size"]),
        r["bought_size"],
    ),
    "returns_by_reason": lambda r: (
        r["product_id"],
        r["bought_size"],
        _text_key(r["reason"]),
        _text_key(r["zone"]),
    ),
}
"""The order each query's rows come in (every store sorts with these keys)."""


def in_order(query: str, rows: Iterable[Row]) -> list[Row]:
    """``rows`` of ``query`` in the canonical order."""
    return sorted(rows, key=SORT_KEYS[query])


# ============================================================================ the queries


def referral_funnel(
    referrals: Iterable[Referral],
    events: Iterable[ReferralEvent],
    entries: Iterable[RewardLedgerEntry],
    *,
    window: Window = Window(),
    referrer_user_id: UUID | None = None,
    period: Period = "month",
) -> list[Row]:
    """Per referrer and period: links created, clicks, conversions, fraud flags, and rewards
    earned (ledger entries with a positive amount) by their current status."""
    links = [r for r in referrals if referrer_user_id is None or r.referrer_user_id == referrer_user_id]
    referrer_of = {r.rid: r.referrer_user_id for r in links}
    rows: dict[tuple[str, str], Row] = {}

    def bump(rid: str, at: datetime, column: str) -> None:
        referrer = referrer_of.get(rid)
        if referrer is None or at not in window:
            return
        key = (str(referrer), period_start(at, period).isoformat())
        row = rows.get(key)
        if row is None:
            row = rows[key] = _funnel_row(*key)
        row[column] += 1

    for referral in links:
        bump(referral.rid, referral.created_at, "links")
    for event in events:
        bump(event.rid, event.created_at, _EVENT_COLUMNS[event.event_type])
    for entry in entries:
        if entry.amount_cents > 0:
            bump(entry.rid, entry.created_at, f"rewards_{entry.status.value}")
    return in_order("referral_funnel", rows.values())


_EVENT_COLUMNS = {
    ReferralEventType.CLICK: "clicks",
    ReferralEventType.CONVERSION: "conversions",
    ReferralEventType.FRAUD_FLAG: "fraud_flags",
}
FUNNEL_COUNTS: tuple[str, ...] = (
    "links",
    "clicks",
    "conversions",
    "fraud_flags",
    *(f"rewards_{status}" for status in REWARD_STATUSES),
)
"""The count columns of a funnel row, in funnel order."""


def _funnel_row(referrer: str, period: str) -> Row:
    return {"referrer_user_id": referrer, "period": period, **dict.fromkeys(FUNNEL_COUNTS, 0)}


def reward_liability(
    referrals: Iterable[Referral],
    entries: Iterable[RewardLedgerEntry],
    *,
    window: Window = Window(),
    referrer_user_id: UUID | None = None,
) -> list[Row]:
    """Per ledger status and currency: how many entries and their sum in minor units
    (clawbacks are negative entries and reduce the sum)."""
    rids = (
        None
        if referrer_user_id is None
        else {r.rid for r in referrals if r.referrer_user_id == referrer_user_id}
    )
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        if (rids is not None and entry.rid not in rids) or entry.created_at not in window:
            continue
        acc = sums[(entry.status.value, entry.currency)]
        acc[0] += 1
        acc[1] += entry.amount_cents
    return in_order(
        "reward_liability",
        (
            {"status": status, "currency": currency, "entries": n, "amount_cents": amount}
            for (status, currency), (n, amount) in sums.items()
        ),
    )


def orders_by_status(
    orders: Iterable[Order], *, window: Window = Window(), period: Period = "month"
) -> list[Row]:
    """Per period (of placement), current status and currency: orders and their money
    (subtotal, total, refunded) in minor units."""
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for order in orders:
        if order.created_at not in window:
            continue
        key = (period_start(order.created_at, period).isoformat(), order.status.value, order.totals.currency)
        acc = sums[key]
        acc[0] += 1
        acc[1] += order.totals.subtotal
        acc[2] += order.totals.total
        acc[3] += order.refunded_cents
    return in_order(
        "orders_by_status",
        (
            {
                "period": p,
                "status": s,
                "currency": c,
                "orders": n,
                "subtotal_cents": sub,
                "total_cents": tot,
                "refunded_cents": ref,
            }
            for (p, s, c), (n, sub, tot, ref) in sums.items()
        ),
    )


def product_filter(
    products: Iterable[Product], *, product_id: UUID | None = None, brand_id: UUID | None = None
) -> frozenset[UUID] | None:
    """The products a fit query may count (``None``: every product)."""
    if product_id is None and brand_id is None:
        return None
    return frozenset(
        p.id
        for p in products
        if (product_id is None or p.id == product_id) and (brand_id is None or p.brand_id == brand_id)
    )


def size_recommendations(
    items: Iterable[OrderItem], *, window: Window = Window(), products: frozenset[UUID] | None = None
) -> list[Row]:
    """Per product and recommended size (the ``fit_summary`` snapshot on each order line;
    ``None`` when no size fitted or the line has no summary): lines, units, how many lines had a
    summary, the sum, minimum and maximum of their confidence, and how many were between sizes."""
    rows: dict[tuple[str, str | None], Row] = {}
    for item in items:
        if (products is not None and item.product_id not in products) or item.created_at not in window:
            continue
        summary = item.fit_summary
        key = (str(item.product_id), None if summary is None else summary.size_label)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "product_id": key[0],
                "recommended_size": key[1],
                "lines": 0,
                "units": 0,
                "with_summary": 0,
                "confidence_sum": 0,
                "confidence_min": None,
                "confidence_max": None,
                "between_sizes": 0,
            }
        row["lines"] += 1
        row["units"] += item.qty
        if summary is not None:
            row["with_summary"] += 1
            row["confidence_sum"] += summary.confidence
            low, high = row["confidence_min"], row["confidence_max"]
            row["confidence_min"] = summary.confidence if low is None else min(low, summary.confidence)
            row["confidence_max"] = summary.confidence if high is None else max(high, summary.confidence)
            row["between_sizes"] += int(summary.between_sizes)
    return in_order("size_recommendations", rows.values())


def is_returned(order: Order) -> bool:
    """Whether the shopper sent the order back (a return requested or received)."""
    return order.status == OrderStatus.RETURN_REQUESTED or order.close_reason == CloseReason.RETURNED


def returns_by_size(
    items: Iterable[OrderItem],
    orders: Mapping[UUID, Order],
    *,
    window: Window = Window(),
    products: frozenset[UUID] | None = None,
) -> list[Row]:
    """Per product, recommended size and bought size: lines and units, those delivered, and
    those returned (``return_requested``, or closed as returned)."""
    rows: dict[tuple[str, str | None, str], Row] = {}
    for item in items:
        if (products is not None and item.product_id not in products) or item.created_at not in window:
            continue
        order = orders[item.order_id]
        recommended = None if item.fit_summary is None else item.fit_summary.size_label
        key = (str(item.product_id), recommended, item.size_label)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "product_id": key[0],
                "recommended_size": recommended,
                "bought_size": item.size_label,
                **dict.fromkeys(RETURN_COUNTS, 0),
            }
        row["lines"] += 1
        row["units"] += item.qty
        if order.delivered_at is not None:
            row["delivered_lines"] += 1
            row["delivered_units"] += item.qty
        if is_returned(order):
            row["returned_lines"] += 1
            row["returned_units"] += item.qty
    return in_order("returns_by_size", rows.values())


def returns_by_reason(
    items: Iterable[OrderItem],
    orders: Mapping[UUID, Order],
    *,
    window: Window = Window(),
    products: frozenset[UUID] | None = None,
) -> list[Row]:
    """Per product, bought size, return reason and zone: returned lines and units (orders
    ``return_requested`` or closed as returned). ``reason`` and ``zone`` are ``None`` when the
    shopper gave none (returns recorded before reasons were)."""
    rows: dict[tuple[str, str, str | None, str | None], Row] = {}
    for item in items:
        if (products is not None and item.product_id not in products) or item.created_at not in window:
            continue
        if not is_returned(orders[item.order_id]):
            continue
        why = item.return_reason
        key = (
            str(item.product_id),
            item.size_label,
            None if why is None else why.reason.value,
            None if why is None else why.zone,
        )
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "product_id": key[0],
                "bought_size": key[1],
                "reason": key[2],
                "zone": key[3],
                "lines": 0,
                "units": 0,
            }
        row["lines"] += 1
        row["units"] += item.qty
    return in_order("returns_by_reason", rows.values())


RETURN_COUNTS: tuple[str, ...] = (
    "lines",
    "units",
    "delivered_lines",
    "delivered_units",
    "returned_lines",
    "returned_units",
)


# ============================================================================ export allow-list

ColumnType = Literal["string", "int64", "bool", "timestamp", "date"]


@attrs.frozen
class ExportColumn:
    """A column of an exported table and its type (Parquet: string, int64, bool,
    timestamp[us, UTC] or date32)."""

    name: str
    type: ColumnType


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _v(value: Any) -> Any:
    return None if value is None else value.value


@attrs.frozen
class ExportTable:
    """An analytics table that may be exported: its columns and how a row is projected onto
    them. Rows go into the month of ``created_at``."""

    name: str
    entity: type[Any]
    columns: tuple[ExportColumn, ...]
    project: Callable[[Any], Row]

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)


def _cols(*spec: str) -> tuple[ExportColumn, ...]:
    out = []
    for item in spec:
        name, kind = item.split(":")
        out.append(ExportColumn(name, kind))  # type: ignore[arg-type]
    return tuple(out)


def _order_row(o: Order) -> Row:
    t = o.totals
    return {
        "id": str(o.id),
        "user_id": str(o.user_id),
        "status": o.status.value,
        "rid": o.rid,
        "currency": t.currency,
        "subtotal_cents": t.subtotal,
        "tax_cents": t.tax,
        "shipping_cents": t.shipping,
        "discounts_cents": t.discounts,
        "total_cents": t.total,
        "refunded_cents": o.refunded_cents,
        "close_reason": _v(o.close_reason),
        "paid_at": o.paid_at,
        "delivered_at": o.delivered_at,
        "closed_at": o.closed_at,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


def _item_row(i: OrderItem) -> Row:
    f = i.fit_summary
    return {
        "id": str(i.id),
        "order_id": str(i.order_id),
        "product_id": str(i.product_id),
        "variant_id": str(i.variant_id),
        "sku": i.sku,
        "size_label": i.size_label,
        "qty": i.qty,
        "unit_price_cents": i.unit_price_cents,
        "currency": i.currency,
        "recommended_size": None if f is None else f.size_label,
        "recommendation_confidence": None if f is None else f.confidence,
        "between_sizes": None if f is None else f.between_sizes,
        "size_chart_id": None if f is None else str(f.size_chart_id),
        "fit_engine_version": None if f is None else f.engine_version,
        "return_reason": None if i.return_reason is None else i.return_reason.reason.value,
        "return_zone": None if i.return_reason is None else i.return_reason.zone,
        "created_at": i.created_at,
    }


def _referral_row(r: Referral) -> Row:
    p = r.policy_snapshot
    return {
        "rid": r.rid,
        "referrer_user_id": str(r.referrer_user_id),
        "target_product_id": _s(r.target_product_id),
        "reward_percent": str(p.reward_percent),
        "hold_days": p.hold_days,
        "attribution_window_days": p.attribution_window_days,
        "expires_at": r.expires_at,
        "created_at": r.created_at,
    }


def _event_row(e: ReferralEvent) -> Row:
    kind = e.metadata.get("kind") if e.event_type == ReferralEventType.FRAUD_FLAG else None
    score = e.metadata.get("score") if e.event_type == ReferralEventType.FRAUD_FLAG else None
    return {
        "id": str(e.id),
        "rid": e.rid,
        "event_type": e.event_type.value,
        "order_id": _s(e.order_id),
        "fraud_kind": kind if isinstance(kind, str) else None,
        "fraud_score": score if isinstance(score, int) and not isinstance(score, bool) else None,
        "created_at": e.created_at,
    }


def _entry_row(e: RewardLedgerEntry) -> Row:
    return {
        "id": str(e.id),
        "rid": e.rid,
        "order_id": str(e.order_id),
        "amount_cents": e.amount_cents,
        "currency": e.currency,
        "status": e.status.value,
        "hold_until": e.hold_until,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


def _product_row(p: Product) -> Row:
    return {
        "id": str(p.id),
        "brand_id": str(p.brand_id),
        "title": p.title,
        "category": p.category,
        "status": p.status.value,
        "size_chart_id": str(p.size_chart_id),
        "fit_map_id": _s(p.fit_map_id),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def _variant_row(v: ProductVariant) -> Row:
    return {
        "id": str(v.id),
        "product_id": str(v.product_id),
        "sku": v.sku,
        "size_label": v.size_label,
        "color": v.color,
        "price_cents": v.price_cents,
        "currency": v.currency,
        "inventory": v.inventory,
        "status": v.status.value,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
    }


def _brand_row(b: Brand) -> Row:
    return {
        "id": str(b.id),
        "name": b.name,
        "onboarding_status": b.onboarding_status.value,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    }


EXPORT_TABLES: Mapping[str, ExportTable] = {
    t.name: t
    for t in (
        ExportTable(
            "orders",
            Order,
            _cols(
                "id:string",
                "user_id:string",
                "status:string",
                "rid:string",
                "currency:string",
                "subtotal_cents:int64",
                "tax_cents:int64",
                "shipping_cents:int64",
                "discounts_cents:int64",
                "total_cents:int64",
                "refunded_cents:int64",
                "close_reason:string",
                "paid_at:timestamp",
                "delivered_at:timestamp",
                "closed_at:timestamp",
                "created_at:timestamp",
                "updated_at:timestamp",
            ),
            _order_row,
        ),
        ExportTable(
            "order_items",
            OrderItem,
            _cols(
                "id:string",
                "order_id:string",
                "product_id:string",
                "variant_id:string",
                "sku:string",
                "size_label:string",
                "qty:int64",
                "unit_price_cents:int64",
                "currency:string",
                "recommended_size:string",
                "recommendation_confidence:int64",
                "between_sizes:bool",
                "size_chart_id:string",
                "fit_engine_version:string",
                "return_reason:string",
                "return_zone:string",
                "created_at:timestamp",
            ),
            _item_row,
        ),
        ExportTable(
            "referrals",
            Referral,
            _cols(
                "rid:string",
                "referrer_user_id:string",
                "target_product_id:string",
                "reward_percent:string",
                "hold_days:int64",
                "attribution_window_days:int64",
                "expires_at:timestamp",
                "created_at:timestamp",
            ),
            _referral_row,
        ),
        ExportTable(
            "referral_events",
            ReferralEvent,
            _cols(
                "id:string",
                "rid:string",
                "event_type:string",
                "order_id:string",
                "fraud_kind:string",
                "fraud_score:int64",
                "created_at:timestamp",
            ),
            _event_row,
        ),
        ExportTable(
            "reward_ledger_entries",
            RewardLedgerEntry,
            _cols(
                "id:string",
                "rid:string",
                "order_id:string",
                "amount_cents:int64",
                "currency:string",
                "status:string",
                "hold_until:date",
                "created_at:timestamp",
                "updated_at:timestamp",
            ),
            _entry_row,
        ),
        ExportTable(
            "products",
            Product,
            _cols(
                "id:string",
                "brand_id:string",
                "title:string",
                "category:string",
                "status:string",
                "size_chart_id:string",
                "fit_map_id:string",
                "created_at:timestamp",
                "updated_at:timestamp",
            ),
            _product_row,
        ),
        ExportTable(
            "product_variants",
            ProductVariant,
            _cols(
                "id:string",
                "product_id:string",
                "sku:string",
                "size_label:string",
                "color:string",
                "price_cents:int64",
                "currency:string",
                "inventory:int64",
                "status:string",
                "created_at:timestamp",
                "updated_at:timestamp",
            ),
            _variant_row,
        ),
        ExportTable(
            "brands",
            Brand,
            _cols(
                "id:string",
                "name:string",
                "onboarding_status:string",
                "created_at:timestamp",
                "updated_at:timestamp",
            ),
            _brand_row,
        ),
    )
}
"""The tables :meth:`Analytics.export_parquet` may write, with the only columns that leave."""


def month_label(moment: datetime) -> str:
    """``"2026-01"``: the Hive partition value of the UTC month holding ``moment``."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


__all__ = [
    "EXPORT_TABLES",
    "FUNNEL_COUNTS",
    "PERIODS",
    "RETURN_COUNTS",
    "SORT_KEYS",
    "ExportColumn",
    "ExportTable",
    "Period",
    "Row",
    "Window",
    "in_order",
    "is_returned",
    "month_label",
    "orders_by_status",
    "period_start",
    "product_filter",
    "referral_funnel",
    "returns_by_reason",
    "returns_by_size",
    "reward_liability",
    "size_recommendations",
]
