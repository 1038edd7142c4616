"""The recommender: one body against one chart (and optionally a fit map and preferences).

How a recommendation is computed (``docs/fit.md`` has the full account):

1. Each chart zone's body ranges are shifted by the fit map (offset, stretch, garment-type ease)
   and by the shopper's preferences (fit preference on girths, torso length on lengths).
2. Each zone gets the body value — measured (standard error 1 cm), flagged estimated, or
   estimated from height and weight (standard error from the regression) — or is skipped when
   the body lacks it and has no honest estimate (listed in ``unassessed_zones``).
3. Per size, ``score = -Σ_z weight_z · d_z² / (2 σ_z²)`` where ``d_z`` is the signed distance
   from the body value to the size's range (0 inside). Probabilities are the softmax of the
   scores: the relative likelihood of each size given the measurement uncertainty.
4. A size is *eligible* when every zone lies within its range widened by the zone's tolerance.
   The label is the eligible size with the highest score (ties go to the larger size); for
   bottoms it is the larger of the waist-driven and hip-driven sizes, if eligible. No eligible
   label → ``size_label=None`` with a reason.
5. ``score`` = probability of the label × share of chart weight assessed; ``confidence`` is
   the score through the fit map's calibration (``confidence_model``), 0–100;
   ``between_sizes`` when another size scores within ½ (one standard error) of the label.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Mapping
from typing import Final
from uuid import UUID

import attrs

from fittwin_core.domain.catalog import FitMap, SizeChart
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.orders import FitSummary, FitVerdict, ZoneFit
from fittwin_core.domain.users import BodyMetrics, FitPreference, StylePreferences, TorsoLength
from fittwin_core.fit import _numerics
from fittwin_core.fit.charts import GIRTH_ZONES, LENGTH_PREFERENCE_ZONES, Chart, parse_chart
from fittwin_core.fit.estimation import (
    ESTIMABLE,
    ESTIMATE_SD_CM,
    FLAGGED_ESTIMATE_SD_CM,
    MEASURED_SD_CM,
    can_estimate,
    estimate_one,
    sex_key,
)
from fittwin_core.fit.fitmaps import DEFAULT_RULES, Calibration, FitRules, parse_fit_map

ENGINE_VERSION: Final = "fittwin-fit/1.0.0"
"""Version of the recommendation method, stored in every ``fit_summary``."""

BETWEEN_SCORE_GAP: Final = 0.5
"""Another size within this score of the label (one standard error of distance) → between sizes."""
NEGLIGIBLE_SCORE: Final = -40.0
"""Sizes scoring this far below the best get probability 0 (the exact value is below 1e-17)."""

_DEFAULT_PREFERENCES = StylePreferences()
_BOTTOMS_ZONES = ("waist", "hip")


@attrs.frozen(kw_only=True)
class SizeRecommendation:
    """A size recommendation: the label (or ``None`` with a ``reason``), calibrated confidence
    0–100, a probability for every size, and per-zone explanations for the label (or for the
    closest size when none fits). Snapshot it on an order item with :meth:`to_fit_summary`."""

    size_label: str | None
    confidence: int
    probabilities: Mapping[str, float] = attrs.field(hash=False)
    zones: tuple[ZoneFit, ...]
    between_sizes: bool
    reason: str | None = None
    estimated_zones: tuple[str, ...] = ()
    unassessed_zones: tuple[str, ...] = ()
    """Chart zones the body lacks and that have no honest estimate: not assessed at all."""
    score: float = 0.0
    """The engine's uncalibrated score of the label (0–1; 0 without a label)."""
    size_chart_id: UUID | None = None
    fit_map_id: UUID | None = None
    engine_version: str = ENGINE_VERSION

    def to_fit_summary(self) -> FitSummary:
        """The ``fit_summary`` snapshot stored on an order item (needs a stored chart's id)."""
        if self.size_chart_id is None:
            raise ValidationError(
                "size_chart_id", "is required for a fit summary (recommend against a stored SizeChart)"
            )
        return FitSummary(
            size_label=self.size_label,
            confidence=self.confidence,
            zones=self.zones,
            between_sizes=self.between_sizes,
            size_chart_id=self.size_chart_id,
            fit_map_id=self.fit_map_id,
            engine_version=self.engine_version,
            score=round(self.score, 6),
            unassessed_zones=self.unassessed_zones,
        )


# ----------------------------------------------------------------------------- plan


@attrs.frozen(cache_hash=True)
class Plan:
    """A chart with every adjustment applied, ready for scoring (shared with the batch path)."""

    labels: tuple[str, ...]
    names: tuple[str, ...]
    fields: tuple[str, ...]
    weights: tuple[float, ...]
    lows: tuple[tuple[float, ...], ...]
    highs: tuple[tuple[float, ...], ...]
    lows_tol: tuple[tuple[float, ...], ...]
    highs_tol: tuple[tuple[float, ...], ...]
    total_weight: float
    bottoms: tuple[int, ...]
    calibration: Calibration | None
    size_chart_id: UUID | None
    fit_map_id: UUID | None


@functools.lru_cache(maxsize=1024)
def build_plan(chart: Chart, rules: FitRules, fit_pref: FitPreference, torso_pref: TorsoLength) -> Plan:
    """Apply fit-map adjustments and preferences to a chart's body ranges."""
    offset, stretch, ease = dict(rules.offset), dict(rules.stretch), dict(rules.ease)
    pref_ease = dict(rules.preference_ease)[fit_pref.value]
    length_pref = dict(rules.length_preference)[torso_pref.value]
    lows, highs, lows_tol, highs_tol = [], [], [], []
    for zone in chart.zones:
        pref = (
            pref_ease
            if zone.name in GIRTH_ZONES
            else (length_pref if zone.name in LENGTH_PREFERENCE_ZONES else 0.0)
        )
        shift = offset.get(zone.name, 0.0) - ease.get(zone.name, 0.0) - pref
        factor = 1.0 + stretch.get(zone.name, 0.0)
        zl = tuple(low + shift for low in zone.lows)
        zh = tuple(high * factor + shift for high in zone.highs)
        lows.append(zl)
        highs.append(zh)
        lows_tol.append(tuple(v - zone.tolerance for v in zl))
        highs_tol.append(tuple(v + zone.tolerance for v in zh))
    total = 0.0
    for zone in chart.zones:
        total = total + zone.weight
    names = tuple(z.name for z in chart.zones)
    bottoms = tuple(i for i, name in enumerate(names) if name in _BOTTOMS_ZONES) if chart.is_bottoms else ()
    return Plan(
        labels=chart.labels,
        names=names,
        fields=tuple(z.field for z in chart.zones),
        weights=tuple(z.weight for z in chart.zones),
        lows=tuple(lows),
        highs=tuple(highs),
        lows_tol=tuple(lows_tol),
        highs_tol=tuple(highs_tol),
        total_weight=total,
        bottoms=bottoms,
        calibration=rules.calibration,
        size_chart_id=chart.size_chart_id,
        fit_map_id=rules.fit_map_id,
    )


def resolve(
    size_chart: SizeChart | Chart, fit_map: FitMap | FitRules | None, preferences: StylePreferences | None
) -> Plan:
    """The scoring plan for a chart, fit map and preferences (all parsing cached)."""
    if isinstance(size_chart, Chart):
        chart = size_chart
    elif isinstance(size_chart, SizeChart):
        chart = parse_chart(size_chart)
    else:
        raise ValidationError("size_chart", "must be a SizeChart or a parsed Chart")
    if fit_map is None:
        rules = DEFAULT_RULES
    elif isinstance(fit_map, FitRules):
        rules = fit_map
    elif isinstance(fit_map, FitMap):
        rules = parse_fit_map(fit_map)
    else:
        raise ValidationError("fit_map", "must be a FitMap, FitRules or None")
    prefs = preferences if preferences is not None else _DEFAULT_PREFERENCES
    if not isinstance(prefs, StylePreferences):
        raise ValidationError("preferences", "must be StylePreferences")
    return build_plan(chart, rules, prefs.fit_prefs, prefs.torso_length_pref)


def calibrate(raw: float, calibration: Calibration | None) -> float:
    """Map the raw score (0–1) through the fit map's calibration (identity without one)."""
    if calibration is None:
        return raw
    if calibration.method == "isotonic":
        return calibration.step(raw)
    slope, intercept = calibration.slope, calibration.intercept
    return 1.0 / (1.0 + _numerics.exp(-(slope * raw + intercept)))


# ----------------------------------------------------------------------------- scalar path


def _body_values(plan: Plan, body: BodyMetrics) -> tuple[list[float | None], list[float], list[bool]]:
    values: list[float | None] = []
    coefs: list[float] = []
    estimated: list[bool] = []
    key: str | None = None
    for field, weight in zip(plan.fields, plan.weights, strict=True):
        value = getattr(body, field)
        flagged = False
        if value is None:
            if field in ESTIMABLE and can_estimate(field, body.height_cm, body.weight_kg):
                key = key or sex_key(body.sex)
                value = estimate_one(field, body.height_cm, body.weight_kg, key)
                sd = ESTIMATE_SD_CM[field][key]
                flagged = True
            else:
                sd = 0.0
        elif field in body.estimated:
            key = key or sex_key(body.sex)
            sd = ESTIMATE_SD_CM[field][key] if field in ESTIMABLE else FLAGGED_ESTIMATE_SD_CM
            flagged = True
        else:
            sd = MEASURED_SD_CM
        values.append(None if value is None else float(value))
        coefs.append(weight / (2.0 * (sd * sd)) if value is not None else 0.0)
        estimated.append(flagged)
    return values, coefs, estimated


def _signed_distance(value: float, low: float, high: float) -> float:
    if value < low:
        return value - low
    if value > high:
        return value - high
    return 0.0


def recommend(
    body: BodyMetrics,
    size_chart: SizeChart | Chart,
    fit_map: FitMap | FitRules | None = None,
    preferences: StylePreferences | None = None,
) -> SizeRecommendation:
    """Recommend a size of ``size_chart`` for ``body``; ``size_label`` is ``None`` (with a
    ``reason``) when no size is within tolerance in every zone."""
    if not isinstance(body, BodyMetrics):
        raise ValidationError("body", "must be BodyMetrics")
    plan = resolve(size_chart, fit_map, preferences)
    values, coefs, estimated = _body_values(plan, body)
    n = len(plan.labels)
    zone_range = range(len(plan.names))
    assessed = [z for z in zone_range if values[z] is not None]

    scores = [0.0] * n
    eligible = [True] * n
    for z in assessed:
        value = values[z]
        assert value is not None
        coef, lows, highs, lows_tol, highs_tol = (
            coefs[z],
            plan.lows[z],
            plan.highs[z],
            plan.lows_tol[z],
            plan.highs_tol[z],
        )
        for i in range(n):
            d = _signed_distance(value, lows[i], highs[i])
            scores[i] = scores[i] - coef * (d * d)
            if eligible[i] and not (lows_tol[i] <= value <= highs_tol[i]):
                eligible[i] = False

    best = 0
    for i in range(1, n):
        if scores[i] >= scores[best]:
            best = i
    top = scores[best]
    weights = [0.0 if s - top < NEGLIGIBLE_SCORE else _numerics.exp(s - top) for s in scores]
    total = 0.0
    for w in weights:
        total = total + w
    probabilities = [w / total for w in weights]

    reason: str | None = None
    label: int | None = None
    if not assessed:
        reason = (
            f"the chart needs {', '.join(plan.names)} and none of them is known or estimable for this body"
        )
    else:
        label, reason = _choose(plan, values, assessed, scores, eligible)

    shown = best if label is None else label
    zones = tuple(_zone_fit(plan, z, shown, values, estimated[z]) for z in assessed)
    confidence = 0
    raw = 0.0
    between = False
    if label is not None:
        assessed_weight = 0.0
        for z in zone_range:
            assessed_weight = assessed_weight + (plan.weights[z] if values[z] is not None else 0.0)
        raw = probabilities[label] * (assessed_weight / plan.total_weight)
        confidence = min(100, max(0, _numerics.round_half_up(100.0 * calibrate(raw, plan.calibration))))
        anchor = scores[label]
        between = any(i != label and scores[i] - anchor >= -BETWEEN_SCORE_GAP for i in range(n))
    return SizeRecommendation(
        size_label=None if label is None else plan.labels[label],
        confidence=confidence,
        probabilities=types.MappingProxyType(dict(zip(plan.labels, probabilities, strict=True))),
        zones=zones,
        between_sizes=between,
        reason=reason,
        estimated_zones=tuple(plan.names[z] for z in assessed if estimated[z]),
        unassessed_zones=tuple(plan.names[z] for z in zone_range if values[z] is None),
        score=raw,
        size_chart_id=plan.size_chart_id,
        fit_map_id=plan.fit_map_id,
    )


def _zone_driven(plan: Plan, z: int, values: list[float | None]) -> int:
    """The size whose range is nearest the body in zone ``z`` (ties go to the larger size)."""
    value = values[z]
    assert value is not None
    best, best_d = 0, math.inf
    for i in range(len(plan.labels)):
        d = _signed_distance(value, plan.lows[z][i], plan.highs[z][i])
        dd = d * d
        if dd <= best_d:
            best, best_d = i, dd
    return best


def _choose(
    plan: Plan, values: list[float | None], assessed: list[int], scores: list[float], eligible: list[bool]
) -> tuple[int | None, str | None]:
    driven = [(z, _zone_driven(plan, z, values)) for z in plan.bottoms if values[z] is not None]
    if driven:
        label = max(i for _, i in driven)
        if eligible[label]:
            return label, None
        return None, _why_not(plan, values, assessed, label, driven)
    chosen: int | None = None
    for i in range(len(plan.labels)):
        if eligible[i] and (chosen is None or scores[i] >= scores[chosen]):
            chosen = i
    if chosen is not None:
        return chosen, None
    closest = max(range(len(scores)), key=lambda i: (scores[i], i))
    return None, _why_not(plan, values, assessed, closest, [])


def _why_not(
    plan: Plan, values: list[float | None], assessed: list[int], size: int, driven: list[tuple[int, int]]
) -> str:
    problems = []
    for z in assessed:
        value = values[z]
        assert value is not None
        if value > plan.highs_tol[z][size]:
            problems.append(f"too tight at the {plan.names[z]}")
        elif value < plan.lows_tol[z][size]:
            problems.append(f"too loose at the {plan.names[z]}")
    label = plan.labels[size]
    if driven and len({i for _, i in driven}) > 1:
        parts = ", ".join(f"{plan.names[z]} fits {plan.labels[i]}" for z, i in driven)
        return f"no size fits: {parts}; the larger size {label} is {' and '.join(problems)}"
    return f"no size fits within tolerance; the closest, {label}, is {' and '.join(problems)}"


_ZONE_FIT_FIELDS = ("zone", "body_cm", "size_min_cm", "size_max_cm", "delta_cm", "verdict", "estimated")
if (
    tuple(a.name for a in attrs.fields(ZoneFit)) != _ZONE_FIT_FIELDS
):  # pragma: no cover - guards _trusted_zone_fit
    raise ImportError("ZoneFit changed: update fittwin_core.fit.engine._trusted_zone_fit")


def _trusted_zone_fit(**values: object) -> ZoneFit:
    """A ZoneFit from values the engine computed and bounds-checked itself.

    Skips attrs validation, which would otherwise cost half of a recommendation; a test checks
    the result equals ``ZoneFit(**values)``.
    """
    zone_fit = object.__new__(ZoneFit)
    for name in _ZONE_FIT_FIELDS:
        object.__setattr__(zone_fit, name, values[name])
    return zone_fit


def _zone_fit(plan: Plan, z: int, size: int, values: list[float | None], estimated: bool) -> ZoneFit:
    value = values[z]
    assert value is not None
    low, high = plan.lows[z][size], plan.highs[z][size]
    d = _signed_distance(value, low, high)
    verdict = FitVerdict.TIGHT if d > 0 else (FitVerdict.LOOSE if d < 0 else FitVerdict.OK)
    # Body values are validated human measurements (< 500 cm), chart values are at most
    # MAX_CM + adjustments; clamping keeps every field inside ZoneFit's declared bounds.
    return _trusted_zone_fit(
        zone=plan.names[z],
        body_cm=round(value, 1),
        size_min_cm=round(min(max(low, 0.0), 500.0), 1),
        size_max_cm=round(min(max(high, 0.0), 500.0), 1),
        delta_cm=round(min(max(d, -500.0), 500.0), 1),
        verdict=verdict,
        estimated=estimated,
    )


__all__ = [
    "BETWEEN_SCORE_GAP",
    "ENGINE_VERSION",
    "Plan",
    "SizeRecommendation",
    "build_plan",
    "recommend",
    "resolve",
]
