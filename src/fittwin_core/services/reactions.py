"""Who reacts to what happens to an order: one table, :data:`ORDER_HANDLERS`.

The order service publishes an event (:class:`OrderPlaced`, :class:`OrderMoved`,
:class:`OrderRefunded`) inside the unit of work of the change; every handler listed for its
type runs in that same unit of work. Handlers only write rows: the reward ledger, or outbox
effects (brand webhooks, shopper notifications) that the dispatcher delivers after the commit.
Nothing here calls the outside world.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from fittwin_core.domain import EffectKind, Order, OrderStatus
from fittwin_core.domain.orders import Effect
from fittwin_core.outbox import Recorded
from fittwin_core.ports import UnitOfWork

if TYPE_CHECKING:
    from fittwin_core.services.brands import BrandEvent, Brands
    from fittwin_core.services.effects import Outbox
    from fittwin_core.services.rewards import Rewards


@attrs.frozen
class OrderPlaced:
    """An order was placed (``created``)."""

    order: Order


@attrs.frozen
class OrderMoved:
    """An order moved from ``before.status`` to ``after.status``, with the transition's effects."""

    before: Order
    after: Order
    effects: frozenset[Effect]


@attrs.frozen
class OrderRefunded:
    """Money went back to the shopper: ``after.refunded_cents`` rose above ``before``'s."""

    before: Order
    after: Order


OrderEvent = OrderPlaced | OrderMoved | OrderRefunded


@attrs.frozen
class Reactors:
    """The services handlers act through, and the list collecting the effects recorded."""

    rewards: Rewards
    brands: Brands
    outbox: Outbox
    brand_events: Callable[[UnitOfWork, Order, str], list[BrandEvent]]


def rewards_follow_move(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """The ledger follows the order (attribute when paid, hold when delivered, reverse on
    cancel or return)."""
    r.rewards.on_order_moved(uow, event.before, event.after)


def rewards_follow_refund(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """Money refunded at the provider cancels the held reward or claws back a paid one."""
    r.rewards.on_order_refunded(uow, event.after)


def brands_hear_of_move(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """Brands subscribed to ``order.<status>`` get a webhook when the transition says so."""
    if Effect.NOTIFY_BRAND in event.effects:
        after: Order = event.after
        r.brands._record_events(uow, r.brand_events(uow, after, f"order.{after.status.value}"), recorded)


SHOPPER_TEMPLATES: Mapping[OrderStatus, str] = {
    OrderStatus.PAID: "order_paid",
    OrderStatus.FULFILLED: "order_shipped",
    OrderStatus.DELIVERED: "order_delivered",
}
"""Order status reached → the notification its shopper receives."""


def _notify(
    r: Reactors, uow: UnitOfWork, order: Order, template: str, key: str, recorded: list[Recorded]
) -> None:
    r.outbox.record(
        uow,
        EffectKind.NOTIFY_SHOPPER,
        f"notify:{order.id}:{key}",
        {
            "user_id": str(order.user_id),
            "template": template,
            "channel": "email",
            "data": {
                "status": order.status.value,
                "total_cents": order.totals.total,
                "refunded_cents": order.refunded_cents,
                "currency": order.totals.currency,
            },
        },
        order_id=order.id,
        recorded=recorded,
    )


def shopper_hears_of_placing(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """The shopper is told the order was placed."""
    _notify(r, uow, event.order, "order_placed", "placed", recorded)


def shopper_hears_of_move(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """The shopper is told the order was paid, shipped (fulfilled) and delivered."""
    template = SHOPPER_TEMPLATES.get(event.after.status)
    if template is not None:
        _notify(r, uow, event.after, template, event.after.status.value, recorded)


def shopper_hears_of_refund(r: Reactors, uow: UnitOfWork, event: Any, recorded: list[Recorded]) -> None:
    """The shopper is told about money refunded (once per refunded total)."""
    _notify(r, uow, event.after, "order_refunded", f"refunded-{event.after.refunded_cents}", recorded)


Handler = Callable[[Reactors, UnitOfWork, Any, list[Recorded]], None]

ORDER_HANDLERS: Mapping[type, tuple[Handler, ...]] = {
    OrderPlaced: (shopper_hears_of_placing,),
    OrderMoved: (rewards_follow_move, brands_hear_of_move, shopper_hears_of_move),
    OrderRefunded: (rewards_follow_refund, shopper_hears_of_refund),
}
"""Event type → who reacts, in order (the one table of reactions between services). The
handlers of :class:`OrderPlaced` run in the placing's transaction before the order's row is
written (it may be committed with the stock): they record effects and must not read it back."""


def publish(r: Reactors, uow: UnitOfWork, event: OrderEvent, recorded: list[Recorded]) -> None:
    """Run every handler of ``event`` in ``uow``."""
    for handler in ORDER_HANDLERS[type(event)]:
        handler(r, uow, event, recorded)


__all__ = [
    "ORDER_HANDLERS",
    "SHOPPER_TEMPLATES",
    "OrderMoved",
    "OrderPlaced",
    "OrderRefunded",
    "Reactors",
    "publish",
]
