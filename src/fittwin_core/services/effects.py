"""``ft.effects``: the outbox and its dispatcher — the only place that calls the outside world.

A state change records what it causes (refund, cancel a payment, a brand webhook, a shopper
notification) as an outbox row in its own transaction (:class:`Outbox`). After the commit the
dispatcher claims due rows (a lease, so concurrent dispatchers never share one), runs each
effect's handler from :data:`EFFECT_HANDLERS` with the row's idempotency key, and records the
attempt: ``delivered``, or ``pending`` again after a backoff, or ``dead`` after
``Settings.outbox_max_attempts`` attempts, where :meth:`Effects.failed` lists it and
:meth:`Effects.retry` puts it back. A dispatcher that dies mid-delivery leaves a lease that
expires; the next run delivers the effect again with the same key, so the provider (and the
brand, by the event id) sees one effect.

By default each call delivers the effects it recorded right after its commit
(``Settings.dispatch_inline``); ``fittwin jobs dispatch`` (:meth:`Effects.dispatch`) delivers
whatever is left (retries, effects of a crashed process). See ``docs/effects.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    AuthenticationFailed,
    Conflict,
    EffectKind,
    FitTwinError,
    InvalidTransition,
    Notification,
    NotificationChannel,
    OutboxEffect,
    OutboxStatus,
    PaymentError,
    ValidationError,
)
from fittwin_core.domain.converter import format_datetime
from fittwin_core.domain.effects import backoff
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.domain.rules import thaw_json
from fittwin_core.outbox import Recorded
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import OutgoingWebhook, ShopperNotification, UnitOfWork
from fittwin_core.schema import WEBHOOK_SECRET
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_uuid, require
from fittwin_core.services.permissions import authorize
from fittwin_core.services.vault import Vault
from fittwin_core.webhooks import SIGNATURE_HEADER, sign_payload

log = logging.getLogger("fittwin.effects")

LEASE = timedelta(seconds=60)
"""How long a claim holds an effect: a dispatcher that dies frees it after this long."""


class Undeliverable(Exception):
    """Raised by a handler for an effect that can never succeed: it goes to the dead letter at once."""


@attrs.frozen
class DispatchReport:
    """What one dispatcher run did: effects delivered, failed (to be retried) and parked as dead."""

    delivered: tuple[UUID, ...] = ()
    retrying: tuple[UUID, ...] = ()
    dead: tuple[UUID, ...] = ()

    @property
    def attempted(self) -> int:
        """How many effects were attempted."""
        return len(self.delivered) + len(self.retrying) + len(self.dead)


@attrs.frozen
class Outcome:
    """What one delivery of an effect came to, and the write that records it (in a unit of
    work, under the deliverer's lease)."""

    status: OutboxStatus
    write: Callable[[UnitOfWork], None]


class Outbox:
    """Records effects in the caller's unit of work and remembers them for inline delivery."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def record(
        self,
        uow: UnitOfWork,
        kind: EffectKind,
        key: str,
        payload: Mapping[str, Any],
        *,
        order_id: UUID | None = None,
        recorded: list[Recorded] | None = None,
    ) -> OutboxEffect:
        """Add one effect with idempotency ``key`` (unique: the same key twice records once),
        listed in ``recorded`` for delivery after the commit. The row is written with the unit
        of work's next round trip (``OutboxRepository.enqueue``), unread: a key recorded before
        leaves the first effect in place, and its delivery to the dispatcher.

        With ``Settings.dispatch_inline`` an effect in ``recorded`` is written already claimed
        (for :data:`LEASE`) by the call that records it, which delivers it after the commit
        without a claim of its own; if the process stops first, the lease runs out and the next
        ``fittwin jobs dispatch`` delivers it."""
        now = self._ctx.clock.now()
        inline = recorded is not None and self._ctx.settings.dispatch_inline
        effect = OutboxEffect(
            id=self._ctx.ids.new_id(),
            kind=kind,
            order_id=order_id,
            payload=dict(payload),
            idempotency_key=key,
            available_at=now,
            claimed_by=self._ctx.ids.new_token() if inline else None,
            lease_until=now + LEASE if inline else None,
            created_at=now,
            updated_at=now,
        )
        enqueued = uow.outbox.enqueue(effect)
        if recorded is not None:
            recorded.append(Recorded(effect, enqueued))
        return effect

    def delete_objects(
        self, uow: UnitOfWork, keys: Iterable[str], region: str, recorded: list[Recorded]
    ) -> None:
        """Record the deletion of objects no row points at any more, in the caller's unit of
        work (delivered after its commit: a rolled-back change deletes nothing)."""
        for key in dict.fromkeys(keys):
            self.record(
                uow,
                EffectKind.DELETE_OBJECT,
                f"delete-object:{self._ctx.ids.new_token().hex}",
                {"key": key, "region": region},
                recorded=recorded,
            )


Handler = Callable[["Effects", OutboxEffect], str]
"""Runs one effect outside any transaction; returns the outcome to record, raises on failure."""


class Effects(Service):
    """``ft.effects``: run the outbox (:meth:`dispatch`), list dead letters, retry them."""

    def __init__(self, ctx: Context, runner: UnitOfWorkRunner | None = None) -> None:
        super().__init__(ctx, runner)
        self.outbox = Outbox(ctx)
        self.vault = Vault(ctx.cipher, ctx.clock)

    # ------------------------------------------------------------------ operators

    def dispatch(self, *, actor: Actor, limit: int = 100) -> DispatchReport:
        """Deliver up to ``limit`` due effects (a periodic job: ``fittwin jobs dispatch``)."""
        authorize(actor, "effects.dispatch")
        require(isinstance(limit, int) and 0 < limit <= 10_000, "limit", "must be 1 to 10000")
        return self._run(limit)

    def failed(
        self, *, actor: Actor, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Page[OutboxEffect]:
        """A page of dead letters (effects that kept failing), oldest first (staff only)."""
        authorize(actor, "effects.read")
        window = PageRequest.of(limit, after)
        return self.read(lambda uow: window.read(uow.outbox, status=OutboxStatus.DEAD), actor=actor)

    def get(self, effect_id: UUID, *, actor: Actor) -> OutboxEffect:
        """One outbox row with its attempts (staff only)."""
        eid = as_uuid(effect_id, "effect_id")
        authorize(actor, "effects.read")
        return self.read(lambda uow: uow.outbox.get(eid), actor=actor)

    def for_order(self, order_id: UUID, *, actor: Actor) -> list[OutboxEffect]:
        """Every effect an order caused, oldest first (staff only). A list: an order causes a few."""
        oid = as_uuid(order_id, "order_id")
        authorize(actor, "effects.read")
        return self.read(lambda uow: uow.outbox.where(order_id=oid, order_by="id"), actor=actor)

    def retry(self, effect_id: UUID, *, actor: Actor) -> OutboxEffect:
        """Put a dead letter back in the queue, due now (staff only); the next dispatch tries
        it again with the same idempotency key. :class:`InvalidTransition` unless it is dead."""
        eid = as_uuid(effect_id, "effect_id")
        authorize(actor, "effects.retry")

        def work(uow: UnitOfWork) -> OutboxEffect:
            effect = uow.outbox.lock(eid)
            if effect.status != OutboxStatus.DEAD:
                raise InvalidTransition("outbox", effect.status, OutboxStatus.PENDING)
            revived = attrs.evolve(
                effect,
                status=OutboxStatus.PENDING,
                available_at=self.now(),
                outcome=None,
                updated_at=self.now(),
            )
            uow.outbox.update(revived, expected={"status": OutboxStatus.DEAD})
            return revived

        return self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ services

    def _deliver_after_commit(self, recorded: list[Recorded]) -> None:
        """Deliver the effects a call recorded once its transaction committed (when
        ``Settings.dispatch_inline``). A failure is logged and left to the next dispatch: the
        call that caused the effect has succeeded and is not undone."""
        if not self._ctx.settings.dispatch_inline:
            return
        self.after_commit(lambda: self._record_outcomes(self._deliver_recorded(recorded)))

    def _deliver_recorded(self, recorded: list[Recorded]) -> list[Outcome]:
        """Deliver, now, the recorded effects that went in, each under the claim it was written
        with, and return their outcomes to record (none without ``Settings.dispatch_inline``):
        with :meth:`_record_outcomes`, or in the caller's next transaction with
        :meth:`_write_outcomes`. One whose claim has less than half of :data:`LEASE` left (a
        long ``ft.transaction``) is left to the dispatcher once the claim runs out: it might run
        out mid-delivery."""
        if not self._ctx.settings.dispatch_inline or not recorded:
            return []
        now = self.now()
        due = [
            r.effect
            for r in recorded
            if r.enqueued.inserted
            and r.effect.lease_until is not None
            and r.effect.lease_until - now >= LEASE / 2
        ]
        if len(due) < len(recorded):
            log.info("%d recorded effect(s) left to the dispatcher", len(recorded) - len(due))
        outcomes = []
        for effect in due:
            assert effect.claimed_by is not None
            outcomes.append(self._deliver(effect, effect.claimed_by))
        return outcomes

    def _record_outcomes(self, outcomes: list[Outcome]) -> None:
        """Record each delivery's outcome in a transaction of its own; a failure is logged
        (the lease runs out and ``fittwin jobs dispatch`` delivers the effect again)."""
        try:
            for outcome in outcomes:
                self._record(outcome.write)
        except FitTwinError:
            log.exception(
                "recording %d delivered effect(s) failed; `fittwin jobs dispatch` retries", len(outcomes)
            )

    @staticmethod
    def _write_outcomes(uow: UnitOfWork, outcomes: list[Outcome]) -> None:
        """Write the deliveries' outcomes in ``uow`` as the system (the end of a call's
        transaction: the caller's own writes come first, audited as its actor). A lease lost
        meanwhile fails the transaction with :class:`Conflict`."""
        if outcomes:
            uow.act_as(Actor.system())
            for outcome in outcomes:
                outcome.write(uow)

    # ------------------------------------------------------------------ the dispatcher

    def _run(self, limit: int) -> DispatchReport:
        claimer = self._ctx.ids.new_token()

        def claim(uow: UnitOfWork) -> list[OutboxEffect]:
            now = self.now()
            return uow.outbox.claim(now=now, lease_until=now + LEASE, claimer=claimer, limit=limit)

        claimed = self.transaction(claim, actor=Actor.system())
        delivered: list[UUID] = []
        retrying: list[UUID] = []
        dead: list[UUID] = []
        for effect in claimed:
            outcome = self._attempt(effect, claimer)
            {OutboxStatus.DELIVERED: delivered, OutboxStatus.PENDING: retrying, OutboxStatus.DEAD: dead}[
                outcome
            ].append(effect.id)
        return DispatchReport(tuple(delivered), tuple(retrying), tuple(dead))

    def _attempt(self, effect: OutboxEffect, claimer: UUID) -> OutboxStatus:
        """Deliver ``effect`` and record the outcome in a transaction of its own."""
        outcome = self._deliver(effect, claimer)
        self._record(outcome.write)
        return outcome.status

    def _deliver(self, effect: OutboxEffect, claimer: UUID) -> Outcome:
        """Run ``effect``'s handler once; what became of it, to be recorded under ``claimer``'s
        lease (``delivered``; ``pending`` again after a backoff; ``dead`` after the last attempt)."""
        handler = EFFECT_HANDLERS[effect.kind]
        settings = self._ctx.settings
        try:
            result = handler(self, effect)
        except Exception as exc:
            error = _describe(exc)
            attempts = effect.attempts + 1
            final = isinstance(exc, Undeliverable) or attempts >= settings.outbox_max_attempts
            retry_at = None
            if not final:
                wait = backoff(
                    attempts,
                    base_seconds=settings.outbox_backoff_seconds,
                    cap_seconds=settings.outbox_backoff_cap_seconds,
                )
                retry_at = self.now() + wait
            log.warning("effect %s (%s) attempt %d failed: %s", effect.id, effect.kind.value, attempts, error)

            def failed(uow: UnitOfWork) -> None:
                uow.outbox.fail(effect, claimer=claimer, at=self.now(), error=error, retry_at=retry_at)
                if final:
                    self._log_notification(uow, effect, "failed")

            return Outcome(OutboxStatus.DEAD if final else OutboxStatus.PENDING, failed)

        def completed(uow: UnitOfWork) -> None:
            uow.outbox.complete(effect, claimer=claimer, at=self.now(), outcome=result)
            self._log_notification(uow, effect, "sent")

        return Outcome(OutboxStatus.DELIVERED, completed)

    def _record(self, work: Callable[[UnitOfWork], object]) -> None:
        try:
            # An outcome lost in a crash of the database repairs itself: the claim runs out and
            # the effect is delivered again, under its idempotency key.
            self.transaction(work, actor=Actor.system(), durable=False)
        except Conflict:
            # Our lease expired and another dispatcher took the effect over: it records the outcome.
            log.warning("an effect's lease expired before its outcome was recorded")

    # ------------------------------------------------------------------ handlers' helpers

    def _log_notification(self, uow: UnitOfWork, effect: OutboxEffect, status: str) -> None:
        """For a shopper notification, append one entry to ``orders.notifications`` (channel,
        template, time, outcome) in the transaction that records the effect's outcome."""
        if effect.kind != EffectKind.NOTIFY_SHOPPER or effect.order_id is None:
            return
        oid = effect.order_id
        entry = Notification(
            channel=NotificationChannel(str(effect.payload.get("channel", "email"))),
            kind=str(effect.payload["template"]),
            sent_at=self.now(),
            status=status,
        )
        uow.orders.append_notification(oid, entry)  # one statement; a purged order is left alone


def _describe(exc: BaseException) -> str:
    """A failure as recorded: its type and message (FitTwin's messages carry no PII)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


# ---------------------------------------------------------------------------- handlers


def _refund(effects: Effects, effect: OutboxEffect) -> str:
    """Refund at the provider; a payment the provider never took (recorded with
    ``orders.mark_paid``) is refunded out of band, and recorded as such."""
    intent_id = str(effect.payload["payment_intent"])
    amount = int(effect.payload["amount"])
    payments = effects._ctx.payments
    intent = payments.retrieve_payment_intent(intent_id)
    if intent.status != "succeeded":
        return f"out of band: the provider holds no payment ({intent.status}); refund it as it was taken"
    # Refunds made at the provider meanwhile (its dashboard) count: give back what is left.
    amount = min(amount, intent.amount - intent.amount_refunded)
    if amount <= 0:
        return "already refunded at the provider"
    try:
        refund = payments.refund(intent_id, amount=amount, idempotency_key=effect.idempotency_key)
    except PaymentError as exc:
        if exc.retryable:
            raise
        raise Undeliverable(str(exc)) from None
    return f"refunded {refund.amount} ({refund.id})"


def _cancel_payment(effects: Effects, effect: OutboxEffect) -> str:
    """Cancel the intent of an order cancelled before payment; one that succeeded meanwhile is refunded."""
    intent_id = str(effect.payload["payment_intent"])
    payments = effects._ctx.payments
    intent = payments.retrieve_payment_intent(intent_id)
    if intent.status == "canceled":
        return "already canceled"
    if intent.status == "succeeded":
        left = intent.amount - intent.amount_refunded
        if left <= 0:
            return "paid meanwhile, already refunded"
        refund = payments.refund(intent_id, amount=left, idempotency_key=f"{effect.idempotency_key}-refund")
        return f"paid meanwhile: refunded {refund.amount} ({refund.id})"
    payments.cancel_payment_intent(intent_id, idempotency_key=effect.idempotency_key)
    return "canceled"


def _brand_webhook(effects: Effects, effect: OutboxEffect) -> str:
    """Sign the event for its subscription with the current secret and send it; the event id
    is the outbox row's id, the same on every attempt, so the brand can de-duplicate."""
    brand_id = as_uuid(effect.payload["brand_id"], "payload.brand_id")
    subscription_id = as_uuid(effect.payload["subscription_id"], "payload.subscription_id")

    def find(uow: UnitOfWork) -> tuple[str, str] | None:
        brand = uow.brands.find(brand_id)
        for subscription in brand.webhooks.subscriptions if brand and brand.webhooks else ():
            if subscription.id == subscription_id and subscription.active:
                try:
                    secret = effects.vault.open_nested(
                        uow,
                        PLATFORM_KEY_OWNER,
                        WEBHOOK_SECRET,
                        brand_id,
                        subscription.id,
                        subscription.secret,
                    )
                except AuthenticationFailed:
                    # Sealed for another brand (copied into this row) or tampered with: never
                    # signed, never sent; the operator sees it among the dead letters.
                    log.warning("subscription %s of brand %s does not open", subscription_id, brand_id)
                    raise Undeliverable(
                        "the subscription's secret does not open for this brand: add the webhook again"
                    ) from None
                return subscription.url, secret
        return None

    target = effects.read(find, actor=Actor.system())
    if target is None:
        return "skipped: the subscription was removed"
    url, secret = target
    now = effects.now()
    body = {
        "id": str(effect.id),
        "type": str(effect.payload["event"]),
        "created": format_datetime(effect.created_at),
        "brand_id": str(brand_id),
        "data": thaw_json(effect.payload["data"]),
    }
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    webhook = OutgoingWebhook(
        url=url,
        event=str(effect.payload["event"]),
        payload=payload,
        headers={
            SIGNATURE_HEADER: sign_payload(payload, secret, int(now.timestamp())),
            "Content-Type": "application/json",
            "FitTwin-Event-Id": str(effect.id),
        },
    )
    effects._ctx.webhooks.send(webhook)
    return "sent"


def _notify_shopper(effects: Effects, effect: OutboxEffect) -> str:
    """Send the notification through the ``Notifier`` port, then log it on the order."""
    assert effect.order_id is not None
    notification = ShopperNotification(
        user_id=as_uuid(effect.payload["user_id"], "payload.user_id"),
        order_id=effect.order_id,
        template=str(effect.payload["template"]),
        channel=str(effect.payload.get("channel", "email")),
        data=thaw_json(effect.payload.get("data", {})),
    )
    effects._ctx.notifier.notify(notification)
    return "sent"  # logged on the order with the outcome (Effects._log_notification)


def _delete_object(effects: Effects, effect: OutboxEffect) -> str:
    """Delete one object from the object store (deleting one already gone changes nothing)."""
    key, region = str(effect.payload["key"]), str(effect.payload["region"])
    objects = effects._ctx.objects
    try:
        if not objects.exists(key, region=region):
            return "already gone"
        objects.delete(key, region=region)
    except ValidationError as exc:  # not a key the store accepts: retrying cannot help
        raise Undeliverable(f"not an object key: {exc.rule}") from None
    return "deleted"


EFFECT_HANDLERS: Mapping[EffectKind, Handler] = {
    EffectKind.REFUND: _refund,
    EffectKind.CANCEL_PAYMENT: _cancel_payment,
    EffectKind.BRAND_WEBHOOK: _brand_webhook,
    EffectKind.NOTIFY_SHOPPER: _notify_shopper,
    EffectKind.DELETE_OBJECT: _delete_object,
}
"""Effect kind → the handler that carries it out (the dispatcher's one table)."""


__all__ = ["EFFECT_HANDLERS", "LEASE", "DispatchReport", "Effects", "Outbox", "Undeliverable"]
