"""Chart JSON: validation naming size and zone, unit conversion, grading, parsed ranges."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fittwin_core.domain.errors import ValidationError
from fittwin_core.fit import Chart, normalize_size_chart, parse_chart
from tests.fit.samples import JEANS, TOPS, size_chart


def _broken(mutate: Any, rules: dict[str, Any] = TOPS) -> dict[str, Any]:
    broken = copy.deepcopy(rules)
    mutate(broken)
    return broken


def _error(
    rules: dict[str, Any], grading: dict[str, Any] | None = None, unit: str = "metric"
) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        normalize_size_chart(rules, grading, unit)
    return info.value


def test_a_valid_metric_chart_is_stored_as_given_in_cm() -> None:
    rules, grading = normalize_size_chart(TOPS)
    assert grading is None
    assert rules["kind"] == "body"
    assert rules["zones"]["chest"] == {"tolerance": 2.0, "weight": 1.0}
    assert rules["sizes"][1] == {"label": "M", "chest": [94.0, 102.0], "waist": [82.0, 90.0]}


def test_imperial_charts_are_converted_to_cm_exactly() -> None:
    rules, _ = normalize_size_chart(
        {
            "zones": {"chest": {"tolerance": 0.5}},
            "sizes": [{"label": "M", "chest": [38, 40.5]}, {"label": "L", "chest": [40.5, 42.25]}],
        },
        None,
        "imperial",
    )
    assert rules["sizes"][0]["chest"] == [96.52, 102.87]
    assert rules["sizes"][1]["chest"] == [102.87, 107.315]
    assert rules["zones"]["chest"]["tolerance"] == 1.27


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (
            lambda r: r["sizes"][1].update(chest=[92, 100]),
            "measurement_rules.sizes.M.chest",
            "overlaps size S",
        ),
        (
            lambda r: r["sizes"][2].update(waist=[80, 84]),
            "measurement_rules.sizes.L.waist",
            "must not be smaller",
        ),
        (lambda r: r["zones"].update(bust={}), "measurement_rules.zones.bust", "not a known body zone"),
        (
            lambda r: r["zones"]["waist"].update(tolerance=-1),
            "measurement_rules.zones.waist.tolerance",
            "negative",
        ),
        (lambda r: r["sizes"][3].pop("waist"), "measurement_rules.sizes.XL.waist", "missing"),
        (lambda r: r["sizes"][2].update(chest=106), "measurement_rules.sizes.L.chest", "one form per zone"),
        (lambda r: r["sizes"][0].update(chest=[95, 90]), "measurement_rules.sizes.S.chest", "minimum"),
        (lambda r: r["sizes"][1].update(neck=[38, 40]), "measurement_rules.sizes.M.neck", "not declared"),
        (
            lambda r: r["zones"]["chest"].update(ease=4),
            "measurement_rules.zones.chest.ease",
            "garment charts",
        ),
        (
            lambda r: r["zones"]["chest"].update(weight=0),
            "measurement_rules.zones.chest.weight",
            "greater than 0",
        ),
        (
            lambda r: r["sizes"].append(dict(r["sizes"][0], label="M")),
            "measurement_rules.sizes.M",
            "listed twice",
        ),
    ],
)
def test_invalid_charts_are_refused_naming_size_and_zone(mutate: Any, field: str, words: str) -> None:
    error = _error(_broken(mutate))
    assert error.field == field
    assert words in error.rule


def test_a_size_identical_to_its_neighbour_is_refused() -> None:
    error = _error(_broken(lambda r: r["sizes"].insert(2, dict(r["sizes"][1], label="M2"))))
    assert error.field == "measurement_rules.sizes.M2"


def test_zones_constant_across_sizes_are_allowed() -> None:
    rules = {
        "zones": {"waist": {}, "inseam": {}},
        "sizes": [
            {"label": "30", "waist": [74, 78], "inseam": 81},
            {"label": "32", "waist": [78, 82], "inseam": 81},
        ],
    }
    chart = Chart.from_rules(rules)
    assert chart.zones[1].lows == (81.0, 81.0)


def test_centre_only_ranges_meet_halfway_between_neighbours() -> None:
    chart = Chart.from_rules(
        {
            "zones": {"chest": {}},
            "sizes": [{"label": "S", "chest": 90}, {"label": "M", "chest": 96}, {"label": "L", "chest": 104}],
        }
    )
    (zone,) = chart.zones
    assert zone.lows == (87.0, 93.0, 100.0)
    assert zone.highs == (93.0, 100.0, 108.0)


def test_garment_charts_subtract_the_ease_to_get_body_ranges() -> None:
    chart = Chart.from_rules(
        {
            "kind": "garment",
            "zones": {"chest": {"ease": 8}},
            "sizes": [{"label": "M", "chest": [104, 110]}, {"label": "L", "chest": [110, 116]}],
        }
    )
    assert chart.zones[0].lows == (96.0, 102.0)
    assert chart.zones[0].highs == (102.0, 108.0)


GRADING = {"base": "M", "order": ["XS", "S", "M", "L", "XL", "XXL"], "steps": {"chest": 8, "waist": 8}}


def test_grading_derives_unlisted_sizes_from_the_base_size() -> None:
    listed = {"zones": TOPS["zones"], "sizes": [TOPS["sizes"][0], TOPS["sizes"][1]]}
    rules, grading = normalize_size_chart(listed, GRADING)
    assert grading is not None and grading["steps"] == {"chest": 8.0, "waist": 8.0}
    assert [s["label"] for s in rules["sizes"]] == ["S", "M"]  # stored as entered
    chart = Chart.from_rules(listed, GRADING)
    assert chart.labels == ("XS", "S", "M", "L", "XL", "XXL")
    chest = chart.zones[0]
    assert chest.lows == (78.0, 86.0, 94.0, 102.0, 110.0, 118.0)  # XS derived, S listed, L.. derived
    assert chest.highs[-1] == 126.0


@pytest.mark.parametrize(
    ("grading", "field"),
    [
        (dict(GRADING, base="L"), "grading_rules.base"),
        (dict(GRADING, steps={"chest": 8}), "grading_rules.steps.waist"),
        (dict(GRADING, steps={"chest": -8, "waist": 8}), "grading_rules.steps.chest"),
        (dict(GRADING, order=["M", "S", "L"]), "grading_rules.order"),
        (dict(GRADING, order=["S", "M", "M"]), "grading_rules.order"),
    ],
)
def test_invalid_grading_rules_are_refused(grading: dict[str, Any], field: str) -> None:
    listed = {"zones": TOPS["zones"], "sizes": [TOPS["sizes"][0], TOPS["sizes"][1]]}
    assert _error(listed, grading).field == field


def test_grading_that_overlaps_a_listed_size_is_refused_naming_it() -> None:
    listed = {"zones": TOPS["zones"], "sizes": [TOPS["sizes"][0], TOPS["sizes"][1]]}
    error = _error(listed, dict(GRADING, steps={"chest": 4, "waist": 8}))
    assert error.field == "measurement_rules.sizes.L.chest"  # M + 4 cm overlaps M's 8 cm range
    assert "overlaps size M" in error.rule


def test_parse_chart_reads_the_stored_entity_and_caches_it() -> None:
    entity = size_chart(JEANS, garment_type="bottoms/jeans")
    chart = parse_chart(entity)
    assert chart is parse_chart(entity)
    assert chart.is_bottoms and chart.size_chart_id == entity.id
    assert chart.labels == ("S", "M", "L", "XL")


def test_unit_system_must_be_known() -> None:
    assert _error(TOPS, None, "furlongs").field == "unit_system"
