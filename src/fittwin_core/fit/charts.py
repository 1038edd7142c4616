"""Size charts: the ``measurement_rules`` / ``grading_rules`` JSON schema, its validation,
unit normalisation, grading, and the parsed :class:`Chart` the recommender reads.

The schema is documented with a complete example in ``docs/fit.md``. In short::

    measurement_rules = {
        "kind": "body",                      # or "garment" (finished-garment measurements)
        "zones": {"chest": {"tolerance": 2, "weight": 1}, "waist": {"tolerance": 2}},
        "sizes": [                           # smallest first
            {"label": "S", "chest": [86, 94], "waist": [74, 82]},   # a [min, max] range ...
            {"label": "M", "chest": 98, "waist": 86},                # ... or one centre value
        ],
    }
    grading_rules = {"base": "M", "order": ["XS", "S", "M", "L", "XL"], "steps": {"chest": 4, ...}}

Every length is in the chart's unit system (cm, or inches for imperial charts); the stored form
is always centimetres, converted once with exact decimal arithmetic.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain.catalog import SizeChart, UnitSystem
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import parse_enum, thaw_json

ZONE_FIELDS: dict[str, str] = {
    "chest": "chest_cm",
    "waist": "waist_cm",
    "hip": "hip_cm",
    "neck": "neck_cm",
    "shoulder": "shoulder_cm",
    "sleeve": "sleeve_cm",
    "inseam": "inseam_cm",
    "thigh": "thigh_cm",
    "torso_length": "torso_length_cm",
    "foot_length": "foot_length_cm",
    "height": "height_cm",
}
"""Chart zone → the :class:`~fittwin_core.domain.users.BodyMetrics` field it is compared with."""

GIRTH_ZONES = frozenset({"chest", "waist", "hip", "thigh"})
"""Zones the shopper's fit preference (slim/regular/relaxed) shifts."""
LENGTH_PREFERENCE_ZONES = frozenset({"torso_length", "height"})
"""Zones the torso-length preference (short/regular/long) shifts."""

CHART_KINDS = ("body", "garment")
MAX_SIZES = 60
MAX_CM = 400.0
_CM_PER_INCH = Decimal("2.54")
_ROOT = "measurement_rules"
_GRADING = "grading_rules"


# ----------------------------------------------------------------------------- small checks


def _number(field: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValidationError(field, "must be a finite number")
    return float(value)


def _mapping(field: str, value: Any, rule: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, rule)
    return value


def _no_unknown_keys(field: str, value: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValidationError(field, f"has unknown keys: {', '.join(unknown)}")


def _to_cm(value: float, unit: UnitSystem) -> float:
    """``value`` in centimetres; inches are converted exactly (decimal product, one rounding)."""
    if unit is UnitSystem.METRIC:
        return value
    return float(Decimal(repr(value)) * _CM_PER_INCH)


def _zone_name(field: str, value: Any) -> str:
    if value not in ZONE_FIELDS:
        raise ValidationError(field, f"is not a known body zone ({', '.join(ZONE_FIELDS)})")
    return str(value)


# ----------------------------------------------------------------------------- normalisation


def _normalize_zones(raw: Any, kind: str, unit: UnitSystem) -> dict[str, dict[str, float]]:
    zones = _mapping(f"{_ROOT}.zones", raw, "must be an object of zone → {tolerance, weight}")
    if not zones:
        raise ValidationError(f"{_ROOT}.zones", "must name at least one zone")
    out: dict[str, dict[str, float]] = {}
    for name, raw_spec in zones.items():
        field = f"{_ROOT}.zones.{name}"
        _zone_name(field, name)
        spec = _mapping(
            field, raw_spec if raw_spec is not None else {}, "must be an object {tolerance, weight}"
        )
        _no_unknown_keys(field, spec, {"tolerance", "weight", "ease"})
        tolerance = _number(f"{field}.tolerance", spec.get("tolerance", 0.0))
        if tolerance < 0:
            raise ValidationError(f"{field}.tolerance", "must not be negative")
        weight = _number(f"{field}.weight", spec.get("weight", 1.0))
        if weight <= 0:
            raise ValidationError(f"{field}.weight", "must be greater than 0")
        zone: dict[str, float] = {"tolerance": _to_cm(tolerance, unit), "weight": weight}
        if "ease" in spec:
            if kind != "garment":
                raise ValidationError(f"{field}.ease", "is only allowed in garment charts (kind: garment)")
            ease = _number(f"{field}.ease", spec["ease"])
            if ease < 0:
                raise ValidationError(f"{field}.ease", "must not be negative")
            zone["ease"] = _to_cm(ease, unit)
        out[name] = zone
    return out


def _normalize_value(field: str, value: Any, unit: UnitSystem) -> float | list[float]:
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValidationError(field, "must be a [min, max] range or a single centre value")
        low, high = _number(field, value[0]), _number(field, value[1])
        if low > high:
            raise ValidationError(field, "range minimum must not exceed its maximum")
        if low <= 0 or high > MAX_CM:
            raise ValidationError(field, f"must lie between 0 and {MAX_CM:g} cm")
        return [_to_cm(low, unit), _to_cm(high, unit)]
    centre = _number(field, value)
    if centre <= 0 or centre > MAX_CM:
        raise ValidationError(field, f"must lie between 0 and {MAX_CM:g} cm")
    return _to_cm(centre, unit)


def _normalize_sizes(raw: Any, zones: Mapping[str, Any], unit: UnitSystem) -> list[dict[str, Any]]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ValidationError(f"{_ROOT}.sizes", "must be a non-empty list of sizes, smallest first")
    if len(raw) > MAX_SIZES:
        raise ValidationError(f"{_ROOT}.sizes", f"must list at most {MAX_SIZES} sizes")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    forms: dict[str, tuple[str, str]] = {}
    for index, raw_size in enumerate(raw):
        size = _mapping(f"{_ROOT}.sizes[{index}]", raw_size, "must be an object with a label and zone values")
        label = size.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 32:
            raise ValidationError(f"{_ROOT}.sizes[{index}].label", "must be a text label of 1–32 characters")
        if label in seen:
            raise ValidationError(f"{_ROOT}.sizes.{label}", "is listed twice")
        seen.add(label)
        entry: dict[str, Any] = {"label": label}
        for key in size:
            if key != "label" and key not in zones:
                field = f"{_ROOT}.sizes.{label}.{key}"
                _zone_name(field, key)
                raise ValidationError(field, "is not declared in measurement_rules.zones")
        for zone in zones:
            field = f"{_ROOT}.sizes.{label}.{zone}"
            if zone not in size:
                raise ValidationError(field, "is missing (every listed size gives every zone)")
            value = _normalize_value(field, size[zone], unit)
            form = "range" if isinstance(value, list) else "centre"
            first = forms.setdefault(zone, (form, label))
            if first[0] != form:
                raise ValidationError(
                    field, f"is a {form} but size {first[1]} gives a {first[0]}; use one form per zone"
                )
            entry[zone] = value
        out.append(entry)
    return out


def _normalize_grading(
    raw: Any, zones: Mapping[str, Any], labels: Sequence[str], unit: UnitSystem
) -> dict[str, Any]:
    grading = _mapping(_GRADING, raw, "must be an object {base, order, steps}")
    _no_unknown_keys(_GRADING, grading, {"base", "order", "steps"})
    order = grading.get("order")
    if (
        not isinstance(order, list | tuple)
        or not order
        or not all(isinstance(x, str) and x.strip() and len(x) <= 32 for x in order)
    ):
        raise ValidationError(f"{_GRADING}.order", "must list every size label, smallest first")
    if len(set(order)) != len(order):
        raise ValidationError(f"{_GRADING}.order", "must not repeat a label")
    if len(order) > MAX_SIZES:
        raise ValidationError(f"{_GRADING}.order", f"must list at most {MAX_SIZES} sizes")
    missing = [label for label in labels if label not in order]
    if missing:
        raise ValidationError(f"{_GRADING}.order", f"must include the listed size {missing[0]}")
    positions = [order.index(label) for label in labels]
    if positions != sorted(positions):
        raise ValidationError(f"{_GRADING}.order", "must keep the listed sizes in the same order")
    base = grading.get("base")
    if base not in labels:
        raise ValidationError(f"{_GRADING}.base", "must be one of the sizes listed in measurement_rules")
    steps = _mapping(f"{_GRADING}.steps", grading.get("steps"), "must be an object of zone → step")
    for name in steps:
        _zone_name(f"{_GRADING}.steps.{name}", name)
        if name not in zones:
            raise ValidationError(f"{_GRADING}.steps.{name}", "is not declared in measurement_rules.zones")
    out_steps: dict[str, float] = {}
    for zone in zones:
        field = f"{_GRADING}.steps.{zone}"
        if zone not in steps:
            raise ValidationError(field, "is required for every zone of the chart")
        step = _number(field, steps[zone])
        if step < 0:
            raise ValidationError(field, "must not be negative")
        out_steps[zone] = _to_cm(step, unit)
    return {"base": base, "order": list(order), "steps": out_steps}


def _graded_sizes(sizes: list[dict[str, Any]], grading: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The full size run: listed sizes as given, unlisted ones derived from the base size."""
    if grading is None:
        return sizes
    listed = {size["label"]: size for size in sizes}
    order: list[str] = grading["order"]
    base = listed[grading["base"]]
    base_index = order.index(grading["base"])
    run: list[dict[str, Any]] = []
    for index, label in enumerate(order):
        if label in listed:
            run.append(listed[label])
            continue
        shift = index - base_index
        derived: dict[str, Any] = {"label": label}
        for zone, step in grading["steps"].items():
            value = base[zone]
            if isinstance(value, list):
                derived[zone] = [value[0] + shift * step, value[1] + shift * step]
            else:
                derived[zone] = value + shift * step
            low = derived[zone][0] if isinstance(derived[zone], list) else derived[zone]
            if low <= 0:
                raise ValidationError(
                    f"{_ROOT}.sizes.{label}.{zone}", "grades to a non-positive value (step too large)"
                )
        run.append(derived)
    return run


def _check_order(run: list[dict[str, Any]], zones: Mapping[str, Any]) -> None:
    """Sizes must grow (or stay equal) zone by zone, and ranges must not overlap."""
    for previous, size in itertools.pairwise(run):
        differs = False
        for zone in zones:
            field = f"{_ROOT}.sizes.{size['label']}.{zone}"
            a, b = previous[zone], size[zone]
            if isinstance(a, list):
                if a == b:
                    continue
                differs = True
                if b[0] < a[0] or b[1] < a[1]:
                    raise ValidationError(
                        field,
                        f"must not be smaller than size {previous['label']}'s (list sizes smallest first)",
                    )
                if b[0] < a[1]:
                    raise ValidationError(field, f"overlaps size {previous['label']}'s range")
            else:
                if b < a:
                    raise ValidationError(
                        field,
                        f"must not be smaller than size {previous['label']}'s (list sizes smallest first)",
                    )
                differs = differs or b != a
        if not differs:
            raise ValidationError(
                f"{_ROOT}.sizes.{size['label']}", f"is identical to size {previous['label']}"
            )


def normalize_size_chart(
    measurement_rules: Mapping[str, Any],
    grading_rules: Mapping[str, Any] | None = None,
    unit_system: UnitSystem | str = UnitSystem.METRIC,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validate a brand's size chart and return ``(measurement_rules, grading_rules)`` in cm.

    Raises :class:`ValidationError` naming the size and zone at fault, e.g. field
    ``measurement_rules.sizes.M.chest``. Imperial charts are converted to centimetres once,
    with exact decimal arithmetic; the result is what ``size_charts`` stores.
    """
    unit = parse_enum(UnitSystem, unit_system, "unit_system")
    rules = _mapping(_ROOT, thaw_json(measurement_rules), "must be a JSON object with zones and sizes")
    _no_unknown_keys(_ROOT, rules, {"kind", "zones", "sizes"})
    kind = rules.get("kind", "body")
    if kind not in CHART_KINDS:
        raise ValidationError(f"{_ROOT}.kind", "must be body or garment")
    zones = _normalize_zones(rules.get("zones"), kind, unit)
    sizes = _normalize_sizes(rules.get("sizes"), zones, unit)
    grading = None
    if grading_rules is not None:
        grading = _normalize_grading(thaw_json(grading_rules), zones, [s["label"] for s in sizes], unit)
    run = _graded_sizes(sizes, grading)
    _check_order(run, zones)
    if kind == "garment":
        for zone, spec in zones.items():
            ease = spec.get("ease", 0.0)
            for size in run:
                value = size[zone]
                low = value[0] if isinstance(value, list) else value
                if low - ease <= 0:
                    raise ValidationError(
                        f"{_ROOT}.zones.{zone}.ease",
                        f"is not smaller than size {size['label']}'s measurement",
                    )
    return {"kind": kind, "zones": zones, "sizes": sizes}, grading


# ----------------------------------------------------------------------------- parsed chart


@attrs.frozen(cache_hash=True)
class ZoneRule:
    """One zone of a parsed chart: body ranges (cm) per size, tolerance and weight."""

    name: str
    field: str
    tolerance: float
    weight: float
    lows: tuple[float, ...]
    highs: tuple[float, ...]


@attrs.frozen(cache_hash=True)
class Chart:
    """A validated size chart ready for the recommender: body ranges per size and zone, in cm.

    Build one with :func:`parse_chart` (from a stored ``SizeChart``) or :meth:`from_rules`.
    """

    labels: tuple[str, ...]
    zones: tuple[ZoneRule, ...]
    garment_type: str = "tops"
    kind: str = "body"
    size_chart_id: UUID | None = None

    @property
    def is_bottoms(self) -> bool:
        """Whether the bottoms rule applies (``garment_type`` under ``bottoms``)."""
        return self.garment_type.split("/", 1)[0] == "bottoms"

    @classmethod
    def from_rules(
        cls,
        measurement_rules: Mapping[str, Any],
        grading_rules: Mapping[str, Any] | None = None,
        *,
        unit_system: UnitSystem | str = UnitSystem.METRIC,
        garment_type: str = "tops",
        size_chart_id: UUID | None = None,
    ) -> Chart:
        """Validate chart JSON and parse it (for notebooks and tests; no stored entity needed)."""
        rules, grading = normalize_size_chart(measurement_rules, grading_rules, unit_system)
        return _build(rules, grading, garment_type, size_chart_id)


def _centre_ranges(centres: list[float]) -> tuple[list[float], list[float]]:
    """Ranges for a centre-only zone: neighbours meet halfway; the ends mirror their inner half."""
    distinct = sorted(set(centres))
    lows: list[float] = []
    highs: list[float] = []
    for centre in centres:
        i = distinct.index(centre)
        below = distinct[i - 1] if i > 0 else None
        above = distinct[i + 1] if i + 1 < len(distinct) else None
        if below is not None:
            low_half = (centre - below) / 2
        else:
            low_half = (above - centre) / 2 if above is not None else 0.0
        if above is not None:
            high_half = (above - centre) / 2
        else:
            high_half = (centre - below) / 2 if below is not None else 0.0
        lows.append(centre - low_half)
        highs.append(centre + high_half)
    return lows, highs


def _build(
    rules: Mapping[str, Any], grading: Mapping[str, Any] | None, garment_type: str, size_chart_id: UUID | None
) -> Chart:
    run = _graded_sizes([dict(s) for s in rules["sizes"]], grading)
    zones: list[ZoneRule] = []
    for name, spec in rules["zones"].items():
        values = [size[name] for size in run]
        if isinstance(values[0], list):
            lows = [float(v[0]) for v in values]
            highs = [float(v[1]) for v in values]
        else:
            lows, highs = _centre_ranges([float(v) for v in values])
        ease = float(spec.get("ease", 0.0))
        zones.append(
            ZoneRule(
                name=name,
                field=ZONE_FIELDS[name],
                tolerance=float(spec["tolerance"]),
                weight=float(spec["weight"]),
                lows=tuple(v - ease for v in lows),
                highs=tuple(v - ease for v in highs),
            )
        )
    return Chart(
        labels=tuple(size["label"] for size in run),
        zones=tuple(zones),
        garment_type=garment_type,
        kind=str(rules["kind"]),
        size_chart_id=size_chart_id,
    )


@functools.lru_cache(maxsize=512)
def parse_chart(size_chart: SizeChart) -> Chart:
    """The parsed :class:`Chart` of a stored ``SizeChart`` (validated; cached per entity).

    The stored rules are already in centimetres whatever ``unit_system`` the brand used.
    """
    if not isinstance(size_chart, SizeChart):
        raise ValidationError("size_chart", "must be a SizeChart or a parsed Chart")
    rules, grading = normalize_size_chart(size_chart.measurement_rules, size_chart.grading_rules)
    return _build(rules, grading, size_chart.garment_type, size_chart.id)


__all__ = [
    "CHART_KINDS",
    "GIRTH_ZONES",
    "LENGTH_PREFERENCE_ZONES",
    "ZONE_FIELDS",
    "Chart",
    "ZoneRule",
    "normalize_size_chart",
    "parse_chart",
]
