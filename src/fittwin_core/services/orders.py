"""Orders from checkout to return.

``place`` reserves stock for every line or none (locks taken in variant-id order), snapshots
prices and fit summaries, prices the order through the ``Pricing`` port and opens a payment
with an idempotency key derived from the order. Status moves go through the one transition
table of :mod:`fittwin_core.domain.orders`; each is a compare-and-set, so two concurrent movers
cannot both move an order. Every move first locks the order row, then decides; the
transition's effects are applied in the same unit of work as rows: stock is released there,
and refunds, payment cancellations, brand webhooks and shopper notifications are recorded in
the outbox, which delivers them after the commit (:mod:`fittwin_core.services.effects`). No
provider call runs inside a transaction. Reactions of other services (rewards, brands) are the
table of :mod:`fittwin_core.services.reactions`. Payment webhooks and :meth:`Orders.reconcile`
bring the provider's truth in. Who may make each move is the ``orders.<action>`` entry of the
permission matrix (:mod:`fittwin_core.services.permissions`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core import fit
from fittwin_core.domain import (
    Actor,
    ActorType,
    Brand,
    BrandStatus,
    Conflict,
    EffectKind,
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
    Product,
    ProductStatus,
    ProductVariant,
    ReturnReason,
    ReturnReasonCode,
    Totals,
    TransientConflict,
    ValidationError,
    VariantStatus,
)
from fittwin_core.domain.ids import is_rid
from fittwin_core.domain.orders import ORDER_TRANSITIONS, Effect, transition
from fittwin_core.domain.rules import evolved, parse_enum
from fittwin_core.outbox import Recorded
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import (
    CheckoutRows,
    PaymentEvent,
    PaymentIntent,
    PriceLine,
    Quote,
    StockChange,
    UnitOfWork,
    before,
)
from fittwin_core.services.base import BatchResult, Context, Service, UnitOfWorkRunner, as_uuid, require
from fittwin_core.services.brands import BrandEvent, Brands
from fittwin_core.services.catalog import Catalog, next_variant_status
from fittwin_core.services.effects import Outcome
from fittwin_core.services.permissions import (
    allowed,
    authorize,
    checked_own_live_address,
    checked_own_payment_method,
)
from fittwin_core.services.reactions import OrderMoved, OrderPlaced, OrderRefunded, Reactors, publish
from fittwin_core.services.rewards import Rewards
from fittwin_core.services.vault import Vault

log = logging.getLogger("fittwin.orders")

PLACE_SCOPE = "orders.place"
WEBHOOK_SCOPE = "payments.webhook"
HANDLED_PAYMENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)
NO_ORDER = UUID(int=0)
T = TypeVar("T")
MAX_LINES = 100


@attrs.frozen
class _Line:
    variant_id: UUID
    qty: int


class Orders(Service):
    """``ft.orders``: place orders, take payments, and move orders through their lifecycle."""

    def __init__(
        self,
        ctx: Context,
        brands: Brands,
        catalog: Catalog,
        runner: UnitOfWorkRunner | None = None,
        rewards: Rewards | None = None,
    ) -> None:
        super().__init__(ctx, runner)
        self._brands = brands
        self._catalog = catalog
        self._effects = brands.effects
        self.vault = Vault(ctx.cipher, ctx.clock)
        self._reactors = Reactors(
            rewards=rewards or Rewards(ctx, runner),
            brands=brands,
            outbox=self._effects.outbox,
            brand_events=self._brand_events,
        )

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
        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> Order:
            recorded.clear()
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
            return self._create(uow, order_id, uid, lines, ship_id, bill_id, pm_id, rid, recorded)

        order = self.transaction(work, actor=acting)
        if order.payment_intent_ref is None and order.status == OrderStatus.CREATED:
            # After the commit: the "placed" effects are delivered, the payment opened, and the
            # intent attached in one transaction with the deliveries' outcomes.
            opened: list[Order] = []
            self.after_commit(lambda: opened.append(self._open_payment(order, acting, recorded)))
            return opened[0] if opened else order
        self._effects._deliver_after_commit(recorded)
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
        recorded: list[Recorded],
    ) -> Order:
        found = uow.load_checkout(user_id, (ship_id, bill_id), pm_id, [line.variant_id for line in lines])
        # the shopper's row comes locked: serialised with erasure, refused once erased
        user = self.found_live_shopper(found.user, user_id)
        shipping = checked_own_live_address(
            found.addresses.get(ship_id), user_id, ship_id, "shipping_address_id"
        )
        checked_own_live_address(found.addresses.get(bill_id), user_id, bill_id, "billing_address_id")
        method = checked_own_payment_method(found.payment_method, user_id, pm_id)
        now = self.now()
        currency: str | None = None
        checked: list[tuple[ProductVariant, Product, Brand]] = []
        for index, line in enumerate(lines):  # lines are sorted by variant id: locks in one order
            field = f"items[{index}]"
            variant = _found(found.variants, "product_variants", line.variant_id)
            product = _found(found.products, "products", variant.product_id)
            brand = _found(found.brands, "brands", product.brand_id)
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
            checked.append((variant, product, brand))
        changes = [
            StockChange(variant.id, -line.qty, clamp_at_zero=variant.status == VariantStatus.BACKORDER)
            for line, (variant, _, _) in zip(lines, checked, strict=True)
        ]
        # A backordered line takes what there is, which its reserved_qty records: then stock is
        # taken first. Otherwise a line takes all it asks for or the order fails, and stock goes
        # with the order's insert (one round trip on PostgreSQL, all or none).
        backorders = any(change.clamp_at_zero for change in changes)
        taken = uow.product_variants.adjust_inventory_many(changes) if backorders else []
        applied = [a for _, a in taken] if backorders else [change.delta for change in changes]
        items: list[OrderItem] = []
        summaries: dict[UUID, FitSummary | None] = {}
        for line, (variant, product, brand), took in zip(lines, checked, applied, strict=True):
            if product.id not in summaries:
                summaries[product.id] = self._fit_summary(
                    found, user.body_metrics, user.style_preferences, product
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
                    reserved_qty=-took,
                    unit_price_cents=variant.price_cents,
                    currency=variant.currency,
                    fit_summary=summaries[product.id],
                    created_at=now,
                )
            )
        assert currency is not None
        subtotal = sum(item.line_total_cents for item in items)
        country = self.vault.open_with(found.data_key, shipping, "country")
        assert country is not None  # an address always has a country
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
        self._write_order(uow, order, items, changes, checked, taken if backorders else None, recorded)
        return order

    def _write_order(
        self,
        uow: UnitOfWork,
        order: Order,
        items: Sequence[OrderItem],
        changes: Sequence[StockChange],
        checked: Sequence[tuple[ProductVariant, Product, Brand]],
        taken: list[tuple[ProductVariant, int]] | None,
        recorded: list[Recorded],
    ) -> None:
        """Record the placing's effects, take the stock unless it is ``taken`` already
        (backorders) and write the order, then what the new stock calls for (status, low-stock
        events).

        The effects go first: when every line leaves more stock than the low-stock threshold,
        nothing is written after the stock, so a call that commits on its own commits with the
        stock and the order, in one round trip on PostgreSQL."""
        publish(self._reactors, uow, OrderPlaced(order), recorded)
        above = max(self._ctx.settings.low_stock_threshold, 0)
        if (
            taken is None
            and self._runner.commits_each_call
            # as read (unlocked): a line that would not leave more is not tried that way
            and all(v.inventory + c.delta > above for (v, _, _), c in zip(checked, changes, strict=True))
            and uow.orders.commit_with_items(order, items, stock=changes, above=above) is not None
        ):
            return
        if taken is None:
            taken = uow.orders.add_with_items(order, items, stock=changes)
        else:
            uow.orders.add_with_items(order, items)
        events: list[BrandEvent] = []
        for (_, _, brand), (updated, applied) in zip(checked, taken, strict=True):
            restated = evolved(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)
            # the stock just before this order took its share, not as read: another checkout
            # may have taken some since, and crossed the threshold itself
            before = evolved(updated, inventory=updated.inventory - applied)
            events.extend(self._catalog.low_stock_events(brand.id, before, restated))
        self._brands._record_events(uow, events, recorded)

    def _fit_summary(
        self, found: CheckoutRows, body: Any, preferences: Any, product: Product
    ) -> FitSummary | None:
        chart = _found(found.size_charts, "size_charts", product.size_chart_id)
        fit_map = (
            None if product.fit_map_id is None else _found(found.fit_maps, "fit_maps", product.fit_map_id)
        )
        try:
            return fit.recommend(body, chart, fit_map, preferences).to_fit_summary()
        except FitTwinError:
            log.warning("no fit summary for product %s", product.id)
            return None

    def _open_payment(self, order: Order, actor: Actor, recorded: Sequence[Recorded] = ()) -> Order:
        """Deliver the effects of placing ``order`` (``recorded``, inline), open its payment at
        the provider and attach the intent; the deliveries' outcomes go with the attachment,
        in one transaction (or each in its own when there is nothing to attach)."""
        outcomes = self._effects._deliver_recorded(list(recorded))
        if order.totals.total == 0:
            self._effects._record_outcomes(outcomes)
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
            self._effects._record_outcomes(outcomes)
            self._undo(order)
            raise

        return self._attach(
            order, evolved(order, payment_intent_ref=intent.id, updated_at=self.now()), actor, outcomes
        )

    def _attach(self, order: Order, attached: Order, actor: Actor, outcomes: list[Outcome]) -> Order:
        def attach(uow: UnitOfWork) -> Order:
            # One compare-and-set of the two columns, sent with the commit: a concurrent repeat
            # of the request waits on the row, then finds the intent attached.
            uow.orders.update_changed(order, attached, expected={"payment_intent_ref": None})
            self._effects._write_outcomes(uow, outcomes)
            return attached

        try:
            return self.transaction(attach, actor=actor)
        except Conflict:
            if outcomes:  # the attachment or a lease lost its compare-and-set: neither was written
                self._effects._record_outcomes(outcomes)
                return self._attach(order, attached, actor, [])
            current = self.read(lambda uow: uow.orders.get(order.id), actor=actor)
            if current.payment_intent_ref is None:  # not a repeat that attached first
                raise
            return current

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
            restated = evolved(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)

    # ------------------------------------------------------------------ the provider's truth

    def handle_payment_webhook(self, payload: bytes | str, signature_header: str) -> Order | None:
        """Apply a payment provider webhook; returns the affected order (``None`` for a
        duplicate delivery and for an event type FitTwin does not handle, which change nothing:
        answer them 2xx so the provider stops resending).

        The signature and timestamp are verified by the gateway (:class:`AuthenticationFailed`);
        payments FitTwin does not know are rejected with :class:`NotFound`, recording nothing.
        Each event id is applied once however many times it arrives, and late or out-of-order
        events are safe: ``payment_intent.succeeded`` pays a ``created`` order only when its
        amount and currency match the order's total (a mismatch is recorded in the audit log as
        ``payment.mismatch`` and never pays); ``charge.refunded`` records the refunded amount
        (the provider's running total) and cancels or claws back the order's reward;
        ``payment_intent.payment_failed`` is recorded; ``payment_intent.canceled`` is recorded
        and closes a ``created`` order, releasing its stock.
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
        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> Order | None:
            recorded.clear()
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
            return self._learn(uow, order, _Truth.of_event(event), recorded)

        result = self.transaction(work, actor=Actor.system())
        self._effects._deliver_after_commit(recorded)
        return result

    def reconcile(self, order_id: UUID, *, actor: Actor) -> Order:
        """Bring the provider's state of the order's payment into the order (staff and jobs):
        what a missed webhook would have done. Paid only when amount and currency match;
        refunds made at the provider are recorded (and the reward reversed); a canceled intent
        closes a ``created`` order. An order without a payment at the provider is returned as it is."""
        oid = as_uuid(order_id, "order_id")

        def find(uow: UnitOfWork) -> Order:
            order = uow.orders.get(oid)
            self._authorize(uow, actor, order, "orders.reconcile")
            return order

        order = self.read(find, actor=actor)
        if order.payment_intent_ref is None:
            return order
        intent = self._ctx.payments.retrieve_payment_intent(
            order.payment_intent_ref
        )  # outside any transaction
        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> Order:
            recorded.clear()
            current = uow.orders.lock(oid)
            if current.payment_intent_ref != intent.id:
                return current
            return self._learn(uow, current, _Truth.of_intent(intent), recorded)

        result = self.transaction(work, actor=actor)
        self._effects._deliver_after_commit(recorded)
        return result

    def _learn(self, uow: UnitOfWork, order: Order, truth: _Truth, recorded: list[Recorded]) -> Order:
        """Apply what the provider says about the (locked) order's payment."""
        if truth.refunded is not None and truth.refunded > order.refunded_cents:
            if order.status == OrderStatus.CREATED:
                # The refund overtook its payment's own event: refuse it for now (the provider
                # delivers it again later), so the order records the payment first.
                raise TransientConflict(
                    "the refunded payment is not recorded yet: deliver the event again later"
                )
            if order.paid_at is None:
                # Money back for a payment the order never recorded (a cancelled checkout the
                # provider charged anyway): the cancellation's refund; the order took nothing.
                log.info("refund for unpaid order %s: nothing to record", order.id)
            else:
                order = self._record_refund(uow, order, min(truth.refunded, order.totals.total), recorded)
        if truth.status == "succeeded" and order.status == OrderStatus.CREATED:
            if truth.amount != order.totals.total or truth.currency != order.totals.currency:
                log.warning("payment for order %s does not match its total: not paid", order.id)
                self.record(
                    uow,
                    "payment.mismatch",
                    "orders",
                    order.id,
                    {"amount": truth.amount, "currency": truth.currency, "source": truth.source},
                )
                return order
            return self._apply(uow, order, OrderStatus.PAID, recorded)
        if truth.status == "succeeded" and order.status == OrderStatus.CLOSED and order.paid_at is None:
            log.warning("payment succeeded for cancelled order %s: its cancellation refunds it", order.id)
        if truth.status == "payment_failed":
            self.record(uow, "payment.failed", "orders", order.id, {"source": truth.source})
        if truth.status == "canceled":
            self.record(uow, "payment.canceled", "orders", order.id, {"source": truth.source})
            if order.status == OrderStatus.CREATED:
                return self._apply(uow, order, OrderStatus.CLOSED, recorded, intent_canceled=True)
        return order

    def _record_refund(self, uow: UnitOfWork, order: Order, refunded: int, recorded: list[Recorded]) -> Order:
        """The provider refunded ``refunded`` in total: the order says so, the reactions follow."""
        after = attrs.evolve(order, refunded_cents=refunded, updated_at=self.now())
        uow.orders.update(after, expected={"status": order.status})
        self.record(uow, "payment.refunded", "orders", order.id, {"refunded_cents": refunded})
        publish(self._reactors, uow, OrderRefunded(order, after), recorded)
        return after

    def _order_for(self, uow: UnitOfWork, event: PaymentEvent) -> Order:
        if event.payment_intent_id is None:
            raise ValidationError("event.data", "names no payment intent")
        found = uow.orders.where(payment_intent_ref=event.payment_intent_id, limit=1)
        if not found:
            raise NotFound("orders", f"for payment {event.payment_intent_id}")
        return uow.orders.lock(found[0].id)  # serialises duplicate deliveries of one event

    # ------------------------------------------------------------------ lifecycle

    def mark_paid(self, order_id: UUID, *, actor: Actor) -> Order:
        """``created → paid``: record a payment taken by hand (staff); again is a no-op.

        The provider is not asked: a later refund of such an order is recorded, and the
        dispatcher finds no payment at the provider and records it as refunded out of band
        (see ``docs/payments.md``). To take the provider's word instead, use :meth:`reconcile`."""
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

    def close_expired_returns(self, *, actor: Actor, limit: int = 1000) -> BatchResult[Order]:
        """Close delivered orders whose return window is over (a periodic job, staff only).

        Each order closes in a transaction of its own: one a shopper is returning (or another
        worker is moving) at the same moment is skipped and listed in the result's ``skipped``
        instead of stopping the job; running it again closes whatever is still due."""
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
        result: BatchResult[Order] = BatchResult()
        for order in candidates:
            try:
                result.append(self._move(order.id, OrderStatus.CLOSED, actor, frozenset({"close"})))
            except (Conflict, InvalidTransition, TransientConflict):
                log.warning("close_expired_returns skipped order %s (moved concurrently)", order.id)
                result.skipped.append(order.id)
        return result

    def cancel_abandoned(
        self, *, actor: Actor, older_than_minutes: int | None = None, limit: int = 1000
    ) -> BatchResult[Order]:
        """Cancel ``created`` orders left unpaid longer than ``older_than_minutes`` (default
        ``Settings.abandoned_checkout_minutes``): their intent is cancelled and their stock
        released (a periodic job, staff only: ``fittwin jobs abandoned``). Each order moves in
        its own transaction; one paid, purged or moved meanwhile is skipped and reported in
        ``skipped``."""
        authorize(actor, "orders.cancel_abandoned")
        minutes = (
            self._ctx.settings.abandoned_checkout_minutes
            if older_than_minutes is None
            else older_than_minutes
        )
        require(isinstance(minutes, int) and minutes >= 1, "older_than_minutes", "must be at least 1")
        require(isinstance(limit, int) and 0 < limit <= 10_000, "limit", "must be 1 to 10000")
        cutoff = self.now() - timedelta(minutes=minutes)
        candidates = self.read(
            lambda uow: [
                o.id
                for o in uow.orders.where(
                    status=OrderStatus.CREATED, created_at=before(cutoff), order_by="id", limit=limit
                )
            ],
            actor=actor,
        )
        result: BatchResult[Order] = BatchResult()
        for oid in candidates:
            try:
                result.append(self._move(oid, OrderStatus.CLOSED, actor, frozenset({"cancel"})))
            except (Conflict, InvalidTransition, NotFound, TransientConflict):
                log.warning("cancel_abandoned skipped order %s (paid, purged or moved meanwhile)", oid)
                result.skipped.append(oid)
        return result

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
        for any of ``actions``). The order row is locked before its status is read, so the
        decision (and the effects it records) is made on the row as it is. ``before_apply``
        runs in the move's unit of work once the move is authorised, before it is applied."""
        oid = as_uuid(order_id, "order_id")
        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> Order:
            recorded.clear()
            order = uow.orders.lock(oid)
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
            return self._apply(uow, order, target, recorded)

        moved = self.transaction(work, actor=actor)
        self._effects._deliver_after_commit(recorded)
        return moved

    def _apply(
        self,
        uow: UnitOfWork,
        order: Order,
        target: OrderStatus,
        recorded: list[Recorded],
        *,
        intent_canceled: bool = False,
    ) -> Order:
        """Move the locked ``order`` to ``target``: stock released here, payments recorded in
        the outbox, reactions published; the compare-and-set is the last defence."""
        moved, changes = transition(
            order, target, at=self.now(), return_window_days=self._ctx.settings.return_window_days
        )
        effects: frozenset[Effect] = frozenset().union(*(change.effects for change in changes))
        if Effect.RELEASE_STOCK in effects:
            for item in uow.order_items.where(order_id=order.id):
                self._release(uow, item)
        if Effect.REFUND in effects:
            moved = self._refund_rest(uow, moved, recorded)
        if Effect.CANCEL_PAYMENT in effects and not intent_canceled and order.payment_intent_ref is not None:
            self._effects.outbox.record(
                uow,
                EffectKind.CANCEL_PAYMENT,
                f"fittwin-cancel-{order.id}",
                {"payment_intent": order.payment_intent_ref},
                order_id=order.id,
                recorded=recorded,
            )
        uow.orders.update_changed(order, moved, expected={"status": order.status})
        publish(self._reactors, uow, OrderMoved(order, moved, effects), recorded)
        if moved.refunded_cents > order.refunded_cents:
            publish(self._reactors, uow, OrderRefunded(order, moved), recorded)
        return moved

    def _refund_rest(self, uow: UnitOfWork, order: Order, recorded: list[Recorded]) -> Order:
        """Record the refund of what is not refunded yet; the dispatcher makes it at the
        provider (or, for a payment recorded by hand, records it as refunded out of band)."""
        outstanding = order.totals.total - order.refunded_cents
        if outstanding <= 0 or order.paid_at is None:
            return order
        if order.payment_intent_ref is not None:
            self._effects.outbox.record(
                uow,
                EffectKind.REFUND,
                f"fittwin-refund-{order.id}-{order.refunded_cents}",
                {"payment_intent": order.payment_intent_ref, "amount": outstanding},
                order_id=order.id,
                recorded=recorded,
            )
        else:
            self.record(uow, "payment.refund_out_of_band", "orders", order.id, {"amount": outstanding})
        return attrs.evolve(order, refunded_cents=order.totals.total)

    def _brand_events(self, uow: UnitOfWork, order: Order, event: str) -> list[BrandEvent]:
        by_brand: dict[UUID, list[dict[str, Any]]] = {}
        for item in uow.order_items.where(order_id=order.id, order_by="id"):
            brand_id = uow.products.get(item.product_id).brand_id
            by_brand.setdefault(brand_id, []).append(
                {"sku": item.sku, "size_label": item.size_label, "qty": item.qty}
            )
        return [
            BrandEvent(
                brand_id,
                event,
                {"order_id": str(order.id), "status": order.status.value, "items": lines},
                key=f"{order.id}:{event}",
                order_id=order.id,
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


def _found(rows: Mapping[UUID, T], table: str, key: UUID) -> T:
    """The row ``key`` of ``rows`` read from ``table`` (:class:`NotFound` when it was not there)."""
    row = rows.get(key)
    if row is None:
        raise NotFound(table, key)
    return row


@attrs.frozen
class _Truth:
    """What the provider says about a payment, from a webhook or from the intent itself."""

    status: str | None
    """``succeeded``, ``payment_failed``, ``canceled`` or ``None`` (nothing about the status)."""
    amount: int | None
    currency: str | None
    refunded: int | None
    source: str

    @classmethod
    def of_event(cls, event: PaymentEvent) -> _Truth:
        if event.type == "charge.refunded":
            return cls(None, None, None, event.amount, f"webhook {event.id}")
        status = event.type.removeprefix("payment_intent.")
        return cls(status, event.amount, event.currency, None, f"webhook {event.id}")

    @classmethod
    def of_intent(cls, intent: PaymentIntent) -> _Truth:
        status = intent.status if intent.status in ("succeeded", "canceled") else None
        refunded = intent.amount_refunded if intent.status == "succeeded" else None
        return cls(status, intent.amount, intent.currency, refunded, "reconcile")


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


__all__ = ["HANDLED_PAYMENT_EVENTS", "Orders"]
