"""``ft.rewards``: attribution of paid orders to referral links, and the reward ledger.

The ledger reacts to order moves in the same unit of work as the move itself:

* ``paid`` — the order is attributed (:func:`~fittwin_core.domain.referrals.attribute`): one
  ``conversion`` event and one ``pending_hold`` entry, or a ``fraud_flag`` (self-referral: no
  entry; velocity: the entry is created ``cancelled``). Never twice for one order.
* ``delivered`` — held entries get ``hold_until`` = delivery date + the policy's hold days.
* ``return_requested`` or cancelled — held entries are cancelled; what was already payable or
  paid is clawed back by one negative entry (never more than was earned).
* refunded (``charge.refunded`` from the provider, even without a move) — the same reversal.

Entries move only ``pending_hold → payable → paid`` and ``pending_hold → cancelled``; paid
entries never change. A platform admin may reinstate an entry cancelled by the velocity check.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    CloseReason,
    Conflict,
    InvalidTransition,
    JsonMap,
    Money,
    NotFound,
    Order,
    OrderStatus,
    ReferralEvent,
    ReferralEventType,
    RewardLedgerEntry,
    RewardStatus,
    TransientConflict,
    ValidationError,
)
from fittwin_core.domain.referrals import Attribution, Verdict, attribute
from fittwin_core.domain.rewards import REINSTATEMENT, clawback_cents, hold_until, move, reward_amount
from fittwin_core.domain.rules import parse_enum
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork, after, at_least, at_most, one_of
from fittwin_core.services.base import BatchResult, Service, as_list, as_uuid
from fittwin_core.services.permissions import authorize

FLAGS = (ReferralEventType.CONVERSION, ReferralEventType.FRAUD_FLAG)
RELEASE_BATCH = 100
"""Ledger entries :meth:`Rewards.release_due` moves per transaction."""

log = logging.getLogger("fittwin.rewards")


@attrs.frozen
class RewardStatement:
    """A referrer's ledger: every entry, totals by status and currency, and the payable balance."""

    referrer_user_id: UUID
    entries: tuple[RewardLedgerEntry, ...]
    totals: dict[str, dict[str, int]]
    """status → currency → amount in minor units."""
    balance: dict[str, Money]
    """currency → the payable amount."""


class Rewards(Service):
    """``ft.rewards``: release held rewards, pay them out, and read balances and statements."""

    # ------------------------------------------------------------------ reacting to orders

    def on_order_moved(self, uow: UnitOfWork, before: Order, after: Order) -> None:
        """Keep the ledger in step with an order move (called by the order service)."""
        if after.rid is None or before.status == after.status:
            return
        if after.status == OrderStatus.PAID:
            self._attribute(uow, after)
        elif after.status == OrderStatus.DELIVERED:
            self._hold(uow, after)
        elif after.status == OrderStatus.RETURN_REQUESTED or (
            after.status == OrderStatus.CLOSED and after.close_reason == CloseReason.CANCELLED
        ):
            self._reverse(uow, after)

    def on_order_refunded(self, uow: UnitOfWork, order: Order) -> None:
        """Money went back for ``order`` (a refund made at the provider, or by a cancel or a
        return): its held reward is cancelled, a payable or paid one clawed back (once)."""
        if order.rid is not None and order.refunded_cents > 0:
            self._reverse(uow, order)

    def _attribute(self, uow: UnitOfWork, order: Order) -> None:
        assert order.rid is not None
        if order.refunded_cents > 0:
            return  # refunded before it was paid: it earns nothing
        if uow.referral_events.where(order_id=order.id, limit=1) or uow.reward_ledger_entries.where(
            order_id=order.id, limit=1
        ):
            return  # attributed already: one conversion and one entry per order, whatever happens
        if uow.referrals.find(order.rid) is None:
            return
        # The referral's row is the per-referral lock: attributions on one link run one at a
        # time, so each counts the conversions committed before it (the velocity rule holds
        # however many payments arrive at once) and sees an erasure that deactivated the link.
        referral = uow.referrals.lock(order.rid)
        if uow.referral_events.where(order_id=order.id, limit=1) or uow.reward_ledger_entries.where(
            order_id=order.id, limit=1
        ):
            return
        referrer_profile = uow.user_profiles.find(referral.referrer_user_id)
        if referrer_profile is None or referrer_profile.erased:
            return  # an erased person earns nothing; the buyer's order is unaffected
        paid_at = order.paid_at or self.now()
        policy = referral.policy_snapshot
        clicks = uow.referral_events.where(
            rid=referral.rid,
            event_type=ReferralEventType.CLICK,
            created_at=at_least(order.created_at - timedelta(days=policy.attribution_window_days)),
        )
        recent = uow.referral_events.where(
            rid=referral.rid,
            event_type=one_of(FLAGS),
            created_at=at_least(paid_at - timedelta(hours=policy.velocity_window_hours)),
        )
        referrer = referral.referrer_user_id
        tokens = {m.psp_token_id for m in uow.payment_methods.where(user_id=referrer)}
        tokens |= {o.psp_token_id for o in uow.orders.where(user_id=referrer) if o.psp_token_id}
        result = attribute(
            referral=referral,
            buyer_id=order.user_id,
            buyer_payment_token=order.psp_token_id,
            referrer_payment_tokens=frozenset(tokens),
            placed_at=order.created_at,
            paid_at=paid_at,
            clicks=clicks,
            conversions=recent,
        )
        if result.verdict == Verdict.NONE:
            return
        amount = reward_amount(order.totals.subtotal, policy)
        uow.referral_events.add(self._event(order, result, amount))
        if result.verdict == Verdict.SELF_REFERRAL:
            return
        status = RewardStatus.CANCELLED if result.verdict == Verdict.VELOCITY else RewardStatus.PENDING_HOLD
        uow.reward_ledger_entries.add(
            RewardLedgerEntry(
                id=self._ctx.ids.new_id(),
                rid=referral.rid,
                order_id=order.id,
                amount_cents=amount,
                currency=order.totals.currency,
                status=status,
                created_at=self.now(),
                updated_at=self.now(),
            )
        )

    def _event(self, order: Order, result: Attribution, amount: int) -> ReferralEvent:
        click = result.click
        assert click is not None and order.rid is not None
        flagged = result.verdict != Verdict.CONVERSION
        metadata: dict[str, Any] = {
            "click_id": str(click.id),
            "reward_cents": amount,
            "currency": order.totals.currency,
        }
        if flagged:
            metadata |= {"reason": result.reason, "kind": result.verdict.value, "score": result.score}
        return ReferralEvent(
            id=self._ctx.ids.new_id(),
            rid=order.rid,
            event_type=ReferralEventType.FRAUD_FLAG if flagged else ReferralEventType.CONVERSION,
            order_id=order.id,
            ip_hash=click.ip_hash,
            device_fingerprint=click.device_fingerprint,
            metadata=JsonMap(metadata),
            created_at=self.now(),
        )

    def _hold(self, uow: UnitOfWork, order: Order) -> None:
        assert order.rid is not None and order.delivered_at is not None
        referral = uow.referrals.get(order.rid)
        until = hold_until(order.delivered_at, referral.policy_snapshot.hold_days)
        for entry in uow.reward_ledger_entries.where(order_id=order.id, status=RewardStatus.PENDING_HOLD):
            held = attrs.evolve(entry, hold_until=until, updated_at=self.now())
            uow.reward_ledger_entries.update(held, expected={"status": RewardStatus.PENDING_HOLD})

    def _reverse(self, uow: UnitOfWork, order: Order) -> None:
        # Lock the order's entries (in id order, as the release job does) and decide on what
        # they hold now: an entry the release job made payable meanwhile is clawed back.
        found = uow.reward_ledger_entries.where(order_id=order.id, order_by="id")
        entries = [uow.reward_ledger_entries.lock(entry.id) for entry in found]
        for entry in entries:
            if entry.status == RewardStatus.PENDING_HOLD:
                cancelled = move(entry, RewardStatus.CANCELLED, at=self.now())
                uow.reward_ledger_entries.update(cancelled, expected={"status": RewardStatus.PENDING_HOLD})
        owed = clawback_cents(entries)
        if owed:
            assert order.rid is not None
            uow.reward_ledger_entries.add(
                RewardLedgerEntry(
                    id=self._ctx.ids.new_id(),
                    rid=order.rid,
                    order_id=order.id,
                    amount_cents=owed,
                    currency=entries[0].currency,
                    status=RewardStatus.PAYABLE,
                    hold_until=self.now().date(),
                    created_at=self.now(),
                    updated_at=self.now(),
                )
            )

    # ------------------------------------------------------------------ jobs and payouts

    def release_due(self, today: date | None = None, *, actor: Actor) -> BatchResult[RewardLedgerEntry]:
        """Move every held entry whose hold ended on or before ``today`` (default: the clock's
        today) to ``payable``. ``today`` cannot be later than the clock's date: a hold is never
        cut short.

        The job works in small transactions (:data:`RELEASE_BATCH` entries, each locked and
        checked again before it moves): an entry a concurrent return cancelled is left alone,
        and one held by another writer past the lock time-out is skipped and listed in the
        result's ``skipped`` instead of aborting the run. Running it again releases whatever
        is still due and never moves an entry twice."""
        current = self.now().date()
        today = current if today is None else today
        if not isinstance(today, date) or isinstance(today, datetime):
            raise ValidationError("today", "must be a date")
        if today > current:
            raise ValidationError("today", "must not be after the current date")
        acting = actor
        authorize(acting, "rewards.release_due")

        def due(uow: UnitOfWork, cursor: UUID | None) -> list[UUID]:
            filters: dict[str, Any] = {"status": RewardStatus.PENDING_HOLD, "hold_until": at_most(today)}
            if cursor is not None:
                filters["id"] = after(cursor)
            return [
                e.id for e in uow.reward_ledger_entries.where(order_by="id", limit=RELEASE_BATCH, **filters)
            ]

        def release(uow: UnitOfWork, ids: list[UUID]) -> list[RewardLedgerEntry]:
            released = []
            for entry_id in ids:  # in id order, as returns lock an order's entries
                entry = uow.reward_ledger_entries.lock(entry_id)
                if (
                    entry.status != RewardStatus.PENDING_HOLD
                    or entry.hold_until is None
                    or entry.hold_until > today
                ):
                    continue  # returned or changed since it was read: no longer due
                payable = move(entry, RewardStatus.PAYABLE, at=self.now())
                uow.reward_ledger_entries.update(payable, expected={"status": RewardStatus.PENDING_HOLD})
                released.append(payable)
            return released

        result: BatchResult[RewardLedgerEntry] = BatchResult()
        cursor: UUID | None = None
        while ids := self.read(partial(due, cursor=cursor), actor=acting):
            cursor = ids[-1]
            try:
                result.extend(self.transaction(partial(release, ids=ids), actor=acting))
                continue
            except (Conflict, TransientConflict):
                pass
            for entry_id in ids:  # the batch met a conflict: one entry at a time, skipping it
                try:
                    result.extend(self.transaction(partial(release, ids=[entry_id]), actor=acting))
                except (Conflict, TransientConflict, NotFound):
                    log.warning("release_due skipped reward ledger entry %s (changed concurrently)", entry_id)
                    result.skipped.append(entry_id)
        return result

    def mark_paid(self, entry_ids: Iterable[UUID], *, actor: Actor) -> list[RewardLedgerEntry]:
        """Record that payable entries were paid out (all or none: any entry that is not
        payable raises :class:`InvalidTransition`)."""
        acting = actor
        authorize(acting, "rewards.mark_paid")
        ids = [as_uuid(i, f"entry_ids[{n}]") for n, i in enumerate(as_list(entry_ids, "entry_ids"))]

        def work(uow: UnitOfWork) -> list[RewardLedgerEntry]:
            paid = []
            for entry_id in sorted(set(ids)):
                entry = uow.reward_ledger_entries.get(entry_id)
                if entry.status != RewardStatus.PAYABLE:
                    raise InvalidTransition("reward ledger entry", entry.status, RewardStatus.PAID)
                done = move(entry, RewardStatus.PAID, at=self.now())
                uow.reward_ledger_entries.update(done, expected={"status": RewardStatus.PAYABLE})
                paid.append(done)
            return paid

        return self.transaction(work, actor=acting)

    def reinstate(self, entry_id: UUID, *, actor: Actor) -> RewardLedgerEntry:
        """Put back on hold an entry the velocity check cancelled (platform admins only)."""
        authorize(actor, "rewards.reinstate")
        eid = as_uuid(entry_id, "entry_id")

        def work(uow: UnitOfWork) -> RewardLedgerEntry:
            entry = uow.reward_ledger_entries.get(eid)
            flags = uow.referral_events.where(
                order_id=entry.order_id, event_type=ReferralEventType.FRAUD_FLAG
            )
            if (entry.status, RewardStatus.PENDING_HOLD) != REINSTATEMENT or not any(
                f.metadata.get("kind") == Verdict.VELOCITY.value for f in flags
            ):
                raise InvalidTransition(
                    "reward ledger entry",
                    entry.status,
                    RewardStatus.PENDING_HOLD,
                    "only velocity-flagged entries",
                )
            order = uow.orders.get(entry.order_id)
            if order.status in (OrderStatus.RETURN_REQUESTED,) or order.close_reason in (
                CloseReason.RETURNED,
                CloseReason.CANCELLED,
            ):
                raise InvalidTransition(
                    "reward ledger entry", entry.status, RewardStatus.PENDING_HOLD, "the order was returned"
                )
            until = None
            if order.delivered_at is not None:
                until = hold_until(order.delivered_at, uow.referrals.get(entry.rid).policy_snapshot.hold_days)
            reinstated = attrs.evolve(
                entry, status=RewardStatus.PENDING_HOLD, hold_until=until, updated_at=self.now()
            )
            uow.reward_ledger_entries.update(reinstated, expected={"status": RewardStatus.CANCELLED})
            self.record(
                uow, "reward.reinstate", "reward_ledger_entries", eid, {"order_id": str(entry.order_id)}
            )
            return reinstated

        return self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ reading

    def entries(
        self,
        *,
        order_id: UUID | None = None,
        rid: str | None = None,
        referrer_user_id: UUID | None = None,
        status: RewardStatus | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[RewardLedgerEntry]:
        """A page of the ledger entries matching every given filter, oldest first. Staff may
        list any; a shopper only their own (``referrer_user_id`` set to their id)."""
        referrer = None if referrer_user_id is None else as_uuid(referrer_user_id, "referrer_user_id")
        window = PageRequest.of(limit, after)
        authorize(actor, "rewards.read", user_id=referrer)
        filters: dict[str, Any] = {}
        if order_id is not None:
            filters["order_id"] = as_uuid(order_id, "order_id")
        if rid is not None:
            filters["rid"] = rid
        if status is not None:
            filters["status"] = parse_enum(RewardStatus, status, "status")

        def work(uow: UnitOfWork) -> Page[RewardLedgerEntry]:
            if referrer is not None:
                rids = [r.rid for r in uow.referrals.where(referrer_user_id=referrer)]
                if not rids:
                    return Page(())
                filters["rid"] = one_of(rids) if "rid" not in filters else filters["rid"]
            return window.read(uow.reward_ledger_entries, **filters)

        return self.read(work, actor=actor)

    def balance(self, user_id: UUID, *, actor: Actor) -> dict[str, Money]:
        """What the referrer is owed now: the sum of their payable entries, per currency."""
        return self.statement(user_id, actor=actor).balance

    def statement(self, user_id: UUID, *, actor: Actor) -> RewardStatement:
        """The referrer's whole ledger with totals by status and currency (for them and staff)."""
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "rewards.read", user_id=uid)

        def work(uow: UnitOfWork) -> RewardStatement:
            uow.user_profiles.get(uid)
            rids = [r.rid for r in uow.referrals.where(referrer_user_id=uid)]
            entries = uow.reward_ledger_entries.where(rid=one_of(rids), order_by="id") if rids else []
            totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for entry in entries:
                totals[entry.status.value][entry.currency] += entry.amount_cents
            payable = totals.get(RewardStatus.PAYABLE.value, {})
            return RewardStatement(
                referrer_user_id=uid,
                entries=tuple(entries),
                totals={status: dict(by_currency) for status, by_currency in totals.items()},
                balance={currency: Money(amount, currency) for currency, amount in payable.items()},
            )

        return self.read(work, actor=actor)

    def get(self, entry_id: UUID, *, actor: Actor) -> RewardLedgerEntry:
        """One ledger entry, for its referrer and staff."""
        eid = as_uuid(entry_id, "entry_id")

        def work(uow: UnitOfWork) -> RewardLedgerEntry:
            found = uow.reward_ledger_entries.find(eid)
            if found is None:
                raise NotFound("reward_ledger_entries", eid)
            authorize(actor, "rewards.read", user_id=uow.referrals.get(found.rid).referrer_user_id)
            return found

        return self.read(work, actor=actor)


__all__ = ["RewardStatement", "Rewards"]
