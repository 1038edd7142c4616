"""Estimating missing girths from height, weight and (when known) sex.

Model: ordinary least squares, one equation per zone and sex,
``girth_cm = a + b_h * height_cm + b_w * weight_kg``, plus a pooled equation for unknown sex.

Where the coefficients come from (read this before relying on them)
-------------------------------------------------------------------
No published regression table could be read in full with the tools available while this
module was written, so **these coefficients are not copied from a paper**. They were fitted
for FitTwin by ordinary least squares on published measured data sets:

* ``waist`` and ``hip``: US National Health and Nutrition Examination Survey (NHANES),
  2017–March 2020 pre-pandemic Body Measures (P_BMX) and Demographics (P_DEMO), adults ≥ 18,
  as extracted by M. Gagolewski (``nhanes_adult_{female,male}_bmx_2020.csv``, teaching-data
  repository). Public domain. The rows used (288 women, 290 men) ship in
  ``tests/fit/data/`` so the fit and its error can be reproduced.
* ``chest`` and ``thigh``: Heinz G., Peterson L.J., Johnson R.W., Kerk C.J. (2003),
  *Exploring Relationships in Body Dimensions*, Journal of Statistics Education 11(2)
  (507 physically active adults, 247 men and 260 women; chest girth at nipple level for men,
  just above the breast tissue for women). Its licence forbids republishing, so it is not
  shipped; these zones' error cannot be re-checked from this repository.

Uncertainty (``ESTIMATE_SD_CM``) is each equation's 10-fold cross-validated RMSE. The Heinz
sample is young and fit, so its errors understate the general population's: the chest and
thigh RMSEs are multiplied by 1.6, the mean ratio of NHANES to Heinz waist RMSE (6.68/3.45 for
women, 6.21/4.69 for men). ``docs/fit.md`` reports the measured errors and the method.
"""

from __future__ import annotations

from typing import Final

from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import parse_enum
from fittwin_core.domain.users import HEIGHT_RANGE_CM, MEASUREMENT_RANGES, WEIGHT_RANGE_KG, Sex

POOLED: Final = "pooled"
"""Key of the equations used when sex is unknown."""

# zone -> sex key -> (a, b_height, b_weight)
COEFFICIENTS: Final[dict[str, dict[str, tuple[float, float, float]]]] = {
    "chest_cm": {
        "female": (81.4449, -0.19045, 0.59430),
        "male": (96.0137, -0.25181, 0.63644),
        POOLED: (54.4299, -0.05729, 0.70442),
    },
    "waist_cm": {
        "female": (121.9424, -0.52990, 0.78699),
        "male": (143.6889, -0.62694, 0.75594),
        POOLED: (115.6958, -0.47559, 0.76608),
    },
    "hip_cm": {
        "female": (97.5007, -0.27617, 0.72326),
        "male": (90.7863, -0.20309, 0.55625),
        POOLED: (145.7584, -0.55542, 0.65134),
    },
    "thigh_cm": {
        "female": (49.4587, -0.11757, 0.44754),
        "male": (54.0479, -0.14698, 0.36567),
        POOLED: (81.7635, -0.27768, 0.32706),
    },
}
"""OLS coefficients fitted for FitTwin (see the module docstring for data and method)."""

ESTIMATE_SD_CM: Final[dict[str, dict[str, float]]] = {
    "chest_cm": {"female": 5.15, "male": 6.62, POOLED: 7.04},
    "waist_cm": {"female": 6.68, "male": 6.21, POOLED: 6.51},
    "hip_cm": {"female": 4.31, "male": 4.41, POOLED: 5.56},
    "thigh_cm": {"female": 3.73, "male": 4.11, POOLED: 5.17},
}
"""Standard error (cm) of each estimate: cross-validated RMSE (×1.6 for Heinz-fitted zones)."""

ESTIMABLE: Final = frozenset(COEFFICIENTS)
"""Measurements :func:`estimate_measurements` can fill in."""

MEASURED_SD_CM: Final = 1.0
"""Standard error assumed for a measurement taken with a tape (and for height)."""
FLAGGED_ESTIMATE_SD_CM: Final = 6.0
"""Standard error for a value the caller marked estimated in a zone this module cannot estimate."""

SEX_CODES: Final = {"female": 0, "male": 1, POOLED: 2}


def sex_key(sex: Sex | str | None) -> str:
    """``"female"``, ``"male"`` or ``"pooled"`` (unknown sex)."""
    if sex is None:
        return POOLED
    return parse_enum(Sex, sex, "sex").value


def estimate_one(name: str, height_cm: float, weight_kg: float, key: str) -> float:
    """One estimate, clamped to the measurement's human range (same arithmetic as the batch path)."""
    a, b_h, b_w = COEFFICIENTS[name][key]
    value = (a + b_h * height_cm) + b_w * weight_kg
    low, high = MEASUREMENT_RANGES[name]
    return min(max(value, low), high)


def estimate_measurements(
    height_cm: float, weight_kg: float, sex: Sex | str | None = None
) -> dict[str, float]:
    """Estimate girths (cm) from height and weight: ``{"chest_cm": ..., "waist_cm": ..., ...}``.

    Uses sex-specific equations when ``sex`` is given, pooled ones otherwise. Estimates carry
    errors of several centimetres (``ESTIMATE_SD_CM``); the recommender accounts for them.
    """
    for field, value, (low, high), unit in (
        ("height_cm", height_cm, HEIGHT_RANGE_CM, "cm"),
        ("weight_kg", weight_kg, WEIGHT_RANGE_KG, "kg"),
    ):
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:  # noqa: PLR0124
            raise ValidationError(field, "must be a finite number")
        if not low <= value <= high:
            raise ValidationError(field, f"must be between {low:g} and {high:g} {unit}")
    key = sex_key(sex)
    return {name: estimate_one(name, float(height_cm), float(weight_kg), key) for name in COEFFICIENTS}


__all__ = [
    "COEFFICIENTS",
    "ESTIMABLE",
    "ESTIMATE_SD_CM",
    "FLAGGED_ESTIMATE_SD_CM",
    "MEASURED_SD_CM",
    "POOLED",
    "estimate_measurements",
    "estimate_one",
    "sex_key",
]
