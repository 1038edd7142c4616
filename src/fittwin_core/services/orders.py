"""Orders from checkout to return.

``place`` reserves stock for every line or none (locks taken in variant-id order), snapshots
prices and fit summaries, prices the order through the ``Pricing`` port and opens a payment
with an idempotency key derived from the order. Status moves go through the one transition
table of :mod:`fittwin_core.domain.orders`; each is a compare-and-set, so two concurrent movers
cannot both move an order, and the table's side effects (release stock, refund, notify the
brand) are applied in the same unit of work. Who may make each move is the ``orders.<action>``
entry of the permission matrix (:mod:`fittwin_core.services.permissions`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

import attrs

from fittwin_core import fit
from fittwin_core.domain import (
    Actor,
    ActorType,
    BrandStatus,
    Conflict,
    FitSummary,
    FitTwinError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyRecord,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    Order,
    OrderItem,
    OrderStatus,
    PaymentError,
    ProductStatus,
    ReturnReason,
    ReturnReasonCode,
    Totals,
    ValidationError,
    VariantStatus,
)
from fittwin_core.domain.ids import is_rid
from fittwin_core.domain.orders import ORDER_TRANSITIONS, Effect, transition
from fittwin_core.domain.rules import parse_enum
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import PaymentEvent, PriceLine, Quote, UnitOfWork
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_uuid, require
from fittwin_core.services.brands import BrandEvent, Brands
from fittwin_core.services.catalog import Catalog, next_variant_status
from fittwin_core.services.permissions import allowed, authorize, own_live_address, own_payment_method
from fittwin_core.services.vault import Vault

log = logging.getLogger("fittwin.orders")

PLACE_SCOPE = "orders.place"
WEBHOOK_SCOPE = "payments.webhook"
HANDLED_PAYMENT_EVENTS = frozenset(
    {"payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"}
)
NO_ORDER = UUID(int=0)
MAX_LINES = 100


class OrderHooks(Protocol):
    """Reactions of other services to order moves, run in the same unit of work."""

    def on_order_moved(self, uow: UnitOfWork, before: Order, after: Order) -> None:
        """``before`` moved to ``after`` (statuses differ)."""
        ...


@attrs.frozen
class _Line:
    variant_id: UUID
    qty: int


class Orders(Service):
    """``ft.orders``: place orders, take payments, and move orders through their lifecycle."""

    def __init__(
        self, ctx: Context, brands: Brands, catalog: Catalog, runner: UnitOfWorkRunner | None = None
    ) -> None:
        super().__init__(ctx, runner)
        self._brands = brands
        self._catalog = catalog
        self.vault = Vault(ctx.cipher, ctx.clock)
        self.hooks: list[OrderHooks] = []

    # ------------------------------------------------------------------ reading

    def get(self, order_id: UUID, *, actor: Actor) -> Order:
        """An order, for its shopper, users of a brand with a product in it, and staff."""
        oid = as_uuid(order_id, "order_id")

        def work(uow: UnitOfWork) -> Order:
            order = uow.orders.get(oid)
            self._authorize(uow, actor, order, "orders.read")
            return order

        return self.read(work, actor=actor)

    def items(self, order_id: UUID, *, actor: Actor) -> list[OrderItem]:
        """An order's lines, in the order they were placed (readers as for :meth:`get`). A list,
        not a page: an order has at most ``MAX_LINES`` lines."""
        oid = as_uuid(order_id, "order_id")

        def work(uow: UnitOfWork) -> list[OrderItem]:
            self._authorize(uow, actor, uow.orders.get(oid), "orders.read")
            return uow.order_items.where(order_id=oid, order_by="id")

        return self.read(work, actor=actor)

    def for_user(
        self,
        user_id: UUID,
        *,
        status: OrderStatus | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Order]:
        """A page of a shopper's orders, oldest first (for the shopper and staff); pass the
        page's ``next`` as ``after`` for the following one (:mod:`fittwin_core.pagination`)."""
        uid = as_uuid(user_id, "user_id")
        window = PageRequest.of(limit, after)
        authorize(actor, "orders.read", user_id=uid)
        filters: dict[str, Any] = {"user_id": uid}
        if status is not None:
            filters["status"] = parse_enum(OrderStatus, status, "status")
        return self.read(lambda uow: window.read(uow.orders, **filters), actor=actor)

    def for_brand(
        self,
        brand_id: UUID,
        *,
        status: OrderStatus | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Order]:
        """A page of the orders holding a product of the brand, oldest first, optionally of one
        status (for the brand's owners, managers and analysts, and staff). An order with lines
        of several brands is listed for each of them; :meth:`items` shows all its lines."""
        bid = as_uuid(brand_id, "brand_id")
        window = PageRequest.of(limit, after)
        wanted = None if status is None else parse_enum(OrderStatus, status, "status")

        def work(uow: UnitOfWork) -> Page[Order]:
            authorize(actor, "orders.list_for_brand", uow=uow, brand_ids={bid})
            found = uow.orders.for_brand(bid, status=wanted, after=window.after_id, limit=window.limit + 1)
            return window.page(found)

        return self.read(work, actor=actor)

    # ------------------------------------------------------------------ placing

    def place(
        self,
        user_id: UUID,
        items: Iterable[tuple[UUID, int]],
        *,
        shipping_address_id: UUID,
        billing_address_id: UUID,
        payment_method_id: UUID,
        rid: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor,
    ) -> Order:
        """Place an order for ``items`` (``(variant_id, qty)`` pairs) and open its payment.

        All lines' stock is reserved or none (:class:`InsufficientInventory`). Prices and fit
        summaries are snapshot into the lines. The same ``idempotency_key`` again returns the
        same order, also while the first request is still running: the repeat waits for it
        (:class:`IdempotencyKeyInUse`, retryable, only if it does not finish in time). Reused
        with different input the key is :class:`IdempotencyKeyReused`. A ``rid`` that names
        no referral is ignored (a stale share link never blocks a purchase). If the payment
        provider fails, the order is undone and :class:`PaymentError` raised.

        Inside ``ft.transaction`` the payment is opened once the transaction commits: the
        order returned is ``created`` without ``payment_intent_ref`` (read it again after the
        block).
        """
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "orders.place", user_id=uid)
        lines = _parse_lines(items)
        ship_id = as_uuid(shipping_address_id, "shipping_address_id")
        bill_id = as_uuid(billing_address_id, "billing_address_id")
        pm_id = as_uuid(payment_method_id, "payment_method_id")
        if rid is not None and not is_rid(rid):
            raise ValidationError("rid", "must be a 22-character base64url rid")
        key = None
        if idempotency_key is not None:
            require(
                isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 200,
                "idempotency_key",
                "must be 1 to 200 characters",
            )
            key = f"{uid}:{idempotency_key}"
        fingerprint = _request_hash(
            {
                "user": str(uid),
                "items": [[str(line.variant_id), line.qty] for line in lines],
                "ship": str(ship_id),
                "bill": str(bill_id),
                "pm": str(pm_id),
                "rid": rid,
            }
        )
        events: list[BrandEvent] = []

        def work(uow: UnitOfWork) -> Order:
            events.clear()
            order_id = self._ctx.ids.new_id()
            if key is not None:
                record = uow.idempotency_keys.find((PLACE_SCOPE, key))
                if record is not None:
                    if record.request_hash != fingerprint:
                        raise IdempotencyKeyReused("this idempotency key was used for a different order")
                    return uow.orders.get(record.result_id)
                # Claim the key before anything else: a concurrent request with the same key
                # waits here until this one ends, then finds its order on the retry.
                try:
                    uow.idempotency_keys.add(
                        IdempotencyRecord(
                            scope=PLACE_SCOPE,
                            key=key,
                            request_hash=fingerprint,
                            result_id=order_id,
                            created_at=self.now(),
                        )
                    )
                except Conflict:
                    raise IdempotencyKeyInUse(
                        "another request with this idempotency key is in progress"
                    ) from None
            return self._create(uow, order_id, uid, lines, ship_id, bill_id, pm_id, rid, events)

        order = self.transaction(work, actor=acting)
        self._brands._dispatch_after_commit(events)
        if order.payment_intent_ref is None and order.status == OrderStatus.CREATED:
            opened: list[Order] = []
            self.after_commit(lambda: opened.append(self._open_payment(order, acting)))
            return opened[0] if opened else order
        return order

    def _create(
        self,
        uow: UnitOfWork,
        order_id: UUID,
        user_id: UUID,
        lines: Sequence[_Line],
        ship_id: UUID,
        bill_id: UUID,
        pm_id: UUID,
        rid: str | None,
        events: list[BrandEvent],
    ) -> Order:
        user = self.shopper(uow, user_id)
        shipping = own_live_address(uow, user_id, ship_id, "shipping_address_id")
        own_live_address(uow, user_id, bill_id, "billing_address_id")
        method = own_payment_method(uow, user_id, pm_id)
        now = self.now()
        items: list[OrderItem] = []
        currency: str | None = None
        summaries: dict[UUID, FitSummary | None] = {}
        for index, line in enumerate(lines):  # lines are sorted by variant id: locks in one order
            field = f"items[{index}]"
            variant = uow.product_variants.get(line.variant_id)
            product = uow.products.get(variant.product_id)
            brand = uow.brands.get(product.brand_id)
            require(
                product.status == ProductStatus.ACTIVE,
                f"{field}.variant_id",
                "refers to a product not on sale",
            )
            require(
                brand.onboarding_status == BrandStatus.ACTIVE,
                f"{field}.variant_id",
                "refers to a brand not selling",
            )
            if currency is None:
                currency = variant.currency
            require(variant.currency == currency, "items", "must all be in one currency")
            if variant.status == VariantStatus.OUT_OF_STOCK:
                raise InsufficientInventory(variant.id, line.qty, 0)
            updated, applied = uow.product_variants.adjust_inventory(
                variant.id, -line.qty, clamp_at_zero=variant.status == VariantStatus.BACKORDER
            )
            restated = attrs.evolve(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)
            events.extend(self._catalog.low_stock_events(brand.id, variant, restated))
            if product.id not in summaries:
                summaries[product.id] = self._fit_summary(
                    uow, user.body_metrics, user.style_preferences, product
                )
            items.append(
                OrderItem(
                    id=self._ctx.ids.new_id(),
                    order_id=order_id,
                    product_id=product.id,
                    brand_id=brand.id,
                    variant_id=variant.id,
                    sku=variant.sku,
                    size_label=variant.size_label,
                    qty=line.qty,
                    reserved_qty=-applied,
                    unit_price_cents=variant.price_cents,
                    currency=variant.currency,
                    fit_summary=summaries[product.id],
                    created_at=now,
                )
            )
        assert currency is not None
        subtotal = sum(item.line_total_cents for item in items)
        country = self.vault.open_fields(uow, user_id, shipping)["country"]
        quote = self._ctx.pricing.quote(
            lines=[
                PriceLine(
                    variant_id=i.variant_id,
                    product_id=i.product_id,
                    qty=i.qty,
                    unit_price_cents=i.unit_price_cents,
                )
                for i in items
            ],
            currency=currency,
            subtotal=subtotal,
            shipping_country=country,
        )
        totals = _totals(subtotal, currency, quote)
        referral = None if rid is None else uow.referrals.find(rid)
        order = Order(
            id=order_id,
            user_id=user_id,
            totals=totals,
            shipping_address_id=ship_id,
            billing_address_id=bill_id,
            psp_token_id=method.psp_token_id,
            rid=None if referral is None else referral.rid,
            created_at=now,
            updated_at=now,
        )
        uow.orders.add(order)
        uow.order_items.add_many(items)
        return order

    def _fit_summary(self, uow: UnitOfWork, body: Any, preferences: Any, product: Any) -> FitSummary | None:
        chart = uow.size_charts.get(product.size_chart_id)
        fit_map = None if product.fit_map_id is None else uow.fit_maps.get(product.fit_map_id)
        try:
            return fit.recommend(body, chart, fit_map, preferences).to_fit_summary()
        except FitTwinError:
            log.warning("no fit summary for product %s", product.id)
            return None

    def _open_payment(self, order: Order, actor: Actor) -> Order:
        if order.totals.total == 0:
            return self._move(order.id, OrderStatus.PAID, Actor.system(), frozenset({"pay"}))
        try:
            intent = self._ctx.payments.create_payment_intent(
                amount=order.totals.total,
                currency=order.totals.currency,
                idempotency_key=f"fittwin-order-{order.id}",
                payment_method=order.psp_token_id,
                metadata={"order_id": str(order.id)},
            )
        except PaymentError:
            self._undo(order)
            raise

        def attach(uow: UnitOfWork) -> Order:
            current = uow.orders.lock(order.id)  # concurrent repeats of the request wait here
            if current.payment_intent_ref is not None:
                return current
            attached = attrs.evolve(current, payment_intent_ref=intent.id, updated_at=self.now())
            uow.orders.update(attached, expected={"payment_intent_ref": None})
            return attached

        return self.transaction(attach, actor=actor)

    def _undo(self, order: Order) -> None:
        """Take back a placed order whose payment could not be opened: stock, lines, key, row."""

        def work(uow: UnitOfWork) -> None:
            for item in uow.order_items.where(order_id=order.id):
                self._release(uow, item)
                uow.order_items.delete(item.id)
            for record in uow.idempotency_keys.where(scope=PLACE_SCOPE, result_id=order.id):
                uow.idempotency_keys.delete((record.scope, record.key))
            uow.orders.delete(order.id)

        self.transaction(work, actor=Actor.system())

    def _release(self, uow: UnitOfWork, item: OrderItem) -> None:
        if item.reserved_qty:
            updated, _ = uow.product_variants.adjust_inventory(item.variant_id, item.reserved_qty)
            restated = attrs.evolve(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)

    # ------------------------------------------------------------------ payment webhooks

    def handle_payment_webhook(self, payload: bytes | str, signature_header: str) -> Order | None:
        """Apply a payment provider webhook; returns the affected order (``None`` for a
        duplicate delivery and for an event type FitTwin does not handle, which change nothing:
        answer them 2xx so the provider stops resending).

        The signature and timestamp are verified by the gateway (:class:`AuthenticationFailed`);
        payments FitTwin does not know are rejected with :class:`NotFound`, recording nothing.
        Each event id is applied once however many times it arrives.
        """
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, bytes | bytearray):
            raise ValidationError("payload", "must be the raw request body (bytes)")
        if not isinstance(signature_header, str):
            raise ValidationError("signature_header", "must be the signature header's text")
        payload = bytes(payload)
        event = self._ctx.payments.parse_webhook(payload, signature_header)
        if event.type not in HANDLED_PAYMENT_EVENTS:
            return None
        digest = hashlib.sha256(payload).hexdigest()

        def work(uow: UnitOfWork) -> Order | None:
            order = self._order_for(uow, event)
            if uow.idempotency_keys.find((WEBHOOK_SCOPE, event.id)) is not None:
                return None
            uow.idempotency_keys.add(
                IdempotencyRecord(
                    scope=WEBHOOK_SCOPE,
                    key=event.id,
                    request_hash=digest,
                    result_id=order.id,
                    created_at=self.now(),
                )
            )
            if event.type == "payment_intent.succeeded" and order.status == OrderStatus.CREATED:
                return self._apply(uow, order, OrderStatus.PAID, [])
            if event.type == "payment_intent.succeeded" and order.status == OrderStatus.CLOSED:
                log.warning("payment succeeded for closed order %s: refund it through the provider", order.id)
            return order

        return self.transaction(work, actor=Actor.system())

    def _order_for(self, uow: UnitOfWork, event: PaymentEvent) -> Order:
        if event.payment_intent_id is None:
            raise ValidationError("event.data", "names no payment intent")
        found = uow.orders.where(payment_intent_ref=event.payment_intent_id, limit=1)
        if not found:
            raise NotFound("orders", f"for payment {event.payment_intent_id}")
        return uow.orders.lock(found[0].id)  # serialises duplicate deliveries of one event

    # ------------------------------------------------------------------ lifecycle

    def mark_paid(self, order_id: UUID, *, actor: Actor) -> Order:
        """``created → paid`` (the payment succeeded); again is a no-op."""
        return self._move(order_id, OrderStatus.PAID, actor, frozenset({"pay"}))

    def send_to_brand(self, order_id: UUID, *, actor: Actor) -> Order:
        """``paid → sent_to_brand``: brands subscribed to ``order.sent_to_brand`` are notified."""
        return self._move(order_id, OrderStatus.SENT_TO_BRAND, actor, frozenset({"send_to_brand"}))

    def mark_fulfilled(self, order_id: UUID, *, actor: Actor) -> Order:
        """``sent_to_brand → fulfilled``: the brand shipped it."""
        return self._move(order_id, OrderStatus.FULFILLED, actor, frozenset({"fulfil"}))

    def mark_delivered(self, order_id: UUID, *, actor: Actor) -> Order:
        """``fulfilled → delivered``: the return window starts now."""
        return self._move(order_id, OrderStatus.DELIVERED, actor, frozenset({"deliver"}))

    def request_return(
        self,
        order_id: UUID,
        *,
        actor: Actor,
        reasons: Mapping[UUID, ReturnReason | ReturnReasonCode | str | Mapping[str, Any]] | None = None,
    ) -> Order:
        """``delivered → return_requested`` within the return window (else :class:`InvalidTransition`).

        ``reasons`` maps order item ids to why each line comes back: ``"too_small"``,
        ``"too_large"``, ``"style"``, ``"quality"`` or ``"other"``, or ``{"reason": "too_small",
        "zone": "chest"}`` naming the body zone at fault (a zone of the fit engine). They are
        stored on the lines (``order_items.return_reason``) in the same transaction as the move.
        """
        parsed = _parse_reasons(reasons)

        def record(uow: UnitOfWork, order: Order) -> None:
            if not parsed:
                return
            lines = {item.id: item for item in uow.order_items.where(order_id=order.id)}
            for item_id, reason in parsed.items():
                if item_id not in lines:
                    raise ValidationError(f"reasons.{item_id}", "is not a line of this order")
                uow.order_items.update(attrs.evolve(lines[item_id], return_reason=reason))

        return self._move(
            order_id, OrderStatus.RETURN_REQUESTED, actor, frozenset({"request_return"}), before_apply=record
        )

    def close(self, order_id: UUID, *, actor: Actor) -> Order:
        """``delivered → closed`` (kept), or ``return_requested → closed`` (return received:
        the payment is refunded)."""
        return self._move(order_id, OrderStatus.CLOSED, actor, frozenset({"close", "receive_return"}))

    def cancel(self, order_id: UUID, *, actor: Actor) -> Order:
        """``created/paid → closed``: stock is released; an open payment is cancelled and a
        taken one refunded."""
        return self._move(order_id, OrderStatus.CLOSED, actor, frozenset({"cancel"}))

    def close_expired_returns(self, *, actor: Actor, limit: int = 1000) -> list[Order]:
        """Close delivered orders whose return window is over (a periodic job, staff only)."""
        authorize(actor, "orders.close_expired_returns")
        cutoff = self.now() - timedelta(days=self._ctx.settings.return_window_days)
        candidates = self.read(
            lambda uow: [
                o
                for o in uow.orders.where(status=OrderStatus.DELIVERED, order_by="id", limit=limit * 4)
                if o.delivered_at is not None and o.delivered_at < cutoff
            ][:limit],
            actor=actor,
        )
        return [self._move(order.id, OrderStatus.CLOSED, actor, frozenset({"close"})) for order in candidates]

    def _move(
        self,
        order_id: UUID,
        target: OrderStatus,
        actor: Actor,
        actions: frozenset[str],
        *,
        before_apply: Callable[[UnitOfWork, Order], None] | None = None,
    ) -> Order:
        """Move the order to ``target`` by one of the transition-table ``actions`` this method
        makes; the actor needs the matrix's ``orders.<action>`` for the step taken (for a no-op,
        for any of ``actions``). ``before_apply`` runs in the move's unit of work once the move
        is authorised, before it is applied."""
        oid = as_uuid(order_id, "order_id")
        events: list[BrandEvent] = []

        def work(uow: UnitOfWork) -> Order:
            events.clear()
            order = uow.orders.get(oid)
            if order.status == target:
                self._authorize_any(uow, actor, order, actions)
                return order
            step = ORDER_TRANSITIONS.get((order.status, target))
            if step is None or step.action not in actions:
                self._authorize_any(uow, actor, order, actions)
                raise InvalidTransition("order", order.status, target)
            self._authorize(uow, actor, order, f"orders.{step.action}")
            if before_apply is not None:
                before_apply(uow, order)
            return self._apply(uow, order, target, events)

        moved = self.transaction(work, actor=actor)
        self._brands._dispatch_after_commit(events)
        return moved

    def _apply(self, uow: UnitOfWork, order: Order, target: OrderStatus, events: list[BrandEvent]) -> Order:
        moved, changes = transition(
            order, target, at=self.now(), return_window_days=self._ctx.settings.return_window_days
        )
        for change in changes:
            if Effect.RELEASE_STOCK in change.effects:
                for item in uow.order_items.where(order_id=order.id):
                    self._release(uow, item)
            if Effect.REFUND in change.effects:
                moved = self._refund_rest(moved)
            if Effect.CANCEL_PAYMENT in change.effects:
                moved = self._cancel_payment(moved)
            if Effect.NOTIFY_BRAND in change.effects:
                events.extend(self._brand_events(uow, moved, f"order.{target.value}"))
        uow.orders.update(moved, expected={"status": order.status})
        for hook in self.hooks:
            hook.on_order_moved(uow, order, moved)
        return moved

    def _refund_rest(self, order: Order) -> Order:
        outstanding = order.totals.total - order.refunded_cents
        if outstanding <= 0 or order.payment_intent_ref is None:
            return order
        self._ctx.payments.refund(
            order.payment_intent_ref,
            amount=outstanding,
            idempotency_key=f"fittwin-refund-{order.id}-{order.refunded_cents}",
        )
        return attrs.evolve(order, refunded_cents=order.totals.total)

    def _cancel_payment(self, order: Order) -> Order:
        if order.payment_intent_ref is None:
            return order
        intent = self._ctx.payments.retrieve_payment_intent(order.payment_intent_ref)
        if intent.status == "succeeded":  # paid while we were cancelling: give it back
            return self._refund_rest(order)
        if intent.status != "canceled":
            self._ctx.payments.cancel_payment_intent(
                order.payment_intent_ref, idempotency_key=f"fittwin-cancel-{order.id}"
            )
        return order

    def _brand_events(self, uow: UnitOfWork, order: Order, event: str) -> list[BrandEvent]:
        by_brand: dict[UUID, list[dict[str, Any]]] = {}
        for item in uow.order_items.where(order_id=order.id, order_by="id"):
            brand_id = uow.products.get(item.product_id).brand_id
            by_brand.setdefault(brand_id, []).append(
                {"sku": item.sku, "size_label": item.size_label, "qty": item.qty}
            )
        return [
            BrandEvent(
                brand_id, event, {"order_id": str(order.id), "status": order.status.value, "items": lines}
            )
            for brand_id, lines in by_brand.items()
        ]

    def _authorize(self, uow: UnitOfWork, actor: Actor, order: Order, action: str) -> None:
        """The matrix's ``action`` about this order: its shopper is "self", the brands of its
        products are "this brand"."""
        authorize(actor, action, uow=uow, user_id=order.user_id, brand_ids=self._brands_of(uow, actor, order))

    def _authorize_any(self, uow: UnitOfWork, actor: Actor, order: Order, actions: frozenset[str]) -> None:
        brands = self._brands_of(uow, actor, order)
        if not any(
            allowed(actor, f"orders.{a}", uow=uow, user_id=order.user_id, brand_ids=brands) for a in actions
        ):
            self._authorize(uow, actor, order, f"orders.{min(actions)}")  # raises PermissionDenied

    def _brands_of(self, uow: UnitOfWork, actor: Actor, order: Order) -> set[UUID]:
        """The brands with a product in ``order`` (looked up for brand users only)."""
        if actor.type != ActorType.BRAND_ADMIN:
            return set()
        return {uow.products.get(i.product_id).brand_id for i in uow.order_items.where(order_id=order.id)}


def _parse_lines(items: Iterable[tuple[UUID, int]]) -> list[_Line]:
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValidationError("items", "must be a list of (variant_id, qty) pairs")
    merged: dict[UUID, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValidationError(f"items[{index}]", "must be a (variant_id, qty) pair")
        variant_id = as_uuid(item[0], f"items[{index}].variant_id")
        qty = item[1]
        if not isinstance(qty, int) or isinstance(qty, bool) or not 0 < qty <= 1000:
            raise ValidationError(f"items[{index}].qty", "must be an integer from 1 to 1000")
        merged[variant_id] = merged.get(variant_id, 0) + qty
    require(bool(merged), "items", "must not be empty")
    require(len(merged) <= MAX_LINES, "items", f"must have at most {MAX_LINES} distinct variants")
    require(
        all(q <= 32767 for q in merged.values()), "items", "must not ask for more than 32767 of one variant"
    )
    return [_Line(variant_id, merged[variant_id]) for variant_id in sorted(merged)]


def _parse_reasons(reasons: object) -> dict[UUID, ReturnReason]:
    """``request_return``'s ``reasons``, checked (item ids, reason codes, zone names)."""
    if reasons is None:
        return {}
    if not isinstance(reasons, Mapping):
        raise ValidationError("reasons", "must map order item ids to reasons")
    out: dict[UUID, ReturnReason] = {}
    for key, value in reasons.items():
        item_id = as_uuid(key, "reasons")
        field = f"reasons.{item_id}"
        if isinstance(value, ReturnReason):
            reason = value
        else:
            raw = value if isinstance(value, Mapping) else {"reason": value}
            unknown = sorted(str(k) for k in raw if k not in ("reason", "zone"))
            if unknown:
                raise ValidationError(field, f"has unknown keys: {', '.join(unknown)}")
            code = raw.get("reason")
            if code not in {c.value for c in ReturnReasonCode}:
                raise ValidationError(
                    f"{field}.reason", f"must be one of {', '.join(c.value for c in ReturnReasonCode)}"
                )
            zone = raw.get("zone")
            if zone is not None and zone not in fit.ZONE_FIELDS:
                raise ValidationError(f"{field}.zone", f"is not a body zone ({', '.join(fit.ZONE_FIELDS)})")
            reason = ReturnReason(reason=ReturnReasonCode(code), zone=zone)
        out[item_id] = reason
    return out


def _totals(subtotal: int, currency: str, quote: Quote) -> Totals:
    for name in ("tax", "shipping", "discounts"):
        value = getattr(quote, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"quote.{name}", "must be a non-negative integer amount")
    return Totals.compute(
        subtotal=subtotal,
        currency=currency,
        tax=quote.tax,
        shipping=quote.shipping,
        discounts=quote.discounts,
    )


def _request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


__all__ = ["HANDLED_PAYMENT_EVENTS", "OrderHooks", "Orders"]
