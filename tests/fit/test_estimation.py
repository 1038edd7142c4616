"""Estimating girths from height and weight, and its error on shipped measured data."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.users import MEASUREMENT_RANGES, Sex
from fittwin_core.fit import ESTIMATE_SD_CM, estimate_measurements

DATA = Path(__file__).parent / "data"


def _rows(sex: str) -> list[dict[str, float]]:
    with (DATA / f"nhanes_adult_{sex}_bmx_2020_subset.csv").open() as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(lines)]


def test_estimates_cover_the_estimable_girths_within_human_ranges() -> None:
    estimate = estimate_measurements(178, 80, Sex.MALE)
    assert set(estimate) == {"chest_cm", "waist_cm", "hip_cm", "thigh_cm"}
    for name, value in estimate.items():
        low, high = MEASUREMENT_RANGES[name]
        assert low <= value <= high


def test_heavier_bodies_get_larger_girths_and_sex_matters() -> None:
    light, heavy = estimate_measurements(170, 60, "female"), estimate_measurements(170, 90, "female")
    assert all(heavy[k] > light[k] for k in light)
    assert (
        estimate_measurements(175, 75, "male")["chest_cm"]
        != estimate_measurements(175, 75, "female")["chest_cm"]
    )
    pooled = estimate_measurements(175, 75)
    assert set(pooled) == set(light)


@pytest.mark.parametrize(
    ("args", "field"), [((20, 70), "height_cm"), ((170, "70"), "weight_kg"), ((170, 70, "x"), "sex")]
)
def test_invalid_inputs_are_refused(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        estimate_measurements(*args)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize("sex", ["female", "male"])
@pytest.mark.parametrize(("zone", "column"), [("waist_cm", "BMXWAIST"), ("hip_cm", "BMXHIP")])
def test_error_on_the_shipped_nhanes_rows_matches_the_documented_uncertainty(
    sex: str, zone: str, column: str
) -> None:
    rows = _rows(sex)
    residuals = [row[column] - estimate_measurements(row["BMXHT"], row["BMXWT"], sex)[zone] for row in rows]
    rmse = math.sqrt(sum(r * r for r in residuals) / len(residuals))
    bias = sum(residuals) / len(residuals)
    # In-sample RMSE sits just under the cross-validated RMSE used as the estimate's SD.
    assert rmse <= ESTIMATE_SD_CM[zone][sex] + 0.05
    assert rmse >= ESTIMATE_SD_CM[zone][sex] - 0.6
    assert abs(bias) < 0.05
