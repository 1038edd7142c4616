"""What happened to sold order lines, as evidence for calibration and fit learning. Pure code.

A line's **size outcome** is known once its order settled: *kept* when the order closed as
completed (delivered, and the return window passed or it was closed without a return), and
*too small* / *too large* when the order came back with that reason on the line. Lines returned
for style, quality or another reason, returned without a reason, or not yet settled say nothing
about size and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from fittwin_core.domain.analytics import is_returned
from fittwin_core.domain.orders import CloseReason, Order, OrderItem, ReturnReasonCode
from fittwin_core.fit.charts import Chart
from fittwin_core.fit.learning import FitObservation, Outcome


def size_outcome(order: Order, item: OrderItem) -> tuple[Outcome, str | None] | None:
    """``(outcome, zone named by the shopper)`` of a settled line, or ``None`` when the line says
    nothing about its size."""
    if order.close_reason == CloseReason.COMPLETED:
        return "kept", None
    reason = item.return_reason
    if not is_returned(order) or reason is None or not reason.about_size:
        return None
    outcome: Outcome = "too_small" if reason.reason == ReturnReasonCode.TOO_SMALL else "too_large"
    return outcome, reason.zone


def kept_recommended(order: Order, item: OrderItem) -> tuple[float, float, bool] | None:
    """``(shown confidence 0–1, engine score 0–1, kept)`` for a line bought in the recommended size
    whose size outcome is known; ``None`` otherwise (what calibration is fitted on)."""
    summary = item.fit_summary
    if summary is None or summary.size_label is None or summary.score is None:
        return None
    if summary.size_label != item.size_label:
        return None
    outcome = size_outcome(order, item)
    if outcome is None:
        return None
    return summary.confidence / 100.0, summary.score, outcome[0] == "kept"


def observations(
    items: Iterable[OrderItem], orders: Mapping[UUID, Order], charts: Mapping[UUID, Chart]
) -> dict[str, list[FitObservation]]:
    """Per zone, the fit evidence of settled lines: the body's *measured* value (from the line's
    fit summary; estimated values are too uncertain to learn from) against the bought size's
    range in the chart, with the outcome. A size return counts for the zone the shopper named;
    one that names no zone is left out (which zone was wrong is not known)."""
    out: dict[str, list[FitObservation]] = {}
    for item in items:
        summary = item.fit_summary
        order = orders.get(item.order_id)
        chart = None if summary is None else charts.get(summary.size_chart_id)
        if summary is None or order is None or chart is None or item.size_label not in chart.labels:
            continue
        known = size_outcome(order, item)
        if known is None:
            continue
        outcome, zone_named = known
        size = chart.labels.index(item.size_label)
        body = {z.zone: z.body_cm for z in summary.zones if not z.estimated}
        placed: dict[str, tuple[float, float]] = {}
        for rule in chart.zones:
            if rule.name in body:
                low, high = rule.lows[size], rule.highs[size]
                placed[rule.name] = (body[rule.name] - (low + high) / 2.0, (high - low) / 2.0)
        if not placed:
            continue
        named = [zone_named] if zone_named in placed else []
        targets = list(placed) if outcome == "kept" else named
        for zone in targets:
            position, half = placed[zone]
            out.setdefault(zone, []).append(FitObservation(position, half, outcome))
    return out


__all__ = ["kept_recommended", "observations", "size_outcome"]
