"""Fit maps: a brand's parametric adjustments (``rule_set``) and confidence calibration
(``confidence_model``), their validation, and the parsed :class:`FitRules`.

``rule_set`` (every key optional, lengths in cm)::

    {
      "offset": {"chest": -2},           # the garment measures 2 cm less than the chart says
                                         # (runs small → shoppers size up); positive: runs large
      "stretch": {"chest": 0.04},        # stretch fabric: a size's maximum grows by 4 %
      "ease": {"chest": 4},              # extra room this garment type needs (worn over layers)
      "preference_ease": {"slim": -2, "regular": 0, "relaxed": 2},   # per fit preference
      "length_preference": {"short": -2, "regular": 0, "long": 2}    # per torso-length pref.
    }

``confidence_model`` maps the engine's raw score ``r`` (0–1) to a confidence, either
``{"method": "logistic", "slope": a, "intercept": b}`` → ``1 / (1 + exp(-(a*r + b)))``, or
``{"method": "isotonic", "thresholds": [t0, t1, ...], "values": [v0, v1, ...]}`` → the value of
the last threshold ``<= r`` (a non-decreasing step function, as pool-adjacent-violators fits it;
``v0`` below ``t0``). Optional: ``"notes"`` (how it was fitted), ``"samples"`` (outcomes used) and
``"ece_before"`` / ``"ece_after"`` (expected calibration error on held-back outcomes).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from fittwin_core.domain.catalog import FitMap
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import thaw_json
from fittwin_core.domain.users import FitPreference, TorsoLength
from fittwin_core.fit.charts import ZONE_FIELDS

DEFAULT_PREFERENCE_EASE: dict[str, float] = {"slim": -2.0, "regular": 0.0, "relaxed": 2.0}
"""cm of room added (relaxed) or removed (slim) on girth zones when the fit map says nothing."""
DEFAULT_LENGTH_PREFERENCE: dict[str, float] = {"short": -2.0, "regular": 0.0, "long": 2.0}
"""cm added to torso-length and height zones for a long (short) torso-length preference."""
MAX_STRETCH = 0.5
MAX_ADJUST_CM = 50.0

_RULES = "rule_set"
_MODEL = "confidence_model"


def _number(field: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValidationError(field, "must be a finite number")
    return float(value)


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a JSON object")
    return value


def _per_zone(key: str, raw: Any, low: float, high: float) -> dict[str, float]:
    values = _mapping(f"{_RULES}.{key}", raw)
    out: dict[str, float] = {}
    for zone, value in values.items():
        field = f"{_RULES}.{key}.{zone}"
        if zone not in ZONE_FIELDS:
            raise ValidationError(field, f"is not a known body zone ({', '.join(ZONE_FIELDS)})")
        number = _number(field, value)
        if not low <= number <= high:
            raise ValidationError(field, f"must be between {low:g} and {high:g}")
        out[str(zone)] = number
    return out


def _per_label(key: str, raw: Any, labels: tuple[str, ...], default: Mapping[str, float]) -> dict[str, float]:
    values = _mapping(f"{_RULES}.{key}", raw)
    unknown = sorted(str(k) for k in values if k not in labels)
    if unknown:
        raise ValidationError(
            f"{_RULES}.{key}", f"has unknown keys: {', '.join(unknown)} (use {', '.join(labels)})"
        )
    out = dict(default)
    for label, value in values.items():
        number = _number(f"{_RULES}.{key}.{label}", value)
        if abs(number) > MAX_ADJUST_CM:
            raise ValidationError(
                f"{_RULES}.{key}.{label}", f"must be between -{MAX_ADJUST_CM:g} and {MAX_ADJUST_CM:g}"
            )
        out[str(label)] = number
    return out


_MODEL_KEYS = {
    "method",
    "slope",
    "intercept",
    "thresholds",
    "values",
    "notes",
    "samples",
    "ece_before",
    "ece_after",
}
MAX_STEPS = 200
"""Most steps an isotonic calibration may have."""


def _unit_numbers(field: str, raw: Any) -> list[float]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ValidationError(field, "must be a non-empty list of numbers")
    if len(raw) > MAX_STEPS:
        raise ValidationError(field, f"must have at most {MAX_STEPS} entries")
    out = []
    for i, value in enumerate(raw):
        number = _number(f"{field}[{i}]", value)
        if not 0.0 <= number <= 1.0:
            raise ValidationError(f"{field}[{i}]", "must be between 0 and 1")
        out.append(number)
    return out


def _model_extras(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The optional, descriptive keys of a ``confidence_model``, checked."""
    model: dict[str, Any] = {}
    if "notes" in raw:
        notes = raw["notes"]
        if not isinstance(notes, str) or len(notes) > 500:
            raise ValidationError(f"{_MODEL}.notes", "must be text of at most 500 characters")
        model["notes"] = notes
    if "samples" in raw:
        samples = raw["samples"]
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
            raise ValidationError(f"{_MODEL}.samples", "must be a non-negative integer")
        model["samples"] = samples
    for key in ("ece_before", "ece_after"):
        if key in raw:
            value = _number(f"{_MODEL}.{key}", raw[key])
            if not 0.0 <= value <= 1.0:
                raise ValidationError(f"{_MODEL}.{key}", "must be between 0 and 1")
            model[key] = value
    return model


def _confidence_model(confidence_model: Mapping[str, Any]) -> dict[str, Any]:
    raw = _mapping(_MODEL, thaw_json(confidence_model))
    unknown = sorted(str(k) for k in raw if k not in _MODEL_KEYS)
    if unknown:
        raise ValidationError(_MODEL, f"has unknown keys: {', '.join(unknown)}")
    method = raw.get("method", "logistic")
    model: dict[str, Any]
    if method == "logistic":
        if "slope" not in raw or "intercept" not in raw:
            raise ValidationError(_MODEL, "needs slope and intercept")
        slope = _number(f"{_MODEL}.slope", raw["slope"])
        if slope <= 0 or slope > 1000:
            raise ValidationError(f"{_MODEL}.slope", "must be greater than 0 (and at most 1000)")
        intercept = _number(f"{_MODEL}.intercept", raw["intercept"])
        if abs(intercept) > 1000:
            raise ValidationError(f"{_MODEL}.intercept", "must be between -1000 and 1000")
        model = {"method": "logistic", "slope": slope, "intercept": intercept}
    elif method == "isotonic":
        if "thresholds" not in raw or "values" not in raw:
            raise ValidationError(_MODEL, "needs thresholds and values")
        thresholds = _unit_numbers(f"{_MODEL}.thresholds", raw["thresholds"])
        values = _unit_numbers(f"{_MODEL}.values", raw["values"])
        if len(values) != len(thresholds):
            raise ValidationError(f"{_MODEL}.values", "must have one value per threshold")
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValidationError(f"{_MODEL}.thresholds", "must increase strictly")
        if any(b < a for a, b in itertools.pairwise(values)):
            raise ValidationError(
                f"{_MODEL}.values", "must not decrease (a higher score never lowers confidence)"
            )
        model = {"method": "isotonic", "thresholds": thresholds, "values": values}
    else:
        raise ValidationError(f"{_MODEL}.method", "must be logistic or isotonic")
    model.update(_model_extras(raw))
    return model


@attrs.frozen(cache_hash=True)
class Calibration:
    """A parsed ``confidence_model``: logistic (``slope``, ``intercept``) or isotonic
    (``thresholds``, ``values``: a non-decreasing step function)."""

    method: str
    slope: float = 1.0
    intercept: float = 0.0
    thresholds: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> Calibration:
        """From a validated ``confidence_model``."""
        if model["method"] == "isotonic":
            return cls("isotonic", thresholds=tuple(model["thresholds"]), values=tuple(model["values"]))
        return cls("logistic", slope=model["slope"], intercept=model["intercept"])

    def step(self, raw: float) -> float:
        """The isotonic value for ``raw`` (the last threshold at or below it; the first value below all)."""
        i = bisect.bisect_right(self.thresholds, raw) - 1
        return self.values[max(i, 0)]


def validate_fit_map(
    rule_set: Mapping[str, Any] | None, confidence_model: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validate a fit map and return ``(rule_set, confidence_model)`` as they should be stored.

    Raises :class:`ValidationError` naming the key at fault (e.g. ``rule_set.stretch.chest``).
    """
    rules = _mapping(_RULES, thaw_json(rule_set) if rule_set is not None else {})
    allowed = {"offset", "stretch", "ease", "preference_ease", "length_preference"}
    unknown = sorted(str(k) for k in rules if k not in allowed)
    if unknown:
        raise ValidationError(_RULES, f"has unknown keys: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    if "offset" in rules:
        out["offset"] = _per_zone("offset", rules["offset"], -MAX_ADJUST_CM, MAX_ADJUST_CM)
    if "stretch" in rules:
        out["stretch"] = _per_zone("stretch", rules["stretch"], 0.0, MAX_STRETCH)
    if "ease" in rules:
        out["ease"] = _per_zone("ease", rules["ease"], 0.0, MAX_ADJUST_CM)
    if "preference_ease" in rules:
        labels = tuple(p.value for p in FitPreference)
        out["preference_ease"] = _per_label(
            "preference_ease", rules["preference_ease"], labels, DEFAULT_PREFERENCE_EASE
        )
    if "length_preference" in rules:
        labels = tuple(t.value for t in TorsoLength)
        out["length_preference"] = _per_label(
            "length_preference", rules["length_preference"], labels, DEFAULT_LENGTH_PREFERENCE
        )
    model = None if confidence_model is None else _confidence_model(confidence_model)
    return out, model


@attrs.frozen(cache_hash=True)
class FitRules:
    """A parsed fit map: per-zone adjustments and the calibration coefficients."""

    offset: tuple[tuple[str, float], ...] = ()
    stretch: tuple[tuple[str, float], ...] = ()
    ease: tuple[tuple[str, float], ...] = ()
    preference_ease: tuple[tuple[str, float], ...] = tuple(DEFAULT_PREFERENCE_EASE.items())
    length_preference: tuple[tuple[str, float], ...] = tuple(DEFAULT_LENGTH_PREFERENCE.items())
    calibration: Calibration | None = None
    fit_map_id: Any = None

    @classmethod
    def from_json(
        cls,
        rule_set: Mapping[str, Any] | None,
        confidence_model: Mapping[str, Any] | None = None,
        fit_map_id: Any = None,
    ) -> FitRules:
        """Validate and parse fit-map JSON (for notebooks and tests)."""
        rules, model = validate_fit_map(rule_set, confidence_model)
        return cls(
            offset=tuple(rules.get("offset", {}).items()),
            stretch=tuple(rules.get("stretch", {}).items()),
            ease=tuple(rules.get("ease", {}).items()),
            preference_ease=tuple(rules.get("preference_ease", DEFAULT_PREFERENCE_EASE).items()),
            length_preference=tuple(rules.get("length_preference", DEFAULT_LENGTH_PREFERENCE).items()),
            calibration=None if model is None else Calibration.from_model(model),
            fit_map_id=fit_map_id,
        )


DEFAULT_RULES = FitRules()
"""No fit map: no adjustments, default preference eases, uncalibrated confidence."""


@functools.lru_cache(maxsize=512)
def parse_fit_map(fit_map: FitMap) -> FitRules:
    """The parsed :class:`FitRules` of a stored ``FitMap`` (validated; cached per entity)."""
    if not isinstance(fit_map, FitMap):
        raise ValidationError("fit_map", "must be a FitMap")
    return FitRules.from_json(fit_map.rule_set, fit_map.confidence_model, fit_map.id)


__all__ = [
    "DEFAULT_LENGTH_PREFERENCE",
    "DEFAULT_PREFERENCE_EASE",
    "DEFAULT_RULES",
    "MAX_STEPS",
    "Calibration",
    "FitRules",
    "parse_fit_map",
    "validate_fit_map",
]
