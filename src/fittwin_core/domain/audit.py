"""Who did what: actors and the append-only event log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import JsonMap


class ActorType(StrEnum):
    """``event_logs.actor_type``."""

    SHOPPER = "shopper"
    BRAND_ADMIN = "brand_admin"
    PLATFORM_ADMIN = "platform_admin"
    SYSTEM = "system"


@attrs.frozen
class Actor:
    """Who performs a call: checked for permission and recorded in ``event_logs``.

    Build one with :meth:`shopper`, :meth:`brand_user`, :meth:`platform`, :meth:`system` or
    :meth:`anonymous`. The host authenticates the caller and says who it is; FitTwin never
    guesses (see ``docs/permissions.md``).
    """

    type: ActorType = attrs.field(validator=rules.member_of(ActorType))
    id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))

    def __attrs_post_init__(self) -> None:
        if self.type not in (ActorType.SYSTEM, ActorType.SHOPPER) and self.id is None:
            raise ValidationError("actor.id", f"is required for a {self.type} actor")

    @classmethod
    def shopper(cls, user_id: UUID) -> Actor:
        """A signed-in shopper (``user_profiles.id``), acting on their own account."""
        if user_id is None:
            raise ValidationError("actor.id", "is required for a shopper actor (Actor.anonymous() has none)")
        return cls(ActorType.SHOPPER, user_id)

    @classmethod
    def anonymous(cls) -> Actor:
        """A visitor who is not signed in: may register, browse the catalog and click share
        links. Recorded in ``event_logs`` as a ``shopper`` without an id."""
        return cls(ActorType.SHOPPER, None)

    @property
    def is_anonymous(self) -> bool:
        """Whether this is :meth:`anonymous` (a shopper with no account id)."""
        return self.type == ActorType.SHOPPER and self.id is None

    @classmethod
    def brand_user(cls, brand_user_id: UUID) -> Actor:
        """A brand user (``brand_users.id``); their brand and role decide what they may do."""
        return cls(ActorType.BRAND_ADMIN, brand_user_id)

    @classmethod
    def platform(cls, admin_id: UUID) -> Actor:
        """A platform administrator."""
        return cls(ActorType.PLATFORM_ADMIN, admin_id)

    @classmethod
    def system(cls) -> Actor:
        """FitTwin itself (jobs, webhooks, triggers without a session actor)."""
        return cls(ActorType.SYSTEM, None)


SYSTEM = Actor.system()


@attrs.frozen(kw_only=True)
class EventLog:
    """One append-only audit record (``event_logs``)."""

    id: UUID = attrs.field(validator=rules.uuid)
    actor_type: ActorType = attrs.field(validator=rules.member_of(ActorType))
    actor_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    action: str = attrs.field(validator=rules.text(max_len=100))
    entity_type: str = attrs.field(validator=rules.text(max_len=100))
    entity_id: UUID = attrs.field(validator=rules.uuid)
    metadata: JsonMap = attrs.field(
        factory=rules.JsonMap, converter=rules.to_json_map, validator=rules.json_object
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)

    @property
    def actor(self) -> Actor:
        """The actor as an :class:`Actor`."""
        return Actor(self.actor_type, self.actor_id)


REDACTED = "<redacted>"
"""What audit diffs hold instead of a secret or personal value."""

TRIGGER_ACTIONS = frozenset({"insert", "update", "delete"})
"""Actions of the audit rows the stores write for row changes: records added by the library
(``user.export``, ``retention.purge``...) may not use them, so no one can forge a row change."""

BOOKKEEPING_COLUMNS = frozenset({"created_at", "updated_at"})
"""Columns left out of audit diffs: the event's own ``created_at`` says when."""


def _visible(row: Mapping[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    return {
        column: (REDACTED if column in secret and value is not None else value)
        for column, value in row.items()
        if column not in BOOKKEEPING_COLUMNS
    }


def audit_diff(
    op: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    secret_columns: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """The ``metadata`` of the audit row for a change to a privileged table.

    ``old``/``new`` are rows in their JSON form (the converter's output, which is also what
    PostgreSQL's ``to_jsonb`` gives for the same row). The format, shared by every store:

    * ``insert``: ``{"op": "insert", "new": {column: value, ...}}``
    * ``update``: ``{"op": "update", "old": {changed columns}, "new": {changed columns}}``,
      or ``None`` (no audit row) when nothing but ``updated_at`` changed
    * ``delete``: ``{"op": "delete", "old": {column: value, ...}}``

    ``created_at``/``updated_at`` are left out, and the values of ``secret_columns`` (personal
    data, secrets, tokens) are replaced by ``"<redacted>"`` (a ``null`` stays ``null``).
    """
    if op == "insert" and new is not None:
        return {"op": "insert", "new": _visible(new, secret_columns)}
    if op == "delete" and old is not None:
        return {"op": "delete", "old": _visible(old, secret_columns)}
    if op == "update" and old is not None and new is not None:
        changed = [c for c in new if c not in BOOKKEEPING_COLUMNS and old.get(c) != new[c]]
        if not changed:
            return None
        return {
            "op": "update",
            "old": _visible({c: old.get(c) for c in changed}, secret_columns),
            "new": _visible({c: new[c] for c in changed}, secret_columns),
        }
    raise ValidationError("op", "must be insert (with new), update (with old and new) or delete (with old)")


__all__ = [
    "BOOKKEEPING_COLUMNS",
    "REDACTED",
    "SYSTEM",
    "TRIGGER_ACTIONS",
    "Actor",
    "ActorType",
    "EventLog",
    "audit_diff",
]
