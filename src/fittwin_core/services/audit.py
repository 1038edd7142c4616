"""``ft.audit``: the append-only event log of privileged actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fittwin_core.domain import Actor, EventLog, ValidationError
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import at_least, before, within
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
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[EventLog]:
        """A page of the event log records matching every given filter, oldest first (by id:
        the records' UUIDv7 order), ``since`` inclusive and ``until`` exclusive (staff only)."""
        window = PageRequest.of(limit, after)
        authorize(actor, "audit.read")
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise ValidationError(name, "must be a datetime with a time zone")
        filters: dict[str, Any] = {}
        if entity_type is not None:
            if not isinstance(entity_type, str):
                raise ValidationError("entity_type", "must be a string")
            filters["entity_type"] = entity_type
        if entity_id is not None:
            filters["entity_id"] = as_uuid(entity_id, "entity_id")
        if actor_id is not None:
            filters["actor_id"] = as_uuid(actor_id, "actor_id")
        if action is not None:
            if not isinstance(action, str):
                raise ValidationError("action", "must be a string")
            filters["action"] = action
        if since is not None and until is not None:
            filters["created_at"] = within(since, until)
        elif since is not None:
            filters["created_at"] = at_least(since)
        elif until is not None:
            filters["created_at"] = before(until)
        return self.read(lambda uow: window.read(uow.event_logs, **filters), actor=actor)


__all__ = ["Audit"]
