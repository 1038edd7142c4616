"""Estimating missing girths from height, weight and (when known) sex, at the chart's landmarks.

Model: ordinary least squares, one equation per zone and sex,
``girth_cm = a + b_h * height_cm + b_w * weight_kg``, plus a pooled equation for unknown sex.
An equation is used only inside the height and BMI range of the rows it was fitted on; outside
it the zone is **not estimated** (the recommendation lists it in ``unassessed_zones``).

Landmarks: size charts (ASTM D5585, ISO 8559-1) measure the waist at the natural waistline, the
bust (women) or chest (men) at the bust points / nipples, the hip at the greatest buttock
prominence and the thigh just below the gluteal fold. Each equation below is fitted on data
measured at that landmark.

Where the coefficients come from
--------------------------------
Fitted for FitTwin by OLS on public-domain measured data that ship in ``tests/fit/data/``:

* ``chest``, ``waist``, ``thigh``: the 1988 Anthropometric Survey of U.S. Army Personnel
  (ANSUR; Gordon et al. 1989, NATICK/TR-89/044), a U.S. Government work in the public domain.
  71 women and 70 men (``ansur88_{female,male}_subset.csv``); two thirds of the rows fit the
  equations, every third row is held out. Chest circumference at the bustpoints (women: ISO
  8559-1 *bust girth*) or nipples (men: *chest girth*); waist circumference at the natural
  indentation (*waist girth*, not the omphalion and not the iliac crest); thigh circumference at
  the gluteal furrow (*thigh girth*).
* ``hip``: the US National Health and Nutrition Examination Survey (NHANES) 2017–March 2020
  Body Measures (P_BMX), adults, public domain (288 women, 290 men,
  ``nhanes_adult_{female,male}_bmx_2020_subset.csv``): hip circumference at the maximum
  extension of the buttocks (*hip girth*). NHANES's waist is taken at the iliac crest, which is
  why it is no longer used: on the ANSUR natural waist it read 11.3 cm (women) and 9.0 cm (men)
  too large.

Error on rows **not** used for fitting (RMSE / MAE / mean of measured − estimate, cm):

===== ======================= ====================== ====================== ======================
zone  data not fitted on      women (sex given)      men (sex given)        sex unknown (pooled)
===== ======================= ====================== ====================== ======================
chest ANSUR 1988 held-out     4.00 / 3.27 / +0.07    3.80 / 3.09 / +0.47    3.83 / 3.11 / +0.23
waist ANSUR 1988 held-out     3.08 / 2.36 / +0.36    3.99 / 3.01 / −0.72    3.56 / 2.85 / +0.10
thigh ANSUR 1988 held-out     2.25 / 1.82 / −0.35    2.25 / 1.67 / +0.77    2.37 / 1.89 / −0.05
hip   ANSUR 1988, all rows    2.29 / 1.74 / −0.24    2.27 / 1.69 / −0.48    3.71 / 2.93 / +0.24
===== ======================= ====================== ====================== ======================

Uncertainty (``ESTIMATE_SD_CM``): ANSUR soldiers are a narrow population (BMI 18–34), so their
errors understate the general population's. For the one landmark both surveys measure, the hip,
the general-population (NHANES) RMSE is 1.8–2.2 times the ANSUR one; the ANSUR-fitted zones' SD
is their held-out RMSE × 2.0 (a judgement, stated in ``docs/fit.md``). The hip SD is its NHANES
10-fold cross-validated RMSE.
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
        "female": (92.8016, -0.26337, 0.67163),
        "male": (84.8757, -0.25170, 0.74730),
        POOLED: (91.0120, -0.26556, 0.70282),
    },
    "waist_cm": {
        "female": (84.9537, -0.35051, 0.72509),
        "male": (100.3481, -0.44424, 0.79817),
        POOLED: (73.3518, -0.31467, 0.83487),
    },
    "hip_cm": {
        "female": (97.5007, -0.27617, 0.72326),
        "male": (90.7863, -0.20309, 0.55625),
        POOLED: (145.7584, -0.55542, 0.65134),
    },
    "thigh_cm": {
        "female": (68.4883, -0.27563, 0.55782),
        "male": (51.4642, -0.14236, 0.41504),
        POOLED: (78.5150, -0.28772, 0.41202),
    },
}
"""OLS coefficients fitted for FitTwin (see the module docstring for data and method)."""

ESTIMATE_SD_CM: Final[dict[str, dict[str, float]]] = {
    "chest_cm": {"female": 8.00, "male": 7.60, POOLED: 7.66},
    "waist_cm": {"female": 6.16, "male": 7.98, POOLED: 7.12},
    "hip_cm": {"female": 4.31, "male": 4.41, POOLED: 5.56},
    "thigh_cm": {"female": 4.50, "male": 4.50, POOLED: 4.74},
}
"""Standard error (cm) of each estimate (see the module docstring)."""

_ANSUR_RANGE: Final = (152.0, 189.0, 18.0, 35.0)
_NHANES_RANGE: Final = (144.0, 199.0, 14.0, 62.0)
VALID_RANGES: Final[dict[str, tuple[float, float, float, float]]] = {
    "chest_cm": _ANSUR_RANGE,
    "waist_cm": _ANSUR_RANGE,
    "hip_cm": _NHANES_RANGE,
    "thigh_cm": _ANSUR_RANGE,
}
"""zone → (min height, max height, min BMI, max BMI) of the rows its equations were fitted on
(rounded outward to whole units). Outside that range the zone is not estimated."""

DATA_SETS: Final[dict[str, str]] = {
    "chest_cm": "ANSUR 1988 (U.S. Army), bust / chest at the nipples",
    "waist_cm": "ANSUR 1988 (U.S. Army), natural waist",
    "hip_cm": "NHANES 2017-2020 (CDC), maximum buttock extension",
    "thigh_cm": "ANSUR 1988 (U.S. Army), thigh at the gluteal furrow",
}
"""zone → the data set its equations were fitted on."""

LANDMARKS: Final[dict[str, str]] = {
    "chest": "chest girth (men) / bust girth (women): horizontal, at the nipples / bust points",
    "waist": "waist girth: horizontal, at the natural waistline between the lowest ribs and the iliac crests",
    "hip": "hip girth: horizontal, at the greatest prominence of the buttocks",
    "thigh": "thigh girth: horizontal, at the highest part of the thigh just below the gluteal fold",
    "neck": "neck girth: around the neck at its base",
    "shoulder": "shoulder width / length: from the side neck point to the shoulder point",
    "sleeve": "arm length: from the shoulder point over the elbow to the wrist",
    "inseam": "inside leg length: from the crotch to the floor",
    "torso_length": "back length: from the cervicale to the waistline",
    "foot_length": "foot length: from the back of the heel to the tip of the longest toe",
    "height": "stature (body height): from the crown to the floor",
}
"""Chart zone → the ISO 8559-1 body dimension (and landmark) it means."""

ESTIMABLE: Final = frozenset(COEFFICIENTS)
"""Measurements :func:`estimate_measurements` can fill in (inside their valid ranges)."""

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


def bmi(height_cm: float, weight_kg: float) -> float:
    """Body mass index (kg/m²), computed as the batch path computes it."""
    metres = height_cm / 100.0
    return weight_kg / (metres * metres)


def can_estimate(name: str, height_cm: float, weight_kg: float) -> bool:
    """Whether ``name`` has an honest estimate for this height and weight."""
    if name not in VALID_RANGES:
        return False
    low_h, high_h, low_b, high_b = VALID_RANGES[name]
    index = bmi(height_cm, weight_kg)
    return low_h <= height_cm <= high_h and low_b <= index <= high_b


def estimate_one(name: str, height_cm: float, weight_kg: float, key: str) -> float:
    """One estimate, clamped to the measurement's human range (same arithmetic as the batch path)."""
    a, b_h, b_w = COEFFICIENTS[name][key]
    value = (a + b_h * height_cm) + b_w * weight_kg
    low, high = MEASUREMENT_RANGES[name]
    return min(max(value, low), high)


def estimate_measurements(
    height_cm: float, weight_kg: float, sex: Sex | str | None = None
) -> dict[str, float]:
    """Estimate girths (cm) at the size charts' landmarks from height and weight:
    ``{"chest_cm": ..., "waist_cm": ..., "hip_cm": ..., "thigh_cm": ...}``.

    Uses sex-specific equations when ``sex`` is given, pooled ones otherwise. A zone whose
    equations were not fitted on bodies of this height and BMI (``VALID_RANGES``) is left out:
    there is no honest estimate for it. Estimates carry errors of several centimetres
    (``ESTIMATE_SD_CM``); the recommender accounts for them.
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
    h, w = float(height_cm), float(weight_kg)
    return {name: estimate_one(name, h, w, key) for name in COEFFICIENTS if can_estimate(name, h, w)}


__all__ = [
    "COEFFICIENTS",
    "DATA_SETS",
    "ESTIMABLE",
    "ESTIMATE_SD_CM",
    "FLAGGED_ESTIMATE_SD_CM",
    "LANDMARKS",
    "MEASURED_SD_CM",
    "POOLED",
    "VALID_RANGES",
    "bmi",
    "can_estimate",
    "estimate_measurements",
    "estimate_one",
    "sex_key",
]
