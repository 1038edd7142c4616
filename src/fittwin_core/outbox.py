"""What both stores' ``outbox`` repositories share: recording the outcome of a claimed effect.

Claiming differs by store (PostgreSQL skips locked rows; the memory store has one writer at a
time); completing and failing are the same everywhere, so they are written once here on top of
the repository operations. Neither reads the row again: a claimer's copy of its effect is the
row as long as the claim holds (nobody else writes a claimed row), so the outcome is a
compare-and-set on ``claimed_by`` of the columns that change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import attrs

from fittwin_core.domain import Conflict, OutboxAttempt, OutboxEffect, OutboxStatus
from fittwin_core.domain.rules import evolved
from fittwin_core.ports import Enqueued

MAX_DETAIL = 500


class _Rows(Protocol):
    def update_changed(self, before: OutboxEffect, after: OutboxEffect, *, expected: Any = None) -> None: ...


def complete(rows: _Rows, effect: OutboxEffect, *, claimer: UUID, at: datetime, outcome: str) -> OutboxEffect:
    """Record a successful attempt: ``delivered`` (see ``OutboxRepository.complete``)."""
    _held(effect, claimer)
    done = evolved(
        effect,
        status=OutboxStatus.DELIVERED,
        attempts=effect.attempts + 1,
        history=(*effect.history, OutboxAttempt(at=at, ok=True, detail=outcome[:MAX_DETAIL])),
        outcome=outcome[:MAX_DETAIL],
        delivered_at=at,
        claimed_by=None,
        lease_until=None,
        updated_at=at,
    )
    rows.update_changed(effect, done, expected={"claimed_by": claimer, "status": OutboxStatus.PENDING})
    return done


def fail(
    rows: _Rows, effect: OutboxEffect, *, claimer: UUID, at: datetime, error: str, retry_at: datetime | None
) -> OutboxEffect:
    """Record a failed attempt: retry from ``retry_at`` or ``dead`` (see ``OutboxRepository.fail``)."""
    _held(effect, claimer)
    detail = error[:MAX_DETAIL]
    failed = evolved(
        effect,
        status=OutboxStatus.PENDING if retry_at is not None else OutboxStatus.DEAD,
        attempts=effect.attempts + 1,
        history=(*effect.history, OutboxAttempt(at=at, ok=False, detail=detail)),
        outcome=None if retry_at is not None else detail,
        available_at=retry_at if retry_at is not None else effect.available_at,
        claimed_by=None,
        lease_until=None,
        updated_at=at,
    )
    rows.update_changed(effect, failed, expected={"claimed_by": claimer, "status": OutboxStatus.PENDING})
    return failed


def _held(effect: OutboxEffect, claimer: UUID) -> None:
    """Refuse a copy that is not ``claimer``'s claim (the row is checked by the compare-and-set)."""
    if effect.claimed_by != claimer or effect.status != OutboxStatus.PENDING:
        raise Conflict(f"outbox {effect.id} is no longer claimed by this dispatcher")


@attrs.frozen
class Recorded:
    """An effect a call recorded, for delivery after the call's commit: the row as enqueued
    (with ``Settings.dispatch_inline`` already claimed for that delivery) and whether the
    insert took place (an effect whose idempotency key was taken is not delivered)."""

    effect: OutboxEffect
    enqueued: Enqueued


def claimable(effect: OutboxEffect, now: datetime) -> bool:
    """Whether a dispatcher may claim ``effect`` at ``now``: pending, due, and not leased."""
    return (
        effect.status == OutboxStatus.PENDING
        and effect.available_at <= now
        and (effect.lease_until is None or effect.lease_until <= now)
    )


def claimed(effect: OutboxEffect, *, claimer: UUID, lease_until: datetime, now: datetime) -> OutboxEffect:
    """``effect`` as claimed by ``claimer`` until ``lease_until``."""
    return evolved(effect, claimed_by=claimer, lease_until=lease_until, updated_at=now)


__all__ = ["Recorded", "claimable", "claimed", "complete", "fail"]
