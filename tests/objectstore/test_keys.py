"""Object key rules: what ``check_object_key`` accepts and what it refuses, and why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_adapters.objectstore import check_object_key
from fittwin_core.domain.errors import ValidationError
from fittwin_core.testing.contract.objects import valid_keys


@pytest.mark.parametrize(
    "key",
    [
        "avatars/0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f/v12.glb",
        "photos/ü-straße/front view (1).jpg",
        "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "e"]),  # exactly 1024 bytes
        "x/" + "b" * 255,
        "é" * 127,  # 254 bytes in UTF-8
        ".hidden/file",
        "v1..v2.glb",
    ],
)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert check_object_key(key) == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "must not be empty"),
        ("é" * 513, "must be at most 1024 bytes"),
        ("/avatars/v1.glb", "must be relative"),
        ("avatars\\v1.glb", "backslashes"),
        ("avatars/\x7fv1.glb", "control characters"),
        ("avatars//v1.glb", "empty segments"),
        ("avatars/v1.glb/", "empty segments"),
        ("avatars/../v1.glb", "'.' or '..'"),
        ("./v1.glb", "'.' or '..'"),
        ("x/" + "é" * 128, "segments must be at most 255 bytes"),
        ("\udcff.glb", "valid Unicode"),
        (".fittwin-meta/x.json", "reserved folder"),
        (b"bytes", "must be a string"),
    ],
)
def test_invalid_keys_are_refused_with_the_rule_they_break(key: object, rule: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_object_key(key)

    assert refused.value.field == "key"
    assert rule in refused.value.rule


def test_the_field_name_can_be_chosen() -> None:
    with pytest.raises(ValidationError) as refused:
        check_object_key("", field="mesh_ref")

    assert refused.value.field == "mesh_ref"


@settings(max_examples=50)
@given(prefix=valid_keys, suffix=valid_keys, dots=st.sampled_from([".", ".."]))
def test_a_dot_segment_anywhere_is_refused(prefix: str, suffix: str, dots: str) -> None:
    with pytest.raises(ValidationError):
        check_object_key(f"{prefix}/{dots}/{suffix}")


@settings(max_examples=50)
@given(key=valid_keys)
def test_keys_from_the_contract_strategy_are_valid(key: str) -> None:
    assert check_object_key(key) == key
