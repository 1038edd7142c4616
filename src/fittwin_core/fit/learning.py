"""Learning from outcomes: confidence calibration and brand fit offsets. Pure Python.

**Calibration.** :func:`fit_isotonic` fits a non-decreasing step function from the engine's
score to the share of recommendations kept (pool-adjacent-violators), the form an
``isotonic`` ``confidence_model`` stores. :func:`expected_calibration_error` and
:func:`reliability` measure how well confidences match outcomes.

**Fit offsets.** A garment that runs small fits like a chart whose ranges sit lower. For one
zone, every delivered order line gives the body value ``b`` (measured, not estimated), the
bought size's chart range ``[c - w, c + w]`` and what happened: kept, returned *too small* or
returned *too large*. With ``x = b - c - delta`` (the body against the garment's true range,
which is the chart's shifted by ``delta``)::

    P(too small) = logistic((x - w - e) / s)      P(too large) = logistic((-x - w - e) / s)
    P(kept)      = 1 - P(too small) - P(too large)

``e`` (the room shoppers accept beyond a size's range) and ``s`` (how sharply complaints start)
describe shoppers, not brands: they are estimated once per garment type and zone, across all
brands (grid search, :data:`MARGINS_CM` × :data:`SCALES_CM`). Each brand's ``delta`` then gets a
penalised (maximum a posteriori) estimate with a normal prior ``N(0, PRIOR_SD_CM²)`` — thin data
stays near 0 — bounded to ``±MAX_OFFSET_CM``, with a 90 % interval from the curvature of the log
posterior (Laplace approximation), widened to cover every margin/scale pair that fits nearly as
well (within ``PROFILE_DROP`` log-units), clipped to the bounds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

import attrs

from fittwin_core.fit.fitmaps import MAX_STEPS

Outcome = Literal["kept", "too_small", "too_large"]
OUTCOMES: Final = ("kept", "too_small", "too_large")

MAX_OFFSET_CM: Final = 8.0
"""Learned offsets are bounded to ±8 cm: a brand further off than a size step and a half needs
its chart fixed, not an adjustment."""
PRIOR_SD_CM: Final = 2.0
"""Standard deviation of the prior on a brand's offset: what pulls thin evidence towards 0."""
MARGINS_CM: Final = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
"""Candidate room (cm) shoppers accept beyond a size's range before returning it."""
SCALES_CM: Final = (0.75, 1.5, 3.0)
"""Candidate sharpness (cm) of the onset of size returns."""
Z90: Final = 1.6448536269514722
"""The standard normal quantile of a two-sided 90 % interval."""
PROFILE_DROP: Final = 2.0
"""Margin/scale pairs whose summed log posterior is within this of the best widen the interval."""


# ============================================================================ calibration


def pool_adjacent_violators(points: Iterable[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Isotonic (non-decreasing) regression of ``(x, y, weight)`` points: blocks
    ``(lowest x, fitted y, total weight)`` in increasing ``x``; points with equal ``x`` share a block."""
    merged: dict[float, list[float]] = {}
    for x, y, weight in points:
        if weight <= 0:
            continue
        acc = merged.setdefault(x, [0.0, 0.0])
        acc[0] += y * weight
        acc[1] += weight
    blocks: list[list[float]] = []  # [lowest x, weighted sum, weight]
    for x in sorted(merged):
        total, weight = merged[x]
        blocks.append([x, total, weight])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1][1] += last[1]
            blocks[-1][2] += last[2]
    return [(x, total / weight, weight) for x, total, weight in blocks]


def _merge_to(blocks: list[tuple[float, float, float]], limit: int) -> list[tuple[float, float, float]]:
    """Merge the lightest neighbouring blocks until at most ``limit`` remain (stays monotone)."""
    out = list(blocks)
    while len(out) > limit:
        i = min(range(len(out) - 1), key=lambda k: out[k][2] + out[k + 1][2])
        (x0, y0, w0), (_, y1, w1) = out[i], out[i + 1]
        out[i : i + 2] = [(x0, (y0 * w0 + y1 * w1) / (w0 + w1), w0 + w1)]
    return out


def fit_isotonic(
    scores: Sequence[float], kept: Sequence[bool], *, max_steps: int = MAX_STEPS
) -> dict[str, object]:
    """An ``isotonic`` ``confidence_model`` mapping scores (0–1) to the share kept.

    Raises ``ValueError`` without outcomes (nothing to learn from)."""
    if len(scores) != len(kept):
        raise ValueError("scores and outcomes differ in length")
    if not scores:
        raise ValueError("no outcomes to calibrate on")
    blocks = _merge_to(
        pool_adjacent_violators(
            (float(s), 1.0 if k else 0.0, 1.0) for s, k in zip(scores, kept, strict=True)
        ),
        max_steps,
    )
    # Stored to six decimals: blocks whose thresholds round alike are merged (still monotone).
    steps: list[list[float]] = []  # [threshold, weighted sum, weight]
    for x, y, weight in blocks:
        threshold = round(x, 6)
        if steps and steps[-1][0] == threshold:
            steps[-1][1] += y * weight
            steps[-1][2] += weight
        else:
            steps.append([threshold, y * weight, weight])
    return {
        "method": "isotonic",
        "thresholds": [t for t, _, _ in steps],
        "values": [round(total / weight, 6) for _, total, weight in steps],
        "samples": len(scores),
    }


def apply_isotonic(model: Mapping[str, object], score: float) -> float:
    """The calibrated value of ``score`` under an ``isotonic`` model (as the engine applies it)."""
    from fittwin_core.fit.fitmaps import Calibration

    thresholds = model["thresholds"]
    values = model["values"]
    assert isinstance(thresholds, Sequence) and isinstance(values, Sequence)
    return Calibration(
        "isotonic", thresholds=tuple(float(t) for t in thresholds), values=tuple(float(v) for v in values)
    ).step(score)


@attrs.frozen
class ReliabilityBin:
    """One bin of a reliability diagram: predicted confidence against the share kept."""

    low: float
    high: float
    count: int
    mean_predicted: float
    observed: float


def reliability(predicted: Sequence[float], kept: Sequence[bool], *, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins of predicted probability (0–1) with their mean prediction and share kept
    (empty bins left out)."""
    counts = [0] * bins
    sums = [0.0] * bins
    hits = [0] * bins
    for p, k in zip(predicted, kept, strict=True):
        i = min(int(p * bins), bins - 1) if p > 0 else 0
        counts[i] += 1
        sums[i] += p
        hits[i] += 1 if k else 0
    return [
        ReliabilityBin(i / bins, (i + 1) / bins, counts[i], sums[i] / counts[i], hits[i] / counts[i])
        for i in range(bins)
        if counts[i]
    ]


def expected_calibration_error(predicted: Sequence[float], kept: Sequence[bool], *, bins: int = 10) -> float:
    """Expected calibration error: ``Σ (n_bin / n) · |mean predicted − share kept|`` over
    equal-width bins of the predicted probability."""
    table = reliability(predicted, kept, bins=bins)
    total = sum(b.count for b in table)
    if total == 0:
        raise ValueError("no outcomes")
    return sum(b.count / total * abs(b.mean_predicted - b.observed) for b in table)


# ============================================================================ fit offsets


@attrs.frozen
class FitObservation:
    """One order line's evidence about one zone: the body's value minus the centre of the bought
    size's chart range (cm), that range's half width (cm), and the outcome."""

    position_cm: float
    half_width_cm: float
    outcome: Outcome


@attrs.frozen
class OffsetEstimate:
    """The learned offset of one group (a brand) in one zone, with its 90 % interval."""

    offset_cm: float
    low_cm: float
    high_cm: float
    observations: int
    too_small: int
    too_large: int
    margin_cm: float
    scale_cm: float

    @property
    def size_returns(self) -> int:
        """Lines returned too small or too large."""
        return self.too_small + self.too_large


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def _bins(observations: Iterable[FitObservation]) -> list[tuple[float, float, str, int]]:
    counted = Counter((round(o.position_cm, 1), round(o.half_width_cm, 1), o.outcome) for o in observations)
    return [(x, w, outcome, n) for (x, w, outcome), n in sorted(counted.items())]


def _log_likelihood(
    bins: Sequence[tuple[float, float, str, int]], delta: float, margin: float, scale: float
) -> float:
    total = 0.0
    for position, half, outcome, n in bins:
        x = position - delta
        a = (x - half - margin) / scale
        b = (-x - half - margin) / scale
        if outcome == "too_small":
            total += n * _log_sigmoid(a)
        elif outcome == "too_large":
            total += n * _log_sigmoid(b)
        else:
            p = 1.0 - math.exp(_log_sigmoid(a)) - math.exp(_log_sigmoid(b))
            total += n * math.log(max(p, 1e-12))
    return total


def _log_posterior(
    bins: Sequence[tuple[float, float, str, int]], delta: float, margin: float, scale: float
) -> float:
    return _log_likelihood(bins, delta, margin, scale) - delta * delta / (2.0 * PRIOR_SD_CM * PRIOR_SD_CM)


def _maximise(f: object, low: float, high: float, *, tol: float = 1e-3) -> float:
    """Golden-section search for the maximum of a unimodal ``f`` on ``[low, high]``."""
    assert callable(f)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def _best_delta(bins: Sequence[tuple[float, float, str, int]], margin: float, scale: float) -> float:
    return _maximise(lambda d: _log_posterior(bins, d, margin, scale), -MAX_OFFSET_CM, MAX_OFFSET_CM)


def _laplace_sd(
    bins: Sequence[tuple[float, float, str, int]], delta: float, margin: float, scale: float
) -> float:
    """Standard deviation of the offset from the curvature of the log posterior at ``delta``."""
    h = 1e-2
    curvature = (
        _log_posterior(bins, delta + h, margin, scale)
        - 2.0 * _log_posterior(bins, delta, margin, scale)
        + _log_posterior(bins, delta - h, margin, scale)
    ) / (h * h)
    return 1.0 / math.sqrt(-curvature) if curvature < 0 else MAX_OFFSET_CM


def learn_offsets(groups: Mapping[str, Sequence[FitObservation]]) -> dict[str, OffsetEstimate]:
    """Estimate each group's offset (cm) in one zone; groups are brands of one garment type.

    The shoppers' margin and scale are chosen across all groups (the pair maximising the summed
    log posterior at each group's best offset); each group's offset is then its MAP estimate,
    always within ``±MAX_OFFSET_CM``. Groups without observations are left out.
    """
    binned = {key: _bins(obs) for key, obs in groups.items() if obs}
    if not binned:
        return {}
    totals: dict[tuple[float, float], float] = {}
    for margin in MARGINS_CM:
        for scale in SCALES_CM:
            totals[(margin, scale)] = sum(
                _log_posterior(b, _best_delta(b, margin, scale), margin, scale) for b in binned.values()
            )
    (margin, scale), best = max(totals.items(), key=lambda kv: kv[1])
    # The shoppers' margin and scale are uncertain too: the interval spans every pair whose fit
    # is within PROFILE_DROP log-units of the best (a profile-likelihood region).
    plausible = [pair for pair, total in totals.items() if total >= best - PROFILE_DROP]
    out: dict[str, OffsetEstimate] = {}
    for key, bins in binned.items():
        delta = _best_delta(bins, margin, scale)
        low, high = MAX_OFFSET_CM, -MAX_OFFSET_CM
        for m, s in plausible:
            d = delta if (m, s) == (margin, scale) else _best_delta(bins, m, s)
            sd = _laplace_sd(bins, d, m, s)
            low, high = min(low, d - Z90 * sd), max(high, d + Z90 * sd)
        counts: Counter[str] = Counter()
        for _, _, outcome, n in bins:
            counts[outcome] += n
        out[key] = OffsetEstimate(
            offset_cm=round(delta, 2),
            low_cm=round(max(low, -MAX_OFFSET_CM), 2),
            high_cm=round(min(high, MAX_OFFSET_CM), 2),
            observations=sum(n for *_, n in bins),
            too_small=counts["too_small"],
            too_large=counts["too_large"],
            margin_cm=margin,
            scale_cm=scale,
        )
    return out


__all__ = [
    "MARGINS_CM",
    "MAX_OFFSET_CM",
    "OUTCOMES",
    "PRIOR_SD_CM",
    "PROFILE_DROP",
    "SCALES_CM",
    "FitObservation",
    "OffsetEstimate",
    "Outcome",
    "ReliabilityBin",
    "apply_isotonic",
    "expected_calibration_error",
    "fit_isotonic",
    "learn_offsets",
    "pool_adjacent_violators",
    "reliability",
]
