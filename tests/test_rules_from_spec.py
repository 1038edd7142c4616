"""The pure rules — the reward ledger's moves and holds, attribution, money — checked against
expectations written here from API.md and ARCHITECTURE.md (never against the implementation's
tables). These are the tests ``make mutate`` measures the rule modules with."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fittwin_core.domain import (
    InvalidTransition,
    Money,
    Order,
    OrderItem,
    OrderStatus,
    Referral,
    ReferralEvent,
    ReferralEventType,
    ReferralPolicy,
    RewardLedgerEntry,
    RewardStatus,
    Totals,
    ValidationError,
)
from fittwin_core.domain.ids import encode_rid, uuid7
from fittwin_core.domain.money import Rounding, allocate, percent_of
from fittwin_core.domain.orders import allowed_targets
from fittwin_core.domain.referrals import Verdict, attribute
from fittwin_core.domain.rewards import clawback_cents, hold_until, move, reward_amount

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RID = encode_rid(b"\x07" * 16)

# ----------------------------------------------------------------------------- the order table

ORDER_NEXT = {
    "created": {"paid", "closed"},
    "paid": {"sent_to_brand", "closed"},
    "sent_to_brand": {"fulfilled"},
    "fulfilled": {"delivered"},
    "delivered": {"return_requested", "closed"},
    "return_requested": {"closed"},
    "closed": set(),
}


@pytest.mark.parametrize("status", sorted(ORDER_NEXT))
def test_where_an_order_may_go_next(status: str) -> None:
    assert {s.value for s in allowed_targets(OrderStatus(status))} == ORDER_NEXT[status]


def test_an_orders_rid_must_be_a_rid() -> None:
    with pytest.raises(ValidationError) as caught:
        Order(
            id=uuid7(1, 1),
            user_id=uuid7(1, 2),
            totals=Totals.compute(subtotal=100, currency="EUR"),
            shipping_address_id=uuid7(1, 3),
            billing_address_id=uuid7(1, 3),
            rid="not-a-rid",
            created_at=T0,
            updated_at=T0,
        )
    assert (caught.value.field, caught.value.rule) == ("rid", "must be a 22-character base64url rid")


def test_totals_add_up_as_documented() -> None:
    totals = Totals.compute(subtotal=10_000, currency="EUR", tax=2_000, shipping=500, discounts=1_500)
    assert (totals.subtotal, totals.tax, totals.shipping, totals.discounts, totals.total) == (
        10_000,
        2_000,
        500,
        1_500,
        11_000,
    )
    bare = Totals.compute(subtotal=10_000, currency="EUR")  # no tax, shipping or discount given
    assert (bare.tax, bare.shipping, bare.discounts, bare.total) == (0, 0, 0, 10_000)
    assert Totals.compute(subtotal=100, currency="EUR", shipping=50, discounts=150).total == 0  # all off
    with pytest.raises(ValidationError) as caught:  # the tax would keep the total positive
        Totals(subtotal=100, tax=10, shipping=50, discounts=151, total=9, currency="EUR")
    assert (caught.value.field, caught.value.rule) == ("discounts", "must not exceed subtotal plus shipping")
    with pytest.raises(ValidationError) as wrong:
        Totals(subtotal=100, tax=10, shipping=5, discounts=1, total=116, currency="EUR")
    assert (wrong.value.field, wrong.value.rule) == (
        "total",
        "must equal subtotal + tax + shipping - discounts",
    )
    assert Totals(subtotal=100, tax=10, shipping=5, discounts=1, total=114, currency="EUR").total == 114


def test_an_order_refunds_at_most_its_total() -> None:
    order = {
        "id": uuid7(1, 1),
        "user_id": uuid7(1, 2),
        "totals": Totals.compute(subtotal=100, currency="EUR"),
        "shipping_address_id": uuid7(1, 3),
        "billing_address_id": uuid7(1, 3),
        "created_at": T0,
        "updated_at": T0,
    }
    assert Order(**order, refunded_cents=100).refunded_cents == 100
    with pytest.raises(ValidationError) as caught:
        Order(**order, refunded_cents=101)
    assert (caught.value.field, caught.value.rule) == ("refunded_cents", "must not exceed the order total")


def test_an_order_line_reserves_at_most_its_quantity() -> None:
    line = {
        "id": uuid7(1, 5),
        "order_id": uuid7(1, 1),
        "product_id": uuid7(1, 6),
        "brand_id": uuid7(1, 8),
        "variant_id": uuid7(1, 7),
        "sku": "TEE-M",
        "size_label": "M",
        "unit_price_cents": 2500,
        "currency": "EUR",
        "created_at": T0,
    }
    assert OrderItem(**line, qty=3, reserved_qty=3).line_total_cents == 7500
    with pytest.raises(ValidationError) as caught:
        OrderItem(**line, qty=3, reserved_qty=4)
    assert (caught.value.field, caught.value.rule) == ("reserved_qty", "must not exceed qty")


# ----------------------------------------------------------------------------- the reward ledger

# API.md: pending_hold → payable (hold ended) | cancelled (return); payable → paid;
# paid entries never change (a return after payout is a new, negative entry); cancelled is final.
LEDGER_MOVES = {("pending_hold", "payable"), ("pending_hold", "cancelled"), ("payable", "paid")}
STATUSES = ("pending_hold", "payable", "paid", "cancelled")


def entry(status: str = "pending_hold", hold: date | None = None, amount: int = 250) -> RewardLedgerEntry:
    return RewardLedgerEntry(
        id=uuid7(1, 9),
        rid=RID,
        order_id=uuid7(1, 8),
        amount_cents=amount,
        currency="EUR",
        status=RewardStatus(status),
        hold_until=hold,
        created_at=T0 - timedelta(days=40),
        updated_at=T0 - timedelta(days=40),
    )


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(STATUSES, repeat=2)))
def test_every_ledger_move(frm: str, to: str) -> None:
    held = entry(frm, hold=T0.date())  # a hold that ends today
    if frm == to:
        assert move(held, RewardStatus(to), at=T0) is held  # no change, not even updated_at
    elif (frm, to) in LEDGER_MOVES:
        moved = move(held, RewardStatus(to), at=T0)
        assert (moved.status, moved.updated_at, moved.amount_cents) == (RewardStatus(to), T0, 250)
    else:
        with pytest.raises(InvalidTransition) as caught:
            move(held, RewardStatus(to), at=T0)
        assert str(caught.value) == f"reward ledger entry cannot move from {frm} to {to}"


@pytest.mark.parametrize(
    ("hold", "releasable"),
    [
        (None, False),
        (T0.date() + timedelta(days=1), False),
        (T0.date(), True),
        (T0.date() - timedelta(days=3), True),
    ],
)
def test_a_reward_is_payable_only_once_its_hold_ended(hold: date | None, releasable: bool) -> None:
    if releasable:
        assert move(entry(hold=hold), RewardStatus.PAYABLE, at=T0).status == RewardStatus.PAYABLE
        return
    with pytest.raises(InvalidTransition) as caught:
        move(entry(hold=hold), RewardStatus.PAYABLE, at=T0)
    assert (
        str(caught.value)
        == "reward ledger entry cannot move from pending_hold to payable: its hold has not ended"
    )


def test_the_hold_counts_from_the_utc_delivery_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14 locally: the machine's zone must not matter
    time.tzset()
    try:
        late_evening_in_new_york = datetime(2026, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=-5)))
        assert hold_until(late_evening_in_new_york, 30) == date(2026, 3, 2) + timedelta(days=30)
        morning_in_new_york = datetime(2026, 3, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5)))  # Mar 2 at +14
        assert hold_until(morning_in_new_york, 30) == date(2026, 3, 1) + timedelta(days=30)
        assert hold_until(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 0) == date(2026, 3, 1)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("entries", "owed"),
    [
        ([], 0),
        ([("pending_hold", 250)], 0),  # cancelled instead
        ([("cancelled", 250)], 0),
        ([("payable", 250)], -250),
        ([("paid", 250)], -250),
        ([("paid", 250), ("payable", -250)], 0),  # clawed back already: never twice
        ([("paid", 300), ("payable", -100)], -200),
        ([("paid", 250), ("payable", -300)], 0),  # never more than was earned
        ([("paid", 1)], -1),
    ],
)
def test_a_clawback_takes_back_what_was_payable_or_paid(entries: list[tuple[str, int]], owed: int) -> None:
    assert clawback_cents([entry(status, amount=amount) for status, amount in entries]) == owed


@pytest.mark.parametrize(
    ("percent", "rounding", "subtotal", "reward"),
    [
        ("10", "half_even", 2500, 250),
        ("5", "half_even", 1050, 52),
        ("5", "half_up", 1050, 53),
        ("12.5", "down", 999, 124),
    ],
)
def test_the_reward_is_the_policys_percent_of_the_subtotal(
    percent: str, rounding: str, subtotal: int, reward: int
) -> None:
    policy = ReferralPolicy(reward_percent=percent, rounding=Rounding(rounding))
    assert reward_amount(subtotal, policy) == reward


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (12.5, "must be a Decimal, an integer or a decimal string"),
        (True, "must be a Decimal, an integer or a decimal string"),
        ("ten", "must be a decimal number"),
        ("NaN", "must be a decimal number"),
        (Decimal("Infinity"), "must be a decimal number"),
        ("100.01", "must be between 0 and 100"),
        (-1, "must be between 0 and 100"),
    ],
)
def test_a_reward_percent_is_a_decimal_from_0_to_100(value: object, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReferralPolicy(reward_percent=value)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.rule) == ("reward_percent", rule)


@pytest.mark.parametrize("value", ["0", 100, "12.5", Decimal("7.25")])
def test_reward_percents_at_and_inside_the_bounds(value: object) -> None:
    assert ReferralPolicy(reward_percent=value).reward_percent == Decimal(str(value))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["eur", "EURO", "XXX", 978])
def test_money_needs_an_iso_4217_code(code: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Money(100, code)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.rule) == (
        "currency",
        "must be an upper-case ISO-4217 currency code",
    )


# ----------------------------------------------------------------------------- attribution

REFERRER, BUYER = uuid7(2, 1), uuid7(2, 2)
POLICY = ReferralPolicy(
    reward_percent="10", attribution_window_days=30, velocity_limit=3, velocity_window_hours=24
)
IP, OTHER_IP, DEVICE = "a" * 32, "b" * 32, "c" * 32
counter = itertools.count(1)


def referral(expires_at: datetime | None = None) -> Referral:
    return Referral(
        rid=RID,
        referrer_user_id=REFERRER,
        share_url=f"https://fittwin.example/r/{RID}",
        policy_snapshot=POLICY,
        expires_at=expires_at,
        created_at=T0 - timedelta(days=60),
    )


def event(kind: str, at: datetime, ip: str | None = IP, device: str | None = None) -> ReferralEvent:
    return ReferralEvent(
        id=uuid7(3, next(counter)),
        rid=RID,
        event_type=ReferralEventType(kind),
        ip_hash=ip,
        device_fingerprint=device,
        created_at=at,
    )


def judge(
    clicks: list[ReferralEvent],
    conversions: list[ReferralEvent] = (),  # type: ignore[assignment]
    *,
    buyer: object = BUYER,
    token: str | None = "pm_buyer",
    expires_at: datetime | None = None,
) -> object:
    return attribute(
        referral=referral(expires_at),
        buyer_id=buyer,  # type: ignore[arg-type]
        buyer_payment_token=token,
        referrer_payment_tokens=frozenset({"pm_referrer"}),
        placed_at=T0,
        paid_at=T0 + timedelta(minutes=5),
        clicks=clicks,
        conversions=conversions,
    )


def test_a_click_inside_the_window_converts_and_the_last_click_wins() -> None:
    early, late = event("click", T0 - timedelta(days=3)), event("click", T0 - timedelta(hours=1))
    result = judge([late, early])
    assert (result.verdict, result.click, result.recent_conversions) == (Verdict.CONVERSION, late, 0)


def test_the_attribution_window_is_inclusive_and_ends_at_the_order() -> None:
    edge = event("click", T0 - timedelta(days=30))
    assert judge([edge]).verdict == Verdict.CONVERSION
    assert judge([event("click", T0)]).verdict == Verdict.CONVERSION
    for outside in (T0 - timedelta(days=30, seconds=1), T0 + timedelta(seconds=1)):
        result = judge([event("click", outside)])
        assert (result.verdict, result.reason) == (Verdict.NONE, "no click inside the attribution window")
    conversion = event("conversion", T0 - timedelta(hours=1))
    assert judge([conversion]).verdict == Verdict.NONE  # only clicks count


def test_an_expired_link_earns_nothing() -> None:
    clicks = [event("click", T0 - timedelta(hours=1))]
    result = judge(clicks, expires_at=T0 + timedelta(minutes=5))  # expired when paid
    assert (result.verdict, result.reason) == (Verdict.NONE, "the referral link had expired")
    assert judge(clicks, expires_at=T0 + timedelta(minutes=6)).verdict == Verdict.CONVERSION


def test_buying_through_ones_own_link_is_a_self_referral() -> None:
    click = event("click", T0 - timedelta(hours=1))
    result = judge([click], buyer=REFERRER)
    assert (result.verdict, result.reason, result.score, result.click) == (
        Verdict.SELF_REFERRAL,
        "the buyer is the referrer",
        100,
        click,
    )
    card = judge([click], token="pm_referrer")
    assert (card.verdict, card.reason, card.score) == (
        Verdict.SELF_REFERRAL,
        "the buyer pays with the referrer's card",
        95,
    )
    assert judge([click], token=None).verdict == Verdict.CONVERSION


def test_many_conversions_from_one_ip_or_device_are_velocity_fraud() -> None:
    click = event("click", T0 - timedelta(hours=1), ip=IP, device=DEVICE)
    paid = T0 + timedelta(minutes=5)
    same_ip = [event("conversion", paid - timedelta(hours=2), ip=IP) for _ in range(2)]
    assert judge([click], same_ip).verdict == Verdict.CONVERSION  # 3 with this one: at the limit
    assert judge([click], same_ip).recent_conversions == 2
    flagged = judge(
        [click], [*same_ip, event("fraud_flag", paid - timedelta(hours=1), ip=OTHER_IP, device=DEVICE)]
    )
    assert (flagged.verdict, flagged.recent_conversions, flagged.score) == (Verdict.VELOCITY, 3, 60)
    assert flagged.reason == "4 conversions from one ip or device within 24 h (limit 3)"
    old = event("conversion", paid - timedelta(hours=24, seconds=1), ip=IP)
    edge = event("conversion", paid - timedelta(hours=24), ip=IP)
    assert judge([click], [*same_ip, old]).verdict == Verdict.CONVERSION  # outside the 24 h
    assert judge([click], [*same_ip, edge]).verdict == Verdict.VELOCITY  # the window is inclusive
    strangers = [
        event("conversion", paid - timedelta(hours=1), ip=OTHER_IP, device="d" * 32) for _ in range(5)
    ]
    assert judge([click], strangers).verdict == Verdict.CONVERSION
    clicks_only = [event("click", paid - timedelta(hours=1), ip=IP) for _ in range(5)]
    assert judge([click], clicks_only).verdict == Verdict.CONVERSION  # clicks are not conversions
    ten = [event("conversion", paid - timedelta(hours=1), ip=IP) for _ in range(10)]
    assert judge([click], ten).score == 100  # capped


def test_a_click_without_ip_or_device_matches_no_conversion() -> None:
    click = event("click", T0 - timedelta(hours=1), ip=None, device=None)
    anonymous = [event("conversion", T0, ip=None, device=None) for _ in range(5)]
    assert judge([click], anonymous).verdict == Verdict.CONVERSION


# ----------------------------------------------------------------------------- money


def test_money_adds_subtracts_negates_and_multiplies_in_one_currency() -> None:
    a, b = Money(1999, "EUR"), Money(501, "EUR")
    assert a + b == Money(2500, "EUR")
    assert a - b == Money(1498, "EUR")
    assert -a == Money(-1999, "EUR")
    assert a.times(3) == Money(5997, "EUR")
    assert a.percent(Decimal("10")) == Money(200, "EUR")
    assert Money(100, "EUR").allocate([1, 2]) == [Money(33, "EUR"), Money(67, "EUR")]
    for combine in (lambda: a + Money(1, "USD"), lambda: a - Money(1, "USD")):
        with pytest.raises(ValidationError) as caught:
            combine()
        assert (caught.value.field, caught.value.rule) == (
            "currency",
            "amounts in different currencies cannot be combined",
        )


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # the leftover unit goes to the earliest of equal remainders
        (100, [1, 1, 2], [25, 25, 50]),
        (10, [3, 3, 4], [3, 3, 4]),
        (7, [1, 2], [2, 5]),  # 2.33 / 4.67: the larger remainder gets the unit
        (3, [5, 2], [2, 1]),  # 2.14 / 0.86: the larger *remainder*, not the larger share
        (5, [0, 0], [3, 2]),  # all-zero weights split evenly
        (5, [0, 1], [0, 5]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (0, [], []),
    ],
)
def test_allocation_by_largest_remainder(total: int, weights: list[int], parts: list[int]) -> None:
    assert allocate(total, weights) == parts


@pytest.mark.parametrize(
    ("total", "weights", "rule"),
    [(5, [], "must not be empty when there is an amount to split"), (5, [1, -1], "must not be negative")],
)
def test_allocation_refuses_what_it_cannot_split(total: int, weights: list[int], rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        allocate(total, weights)
    assert (caught.value.field, caught.value.rule) == ("weights", rule)


@pytest.mark.parametrize(
    ("rounding", "amounts"),
    [("half_even", (52, 54)), ("half_up", (53, 54)), ("down", (52, 53)), ("up", (53, 54))],
)
def test_percent_rounding_modes(rounding: str, amounts: tuple[int, int]) -> None:
    # 5 % of 10.50 is 52.5 cents; 5 % of 10.70 is 53.5 cents.
    assert (
        percent_of(1050, Decimal(5), Rounding(rounding)),
        percent_of(1070, Decimal(5), Rounding(rounding)),
    ) == amounts
