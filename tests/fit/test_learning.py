"""Learning from outcomes: isotonic calibration, calibration error, and bounded, shrunk offsets."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_adapters.synthetic import LINES, HiddenTruth, true_body
from fittwin_core.domain.users import BodyMetrics, Sex
from fittwin_core.fit import Chart, FitRules, recommend
from fittwin_core.fit.learning import (
    MAX_OFFSET_CM,
    FitObservation,
    apply_isotonic,
    expected_calibration_error,
    fit_isotonic,
    learn_offsets,
    pool_adjacent_violators,
    reliability,
)

PROPERTY = settings(max_examples=40, deadline=None)


# ----------------------------------------------------------------------------- calibration


@PROPERTY
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=60))
def test_pool_adjacent_violators_is_monotone_and_keeps_the_mean(points: list[tuple[float, bool]]) -> None:
    blocks = pool_adjacent_violators((x, float(y), 1.0) for x, y in points)
    values = [v for _, v, _ in blocks]
    assert values == sorted(values)
    assert [x for x, _, _ in blocks] == sorted({x for x, _, _ in blocks})
    assert sum(w for _, _, w in blocks) == len(points)
    mean = sum(float(y) for _, y in points) / len(points)
    assert abs(sum(v * w for _, v, w in blocks) / len(points) - mean) < 1e-9


def test_pool_adjacent_violators_by_hand() -> None:
    # 0.1 kept, 0.2 returned, 0.3 kept, 0.4 kept: the violation at 0.1/0.2 pools into 0.5.
    blocks = pool_adjacent_violators([(0.1, 1, 1), (0.2, 0, 1), (0.3, 1, 1), (0.4, 1, 1)])
    assert blocks == [(0.1, 0.5, 2.0), (0.3, 1.0, 2.0)]


def test_calibration_error_by_hand() -> None:
    # Two bins: 0.9 predicted, half kept (error 0.4); 0.2 predicted, none kept (error 0.2).
    predicted = [0.9, 0.9, 0.2, 0.2]
    kept = [True, False, False, False]
    assert abs(expected_calibration_error(predicted, kept) - (0.5 * 0.4 + 0.5 * 0.2)) < 1e-12
    table = reliability(predicted, kept)
    assert [(b.count, b.observed) for b in table] == [(2, 0.0), (2, 0.5)]


@PROPERTY
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=60))
def test_every_fitted_isotonic_model_is_a_valid_confidence_model(points: list[tuple[float, bool]]) -> None:
    model = fit_isotonic([x for x, _ in points], [k for _, k in points])
    rules = FitRules.from_json({}, model)  # validates: thresholds strictly increasing, values monotone
    assert rules.calibration is not None


def test_an_isotonic_model_is_a_valid_confidence_model_the_engine_applies() -> None:
    model = fit_isotonic([0.2, 0.4, 0.6, 0.8, 0.9], [False, True, False, True, True])
    rules = FitRules.from_json({}, model)
    assert rules.calibration is not None and rules.calibration.method == "isotonic"
    assert apply_isotonic(model, 0.05) == model["values"][0]  # type: ignore[index]
    assert apply_isotonic(model, 0.95) == 1.0


def _held_back_outcomes(seed: int, n: int) -> list[tuple[float, bool]]:
    """(engine score, kept) for shoppers buying the recommended size, the outcome decided by
    the hidden truth (a brand 3 cm small at the chest), never by the engine."""
    rng = random.Random(seed)
    truth = HiddenTruth(offsets={0: {"chest": -3.0}})
    chart = Chart.from_rules(LINES["tops"][1], garment_type="tops")
    out: list[tuple[float, bool]] = []
    while len(out) < n:
        sex, height, weight, girths = true_body(rng)
        measured: dict[str, Any] = {}
        if rng.random() < 0.7:
            measured["chest_cm"] = round(girths["chest"] + rng.gauss(0, 1), 1)
        if rng.random() < 0.5:
            measured["waist_cm"] = round(girths["waist"] + rng.gauss(0, 1), 1)
        shopper = BodyMetrics(height_cm=height, weight_kg=weight, sex=Sex(sex), **measured)
        rec = recommend(shopper, chart)
        if rec.size_label is None:
            continue
        verdict = truth.outcome(rng, 0, "tops", chart, chart.labels.index(rec.size_label), girths)
        out.append((rec.score, verdict is None))
    return out


def test_calibration_on_held_back_synthetic_outcomes_brings_the_error_below_five_points() -> None:
    fitted = _held_back_outcomes(seed=2026, n=6000)
    held = _held_back_outcomes(seed=2027, n=3000)
    model = fit_isotonic([s for s, _ in fitted], [k for _, k in fitted])
    kept = [k for _, k in held]
    before = expected_calibration_error([s for s, _ in held], kept)
    after = expected_calibration_error([apply_isotonic(model, s) for s, _ in held], kept)
    assert after < 0.05
    assert after < before
    assert before > 0.1  # the raw score is far from the keep rate when a brand runs small


# ----------------------------------------------------------------------------- offsets

observation = st.builds(
    FitObservation,
    position_cm=st.floats(-60, 60),
    half_width_cm=st.floats(0, 10),
    outcome=st.sampled_from(["kept", "too_small", "too_large"]),
)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(observation, max_size=40), max_size=3))
def test_learned_offsets_never_leave_the_bounds(groups: dict[str, list[FitObservation]]) -> None:
    for estimate in learn_offsets(groups).values():
        assert -MAX_OFFSET_CM <= estimate.low_cm <= estimate.offset_cm <= estimate.high_cm <= MAX_OFFSET_CM


def test_no_observations_learn_nothing() -> None:
    assert learn_offsets({}) == {}
    assert learn_offsets({"a": []}) == {}


def _simulate(rng: random.Random, delta: float, n: int) -> list[FitObservation]:
    out = []
    for _ in range(n):
        position = rng.gauss(0.0, 3.5)
        felt = position - delta + rng.gauss(0.0, 1.2)
        outcome = "too_small" if felt > 4 + 3 else ("too_large" if felt < -4 - 3 else "kept")
        out.append(FitObservation(round(position, 1), 4.0, outcome))  # type: ignore[arg-type]
    return out


def test_a_brand_that_runs_small_is_found_and_thin_data_is_shrunk_towards_zero() -> None:
    rng = random.Random(5)
    learned = learn_offsets({"true": _simulate(rng, 0.0, 1500), "small": _simulate(rng, -3.0, 1500)})
    assert abs(learned["small"].offset_cm + 3.0) < 0.5
    assert learned["small"].too_small > learned["true"].too_small
    assert abs(learned["true"].offset_cm) < 0.5
    thin = learn_offsets({"true": _simulate(rng, 0.0, 1500), "small": _simulate(rng, -3.0, 30)})
    assert abs(thin["small"].offset_cm) < abs(learned["small"].offset_cm)
    assert thin["small"].high_cm - thin["small"].low_cm > learned["small"].high_cm - learned["small"].low_cm
