"""Entities and value objects: converter round trips and validators naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fittwin_core.domain import (
    ENTITIES,
    VALUE_OBJECTS,
    Avatar,
    BodyMetrics,
    Consents,
    FitSummary,
    JsonMap,
    Order,
    OrderItem,
    ProductVariant,
    Referral,
    StylePreferences,
    UserProfile,
    ValidationError,
)
from fittwin_core.domain.converter import structure, unstructure
from fittwin_core.domain.rules import evolved
from fittwin_core.domain.users import normalize_email
from fittwin_core.testing import strategies as fst
from fittwin_core.testing.world import build_world

ALL_TYPES = [*ENTITIES, *VALUE_OBJECTS]


def test_there_are_sixteen_entities_each_with_a_strategy() -> None:
    assert len(ENTITIES) == 16
    assert set(ALL_TYPES) <= set(fst.STRATEGIES)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_converter_round_trips(cls: type[Any], data: st.DataObject) -> None:
    value = data.draw(fst.for_type(cls))
    plain = unstructure(value)
    assert structure(json.loads(json.dumps(plain)), cls) == value
    assert unstructure(structure(plain, cls)) == plain


def _validated_fields(cls: type[Any]) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.validator is not None]


WORLD = build_world()
SAMPLES: dict[type[Any], Any] = {type(row): row for row in WORLD.rows.values()}


@pytest.mark.parametrize(
    ("cls", "field"),
    [(cls, field) for cls, row in SAMPLES.items() for field in _validated_fields(cls)],
    ids=lambda v: v.__name__ if isinstance(v, type) else v,
)
def test_every_validated_field_names_itself_when_invalid(cls: type[Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        attrs.evolve(SAMPLES[cls], **{field: object()})
    assert raised.value.field == field


def test_every_entity_field_is_validated() -> None:
    for cls in ENTITIES:
        unvalidated = [f.name for f in attrs.fields(cls) if f.validator is None]
        assert unvalidated == [], cls.__name__


USER = WORLD["user_profiles"]
T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "field", "value", "rule"),
    [
        (USER, "username", "x" * 33, "at most 32"),
        (USER, "username", "", "empty"),
        (USER, "email", "Shopper@Example.com", "normalised"),
        (USER, "email", "not-an-email", "email address"),
        (USER, "name", "Ada Lovelace", "sealed ciphertext"),
        (USER, "created_at", datetime(2026, 1, 1), "time zone"),
        (WORLD["product_variants"], "currency", "XYZ", "ISO-4217"),
        (WORLD["product_variants"], "currency", "eur", "ISO-4217"),
        (WORLD["product_variants"], "price_cents", -1, "negative"),
        (WORLD["product_variants"], "inventory", -1, "negative"),
        (WORLD["product_variants"], "sku", "bad sku", "letters"),
        (WORLD["referrals"], "rid", "short", "rid"),
        (WORLD["referrals"], "rid", "A" * 21 + "B", "rid"),
        (WORLD["order_items"], "qty", 0, "greater than 0"),
        (WORLD["order_items"], "reserved_qty", 2, "exceed qty"),
        (WORLD["avatars"], "confidence", 101, "at most 100"),
        (WORLD["avatars"], "version", 0, "at least 1"),
        (WORLD["reward_ledger_entries"], "amount_cents", 2**63, "at most"),
        (WORLD["products"], "category", "gadgets", "must start with"),
        (WORLD["brands"], "name", "a\x00b", "NUL"),
    ],
)
def test_column_rules(row: Any, field: str, value: Any, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as raised:
        attrs.evolve(row, **{field: value})
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"height_cm": 30, "weight_kg": 70}, "height_cm"),
        ({"height_cm": 170, "weight_kg": 900}, "weight_kg"),
        ({"height_cm": 170, "weight_kg": 70, "waist_cm": 10}, "waist_cm"),
        ({"height_cm": 170, "weight_kg": 70, "chest_cm": float("nan")}, "chest_cm"),
        ({"height_cm": 170, "weight_kg": 70, "estimated": {"hip_cm"}}, "estimated"),
        ({"height_cm": 170, "weight_kg": 70, "estimated": {"elbow_cm"}}, "estimated"),
    ],
)
def test_body_metrics_stay_within_human_ranges(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        BodyMetrics(**kwargs)
    assert raised.value.field == field


def test_body_metrics_from_imperial_are_exact_si() -> None:
    body = BodyMetrics.from_imperial(
        height_in=70, weight_lb=154, chest_in=40, sex="male", estimated={"chest_in"}
    )
    assert (body.height_cm, body.weight_kg, body.chest_cm) == (177.8, 69.8532, 101.6)
    assert body.is_estimated("chest_cm") and body.measurements() == {"chest_cm": 101.6}
    with pytest.raises(ValidationError, match="known measurement"):
        BodyMetrics.from_imperial(height_in=70, weight_lb=154, elbow_in=3)


def test_emails_are_normalised() -> None:
    assert normalize_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"
    with pytest.raises(ValidationError, match="email"):
        normalize_email("ada@")


def test_json_columns_are_immutable_and_json_only() -> None:
    chart = WORLD["size_charts"]
    rules = chart.measurement_rules
    assert isinstance(rules, JsonMap)
    with pytest.raises(TypeError):
        rules["sizes"] = {}  # type: ignore[index]
    assert rules == {"sizes": {"M": {"chest": [92, 100]}}}
    with pytest.raises(ValidationError, match="JSON"):
        attrs.evolve(chart, measurement_rules={"when": datetime(2026, 1, 1)})


def test_structure_errors_name_the_nested_path() -> None:
    data = unstructure(USER)
    data["body_metrics"]["height_cm"] = 20
    with pytest.raises(ValidationError) as raised:
        structure(data, UserProfile)
    assert raised.value.field == "body_metrics.height_cm"
    data = unstructure(WORLD["orders"])
    data["totals"]["total"] = 1
    with pytest.raises(ValidationError) as raised:
        structure(data, Order)
    assert raised.value.field == "totals.total"
    data = unstructure(WORLD["order_items"])
    data["qty"] = "3"
    with pytest.raises(ValidationError, match="integer") as raised:
        structure(data, OrderItem)
    assert raised.value.field == "qty"
    with pytest.raises(ValidationError, match="unknown fields: extra"):
        structure({**unstructure(Consents(terms=True)), "extra": 1}, Consents)


def test_json_keys_follow_the_data_model() -> None:
    assert set(unstructure(StylePreferences())) == {"keywords", "fitPrefs", "torsoLengthPref"}
    assert set(unstructure(WORLD["products"].assets)) == {"images", "models", "videourls"}
    assert set(unstructure(WORLD["orders"].totals)) == {
        "subtotal",
        "tax",
        "shipping",
        "discounts",
        "total",
        "currency",
    }


def test_reprs_hide_personal_data_and_secrets() -> None:
    text = repr(USER)
    for secret in (USER.email, USER.password_hash, USER.name):
        assert secret not in text
    assert "shopper" in USER.username and USER.username not in text  # ids and statuses only
    assert WORLD["data_keys"].wrapped_key.hex() not in repr(WORLD["data_keys"])
    assert WORLD["brand_users"].email not in repr(WORLD["brand_users"])


def test_fit_summary_snapshot_round_trips() -> None:
    summary = FitSummary(
        size_label="M", confidence=80, size_chart_id=WORLD["size_charts"].id, engine_version="1"
    )
    assert structure(unstructure(summary), FitSummary) == summary


def test_derived_money() -> None:
    assert WORLD["product_variants"].price.format() == "25.00 EUR"
    assert WORLD["orders"].total.amount == 2500
    assert isinstance(WORLD["referrals"], Referral) and isinstance(WORLD["avatars"], Avatar)
    assert isinstance(WORLD["product_variants"], ProductVariant)


_JSON_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12) | st.sampled_from(
    ["plain", 'quo"te', "back\\slash", "tab\there", "\x7f", "é", "😀", ""]
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_JSON_TEXT, _JSON_VALUES, max_size=5), st.integers(0, 40))
def test_json_size_limit_is_the_compact_json_size_exactly(data: dict[str, Any], slack: int) -> None:
    """The byte budget a JSON object is frozen under is its compact UTF-8 JSON length, to the
    byte (the freezer measures plain text in one step and everything else exactly)."""
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    assert JsonMap.checked(data, max_depth=32, max_bytes=size + slack) == data
    if size > 0 and slack == 0:
        with pytest.raises(ValidationError, match="bytes as JSON"):
            JsonMap.checked(data, max_depth=32, max_bytes=size - 1)


def _evolve_both(entity: Any, changes: dict[str, Any]) -> tuple[Any, Any]:
    """``attrs.evolve`` and ``rules.evolved`` of the same changes: each result or error."""
    out = []
    for evolve in (attrs.evolve, evolved):
        try:
            out.append(evolve(entity, **changes))
        except (ValidationError, TypeError, ValueError) as exc:
            out.append((type(exc), str(exc)))
    return out[0], out[1]


@given(st.data())
def test_evolved_is_attrs_evolve_checking_only_what_changed(data: st.DataObject) -> None:
    # The same entity, or the same error, as attrs.evolve: changes taken from another entity of
    # the class (valid values, which the class's own cross-field rules may still refuse) or
    # values that break a field's rule.
    strategy = data.draw(st.sampled_from([fst.outbox_effects(), fst.orders()]))
    entity, other = data.draw(strategy), data.draw(strategy)
    names = [f.name for f in attrs.fields(type(entity))]
    picked = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    changes = {name: getattr(other, name) for name in picked}
    if data.draw(st.booleans()) and picked:
        changes[data.draw(st.sampled_from(picked))] = data.draw(st.sampled_from([-1, "", None, "x" * 600]))
    expected, got = _evolve_both(entity, changes)
    assert type(got) is type(expected)
    assert got == expected
    if attrs.has(type(got)):
        assert attrs.asdict(got, recurse=False) == attrs.asdict(expected, recurse=False)


def test_evolved_refuses_an_unknown_field_as_attrs_evolve_does() -> None:
    world = build_world()
    for entity in (world["outbox"], world["orders"]):
        with pytest.raises(TypeError):
            evolved(entity, no_such_field=1)
        with pytest.raises(TypeError):
            attrs.evolve(entity, no_such_field=1)
