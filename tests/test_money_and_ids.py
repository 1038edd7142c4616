"""Money arithmetic and identifier formats."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fittwin_core.domain import Money, Rounding, ValidationError
from fittwin_core.domain.ids import decode_rid, is_rid, uuid7, uuid7_datetime, uuid7_floor, uuid7_unix_ms
from fittwin_core.domain.money import allocate, parse_percent, percent_of
from fittwin_core.system import SystemIds
from fittwin_core.testing.clock import FrozenClock, SequentialIds

# ---------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("amount", "percent", "rounding", "expected"),
    [
        (1050, "5", Rounding.HALF_EVEN, 52),  # 52.5 -> even
        (1050, "5", Rounding.HALF_UP, 53),
        (1150, "5", Rounding.HALF_EVEN, 58),  # 57.5 -> even
        (1150, "5", Rounding.HALF_UP, 58),
        (1049, "5", Rounding.HALF_EVEN, 52),  # 52.45
        (1, "50", Rounding.HALF_EVEN, 0),  # 0.5 -> 0
        (3, "50", Rounding.HALF_EVEN, 2),  # 1.5 -> 2
        (3, "50", Rounding.DOWN, 1),
        (3, "50", Rounding.UP, 2),
        (999, "12.5", Rounding.HALF_EVEN, 125),  # 124.875
        (0, "10", Rounding.HALF_EVEN, 0),
    ],
)
def test_percent_rounding_at_the_half_cent(
    amount: int, percent: str, rounding: Rounding, expected: int
) -> None:
    assert percent_of(amount, Decimal(percent), rounding) == expected


def test_zero_decimal_currencies_round_to_whole_units() -> None:
    # JPY has no minor unit: 7.5% of ¥1,100 is ¥82.5.
    assert Money(1100, "JPY").percent(Decimal("7.5"), Rounding.HALF_EVEN) == Money(82, "JPY")
    assert Money(1100, "JPY").percent(Decimal("7.5"), Rounding.HALF_UP) == Money(83, "JPY")
    assert Money(1100, "JPY").format() == "1100 JPY"
    assert Money(1234, "KWD").format() == "1.234 KWD"


def test_percentages_are_decimals_within_0_and_100() -> None:
    assert parse_percent("12.5") == Decimal("12.5")
    for bad in (12.5, "abc", "101", "-1", True, "NaN"):
        with pytest.raises(ValidationError):
            parse_percent(bad)


@given(total=st.integers(-(10**12), 10**12), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=12))
def test_allocation_conserves_the_total(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    if sum(weights) and total >= 0:
        for part, weight in zip(parts, weights, strict=True):
            exact = Decimal(total) * weight / sum(weights)
            assert abs(part - exact) < 1


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(ValidationError, match="different currencies"):
        Money(1, "EUR") + Money(1, "USD")
    assert Money(5, "EUR") - Money(7, "EUR") == Money(-2, "EUR")
    assert sum(m.amount for m in Money(100, "EUR").allocate([1, 1, 1])) == 100


# ---------------------------------------------------------------------------- ids


def test_uuid7_layout() -> None:
    value = uuid7(1_700_000_000_123, 2**74 - 1)
    assert value.version == 7 and value.variant == "specified in RFC 4122"
    assert uuid7_unix_ms(value) == 1_700_000_000_123
    assert uuid7_datetime(value) == datetime.fromtimestamp(1_700_000_000.123, tz=UTC)


def test_uuid7_floor_bounds_a_month() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    bound = uuid7_floor(start)
    just_before = uuid7(int(start.timestamp() * 1000) - 1, 2**74 - 1)
    at_start = uuid7(int(start.timestamp() * 1000), 0)
    assert just_before < bound <= at_start


def test_system_ids_increase_strictly() -> None:
    ids = SystemIds()
    minted = [ids.new_id() for _ in range(5000)]
    assert minted == sorted(minted) and len(set(minted)) == len(minted)
    assert abs(uuid7_unix_ms(minted[-1]) - time.time() * 1000) < 5000


def test_rids_are_128_random_bits_in_base64url() -> None:
    ids = SystemIds()
    rids = [ids.new_rid() for _ in range(100_000)]
    assert len(set(rids)) == len(rids)
    pattern = re.compile(r"^[A-Za-z0-9_-]{21}[AQgw]$")
    assert all(pattern.match(rid) for rid in rids)
    assert all(len(decode_rid(rid)) == 16 for rid in rids[:1000])
    assert base64.urlsafe_b64encode(decode_rid(rids[0])).rstrip(b"=").decode() == rids[0]
    assert not is_rid("A" * 21 + "B") and not is_rid("A" * 23)


def test_sequential_ids_are_reproducible() -> None:
    first, second = SequentialIds(FrozenClock(), seed=7), SequentialIds(FrozenClock(), seed=7)
    assert [first.new_rid(), first.new_token()] == [second.new_rid(), second.new_token()]
    assert first.new_id() < first.new_id()
