"""Orders and their lines, totals, and the order state machine.

The allowed moves are one table, :data:`ORDER_TRANSITIONS`; :func:`transitions` is the only
function that reads it (:func:`transition` is its one-move case). Each move carries its side
effects as data (release stock, refund, notify the brand) so the service applies them without
deciding anything itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.errors import InvalidTransition, ValidationError
from fittwin_core.domain.ids import is_rid
from fittwin_core.domain.rules import redacted


class OrderStatus(StrEnum):
    """``orders.status``."""

    CREATED = "created"
    PAID = "paid"
    SENT_TO_BRAND = "sent_to_brand"
    FULFILLED = "fulfilled"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    CLOSED = "closed"


class CloseReason(StrEnum):
    """Why an order reached ``closed`` (an addition to the data model: ``orders.close_reason``)."""

    CANCELLED = "cancelled"
    COMPLETED = "completed"
    RETURNED = "returned"


class Effect(StrEnum):
    """A side effect a transition asks the order service to carry out."""

    RELEASE_STOCK = "release_stock"
    REFUND = "refund"
    NOTIFY_BRAND = "notify_brand"
    CANCEL_PAYMENT = "cancel_payment"


@attrs.frozen
class Transition:
    """One allowed move of the order state machine."""

    action: str
    effects: frozenset[Effect] = frozenset()
    close_reason: CloseReason | None = None
    within_return_window: bool = False


S = OrderStatus
ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, OrderStatus], Transition] = {
    (S.CREATED, S.PAID): Transition("pay"),
    (S.CREATED, S.CLOSED): Transition(
        "cancel", frozenset({Effect.RELEASE_STOCK, Effect.CANCEL_PAYMENT}), CloseReason.CANCELLED
    ),
    (S.PAID, S.SENT_TO_BRAND): Transition("send_to_brand", frozenset({Effect.NOTIFY_BRAND})),
    (S.PAID, S.CLOSED): Transition(
        "cancel", frozenset({Effect.RELEASE_STOCK, Effect.REFUND}), CloseReason.CANCELLED
    ),
    (S.SENT_TO_BRAND, S.FULFILLED): Transition("fulfil"),
    (S.FULFILLED, S.DELIVERED): Transition("deliver"),
    (S.DELIVERED, S.RETURN_REQUESTED): Transition(
        "request_return", frozenset({Effect.NOTIFY_BRAND}), within_return_window=True
    ),
    (S.DELIVERED, S.CLOSED): Transition("close", close_reason=CloseReason.COMPLETED),
    (S.RETURN_REQUESTED, S.CLOSED): Transition(
        "receive_return", frozenset({Effect.REFUND}), CloseReason.RETURNED
    ),
}
"""``(from, to) → Transition``: every move the API table allows, and nothing else."""
del S

DEFAULT_RETURN_WINDOW_DAYS = 30


# ----------------------------------------------------------------------------- value objects


@attrs.frozen(kw_only=True)
class Totals:
    """``orders.totals`` in minor units: ``total = subtotal + tax + shipping - discounts``."""

    subtotal: int = attrs.field(validator=money.cents)
    tax: int = attrs.field(default=0, validator=money.cents)
    shipping: int = attrs.field(default=0, validator=money.cents)
    discounts: int = attrs.field(default=0, validator=money.cents)
    total: int = attrs.field(validator=money.cents)
    currency: str = attrs.field(validator=money.currency)

    def __attrs_post_init__(self) -> None:
        if self.discounts > self.subtotal + self.shipping:
            raise ValidationError("discounts", "must not exceed subtotal plus shipping")
        if self.total != self.subtotal + self.tax + self.shipping - self.discounts:
            raise ValidationError("total", "must equal subtotal + tax + shipping - discounts")

    @classmethod
    def compute(
        cls, *, subtotal: int, currency: str, tax: int = 0, shipping: int = 0, discounts: int = 0
    ) -> Totals:
        """Totals with ``total`` derived from the parts."""
        return cls(
            subtotal=subtotal,
            tax=tax,
            shipping=shipping,
            discounts=discounts,
            total=subtotal + tax + shipping - discounts,
            currency=currency,
        )


class NotificationChannel(StrEnum):
    """How a notification about an order went out."""

    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


@attrs.frozen(kw_only=True)
class Notification:
    """One entry of ``orders.notifications``: what was sent, how and when (no recipient data)."""

    channel: NotificationChannel = attrs.field(validator=rules.member_of(NotificationChannel))
    kind: str = attrs.field(validator=rules.text(max_len=64))
    sent_at: datetime = attrs.field(validator=rules.aware_datetime)
    status: str = attrs.field(default="queued", validator=rules.text(max_len=32))


class FitVerdict(StrEnum):
    """How a size fits one body zone."""

    TIGHT = "tight"
    OK = "ok"
    LOOSE = "loose"


@attrs.frozen(kw_only=True)
class ZoneFit:
    """One zone of a recommendation: the body value, the size's range, the signed distance
    to that range in cm (negative: the body is smaller) and the verdict."""

    zone: str = attrs.field(validator=rules.text(max_len=40))
    body_cm: float = attrs.field(validator=rules.number(ge=0, le=500))
    size_min_cm: float = attrs.field(validator=rules.number(ge=0, le=500))
    size_max_cm: float = attrs.field(validator=rules.number(ge=0, le=500))
    delta_cm: float = attrs.field(validator=rules.number(ge=-500, le=500))
    verdict: FitVerdict = attrs.field(validator=rules.member_of(FitVerdict))
    estimated: bool = attrs.field(default=False, validator=rules.boolean)


@attrs.frozen(kw_only=True)
class FitSummary:
    """The recommendation snapshot stored on an order item (``order_items.fit_summary``)."""

    size_label: str | None = attrs.field(validator=rules.optional(rules.text(max_len=32)))
    confidence: int = attrs.field(validator=rules.integer(ge=0, le=100))
    zones: tuple[ZoneFit, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.sequence_of(rules.instance_of(ZoneFit))
    )
    between_sizes: bool = attrs.field(default=False, validator=rules.boolean)
    size_chart_id: UUID = attrs.field(validator=rules.uuid)
    fit_map_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    engine_version: str = attrs.field(validator=rules.text(max_len=32))
    score: float | None = attrs.field(default=None, validator=rules.optional(rules.number(ge=0, le=1)))
    """The engine's uncalibrated score of the label (what calibration is fitted on)."""
    unassessed_zones: tuple[str, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.sequence_of(rules.text(max_len=40))
    )
    """Chart zones the body lacked and that had no honest estimate."""


class ReturnReasonCode(StrEnum):
    """Why a shopper sends an order line back."""

    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    STYLE = "style"
    QUALITY = "quality"
    OTHER = "other"


SIZE_REASONS = frozenset({ReturnReasonCode.TOO_SMALL, ReturnReasonCode.TOO_LARGE})
"""The reasons that say the size was wrong (what fit learning and calibration read)."""


@attrs.frozen(kw_only=True)
class ReturnReason:
    """``order_items.return_reason`` (an addition to the data model): the reason a line came
    back and, optionally, the body zone at fault (``{"reason": "too_small", "zone": "chest"}``)."""

    reason: ReturnReasonCode = attrs.field(validator=rules.member_of(ReturnReasonCode))
    zone: str | None = attrs.field(
        default=None,
        validator=rules.optional(
            rules.text(max_len=40, pattern=r"[a-z]+(?:_[a-z]+)*", rule="must be a zone name")
        ),
    )

    @property
    def about_size(self) -> bool:
        """Whether the line came back too small or too large."""
        return self.reason in SIZE_REASONS


# ----------------------------------------------------------------------------- entities


def _rid(field: str, value: Any) -> None:
    if not is_rid(value):
        raise ValidationError(field, "must be a 22-character base64url rid")


rid = rules.Rule(_rid)
"""attrs validator for ``CHAR(22)`` rids."""


@attrs.frozen(kw_only=True)
class Order:
    """An order (``orders``). Columns after ``notifications`` are additions to the data model
    that record when and how the order moved (return window, refunds)."""

    id: UUID = attrs.field(validator=rules.uuid)
    user_id: UUID = attrs.field(validator=rules.uuid)
    status: OrderStatus = attrs.field(default=OrderStatus.CREATED, validator=rules.member_of(OrderStatus))
    totals: Totals = attrs.field(validator=rules.instance_of(Totals))
    shipping_address_id: UUID = attrs.field(validator=rules.uuid)
    billing_address_id: UUID = attrs.field(validator=rules.uuid)
    payment_intent_ref: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=255))
    )
    psp_token_id: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=255)), repr=False
    )
    rid: str | None = attrs.field(default=None, validator=rules.optional(rid))
    notifications: tuple[Notification, ...] | None = attrs.field(
        default=None,
        converter=rules.to_tuple,
        validator=rules.optional(rules.sequence_of(rules.instance_of(Notification))),
    )
    refunded_cents: int = attrs.field(default=0, validator=money.cents)
    paid_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    delivered_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    closed_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    close_reason: CloseReason | None = attrs.field(
        default=None, validator=rules.optional(rules.member_of(CloseReason))
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)

    def __attrs_post_init__(self) -> None:
        if self.refunded_cents > self.totals.total:
            raise ValidationError("refunded_cents", "must not exceed the order total")

    @property
    def total(self) -> money.Money:
        """The amount charged."""
        return money.Money(self.totals.total, self.totals.currency)


@attrs.frozen(kw_only=True)
class OrderItem:
    """A line of an order (``order_items``): a snapshot of what was sold, so history never
    changes when the catalog does. ``reserved_qty`` (an addition) is how many units came out
    of stock; the rest of ``qty`` was on backorder."""

    id: UUID = attrs.field(validator=rules.uuid)
    order_id: UUID = attrs.field(validator=rules.uuid)
    product_id: UUID = attrs.field(validator=rules.uuid)
    variant_id: UUID = attrs.field(validator=rules.uuid)
    sku: str = attrs.field(validator=rules.text(max_len=64))
    size_label: str = attrs.field(validator=rules.text(max_len=32))
    qty: int = attrs.field(validator=rules.integer(gt=0, le=32767))
    reserved_qty: int = attrs.field(validator=rules.integer(ge=0, le=32767))
    unit_price_cents: int = attrs.field(validator=money.cents)
    currency: str = attrs.field(validator=money.currency)
    fit_summary: FitSummary | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.instance_of(FitSummary))
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    return_reason: ReturnReason | None = attrs.field(
        default=None, validator=rules.optional(rules.instance_of(ReturnReason))
    )
    """Why the line came back (set by ``request_return``; an addition to the data model)."""
    brand_id: UUID = attrs.field(validator=rules.uuid)
    """The brand of ``product_id`` when the line was placed (an addition to the data model: it
    lets ``orders.for_brand`` read one page of a brand's orders through one index)."""
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)
    """When the line last changed (a return reason, an erasure); ``created_at`` when left out."""

    @updated_at.default
    def _updated_at_default(self) -> datetime:
        return self.created_at

    def __attrs_post_init__(self) -> None:
        if self.reserved_qty > self.qty:
            raise ValidationError("reserved_qty", "must not exceed qty")

    @property
    def line_total_cents(self) -> int:
        """``unit_price_cents × qty``."""
        return self.unit_price_cents * self.qty


# ----------------------------------------------------------------------------- state machine


@attrs.frozen(kw_only=True)
class OrderStatusChanged:
    """Domain event: an order moved from one status to another."""

    order_id: UUID
    previous: OrderStatus
    status: OrderStatus
    action: str
    effects: frozenset[Effect]
    at: datetime


def allowed_targets(status: OrderStatus) -> frozenset[OrderStatus]:
    """Where an order in ``status`` may move next."""
    return frozenset(to for (frm, to) in ORDER_TRANSITIONS if frm == status)


def transition(
    order: Order,
    target: OrderStatus | str,
    *,
    at: datetime,
    return_window_days: int = DEFAULT_RETURN_WINDOW_DAYS,
) -> tuple[Order, list[OrderStatusChanged]]:
    """Move ``order`` to ``target`` at time ``at``: the new order and the events it caused.

    Moving to the current status is a no-op (the same order, no events). A move that
    :data:`ORDER_TRANSITIONS` does not list raises :class:`InvalidTransition`, and so does a
    return requested after the return window.
    """
    return transitions(order, [(target, at)], return_window_days=return_window_days)


def transitions(
    order: Order,
    moves: Iterable[tuple[OrderStatus | str, datetime]],
    *,
    return_window_days: int = DEFAULT_RETURN_WINDOW_DAYS,
) -> tuple[Order, list[OrderStatusChanged]]:
    """``moves`` (``(target, at)`` pairs) in turn, each from where the last left the order:
    the order and the events that calling :func:`transition` once per move gives, with the
    order built once at the end. The first move refused raises as :func:`transition` does."""
    stamps: dict[str, Any] = {}
    events: list[OrderStatusChanged] = []
    status, delivered, updated = order.status, order.delivered_at, order.updated_at
    for wanted, at in moves:
        target = OrderStatus(wanted)
        if target == status:
            continue
        step = ORDER_TRANSITIONS.get((status, target))
        if step is None:
            raise InvalidTransition("order", status, target)
        if step.within_return_window and at > (delivered or updated) + timedelta(days=return_window_days):
            raise InvalidTransition(
                "order", status, target, f"the {return_window_days}-day return window is over"
            )
        stamps["status"] = target
        stamps["updated_at"] = at
        if target == OrderStatus.PAID:
            stamps["paid_at"] = at
        elif target == OrderStatus.DELIVERED:
            stamps["delivered_at"] = delivered = at
        elif target == OrderStatus.CLOSED:
            stamps["closed_at"] = at
            stamps["close_reason"] = step.close_reason
        events.append(
            OrderStatusChanged(
                order_id=order.id,
                previous=status,
                status=target,
                action=step.action,
                effects=step.effects,
                at=at,
            )
        )
        status, updated = target, at
    moved = rules.evolved(order, **stamps) if stamps else order
    for event in events[:-1]:  # the last move's stamps were checked by building the order
        rules.aware_datetime.check("updated_at", event.at)
    return moved, events


__all__ = [
    "DEFAULT_RETURN_WINDOW_DAYS",
    "ORDER_TRANSITIONS",
    "SIZE_REASONS",
    "CloseReason",
    "Effect",
    "FitSummary",
    "FitVerdict",
    "Notification",
    "NotificationChannel",
    "Order",
    "OrderItem",
    "OrderStatus",
    "OrderStatusChanged",
    "ReturnReason",
    "ReturnReasonCode",
    "Totals",
    "Transition",
    "ZoneFit",
    "allowed_targets",
    "rid",
    "transition",
    "transitions",
]
