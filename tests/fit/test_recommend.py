"""Recommendation rules and the acceptance properties of the fit engine."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.orders import FitSummary, FitVerdict, ZoneFit
from fittwin_core.domain.users import MEASUREMENT_RANGES, FitPreference, Sex, StylePreferences, TorsoLength
from fittwin_core.fit import ENGINE_VERSION, Chart, FitRules, recommend
from fittwin_core.fit.engine import _trusted_zone_fit
from tests.fit.samples import (
    CHART_ID,
    EN13402_MEN,
    FIT_MAP_ID,
    JEANS,
    TOPS,
    body,
    fit_map,
    range_charts,
    size_chart,
)

PROPERTY = settings(max_examples=60, deadline=None)


def _centre(chart: Chart, zone: int, size: int) -> float:
    return (chart.zones[zone].lows[size] + chart.zones[zone].highs[size]) / 2


def _body_at(chart: Chart, values: list[float]) -> Any:
    return body(**{z.field: v for z, v in zip(chart.zones, values, strict=True)})


# ----------------------------------------------------------------------------- properties


@PROPERTY
@given(range_charts(), st.data())
def test_a_body_at_a_sizes_centre_gets_that_size_with_the_highest_probability(
    rules: dict[str, Any], data: Any
) -> None:
    chart = Chart.from_rules(rules)
    k = data.draw(st.integers(0, len(chart.labels) - 1))
    rec = recommend(_body_at(chart, [_centre(chart, z, k) for z in range(len(chart.zones))]), chart)
    assert rec.size_label == chart.labels[k]
    others = [p for label, p in rec.probabilities.items() if label != chart.labels[k]]
    assert rec.probabilities[chart.labels[k]] > max(others)


@PROPERTY
@given(range_charts(), st.data(), st.floats(0.0, 1.0))
def test_growing_a_girth_never_yields_a_smaller_size(rules: dict[str, Any], data: Any, share: float) -> None:
    # Built, not filtered: a body at the centre of size k, then one girth grown by a share of the
    # way to the top of the chart, so every example reaches both assertions.
    chart = Chart.from_rules(rules)
    k = data.draw(st.integers(0, len(chart.labels) - 1), label="size")
    zone = data.draw(st.integers(0, len(chart.zones) - 1), label="zone")
    centre = [_centre(chart, z, k) for z in range(len(chart.zones))]
    grown = list(centre)
    grown[zone] = centre[zone] + share * (chart.zones[zone].highs[-1] - centre[zone])
    assert recommend(_body_at(chart, centre), chart).size_label == chart.labels[k]
    after = recommend(_body_at(chart, grown), chart).size_label
    assert after is None or chart.labels.index(after) >= k  # "nothing fits" is not a smaller size


@PROPERTY
@given(
    range_charts(zones=("chest", "waist", "hip", "thigh")),
    st.sampled_from(["tops", "bottoms/jeans"]),
    st.data(),
    st.dictionaries(st.sampled_from(["chest", "waist", "hip", "thigh"]), st.floats(-8, 8), max_size=4),
    st.sampled_from(list(FitPreference)),
)
def test_recommendations_are_monotone_in_every_girth_on_constructed_bodies(
    rules: dict[str, Any], garment: str, data: Any, offsets: dict[str, float], preference: FitPreference
) -> None:
    """No filtering: every zone's tolerance covers the whole chart, so every constructed body gets
    a label; growing any one girth, with any learned offsets and preference, never gives a
    smaller size."""
    span = max(size[z][1] for size in rules["sizes"] for z in rules["zones"]) + 100
    for spec in rules["zones"].values():
        spec["tolerance"] = span
    chart = Chart.from_rules(rules, garment_type=garment)
    rules_map = FitRules.from_json({"offset": offsets})
    prefs = StylePreferences(fit_prefs=preference)
    highest = [MEASUREMENT_RANGES[z.field][1] for z in chart.zones]
    values = [data.draw(st.floats(40, top)) for top in highest]
    for zone in range(len(chart.zones)):
        grown = list(values)
        grown[zone] = min(grown[zone] + data.draw(st.floats(0.1, 30)), highest[zone])
        before = recommend(_body_at(chart, values), chart, rules_map, prefs).size_label
        after = recommend(_body_at(chart, grown), chart, rules_map, prefs).size_label
        assert before is not None and after is not None
        assert chart.labels.index(after) >= chart.labels.index(before), chart.zones[zone].name


@PROPERTY
@given(range_charts(), st.lists(st.floats(30, 150), min_size=2, max_size=2), st.booleans())
def test_probabilities_cover_every_size_and_sum_to_one(
    rules: dict[str, Any], values: list[float], drop: bool
) -> None:
    chart = Chart.from_rules(rules)
    shopper = body(chest_cm=values[0]) if drop else _body_at(chart, values)  # waist estimated when dropped
    rec = recommend(shopper, chart)
    assert list(rec.probabilities) == list(chart.labels)
    assert all(0.0 <= p <= 1.0 for p in rec.probabilities.values())
    assert math.isclose(sum(rec.probabilities.values()), 1.0, abs_tol=1e-12)
    assert 0 <= rec.confidence <= 100


@PROPERTY
@given(
    range_charts(), st.lists(st.floats(30, 150), min_size=2, max_size=2), st.sampled_from(["tops", "bottoms"])
)
def test_a_size_out_of_tolerance_in_any_zone_is_never_recommended(
    rules: dict[str, Any], values: list[float], garment: str
) -> None:
    chart = Chart.from_rules(rules, garment_type=garment)
    rec = recommend(_body_at(chart, values), chart)
    if rec.size_label is None:
        assert rec.reason and rec.confidence == 0
        return
    k = chart.labels.index(rec.size_label)
    for zone, value in zip(chart.zones, values, strict=True):
        assert zone.lows[k] - zone.tolerance <= value <= zone.highs[k] + zone.tolerance


@st.composite
def inch_charts(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 8))
    start = draw(st.integers(28, 40))
    sizes, position = [], Decimal(start)
    for i in range(n):
        width = Decimal(draw(st.sampled_from(["1.5", "2", "2.25", "3"])))
        sizes.append({"label": f"Z{i}", "chest": [position, position + width]})
        position += width
    return {
        "zones": {"chest": {"tolerance": Decimal(draw(st.sampled_from(["0", "0.5", "1"])))}},
        "sizes": sizes,
    }


def _floats(rules: dict[str, Any], factor: Decimal) -> dict[str, Any]:
    return {
        "zones": {"chest": {"tolerance": float(rules["zones"]["chest"]["tolerance"] * factor)}},
        "sizes": [
            {"label": s["label"], "chest": [float(v * factor) for v in s["chest"]]} for s in rules["sizes"]
        ],
    }


@PROPERTY
@given(inch_charts(), st.floats(60, 140))
def test_imperial_and_metric_versions_of_a_chart_give_the_same_answer(
    rules: dict[str, Any], chest: float
) -> None:
    imperial = Chart.from_rules(_floats(rules, Decimal(1)), unit_system="imperial")
    metric = Chart.from_rules(_floats(rules, Decimal("2.54")))
    assert imperial == metric
    assert recommend(body(chest_cm=chest), imperial) == recommend(body(chest_cm=chest), metric)


# ----------------------------------------------------------------------------- a published table


def test_published_table_centres_get_their_size_and_halfway_bodies_are_between_sizes() -> None:
    chart = Chart.from_rules(EN13402_MEN)
    centres = [_centre(chart, 0, k) for k in range(len(chart.labels))]
    for label, centre in zip(chart.labels, centres, strict=True):
        rec = recommend(body(chest_cm=centre), chart)
        assert rec.size_label == label and not rec.between_sizes
        assert rec.confidence >= 99
    for low, high in itertools.pairwise(centres):
        rec = recommend(body(chest_cm=(low + high) / 2), chart)
        assert rec.between_sizes
        assert rec.confidence < 75


# ----------------------------------------------------------------------------- preferences and fit maps


def _label(chest: float, **kwargs: Any) -> str | None:
    return recommend(body(chest_cm=chest), Chart.from_rules(EN13402_MEN), **kwargs).size_label


def test_slim_fit_sizes_down_and_relaxed_fit_sizes_up_near_a_boundary() -> None:
    slim = StylePreferences(fit_prefs=FitPreference.SLIM)
    relaxed = StylePreferences(fit_prefs=FitPreference.RELAXED)
    assert _label(95) == "M" and _label(95, preferences=slim) == "S"
    assert _label(101) == "M" and _label(101, preferences=relaxed) == "L"
    assert _label(98, preferences=slim) == _label(98, preferences=relaxed) == "M"  # mid-size: no change


def test_torso_length_preference_shifts_length_zones() -> None:
    chart = Chart.from_rules(
        {
            "zones": {"height": {"tolerance": 1}},
            "sizes": [{"label": "R", "height": [164, 176]}, {"label": "T", "height": [176, 188]}],
        }
    )
    long_torso = StylePreferences(torso_length_pref=TorsoLength.LONG)
    assert recommend(body(height_cm=175), chart).size_label == "R"
    assert recommend(body(height_cm=175), chart, preferences=long_torso).size_label == "T"


def test_a_brand_that_runs_small_moves_shoppers_up_a_size() -> None:
    runs_small = fit_map({"offset": {"chest": -2}})
    assert _label(101) == "M"
    assert _label(101, fit_map=runs_small) == "L"
    assert _label(101, fit_map=fit_map({"offset": {"chest": 2}})) == "M"


def test_garment_type_ease_asks_for_more_room() -> None:
    assert _label(99) == "M"
    assert _label(99, fit_map=fit_map({"ease": {"chest": 4}})) == "L"


def test_stretch_lets_a_body_beyond_the_largest_size_fit_it() -> None:
    assert _label(132) is None
    assert _label(132, fit_map=fit_map({"stretch": {"chest": 0.03}})) == "XXL"


def test_fit_map_rules_are_validated() -> None:
    with pytest.raises(ValidationError) as info:
        fit_map({"stretch": {"chest": 0.9}})
        _label(100, fit_map=fit_map({"stretch": {"chest": 0.9}}))
    assert info.value.field == "rule_set.stretch.chest"


# ----------------------------------------------------------------------------- bottoms


def test_bottoms_use_the_larger_of_the_waist_and_hip_driven_sizes() -> None:
    rules = {**JEANS, "zones": {"waist": {"tolerance": 3.0}, "hip": {"tolerance": 3.0}}}
    shopper = body(waist_cm=79.5, hip_cm=102.5)  # waist says M, hip (just) says L
    assert recommend(shopper, Chart.from_rules(rules)).size_label == "M"  # as a top: best joint score
    rec = recommend(shopper, Chart.from_rules(rules, garment_type="bottoms/jeans"))
    assert rec.size_label == "L"
    assert rec.between_sizes


def test_bottoms_give_no_size_when_the_larger_size_is_out_of_tolerance() -> None:
    rec = recommend(body(waist_cm=77, hip_cm=107), Chart.from_rules(JEANS, garment_type="bottoms"))
    assert rec.size_label is None and rec.confidence == 0
    assert rec.reason is not None and "waist fits M" in rec.reason and "hip fits L" in rec.reason
    assert {z.zone for z in rec.zones} == {"waist", "hip"}  # explained against the closest size


# ----------------------------------------------------------------------------- estimation and confidence


def test_missing_girths_are_estimated_marked_and_lower_the_confidence() -> None:
    chart = Chart.from_rules(EN13402_MEN)
    guessed = recommend(body(sex=Sex.MALE), chart)
    assert guessed.estimated_zones == ("chest",)
    assert guessed.zones[0].estimated
    measured = recommend(body(sex=Sex.MALE, chest_cm=guessed.zones[0].body_cm), chart)
    assert measured.estimated_zones == ()
    assert guessed.size_label == measured.size_label
    assert guessed.confidence < measured.confidence


def test_a_measurement_flagged_estimated_lowers_the_confidence() -> None:
    chart = Chart.from_rules(EN13402_MEN)
    flagged = recommend(body(chest_cm=97.0, estimated={"chest_cm"}), chart)
    measured = recommend(body(chest_cm=97.0), chart)
    assert flagged.estimated_zones == ("chest",)
    assert flagged.confidence < measured.confidence


def test_zones_the_body_lacks_and_cannot_be_estimated_lower_the_confidence() -> None:
    rules = {
        "zones": {"chest": {"tolerance": 2}, "neck": {"tolerance": 1}},
        "sizes": [
            {"label": "M", "chest": [94, 102], "neck": [39, 41]},
            {"label": "L", "chest": [102, 110], "neck": [41, 43]},
        ],
    }
    chart = Chart.from_rules(rules)
    full = recommend(body(chest_cm=98, neck_cm=40), chart)
    partial = recommend(body(chest_cm=98), chart)
    assert full.size_label == partial.size_label == "M"
    assert partial.confidence == round(full.confidence / 2)
    assert [z.zone for z in partial.zones] == ["chest"]
    neck_only = {"zones": {"neck": {}}, "sizes": [{"label": "M", "neck": 40}, {"label": "L", "neck": 42}]}
    nothing = recommend(body(), Chart.from_rules(neck_only))
    assert nothing.size_label is None and nothing.reason and "neck" in nothing.reason
    assert nothing.probabilities == {"M": 0.5, "L": 0.5}


def test_calibration_maps_the_raw_score_through_the_fit_maps_logistic() -> None:
    chart = Chart.from_rules(EN13402_MEN)
    shopper = body(chest_cm=101.2)
    plain = recommend(shopper, chart)
    raw = plain.probabilities["M"]
    assert plain.confidence == round(100 * raw)
    calibrated = recommend(
        shopper, chart, fit_map=fit_map({}, {"method": "logistic", "slope": 6.0, "intercept": -3.5})
    )
    assert calibrated.size_label == "M"
    assert calibrated.confidence == round(100 / (1 + math.exp(-(6.0 * raw - 3.5))))
    assert calibrated.fit_map_id == FIT_MAP_ID


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"method": "spline", "slope": 1, "intercept": 0}, "confidence_model.method"),
        ({"method": "isotonic", "slope": 1, "intercept": 0}, "confidence_model"),
        (
            {"method": "isotonic", "thresholds": [0.2, 0.1], "values": [0.1, 0.2]},
            "confidence_model.thresholds",
        ),
        ({"method": "isotonic", "thresholds": [0.1, 0.2], "values": [0.3, 0.2]}, "confidence_model.values"),
        ({"method": "isotonic", "thresholds": [0.1], "values": [1.5]}, "confidence_model.values[0]"),
        ({"slope": -1, "intercept": 0}, "confidence_model.slope"),
        ({"slope": 1}, "confidence_model"),
        ({"slope": 1, "intercept": 0, "bias": 2}, "confidence_model"),
    ],
)
def test_invalid_confidence_models_are_refused(model: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FitRules.from_json({}, model)
    assert info.value.field == field


# ----------------------------------------------------------------------------- explanations


def test_zones_explain_the_recommended_size_and_snapshot_into_a_fit_summary() -> None:
    entity = size_chart(TOPS)
    rec = recommend(body(chest_cm=104.0, waist_cm=88.5), entity, fit_map=fit_map({}))
    assert rec.size_label == "L"
    chest, waist = rec.zones
    assert (chest.zone, chest.verdict, chest.delta_cm) == ("chest", FitVerdict.OK, 0.0)
    assert (waist.zone, waist.verdict, waist.delta_cm) == ("waist", FitVerdict.LOOSE, -1.5)
    assert (waist.size_min_cm, waist.size_max_cm) == (90.0, 98.0)
    summary = rec.to_fit_summary()
    assert summary == FitSummary(
        size_label="L",
        confidence=rec.confidence,
        zones=rec.zones,
        between_sizes=rec.between_sizes,
        size_chart_id=CHART_ID,
        fit_map_id=FIT_MAP_ID,
        engine_version=ENGINE_VERSION,
        score=round(rec.score, 6),
    )
    assert 0.5 < summary.score <= 1.0  # the uncalibrated score: what calibration is fitted on


def test_a_fit_summary_needs_a_stored_chart() -> None:
    rec = recommend(body(chest_cm=98), Chart.from_rules(EN13402_MEN))
    with pytest.raises(ValidationError) as info:
        rec.to_fit_summary()
    assert info.value.field == "size_chart_id"


def test_trusted_zone_fits_equal_validated_ones() -> None:
    values = dict(
        zone="chest",
        body_cm=98.2,
        size_min_cm=94.0,
        size_max_cm=102.0,
        delta_cm=0.0,
        verdict=FitVerdict.OK,
        estimated=True,
    )
    trusted = _trusted_zone_fit(**values)
    assert trusted == ZoneFit(**values)
    assert attrs.asdict(trusted) == attrs.asdict(ZoneFit(**values))


def test_recommend_refuses_wrong_inputs() -> None:
    with pytest.raises(ValidationError):
        recommend({"chest_cm": 98}, Chart.from_rules(EN13402_MEN))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        recommend(body(chest_cm=98), EN13402_MEN)  # type: ignore[arg-type]
