"""What both stores' ``outbox`` repositories share: recording the outcome of a claimed effect.

Claiming differs by store (PostgreSQL skips locked rows; the memory store has one writer at a
time); completing and failing are a locked read and a compare-and-set on ``claimed_by``, the
same everywhere, so they are written once here on top of the repository operations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import attrs

from fittwin_core.domain import Conflict, OutboxAttempt, OutboxEffect, OutboxStatus

MAX_DETAIL = 500


class _Rows(Protocol):
    def lock(self, key: Any) -> OutboxEffect: ...

    def update(self, entity: OutboxEffect, *, expected: Any = None) -> None: ...


def complete(rows: _Rows, effect_id: UUID, *, claimer: UUID, at: datetime, outcome: str) -> OutboxEffect:
    """Record a successful attempt: ``delivered`` (see ``OutboxRepository.complete``)."""
    current = _held(rows, effect_id, claimer)
    done = attrs.evolve(
        current,
        status=OutboxStatus.DELIVERED,
        attempts=current.attempts + 1,
        history=(*current.history, OutboxAttempt(at=at, ok=True, detail=outcome[:MAX_DETAIL])),
        outcome=outcome[:MAX_DETAIL],
        delivered_at=at,
        claimed_by=None,
        lease_until=None,
        updated_at=at,
    )
    rows.update(done, expected={"claimed_by": claimer, "status": OutboxStatus.PENDING})
    return done


def fail(
    rows: _Rows, effect_id: UUID, *, claimer: UUID, at: datetime, error: str, retry_at: datetime | None
) -> OutboxEffect:
    """Record a failed attempt: retry from ``retry_at`` or ``dead`` (see ``OutboxRepository.fail``)."""
    current = _held(rows, effect_id, claimer)
    detail = error[:MAX_DETAIL]
    failed = attrs.evolve(
        current,
        status=OutboxStatus.PENDING if retry_at is not None else OutboxStatus.DEAD,
        attempts=current.attempts + 1,
        history=(*current.history, OutboxAttempt(at=at, ok=False, detail=detail)),
        outcome=None if retry_at is not None else detail,
        available_at=retry_at if retry_at is not None else current.available_at,
        claimed_by=None,
        lease_until=None,
        updated_at=at,
    )
    rows.update(failed, expected={"claimed_by": claimer, "status": OutboxStatus.PENDING})
    return failed


def _held(rows: _Rows, effect_id: UUID, claimer: UUID) -> OutboxEffect:
    current = rows.lock(effect_id)
    if current.claimed_by != claimer or current.status != OutboxStatus.PENDING:
        raise Conflict(f"outbox {effect_id} is no longer claimed by this dispatcher")
    return current


def claimable(effect: OutboxEffect, now: datetime) -> bool:
    """Whether a dispatcher may claim ``effect`` at ``now``: pending, due, and not leased."""
    return (
        effect.status == OutboxStatus.PENDING
        and effect.available_at <= now
        and (effect.lease_until is None or effect.lease_until <= now)
    )


def claimed(effect: OutboxEffect, *, claimer: UUID, lease_until: datetime, now: datetime) -> OutboxEffect:
    """``effect`` as claimed by ``claimer`` until ``lease_until``."""
    return attrs.evolve(effect, claimed_by=claimer, lease_until=lease_until, updated_at=now)


__all__ = ["claimable", "claimed", "complete", "fail"]
