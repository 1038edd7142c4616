"""Vectorised recommendations for many bodies (notebooks, analytics, back-fills).

``recommend_batch`` repeats :func:`fittwin_core.fit.engine.recommend` with numpy, operation for
operation, so labels, ``between_sizes`` and confidences are identical to the scalar path and
probabilities are bit-identical too (both use :func:`fittwin_core.fit._numerics.exp`).
numpy (and pandas for DataFrames) are imported lazily: install ``fittwin[notebook]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fittwin_core.domain.catalog import FitMap, SizeChart
from fittwin_core.domain.errors import ConfigurationError, ValidationError
from fittwin_core.domain.users import HEIGHT_RANGE_CM, MEASUREMENT_RANGES, WEIGHT_RANGE_KG, StylePreferences
from fittwin_core.fit import _numerics
from fittwin_core.fit.charts import Chart
from fittwin_core.fit.engine import BETWEEN_SCORE_GAP, NEGLIGIBLE_SCORE, Plan, calibrate, resolve
from fittwin_core.fit.estimation import (
    COEFFICIENTS,
    ESTIMABLE,
    ESTIMATE_SD_CM,
    FLAGGED_ESTIMATE_SD_CM,
    MEASURED_SD_CM,
    POOLED,
    SEX_CODES,
    VALID_RANGES,
)
from fittwin_core.fit.fitmaps import FitRules

CHUNK_ROWS = 65536
"""Rows scored at a time (keeps the working set in cache)."""


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError("recommend_batch needs numpy: pip install 'fittwin[notebook]'") from None
    return numpy


def exp_array(x: Any) -> Any:
    """Element-wise :func:`fittwin_core.fit._numerics.exp` (bit-identical results)."""
    np = _numpy()
    clipped = np.minimum(x, _numerics.EXP_MAX)
    k = np.floor(clipped * _numerics.INV_LN2 + 0.5)
    r = (clipped - k * _numerics.LN2_HI) - k * _numerics.LN2_LO
    taylor = _numerics._TAYLOR
    p = np.full_like(r, taylor[0])
    for c in taylor[1:]:
        p = p * r + c
    p = p * r + 1.0
    p = p * r + 1.0
    out = np.ldexp(p, k.astype(np.int64))
    return np.where(x < _numerics.EXP_MIN, 0.0, out)


def _columns(bodies: Any) -> tuple[dict[str, Any], int, bool]:
    """Column name → array, the row count, and whether the input was a DataFrame."""
    np = _numpy()
    is_frame = type(bodies).__name__ == "DataFrame" and hasattr(bodies, "columns")
    if is_frame:
        columns = {str(name): bodies[name].to_numpy() for name in bodies.columns}
    elif isinstance(bodies, Mapping):
        columns = {str(name): np.asarray(values) for name, values in bodies.items()}
    else:
        raise ValidationError("bodies", "must be a pandas DataFrame or a mapping of column name to array")
    for name in ("height_cm", "weight_kg"):
        if name not in columns:
            raise ValidationError(f"bodies.{name}", "is a required column")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValidationError("bodies", "columns must all have the same length")
    return columns, lengths.pop(), is_frame


def _float_column(columns: Mapping[str, Any], name: str, low: float, high: float, required: bool) -> Any:
    np = _numpy()
    raw = columns[name]
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"bodies.{name}", "must hold numbers") from None
    missing = np.isnan(values)
    if required and missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValidationError(f"bodies.{name}[{row}]", "is required")
    bad = ~missing & ~((values >= low) & (values <= high))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"bodies.{name}[{row}]", f"must be between {low:g} and {high:g}")
    return values


def _sex_codes(columns: Mapping[str, Any], n: int) -> Any:
    np = _numpy()
    codes = np.full(n, SEX_CODES[POOLED], dtype=np.int64)
    if "sex" not in columns:
        return codes
    raw = np.asarray(columns["sex"], dtype=object)
    female, male = raw == "female", raw == "male"
    empty = np.equal(raw, None) | (raw != raw)  # None or NaN  # noqa: PLR0124
    bad = ~(female | male | empty)
    if bad.any():
        raise ValidationError(f"bodies.sex[{int(np.flatnonzero(bad)[0])}]", "must be female, male or empty")
    codes[female] = SEX_CODES["female"]
    codes[male] = SEX_CODES["male"]
    return codes


def recommend_batch(  # noqa: PLR0915 - one pass over the chart's zones, operation for operation
    bodies: Any,
    size_chart: SizeChart | Chart,
    fit_map: FitMap | FitRules | None = None,
    preferences: StylePreferences | None = None,
) -> Any:
    """Recommend sizes for many bodies at once, with results identical to :func:`recommend`.

    ``bodies`` is a pandas DataFrame or a mapping of column → array with columns named like
    ``BodyMetrics`` fields (``height_cm``, ``weight_kg``, optional ``sex``, ``chest_cm``, ...;
    missing values as NaN) and optional boolean ``<measurement>_estimated`` columns. Returns a
    DataFrame (for a DataFrame) or a dict of arrays with ``size_label``, ``confidence``,
    ``between_sizes`` and one ``p_<label>`` probability column per size.
    """
    np = _numpy()
    plan = resolve(size_chart, fit_map, preferences)
    columns, n, is_frame = _columns(bodies)
    height = _float_column(columns, "height_cm", *HEIGHT_RANGE_CM, required=True)
    weight = _float_column(columns, "weight_kg", *WEIGHT_RANGE_KG, required=True)
    sex = _sex_codes(columns, n)

    values: list[Any] = []
    coefs: list[Any] = []
    for field, zone_weight in zip(plan.fields, plan.weights, strict=True):
        if field == "height_cm":
            value = height.copy()
        elif field in columns:
            value = _float_column(columns, field, *MEASUREMENT_RANGES[field], required=False)
        else:
            value = np.full(n, np.nan)
        missing = np.isnan(value)
        flagged_col = columns.get(f"{field}_estimated")
        flagged = (
            np.zeros(n, dtype=bool) if flagged_col is None else np.asarray(flagged_col, dtype=bool) & ~missing
        )
        sd = np.full(n, MEASURED_SD_CM)
        if field in ESTIMABLE:
            table = COEFFICIENTS[field]
            keys = ("female", "male", POOLED)
            a = np.array([table[k][0] for k in keys])[sex]
            b_h = np.array([table[k][1] for k in keys])[sex]
            b_w = np.array([table[k][2] for k in keys])[sex]
            low, high = MEASUREMENT_RANGES[field]
            estimate = np.minimum(np.maximum((a + b_h * height) + b_w * weight, low), high)
            est_sd = np.array([ESTIMATE_SD_CM[field][k] for k in keys])[sex]
            low_h, high_h, low_b, high_b = VALID_RANGES[field]
            metres = height / 100.0
            index = weight / (metres * metres)
            honest = (height >= low_h) & (height <= high_h) & (index >= low_b) & (index <= high_b)
            value = np.where(missing & honest, estimate, value)
            sd = np.where((missing & honest) | flagged, est_sd, sd)
            missing = missing & ~honest
        else:
            sd = np.where(flagged, FLAGGED_ESTIMATE_SD_CM, sd)
        coef = np.where(missing, 0.0, zone_weight / (2.0 * (sd * sd)))
        values.append((np.where(missing, 0.0, value), missing))
        coefs.append(coef)

    labels_out = np.empty(n, dtype=object)
    confidence_out = np.zeros(n, dtype=np.int64)
    between_out = np.zeros(n, dtype=bool)
    probs_out = np.zeros((n, len(plan.labels)))
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        chunk = _score_chunk(
            plan, [(v[start:stop], m[start:stop]) for v, m in values], [c[start:stop] for c in coefs]
        )
        labels_out[start:stop], confidence_out[start:stop], between_out[start:stop], probs_out[start:stop] = (
            chunk
        )

    result: dict[str, Any] = {
        "size_label": labels_out,
        "confidence": confidence_out,
        "between_sizes": between_out,
    }
    for i, label in enumerate(plan.labels):
        result[f"p_{label}"] = probs_out[:, i]
    if is_frame:
        import pandas

        return pandas.DataFrame(result, index=bodies.index)
    return result


def _labels(plan: Plan, scores: Any, eligible: Any, dist2: dict[int, Any], any_assessed: Any) -> Any:
    """Label index per row (-1: none): best eligible score (ties to the larger), or the bottoms rule."""
    np = _numpy()
    rows, n_sizes = scores.shape
    masked = np.where(eligible, scores, -np.inf)
    general = n_sizes - 1 - np.argmax(masked[:, ::-1], axis=1)
    label = np.where(eligible.any(axis=1), general, -1)
    if plan.bottoms:
        driven = np.full(rows, -1)
        for z in plan.bottoms:
            dd_zone, missing = dist2[z]
            nearest = n_sizes - 1 - np.argmin(dd_zone[:, ::-1], axis=1)
            driven = np.where(missing, driven, np.maximum(driven, nearest))
        rule_ok = eligible[np.arange(rows), np.maximum(driven, 0)]
        label = np.where(driven >= 0, np.where(rule_ok, driven, -1), label)
    return np.where(any_assessed, label, -1)


def _score_chunk(plan: Plan, values: list[tuple[Any, Any]], coefs: list[Any]) -> tuple[Any, Any, Any, Any]:
    np = _numpy()
    n_sizes = len(plan.labels)
    rows = len(coefs[0]) if coefs else 0
    scores = np.zeros((rows, n_sizes))
    eligible = np.ones((rows, n_sizes), dtype=bool)
    dist2: dict[int, Any] = {}
    for z, ((value, missing), coef) in enumerate(zip(values, coefs, strict=True)):
        dd_zone = np.empty((rows, n_sizes))
        for i in range(n_sizes):
            low, high = plan.lows[z][i], plan.highs[z][i]
            d = value - np.clip(value, low, high)
            dd = d * d
            dd_zone[:, i] = dd
            scores[:, i] = scores[:, i] - coef * dd
            inside = (value >= plan.lows_tol[z][i]) & (value <= plan.highs_tol[z][i])
            eligible[:, i] &= missing | inside
        dist2[z] = (dd_zone, missing)

    assessed_weight = np.zeros(rows)
    any_assessed = np.zeros(rows, dtype=bool)
    for z, ((_, missing), _) in enumerate(zip(values, coefs, strict=True)):
        assessed_weight = assessed_weight + np.where(missing, 0.0, plan.weights[z])
        any_assessed |= ~missing

    # Best score, ties to the larger size: argmax over the reversed columns.
    best = n_sizes - 1 - np.argmax(scores[:, ::-1], axis=1)
    top = scores[np.arange(rows), best]
    diff = scores - top[:, None]
    weights = np.zeros_like(diff)
    near = diff >= NEGLIGIBLE_SCORE
    weights[near] = exp_array(diff[near])
    total = np.zeros(rows)
    for i in range(n_sizes):
        total = total + weights[:, i]
    probs = weights / total[:, None]

    label = _labels(plan, scores, eligible, dist2, any_assessed)
    has_label = label >= 0
    safe = np.maximum(label, 0)
    raw = probs[np.arange(rows), safe] * (assessed_weight / plan.total_weight)
    calibration = plan.calibration
    if calibration is None:
        calibrated = raw
    elif calibration.method == "isotonic":
        steps = np.searchsorted(np.array(calibration.thresholds), raw, side="right") - 1
        calibrated = np.array(calibration.values)[np.maximum(steps, 0)]
    else:
        calibrated = 1.0 / (1.0 + exp_array(-(calibration.slope * raw + calibration.intercept)))
    confidence = np.clip(np.floor(100.0 * calibrated + 0.5), 0, 100).astype(np.int64)
    confidence = np.where(has_label, confidence, 0)
    anchor = scores[np.arange(rows), safe]
    gaps = scores - anchor[:, None]
    gaps[np.arange(rows), safe] = -np.inf
    between = (
        has_label & (gaps.max(axis=1) >= -BETWEEN_SCORE_GAP) if n_sizes > 1 else np.zeros(rows, dtype=bool)
    )

    names = np.array([*plan.labels, None], dtype=object)
    return names[np.where(has_label, label, n_sizes)], confidence, between, probs


__all__ = ["CHUNK_ROWS", "calibrate", "exp_array", "recommend_batch"]
