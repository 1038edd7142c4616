"""Charts, entities and hypothesis strategies shared by the fit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from fittwin_core.domain.catalog import FitMap, SizeChart
from fittwin_core.domain.users import BodyMetrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHART_ID = UUID("01900000-0000-7000-8000-000000000001")
BRAND_ID = UUID("01900000-0000-7000-8000-000000000002")
FIT_MAP_ID = UUID("01900000-0000-7000-8000-000000000003")

# EN 13402-3 letter codes for men, chest girth (cm). Values as transcribed by a secondary
# source (see docs/fit.md, "A published table"); the standard itself was not available here.
EN13402_MEN = {
    "zones": {"chest": {"tolerance": 2.0}},
    "sizes": [
        {"label": "S", "chest": [86, 94]},
        {"label": "M", "chest": [94, 102]},
        {"label": "L", "chest": [102, 110]},
        {"label": "XL", "chest": [110, 118]},
        {"label": "XXL", "chest": [118, 129]},
    ],
}

TOPS = {
    "zones": {"chest": {"tolerance": 2.0, "weight": 1.0}, "waist": {"tolerance": 3.0, "weight": 0.5}},
    "sizes": [
        {"label": "S", "chest": [86, 94], "waist": [74, 82]},
        {"label": "M", "chest": [94, 102], "waist": [82, 90]},
        {"label": "L", "chest": [102, 110], "waist": [90, 98]},
        {"label": "XL", "chest": [110, 118], "waist": [98, 106]},
    ],
}

JEANS = {
    "zones": {"waist": {"tolerance": 2.0}, "hip": {"tolerance": 2.0}},
    "sizes": [
        {"label": "S", "waist": [70, 76], "hip": [90, 96]},
        {"label": "M", "waist": [76, 82], "hip": [96, 102]},
        {"label": "L", "waist": [82, 88], "hip": [102, 108]},
        {"label": "XL", "waist": [88, 94], "hip": [108, 114]},
    ],
}


def size_chart(
    rules: dict[str, Any], garment_type: str = "tops", grading: dict[str, Any] | None = None
) -> SizeChart:
    return SizeChart(
        id=CHART_ID,
        brand_id=BRAND_ID,
        garment_type=garment_type,
        measurement_rules=rules,
        grading_rules=grading,
        created_at=NOW,
        updated_at=NOW,
    )


def fit_map(rule_set: dict[str, Any], confidence_model: dict[str, Any] | None = None) -> FitMap:
    return FitMap(
        id=FIT_MAP_ID,
        brand_id=BRAND_ID,
        garment_type="tops",
        rule_set=rule_set,
        confidence_model=confidence_model,
        created_at=NOW,
        updated_at=NOW,
    )


def body(**measurements: Any) -> BodyMetrics:
    values: dict[str, Any] = {"height_cm": 178.0, "weight_kg": 78.0}
    values.update(measurements)
    return BodyMetrics(**values)


@st.composite
def range_charts(draw: st.DrawFn, zones: tuple[str, ...] = ("chest", "waist")) -> dict[str, Any]:
    """Random valid body charts: 2–12 sizes of contiguous or gapped ranges per zone."""
    n = draw(st.integers(2, 12))
    spec: dict[str, Any] = {}
    columns: dict[str, list[list[float]]] = {}
    for zone in zones:
        start = draw(st.integers(50, 90))
        widths = draw(st.lists(st.integers(2, 10), min_size=n, max_size=n))
        gaps = draw(st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=n, max_size=n))
        lows, position = [], float(start)
        ranges = []
        for width, gap in zip(widths, gaps, strict=True):
            position += gap
            ranges.append([position, position + width])
            lows.append(position)
            position += width
        columns[zone] = ranges
        spec[zone] = {
            "tolerance": draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
            "weight": draw(st.sampled_from([0.5, 1.0, 2.0])),
        }
    sizes = [{"label": f"S{i:02d}", **{z: columns[z][i] for z in zones}} for i in range(n)]
    return {"zones": spec, "sizes": sizes}
