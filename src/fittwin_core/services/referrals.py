"""``ft.referrals``: share links and the clicks they get.

A referral freezes the referral policy in force when it is created. Clicks keep only keyed
HMAC hashes of the clicker's ip address and device fingerprint, never the raw values, and
repeated clicks from the same ip and device inside the policy's de-dup window count once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Conflict,
    JsonMap,
    NotFound,
    Referral,
    ReferralEvent,
    ReferralEventType,
    TransientConflict,
    ValidationError,
)
from fittwin_core.domain.ids import is_rid
from fittwin_core.domain.rules import parse_enum
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork, at_least
from fittwin_core.services.base import Service, as_list, as_uuid
from fittwin_core.services.permissions import authorize
from fittwin_core.services.vault import Vault

MAX_USER_AGENT = 512


@attrs.frozen(kw_only=True)
class Click:
    """One click for :meth:`Referrals.record_clicks` (``at`` defaults to now)."""

    rid: str
    ip: str
    user_agent: str = ""
    device_fingerprint: str | None = None
    at: datetime | None = None


@attrs.frozen
class _Hashed:
    rid: str
    ip_hash: str
    device_hash: str | None
    user_agent: str
    at: datetime

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.rid, self.ip_hash, self.device_hash)


class Referrals(Service):
    """``ft.referrals``: create share links, record clicks, read what happened to a link."""

    # ------------------------------------------------------------------ links

    def create(
        self,
        referrer_user_id: UUID,
        *,
        target_product_id: UUID | None = None,
        expires_at: datetime | None = None,
        actor: Actor,
    ) -> Referral:
        """A new share link for the shopper, optionally pointing at a product and expiring.

        The rid is 128 random bits (22 base64url characters); the current referral policy is
        frozen into the link.
        """
        uid = as_uuid(referrer_user_id, "referrer_user_id")
        acting = actor
        authorize(acting, "referrals.create", user_id=uid)
        product_id = None if target_product_id is None else as_uuid(target_product_id, "target_product_id")
        if expires_at is not None:
            if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
                raise ValidationError("expires_at", "must be a datetime with a time zone")
            if expires_at <= self.now():
                raise ValidationError("expires_at", "must be in the future")

        def work(uow: UnitOfWork) -> Referral:
            self.live_shopper(uow, uid, "referrer_user_id")
            if product_id is not None:
                uow.products.get(product_id)
            rid = self._ctx.ids.new_rid()
            referral = Referral(
                rid=rid,
                referrer_user_id=uid,
                target_product_id=product_id,
                share_url=self.share_url(rid),
                policy_snapshot=self._ctx.settings.referral_policy,
                expires_at=expires_at,
                created_at=self.now(),
            )
            try:
                uow.referrals.add(referral)
            except Conflict as exc:  # a 128-bit collision: draw again
                raise TransientConflict("rid collision") from exc
            return referral

        return self.transaction(work, actor=acting)

    def share_url(self, rid: str) -> str:
        """The public link for ``rid``: the configured base URL with the rid appended (or put
        where the base has a ``{rid}`` placeholder)."""
        base = self._ctx.settings.share_base_url
        if "{rid}" in base:
            return base.replace("{rid}", rid)
        return f"{base.rstrip('/')}/{rid}"

    def get(self, rid: str, *, actor: Actor) -> Referral:
        """A referral by rid, for its referrer and staff."""
        _check_rid(rid)

        def work(uow: UnitOfWork) -> Referral:
            referral = uow.referrals.get(rid)
            authorize(actor, "referrals.read", user_id=referral.referrer_user_id)
            return referral

        return self.read(work, actor=actor)

    def for_referrer(
        self, user_id: UUID, *, actor: Actor, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Page[Referral]:
        """A page of the shopper's share links, oldest first (by ``created_at``, then rid: a
        link has no creation-ordered id)."""
        uid = as_uuid(user_id, "user_id")
        window = PageRequest.by_time(limit, after)
        authorize(actor, "referrals.read", user_id=uid)
        return self.read(
            lambda uow: window.read_by_time(uow.referrals, "rid", referrer_user_id=uid), actor=actor
        )

    def events(
        self,
        rid: str,
        *,
        event_type: ReferralEventType | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[ReferralEvent]:
        """A page of what happened to a link (clicks, conversions, fraud flags), oldest first
        (for its referrer and staff)."""
        _check_rid(rid)
        window = PageRequest.of(limit, after)
        filters: dict[str, Any] = {"rid": rid}
        if event_type is not None:
            filters["event_type"] = parse_enum(ReferralEventType, event_type, "event_type")

        def work(uow: UnitOfWork) -> Page[ReferralEvent]:
            authorize(actor, "referrals.read", user_id=uow.referrals.get(rid).referrer_user_id)
            return window.read(uow.referral_events, **filters)

        return self.read(work, actor=actor)

    # ------------------------------------------------------------------ clicks

    def record_click(
        self, rid: str, *, ip: str, user_agent: str, device_fingerprint: str | None = None, actor: Actor
    ) -> ReferralEvent | None:
        """Record a click on a share link; ``None`` when it repeats a click from the same ip and
        device inside the de-dup window (it counts once).

        An unknown rid is :class:`NotFound`, an expired one :class:`ValidationError`; either
        way nothing is recorded. Only keyed hashes of ``ip`` and ``device_fingerprint`` are kept.
        Anyone may click a share link: ``actor`` is usually :meth:`Actor.anonymous`.
        """
        authorize(actor, "referrals.record_click")
        click = self._hash(
            Click(rid=rid, ip=ip, user_agent=user_agent, device_fingerprint=device_fingerprint), ""
        )

        def work(uow: UnitOfWork) -> ReferralEvent | None:
            referral = uow.referrals.lock(click.rid) if self._exists(uow, click.rid) else None
            self._check_live(referral, click, "rid")
            assert referral is not None
            window = timedelta(seconds=referral.policy_snapshot.click_dedup_seconds)
            recent = uow.referral_events.where(
                rid=click.rid,
                event_type=ReferralEventType.CLICK,
                ip_hash=click.ip_hash,
                created_at=at_least(click.at - window),
            )
            if any(e.device_fingerprint == click.device_hash and e.created_at <= click.at for e in recent):
                return None
            event = self._event(click)
            uow.referral_events.add(event)
            return event

        return self.transaction(work, actor=actor)

    def record_clicks(self, clicks: Iterable[Click | Mapping[str, Any]], *, actor: Actor) -> int:
        """Record many clicks in one go (bulk ingest, staff only); how many were new.

        All or nothing: an unknown or expired rid, or a malformed click, raises naming its
        index (``clicks[3].rid``) and records none. Duplicates inside the de-dup window — within
        the batch or against clicks already stored — count once.
        """
        authorize(actor, "referrals.record_clicks")
        hashed = [
            self._hash(_as_click(c, f"clicks[{n}]"), f"clicks[{n}].")
            for n, c in enumerate(as_list(clicks, "clicks"))
        ]
        if not hashed:
            return 0
        order = sorted(range(len(hashed)), key=lambda n: hashed[n].at)

        def work(uow: UnitOfWork) -> int:
            referrals = {r.rid: r for r in uow.referrals.get_many({c.rid for c in hashed})}
            for n, click in enumerate(hashed):
                self._check_live(referrals.get(click.rid), click, f"clicks[{n}].rid")
            seen: dict[tuple[str, str, str | None], list[datetime]] = {}
            first_at: dict[str, datetime] = {}
            for click in hashed:  # one pass: the earliest click of each rid in the batch
                if click.rid not in first_at or click.at < first_at[click.rid]:
                    first_at[click.rid] = click.at
            for rid, referral in referrals.items():
                window = timedelta(seconds=referral.policy_snapshot.click_dedup_seconds)
                earliest = first_at[rid] - window
                for event in uow.referral_events.where(
                    rid=rid, event_type=ReferralEventType.CLICK, created_at=at_least(earliest)
                ):
                    if event.ip_hash is not None:
                        seen.setdefault((rid, event.ip_hash, event.device_fingerprint), []).append(
                            event.created_at
                        )
            accepted: list[ReferralEvent] = []
            for n in order:
                click = hashed[n]
                window = timedelta(seconds=referrals[click.rid].policy_snapshot.click_dedup_seconds)
                times = seen.setdefault(click.key, [])
                if any(t <= click.at < t + window for t in times):
                    continue
                times.append(click.at)
                accepted.append(self._event(click))
            uow.referral_events.add_many(accepted)
            return len(accepted)

        return self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ helpers

    def _exists(self, uow: UnitOfWork, rid: str) -> bool:
        return uow.referrals.find(rid) is not None

    def _check_live(self, referral: Referral | None, click: _Hashed, field: str) -> None:
        if referral is None:
            raise NotFound("referrals", click.rid)
        if referral.is_expired(click.at):
            raise ValidationError(field, "refers to an expired referral link")

    def _hash(self, click: Click, prefix: str) -> _Hashed:
        _check_rid(click.rid, f"{prefix}rid")
        try:
            address = ipaddress.ip_address(click.ip.strip() if isinstance(click.ip, str) else click.ip)
        except ValueError:
            raise ValidationError(f"{prefix}ip", "must be an IPv4 or IPv6 address") from None
        if not isinstance(click.user_agent, str) or len(click.user_agent) > MAX_USER_AGENT:
            raise ValidationError(
                f"{prefix}user_agent", f"must be a string of at most {MAX_USER_AGENT} characters"
            )
        fingerprint = click.device_fingerprint
        if fingerprint is not None and (not isinstance(fingerprint, str) or not 0 < len(fingerprint) <= 512):
            raise ValidationError(f"{prefix}device_fingerprint", "must be 1 to 512 characters")
        at = click.at if click.at is not None else self.now()
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValidationError(f"{prefix}at", "must be a datetime with a time zone")
        vault = Vault(self._ctx.cipher, self._ctx.clock)
        return _Hashed(
            rid=click.rid,
            ip_hash=vault.keyed_hash(ReferralEvent, "ip_hash", address.compressed),
            device_hash=(
                None
                if fingerprint is None
                else vault.keyed_hash(ReferralEvent, "device_fingerprint", fingerprint)
            ),
            user_agent=click.user_agent.replace("\x00", ""),
            at=at,
        )

    def _event(self, click: _Hashed) -> ReferralEvent:
        return ReferralEvent(
            id=self._ctx.ids.new_id(),
            rid=click.rid,
            event_type=ReferralEventType.CLICK,
            ip_hash=click.ip_hash,
            device_fingerprint=click.device_hash,
            metadata=JsonMap({"user_agent": click.user_agent}),
            created_at=click.at,
        )


def _check_rid(rid: object, field: str = "rid") -> None:
    if not is_rid(rid):
        raise ValidationError(field, "must be a 22-character base64url rid")


def _as_click(value: object, field: str) -> Click:
    if isinstance(value, Click):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"rid", "ip", "user_agent", "device_fingerprint", "at"}
        if unknown:
            raise ValidationError(field, f"has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        if "rid" not in value or "ip" not in value:
            raise ValidationError(field, "needs at least rid and ip")
        return Click(**value)
    raise ValidationError(field, "must be a Click or a mapping")


__all__ = ["Click", "Referrals"]
