"""``ft.analytics``: referral funnel, reward liability, orders over time, size recommendations
and returns, as pandas DataFrames; and Parquet exports of the analytics tables.

The numbers come from the store's :class:`~fittwin_core.ports.AnalyticsQueries` capability
(SQL aggregations on PostgreSQL; the reference functions of
:mod:`fittwin_core.domain.analytics` on the memory store); this service checks the filters
and who asks, then shapes the rows into DataFrames. pandas is an optional extra
(``pip install 'fittwin[notebook]'``), imported only when a DataFrame is built. Money stays in
integer minor units beside a ``currency`` column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    ActorType,
    ConfigurationError,
    Money,
    ValidationError,
    analytics,
)
from fittwin_core.domain.analytics import EXPORT_TABLES, PERIODS, Period, month_label
from fittwin_core.ports import AnalyticsQueries, ExportedFile, UnitOfWork, after, at_least
from fittwin_core.schema import TABLES
from fittwin_core.services.base import Service, as_uuid
from fittwin_core.services.permissions import active_brand_user, authorize

if TYPE_CHECKING:
    import pandas as pd

INSTALL_HINT = "pip install 'fittwin[notebook]'"
FunnelBy = Literal["referrer", "period", "both"]

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "referral_funnel": ("referrer_user_id", "period", *analytics.FUNNEL_COUNTS),
    "reward_liability": ("status", "currency", "entries", "amount_cents"),
    "orders_by_status": (
        "period",
        "status",
        "currency",
        "orders",
        "subtotal_cents",
        "total_cents",
        "refunded_cents",
    ),
    "size_recommendations": (
        "product_id",
        "recommended_size",
        "lines",
        "units",
        "with_summary",
        "confidence_sum",
        "confidence_min",
        "confidence_max",
        "between_sizes",
    ),
    "returns_by_size": ("product_id", "recommended_size", "bought_size", *analytics.RETURN_COUNTS),
    "returns_by_reason": ("product_id", "bought_size", "reason", "zone", "lines", "units"),
}
"""The columns of each query's rows, in order (a query with no rows still has them)."""


_TEXT = frozenset(
    {
        "referrer_user_id",
        "product_id",
        "status",
        "currency",
        "recommended_size",
        "bought_size",
        "reason",
        "zone",
    }
)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ConfigurationError(f"analytics DataFrames need pandas: {INSTALL_HINT}") from None
    return pandas


def _moment(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(field, "must be a datetime with a time zone, or a date")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise ValidationError(field, "must be a datetime with a time zone, or a date")


def _window(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    start, end = _moment(since, "since"), _moment(until, "until")
    if start is not None and end is not None and end <= start:
        raise ValidationError("until", "must be after since")
    return start, end


def _period(value: object) -> Period:
    if value not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    return value


def _optional_id(value: object, field: str) -> UUID | None:
    return None if value is None else as_uuid(value, field)


@attrs.frozen
class AnalyticsSummary:
    """Headline numbers, without pandas (what ``fittwin demo --shoppers`` prints)."""

    orders: dict[str, int]
    """order status → orders."""
    funnel: dict[str, int]
    """links, clicks, conversions, fraud flags and rewards by status → count."""
    liability: dict[str, dict[str, int]]
    """reward status → currency → amount in minor units."""
    recommended_lines: int
    """order lines whose shopper was recommended a size."""
    bought_recommended: int
    """of those, lines bought in the recommended size."""
    returned_units: dict[str, int]
    """``"recommended"`` / ``"other"`` size bought → units returned."""

    def lines(self) -> list[tuple[str, str]]:
        """The summary as ``(label, value)`` pairs for printing."""
        held = self.liability.get("pending_hold", {})
        payable = self.liability.get("payable", {})
        share = self.bought_recommended / self.recommended_lines if self.recommended_lines else 0.0
        f = self.funnel
        return [
            ("orders", ", ".join(f"{n} {status}" for status, n in self.orders.items()) or "none"),
            (
                "referral funnel",
                f"{f['links']} links → {f['clicks']} clicks → {f['conversions']} conversions "
                f"({f['fraud_flags']} flagged)",
            ),
            (
                "rewards",
                ", ".join(f"{f[f'rewards_{s}']} {s}" for s in analytics.REWARD_STATUSES),
            ),
            (
                "reward liability",
                "held "
                + (", ".join(Money(v, c).format() for c, v in sorted(held.items())) or "0")
                + "; payable "
                + (", ".join(Money(v, c).format() for c, v in sorted(payable.items())) or "0"),
            ),
            ("bought the recommended size", f"{share:.0%} of {self.recommended_lines} lines"),
            (
                "units returned",
                f"{self.returned_units['recommended']} in the recommended size, "
                f"{self.returned_units['other']} in another",
            ),
        ]


class Analytics(Service):
    """``ft.analytics``: aggregate views for analysts, as pandas DataFrames, and Parquet exports.

    Platform admins and the system see everything. A brand user (analyst or above) may read the
    fit views (:meth:`size_recommendations`, :meth:`returns_by_size`) of their own brand.
    Filters: ``since`` (inclusive) and ``until`` (exclusive) as time-zone-aware datetimes or
    dates (midnight UTC); ``period`` ``"day"``, ``"week"`` (ISO, from Monday) or ``"month"``.
    """

    # ------------------------------------------------------------------ the store capability

    def queries(self, *, actor: Actor) -> AnalyticsQueries:
        """The store's analytics capability (plain rows, no pandas needed; staff only)."""
        authorize(actor, "analytics.read")
        return self._queries

    @property
    def _queries(self) -> AnalyticsQueries:
        store = self._ctx.store
        if not isinstance(store, AnalyticsQueries):
            raise ConfigurationError(f"{type(store).__name__} does not answer analytics queries")
        return store

    # ------------------------------------------------------------------ referrals and rewards

    def referral_funnel(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        referrer_user_id: UUID | None = None,
        period: Period = "month",
        by: FunnelBy = "both",
        actor: Actor,
    ) -> pd.DataFrame:
        """The referral funnel: links created, clicks, conversions, fraud flags and rewards by
        status, per referrer and period (``by="both"``), per period or per referrer.

        Each step counts in the period it happened in; rewards are ledger entries earned
        (positive amounts), by their current status.
        """
        authorize(actor, "analytics.read")
        if by not in ("referrer", "period", "both"):
            raise ValidationError("by", "must be one of referrer, period, both")
        start, end = _window(since, until)
        rows = self._queries.referral_funnel(
            since=start,
            until=end,
            referrer_user_id=_optional_id(referrer_user_id, "referrer_user_id"),
            period=_period(period),
        )
        frame = self._frame("referral_funnel", rows)
        if by == "both":
            return frame
        key = "period" if by == "period" else "referrer_user_id"
        counts = list(analytics.FUNNEL_COUNTS)
        return frame.groupby(key, as_index=False, sort=True)[counts].sum()

    def reward_liability(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        referrer_user_id: UUID | None = None,
        actor: Actor,
    ) -> pd.DataFrame:
        """What the reward ledger holds: entries and amount (minor units) per status and
        currency. ``pending_hold`` plus ``payable`` is what is owed to referrers."""
        authorize(actor, "analytics.read")
        start, end = _window(since, until)
        rows = self._queries.reward_liability(
            since=start, until=end, referrer_user_id=_optional_id(referrer_user_id, "referrer_user_id")
        )
        return self._frame("reward_liability", rows)

    # ------------------------------------------------------------------ orders

    def orders_by_status(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        period: Period = "month",
        actor: Actor,
    ) -> pd.DataFrame:
        """Orders per period placed, current status and currency, with subtotal, total and
        refunded amounts in minor units."""
        authorize(actor, "analytics.read")
        start, end = _window(since, until)
        rows = self._queries.orders_by_status(since=start, until=end, period=_period(period))
        return self._frame("orders_by_status", rows)

    # ------------------------------------------------------------------ fit

    def size_recommendations(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
        actor: Actor,
    ) -> pd.DataFrame:
        """How sizes were recommended at checkout, per product and recommended size (``None``:
        no size fitted, or no recommendation was made): lines, units, ``share`` of the
        product's lines, and the recommendations' confidence (mean, min, max, 0–100)."""
        start, end = _window(since, until)
        pid, bid = self._fit_scope(actor, product_id, brand_id)
        rows = self._queries.size_recommendations(since=start, until=end, product_id=pid, brand_id=bid)
        frame = self._frame("size_recommendations", rows)
        lines = frame.groupby("product_id")["lines"].transform("sum")
        frame["share"] = (frame["lines"] / lines).astype("float64")
        frame["confidence_mean"] = (
            frame["confidence_sum"] / frame["with_summary"].where(frame["with_summary"] > 0)
        ).astype("float64")
        return frame

    def returns_by_size(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
        actor: Actor,
    ) -> pd.DataFrame:
        """Returns by recommended versus bought size, per product: lines and units bought,
        delivered and returned, ``matches`` (bought the recommended size) and ``return_rate``
        (returned over delivered units; NaN before anything was delivered)."""
        start, end = _window(since, until)
        pid, bid = self._fit_scope(actor, product_id, brand_id)
        rows = self._queries.returns_by_size(since=start, until=end, product_id=pid, brand_id=bid)
        frame = self._frame("returns_by_size", rows)
        same = frame["recommended_size"] == frame["bought_size"]
        frame["matches"] = same.fillna(False).astype("bool")  # no recommendation: not a match
        delivered = frame["delivered_units"].where(frame["delivered_units"] > 0)
        frame["return_rate"] = (frame["returned_units"] / delivered).astype("float64")
        return frame

    def returns_by_reason(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        product_id: UUID | None = None,
        brand_id: UUID | None = None,
        actor: Actor,
    ) -> pd.DataFrame:
        """Why lines came back, per product and bought size: the reason (``too_small``,
        ``too_large``, ``style``, ``quality``, ``other``; missing when none was given), the body
        zone the shopper named, returned lines and units, and ``share`` of the product's
        returned lines."""
        start, end = _window(since, until)
        pid, bid = self._fit_scope(actor, product_id, brand_id)
        rows = self._queries.returns_by_reason(since=start, until=end, product_id=pid, brand_id=bid)
        frame = self._frame("returns_by_reason", rows)
        lines = frame.groupby("product_id")["lines"].transform("sum")
        frame["share"] = (frame["lines"] / lines).astype("float64")
        return frame

    def _fit_scope(
        self, actor: Actor, product_id: object, brand_id: object
    ) -> tuple[UUID | None, UUID | None]:
        """The filters the fit views run with: staff's as given; a brand user's limited to the
        brand (given, or the product's, or their own), which must be theirs."""
        pid = _optional_id(product_id, "product_id")
        bid = _optional_id(brand_id, "brand_id")

        def work(uow: UnitOfWork) -> tuple[UUID | None, UUID | None]:
            if actor.type != ActorType.BRAND_ADMIN:
                authorize(actor, "analytics.fit")
                return pid, bid
            brands = {active_brand_user(uow, actor).brand_id} if bid is None else {bid}
            if pid is not None:
                brands.add(uow.products.get(pid).brand_id)
            member = None
            for brand in brands:
                member = authorize(actor, "analytics.fit", uow=uow, brand_ids={brand})
            assert member is not None
            return pid, member.brand_id

        return self.read(work, actor=actor)

    # ------------------------------------------------------------------ summary

    def summary(self, *, actor: Actor) -> AnalyticsSummary:
        """Headline numbers over all time, computed from the same queries without pandas."""
        authorize(actor, "analytics.read")
        q = self._queries
        orders: dict[str, int] = {}
        for row in q.orders_by_status():
            orders[row["status"]] = orders.get(row["status"], 0) + row["orders"]
        funnel = dict.fromkeys(analytics.FUNNEL_COUNTS, 0)
        for row in q.referral_funnel():
            for column in analytics.FUNNEL_COUNTS:
                funnel[column] += row[column]
        liability: dict[str, dict[str, int]] = {}
        for row in q.reward_liability():
            liability.setdefault(row["status"], {})[row["currency"]] = row["amount_cents"]
        recommended = bought = 0
        returned = {"recommended": 0, "other": 0}
        for row in q.returns_by_size():
            if row["recommended_size"] is not None:
                recommended += row["lines"]
                bought += row["lines"] if row["recommended_size"] == row["bought_size"] else 0
            matched = row["recommended_size"] == row["bought_size"]
            returned["recommended" if matched else "other"] += row["returned_units"]
        ordered = {s: orders[s] for s in analytics.ORDER_STATUSES if s in orders}
        return AnalyticsSummary(ordered, funnel, liability, recommended, bought, returned)

    # ------------------------------------------------------------------ export

    def export_parquet(
        self,
        url: str,
        *,
        tables: Iterable[str] | None = None,
        since: datetime | date | None = None,
        storage_options: Mapping[str, Any] | None = None,
        batch_size: int = 5000,
        actor: Actor,
    ) -> list[ExportedFile]:
        """Write analytics tables as Parquet to an fsspec URL (``file://``, ``memory://``,
        ``s3://bucket/prefix`` with ``storage_options`` for s3fs), Hive-partitioned by the month
        rows were created in: ``<url>/<table>/month=YYYY-MM/part-0.parquet``.

        ``tables`` picks from the allow-list :data:`~fittwin_core.domain.analytics.EXPORT_TABLES`
        (default: all of it); only its columns leave, so no personal data does (no sealed
        column, email, username, name, ip or device hash, body measurement: a test holds the
        allow-list to the declaration of personal data in :mod:`fittwin_core.schema`). ``since`` exports
        the months from the one holding ``since`` on, each month whole: those months' files are
        replaced and older months are left as they are. Returns the files written.
        """
        authorize(actor, "analytics.export")
        if not isinstance(url, str) or not url:
            raise ValidationError("url", "must be an fsspec URL such as s3://bucket/prefix")
        chosen = self._export_tables(tables)
        start, _ = _window(since, None)
        first_month = None if start is None else month_label(start)
        floor = None if first_month is None else datetime.fromisoformat(f"{first_month}-01T00:00:00+00:00")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 100_000:
            raise ValidationError("batch_size", "must be an integer from 1 to 100000")
        sink = self._ctx.exports
        if sink is None:
            raise ConfigurationError(
                "no export sink is configured: build FitTwin with fittwin_adapters.connect() "
                f"and install the notebook extra ({INSTALL_HINT})"
            )
        written: list[ExportedFile] = []
        for name in chosen:
            spec = EXPORT_TABLES[name]
            writer = sink.open_table(
                url, name, spec.columns, replace_from=first_month, storage_options=storage_options
            )
            try:
                for month, rows in self._export_batches(name, floor, batch_size, actor):
                    writer.write(month, rows)
            except BaseException:
                writer.abort()
                raise
            written.extend(writer.commit())
        return written

    def _export_tables(self, tables: Iterable[str] | None) -> list[str]:
        if tables is None:
            return list(EXPORT_TABLES)
        if isinstance(tables, str):
            tables = [tables]
        chosen = []
        for n, name in enumerate(tables):
            if name not in EXPORT_TABLES:
                allowed = ", ".join(EXPORT_TABLES)
                raise ValidationError(f"tables[{n}]", f"is not an exportable table (allowed: {allowed})")
            if name not in chosen:
                chosen.append(name)
        return chosen

    def _export_batches(
        self, table: str, floor: datetime | None, batch_size: int, actor: Actor
    ) -> Iterable[tuple[str, list[dict[str, Any]]]]:
        """The table's rows projected for export, in key order, batch by batch, grouped by month."""
        spec = EXPORT_TABLES[table]
        (key,) = TABLES[table].key
        last: Any = None
        with self._ctx.store.unit_of_work(actor) as uow:
            repo = getattr(uow, table)
            while True:
                filters: dict[str, Any] = {}
                if last is not None:
                    filters[key] = after(last)
                if floor is not None:
                    filters["created_at"] = at_least(floor)
                batch: Sequence[Any] = repo.where(order_by=key, limit=batch_size, **filters)
                if not batch:
                    return
                by_month: dict[str, list[dict[str, Any]]] = {}
                for entity in batch:
                    by_month.setdefault(month_label(entity.created_at), []).append(spec.project(entity))
                yield from by_month.items()
                last = getattr(batch[-1], key)
                uow.rollback()  # nothing was written; end the snapshot between batches

    # ------------------------------------------------------------------ frames

    def _frame(self, query: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
        pandas = _pandas()
        columns = COLUMNS[query]
        frame = pandas.DataFrame.from_records(rows, columns=list(columns))
        for column in columns:
            if column == "period":
                frame[column] = pandas.to_datetime(frame[column], format="%Y-%m-%d")
            elif column in ("confidence_min", "confidence_max"):
                frame[column] = frame[column].astype("Int64")
            elif column in _TEXT:
                frame[column] = frame[column].astype("string")
            else:
                frame[column] = frame[column].astype("int64")
        result: pd.DataFrame = frame
        return result


__all__ = ["COLUMNS", "INSTALL_HINT", "Analytics", "AnalyticsSummary"]
