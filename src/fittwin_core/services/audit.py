"""``ft.audit``: the append-only event log of privileged actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fittwin_core.domain import Actor, EventLog, ValidationError
from fittwin_core.ports import at_least, before
from fittwin_core.services.base import Service, as_uuid
from fittwin_core.services.permissions import authorize


class Audit(Service):
    """``ft.audit``: read who did what (platform admins and the system)."""

    def events(
        self,
        *,
        entity_type: str | None = None,
        entity_id: UUID | None = None,
        actor_id: UUID | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 1000,
        actor: Actor,
    ) -> list[EventLog]:
        """Event log records matching every given filter, oldest first (staff only)."""
        authorize(actor, "audit.read")
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise ValidationError(name, "must be a datetime with a time zone")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValidationError("limit", "must be a positive integer or None")
        filters: dict[str, Any] = {}
        if entity_type is not None:
            filters["entity_type"] = entity_type
        if entity_id is not None:
            filters["entity_id"] = as_uuid(entity_id, "entity_id")
        if actor_id is not None:
            filters["actor_id"] = as_uuid(actor_id, "actor_id")
        if action is not None:
            if not isinstance(action, str):
                raise ValidationError("action", "must be a string")
            filters["action"] = action
        if entity_type is not None and not isinstance(entity_type, str):
            raise ValidationError("entity_type", "must be a string")
        if since is not None and until is not None:
            rows = self.read(
                lambda uow: uow.event_logs.where(
                    created_at=at_least(since), order_by="created_at", **filters
                ),
                actor=actor,
            )
            return [r for r in rows if r.created_at < until][:limit]
        if since is not None:
            filters["created_at"] = at_least(since)
        elif until is not None:
            filters["created_at"] = before(until)
        return self.read(
            lambda uow: uow.event_logs.where(order_by=("created_at", "id"), limit=limit, **filters),
            actor=actor,
        )


__all__ = ["Audit"]
