"""``ft.privacy``: data-subject requests (export, erasure), retention, and key rotation.

Export gathers every row that is about a shopper, with sealed fields opened, as JSON-able data.
Erasure anonymises the profile in place, crypto-shreds the shopper's data key (every copy of
their sealed data, backups included, becomes unreadable), soft-deletes avatars and addresses,
deletes media, removes payment methods and clears referral hashes, while orders keep their
totals and references. Retention purges closed orders, settled rewards and old audit months
past the :class:`~fittwin_core.services.base.RetentionPolicy`. See ``docs/privacy.md``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Avatar,
    AvatarSources,
    AvatarStatus,
    Conflict,
    Consents,
    FitTwinError,
    NotFound,
    OrderStatus,
    ReferralEvent,
    RewardStatus,
    StoreUnavailable,
    UserProfile,
    ValidationError,
    rules,
)
from fittwin_core.domain.converter import format_datetime, unstructure
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.domain.rules import JsonMap
from fittwin_core.ports import EventLogRetention, Repository, UnitOfWork, after, before, not_equal, one_of
from fittwin_core.schema import TABLES, Erasure, table_for
from fittwin_core.services.avatars import mesh_key
from fittwin_core.services.base import Context, RetentionPolicy, Service, UnitOfWorkRunner, as_uuid
from fittwin_core.services.orders import PLACE_SCOPE
from fittwin_core.services.permissions import authorize
from fittwin_core.services.vault import KeyShredded, Vault

EXPORT_FORMAT = "fittwin.user-export/1"
"""The ``format`` field of :meth:`Privacy.export_user`'s result."""

ERASED_EMAIL_DOMAIN = "erased.invalid"
"""Erased accounts get ``erased-<token>@erased.invalid`` (``.invalid`` is reserved, RFC 2606)."""

ERASED_USERNAME_PREFIX = "erased-"

SETTLED_REWARDS = frozenset({RewardStatus.PAID, RewardStatus.CANCELLED})
"""Ledger statuses that never change again: an order whose entries are all settled may be purged."""

DEVICE_METADATA_KEYS = frozenset({"user_agent", "ip", "device", "device_fingerprint"})
"""Keys of ``referral_events.metadata`` that describe a device: dropped on erasure."""

PURGE_BATCH = 200


@attrs.frozen(kw_only=True)
class ErasureReport:
    """What :meth:`Privacy.erase_user` changed (counts, never values).

    ``already_erased`` says the account had been erased before; a repeat only finishes what a
    previous run left (objects it could not delete, rows added since).
    """

    user_id: UUID
    already_erased: bool
    data_key_shredded: bool
    addresses: int
    avatars: int
    objects_deleted: int
    payment_methods: int
    orders_detached: int
    referral_events: int
    idempotency_keys: int
    referral_links: int = 0
    """Share links of the shopper's that erasure ended (their ``expires_at`` set to then)."""
    fit_summaries: int = 0
    """Order lines whose fit summary lost its body values (label and confidence stay)."""


@attrs.frozen(kw_only=True)
class PurgeReport:
    """What :meth:`Privacy.purge_expired` removed, or with ``dry_run`` would remove, by category.

    ``event_logs`` is ``None`` when the store cannot drop old audit records.
    ``orders_kept_unsettled`` counts closed orders past their time that stay because a reward
    of theirs is still pending or payable; ``kept_referenced`` soft-deleted addresses and erased
    profiles past their time that something still refers to (an order, a card); ``conflicts``
    rows skipped because another transaction changed them meanwhile (the next run retries).
    """

    dry_run: bool
    orders: int
    order_items: int
    referral_events: int
    reward_ledger_entries: int
    idempotency_keys: int
    event_logs: int | None
    orders_kept_unsettled: int
    closed_before: datetime
    rewards_settled_before: datetime
    event_logs_before: datetime
    click_hashes: int = 0
    addresses: int = 0
    avatars: int = 0
    profiles: int = 0
    kept_referenced: int = 0
    conflicts: int = 0


class Privacy(Service):
    """``ft.privacy``: what FitTwin holds about people, and how it lets go of it."""

    def __init__(self, ctx: Context, runner: UnitOfWorkRunner | None = None) -> None:
        super().__init__(ctx, runner)
        self.vault = Vault(ctx.cipher, ctx.clock)

    # ------------------------------------------------------------------ keys

    def rotate_data_keys(self, *, actor: Actor) -> int:
        """Re-wrap every data key under the key ring's current key-encryption key; how many
        changed. Sealed rows are untouched; afterwards the old KEK can be retired."""
        acting = actor
        authorize(acting, "privacy.rotate_data_keys")

        def work(uow: UnitOfWork) -> int:
            changed = self.vault.rotate(uow)
            if changed:
                self.record(uow, "keys.rotate", "data_keys", PLATFORM_KEY_OWNER, {"rewrapped": changed})
            return changed

        return self.transaction(work, actor=acting)

    # ------------------------------------------------------------------ export

    def export_user(self, user_id: UUID, *, actor: Actor) -> dict[str, Any]:
        """Everything FitTwin holds about a shopper, sealed fields opened, as JSON-able data.

        Sections, by table: ``profile`` (no password hash), ``addresses`` (lines opened),
        ``payment_methods`` (display data; the provider token is left out), ``avatars`` (with
        their object keys and region), ``orders`` and ``order_items``, ``referrals`` they made
        with their ``referral_events`` and ``reward_ledger_entries``, referral events of their
        own orders, ``event_logs`` about them or by them, ``data_keys`` (metadata only) and
        ``idempotency_keys`` of their orders. For the shopper or staff; the export itself is
        recorded in the event log (``user.export``).
        """
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "privacy.export_user", user_id=uid)
        exported = self.read(lambda uow: self._export(uow, uid), actor=acting)
        counts = {name: len(rows) for name, rows in exported.items() if isinstance(rows, list)}
        self.transaction(
            lambda uow: self.record(uow, "user.export", "user_profiles", uid, {"rows": counts}), actor=acting
        )
        return exported

    def _export(self, uow: UnitOfWork, uid: UUID) -> dict[str, Any]:
        profile = self.shopper(uow, uid)
        addresses = uow.addresses.where(user_id=uid, order_by="id")
        methods = uow.payment_methods.where(user_id=uid, order_by="id")
        avatars = uow.avatars.where(user_id=uid, order_by="version")
        orders = uow.orders.where(user_id=uid, order_by="id")
        order_ids = [o.id for o in orders]
        items = uow.order_items.where(order_id=one_of(order_ids), order_by="id") if order_ids else []
        referrals = uow.referrals.where(referrer_user_id=uid, order_by="created_at")
        rids = [r.rid for r in referrals]
        referral_events = uow.referral_events.where(rid=one_of(rids), order_by="id") if rids else []
        ledger = uow.reward_ledger_entries.where(rid=one_of(rids), order_by="id") if rids else []
        own_conversions = (
            uow.referral_events.where(order_id=one_of(order_ids), order_by="id") if order_ids else []
        )
        related = {uid, *(a.id for a in addresses), *(m.id for m in methods), *(a.id for a in avatars)}
        related |= {*order_ids, *(e.id for e in ledger)}
        about = uow.event_logs.where(entity_id=one_of(related), order_by="id")
        by_them = uow.event_logs.where(actor_id=uid, order_by="id")
        events = sorted({e.id: e for e in (*about, *by_them)}.values(), key=lambda e: e.id)
        data_key = uow.data_keys.find(uid)
        idempotency = []
        if order_ids:
            idempotency = uow.idempotency_keys.where(result_id=one_of(order_ids), order_by="created_at")
        seen_events = {e.id for e in referral_events}
        return {
            "format": EXPORT_FORMAT,
            "exported_at": format_datetime(self.now()),
            "user_id": str(uid),
            "region": profile.region,
            "erased": profile.erased,
            "profile": self._exported(uow, uid, profile),
            "addresses": [self._exported(uow, a.user_id or PLATFORM_KEY_OWNER, a) for a in addresses],
            "payment_methods": [self._exported(uow, uid, m) for m in methods],
            "avatars": [self._avatar_export(uow, a, profile.region) for a in avatars],
            "orders": [self._exported(uow, uid, o) for o in orders],
            "order_items": [self._exported(uow, uid, i) for i in items],
            "referrals": [self._exported(uow, uid, r) for r in referrals],
            "referral_events": [self._exported(uow, uid, e) for e in referral_events]
            + [self._exported(uow, uid, e) for e in own_conversions if e.id not in seen_events],
            "reward_ledger_entries": [self._exported(uow, uid, e) for e in ledger],
            "event_logs": [self._exported(uow, uid, e) for e in events],
            "data_keys": [] if data_key is None else [self._exported(uow, uid, data_key)],
            "idempotency_keys": [self._exported(uow, uid, r) for r in idempotency],
        }

    def _exported(self, uow: UnitOfWork, owner: UUID, row: Any) -> dict[str, Any]:
        """A row as the export shows it, by the declaration (:mod:`fittwin_core.schema`): the
        columns not exported (hashes, tokens, blind indexes, wrapped keys) left out, sealed
        ones opened (``None`` once shredded)."""
        table = table_for(type(row))
        data: dict[str, Any] = unstructure(row)
        for column in table.unexported():
            data.pop(column, None)
        if table.sealed_columns:
            try:
                data.update(self.vault.open_fields(uow, owner, row))
            except KeyShredded:
                data.update(dict.fromkeys(table.sealed_columns))
        return data

    def _avatar_export(self, uow: UnitOfWork, avatar: Avatar, region: str) -> dict[str, Any]:
        data = self._exported(uow, avatar.user_id, avatar)
        data["object_keys"] = {
            "mesh": avatar.mesh_ref,
            "photos": [photo.object_key for photo in avatar.sources.photos],
        }
        data["object_region"] = region
        return data

    # ------------------------------------------------------------------ erasure

    def erase_user(self, user_id: UUID, *, actor: Actor) -> ErasureReport:
        """Erase a shopper's personal data (staff only); orders keep their totals and references.

        The profile is anonymised in place (a unique ``erased-…@erased.invalid`` email and
        ``erased-…`` username, a password hash nobody can match; name, phone, location,
        appearance, style preferences and body metrics cleared, consents withdrawn), the
        shopper's data key is crypto-shredded, avatars and addresses are soft-deleted with
        their media deleted, payment methods removed, the payment token cleared from orders,
        and ip/device hashes cleared from the referral events of their links and of their
        orders (with the clicks those conversions came from); the idempotency records of their
        checkouts are dropped. Their share links are ended (no reward to an erased person;
        orders placed through them are unaffected). The profile row stays locked for the whole
        erasure, and every write about the shopper takes the same lock and refuses an erased
        account, so nothing written concurrently survives readable.
        ``user.erase`` is recorded in the event log with the kinds of data erased, never values.

        Running it again is harmless (and finishes anything a failed run left). If media cannot
        be deleted, :class:`StoreUnavailable` is raised after the rows were erased: run it again.
        """
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "privacy.erase_user")
        # Slow on purpose, so outside the transaction: a hash of a secret nobody keeps.
        unmatchable = self._ctx.hasher.hash(secrets.token_urlsafe(32))

        photos = self.read(lambda uow: self._photo_objects(uow, uid), actor=actor)
        region = photos[0]
        # Photos first: nothing points at them the way mesh_ref points at meshes, and once the
        # avatars' sources are cleared their keys would be forgotten.
        deleted = self._delete_objects(photos[1], region)

        def work(uow: UnitOfWork) -> tuple[ErasureReport, list[str]]:
            profile = self.shopper(uow, uid, lock=True)
            now = self.now()
            kinds: list[str] = []
            if not profile.erased:
                uow.user_profiles.update(self._anonymised(profile, unmatchable, now))
                kinds.append("profile")
            elif profile.default_payment_method_id or profile.billing_address_id:  # set since
                cleared = attrs.evolve(
                    profile, default_payment_method_id=None, billing_address_id=None, updated_at=now
                )
                uow.user_profiles.update(cleared)
            fit_summaries = self._strip_fit_summaries(uow, uid, now)
            shredded = self.vault.shred(uow, uid)
            if shredded:
                kinds.append("data_key")
            addresses = self._erase_addresses(uow, uid, now)
            methods = self._erase_payment_methods(uow, uid)
            avatars, keys = self._erase_avatars(uow, uid, now)
            orders, order_ids = self._detach_orders(uow, uid, now)
            referral_events = self._clear_referral_hashes(uow, uid, order_ids)
            links = self._deactivate_referrals(uow, uid, now)
            requests = self._forget_order_requests(uow, order_ids)
            for kind, count in (
                ("addresses", addresses),
                ("payment_methods", methods),
                ("avatars", avatars),
                ("order_payment_tokens", orders),
                ("referral_hashes", referral_events),
                ("order_request_keys", requests),
                ("referral_links", links),
                ("fit_summaries", fit_summaries),
            ):
                if count:
                    kinds.append(kind)
            report = ErasureReport(
                user_id=uid,
                already_erased=profile.erased,
                data_key_shredded=shredded,
                addresses=addresses,
                avatars=avatars,
                objects_deleted=0,
                payment_methods=methods,
                orders_detached=orders,
                referral_events=referral_events,
                idempotency_keys=requests,
                referral_links=links,
                fit_summaries=fit_summaries,
            )
            if kinds:
                self.record(
                    uow,
                    "user.erase",
                    "user_profiles",
                    uid,
                    {
                        "erased": kinds,
                        "counts": {
                            "addresses": addresses,
                            "avatars": avatars,
                            "payment_methods": methods,
                            "orders": orders,
                            "referral_events": referral_events,
                            "idempotency_keys": requests,
                            "referral_links": links,
                            "fit_summaries": fit_summaries,
                            "photos": len(photos[1]),
                        },
                        "repeat": profile.erased,
                    },
                )
            return report, keys

        report, keys = self.transaction(work, actor=actor)
        counted: list[int] = []  # inside ft.transaction the meshes go once it commits, uncounted
        self.after_commit(lambda: counted.append(self._delete_objects(keys, region)))
        return attrs.evolve(report, objects_deleted=deleted + sum(counted))

    def _photo_objects(self, uow: UnitOfWork, uid: UUID) -> tuple[str, list[str]]:
        profile = self.shopper(uow, uid)
        keys = [photo.object_key for a in uow.avatars.where(user_id=uid) for photo in a.sources.photos]
        return profile.region, keys

    def _anonymised(self, profile: UserProfile, unmatchable: str, now: datetime) -> UserProfile:
        token = self._ctx.ids.new_token().hex
        replacements: dict[str, Any] = {
            "email": f"erased-{token}@{ERASED_EMAIL_DOMAIN}",
            "username": f"{ERASED_USERNAME_PREFIX}{token[:24]}",
            "password_hash": unmatchable,
            "consents": Consents(terms=False),
        }
        return attrs.evolve(
            profile,
            **erased_values(profile, replacements),
            email_verified_at=None,
            phone_verified_at=None,
            default_payment_method_id=None,
            billing_address_id=None,
            erased_at=now,
            updated_at=now,
        )

    def _strip_fit_summaries(self, uow: UnitOfWork, uid: UUID, now: datetime) -> int:
        """The body values (per-zone body measurements and deltas) leave the fit summaries of
        the shopper's order lines; the size label, confidence and verdict-free facts stay."""
        order_ids = [o.id for o in uow.orders.where(user_id=uid)]
        if not order_ids:
            return 0
        changed = 0
        for item in uow.order_items.where(order_id=one_of(order_ids), order_by="id"):
            if item.fit_summary is not None and item.fit_summary.zones:
                stripped = attrs.evolve(item.fit_summary, zones=())
                uow.order_items.update(attrs.evolve(item, fit_summary=stripped, updated_at=now))
                changed += 1
        return changed

    def _erase_addresses(self, uow: UnitOfWork, uid: UUID, now: datetime) -> int:
        changed = 0
        for address in uow.addresses.where(user_id=uid):
            # By the declaration: the required lines stay as ciphertext under the shredded key
            # (orders point at the row), optional ones are emptied; the blind indexes would
            # still let the platform match a postal code, and the metadata is the shopper's.
            cleared = erased_values(address, {})
            if address.deleted_at is None or any(getattr(address, c) != v for c, v in cleared.items()):
                uow.addresses.update(
                    attrs.evolve(address, **cleared, deleted_at=address.deleted_at or now, updated_at=now)
                )
                changed += 1
        return changed

    def _erase_payment_methods(self, uow: UnitOfWork, uid: UUID) -> int:
        methods = uow.payment_methods.where(user_id=uid)
        for method in methods:
            uow.payment_methods.delete(method.id)
        return len(methods)

    def _erase_avatars(self, uow: UnitOfWork, uid: UUID, now: datetime) -> tuple[int, list[str]]:
        changed = 0
        keys = []
        empty = AvatarSources()
        for avatar in uow.avatars.where(user_id=uid, order_by="version"):
            keys.append(mesh_key(uid, avatar.version))
            if avatar.deleted_at is None or avatar.mesh_ref is not None or avatar.sources != empty:
                status = AvatarStatus.FAILED if avatar.status == AvatarStatus.PROCESSING else avatar.status
                uow.avatars.update(
                    attrs.evolve(
                        avatar,
                        **erased_values(avatar, {"sources": empty}),
                        deleted_at=avatar.deleted_at or now,
                        status=status,
                        failure_reason="erased" if status != avatar.status else avatar.failure_reason,
                        updated_at=now,
                    )
                )
                changed += 1
        return changed, keys

    def _detach_orders(self, uow: UnitOfWork, uid: UUID, now: datetime) -> tuple[int, list[UUID]]:
        orders = uow.orders.where(user_id=uid, order_by="id")
        changed = 0
        for order in orders:
            if order.psp_token_id is not None:
                uow.orders.update(attrs.evolve(order, psp_token_id=None, updated_at=now))
                changed += 1
        return changed, [o.id for o in orders]

    def _clear_referral_hashes(self, uow: UnitOfWork, uid: UUID, order_ids: list[UUID]) -> int:
        rids = [r.rid for r in uow.referrals.where(referrer_user_id=uid)]
        events: dict[UUID, ReferralEvent] = {}
        if rids:
            events.update((e.id, e) for e in uow.referral_events.where(rid=one_of(rids)))
        if order_ids:
            own = uow.referral_events.where(order_id=one_of(order_ids))
            events.update((e.id, e) for e in own)
            # A conversion names the click it came from: that click was the shopper's too.
            clicks = {UUID(e.metadata["click_id"]) for e in own if _is_uuid(e.metadata.get("click_id"))}
            events.update((e.id, e) for e in uow.referral_events.get_many(clicks))
        changed = 0
        for event in events.values():
            metadata = {k: v for k, v in event.metadata.items() if k not in DEVICE_METADATA_KEYS}
            if event.ip_hash or event.device_fingerprint or len(metadata) != len(event.metadata):
                uow.referral_events.update(
                    attrs.evolve(event, ip_hash=None, device_fingerprint=None, metadata=JsonMap(metadata))
                )
                changed += 1
        return changed

    def _deactivate_referrals(self, uow: UnitOfWork, uid: UUID, now: datetime) -> int:
        """End the shopper's share links now: no click counts and no purchase earns an erased
        person a reward; orders already placed through them keep their ``rid``. Each link is
        locked as attribution locks it, so a payment being attributed either finishes first
        or sees the link ended."""
        changed = 0
        for referral in uow.referrals.where(referrer_user_id=uid, order_by="rid"):
            locked = uow.referrals.lock(referral.rid)
            if locked.expires_at is None or locked.expires_at > now:
                uow.referrals.update(attrs.evolve(locked, expires_at=now))
                changed += 1
        return changed

    def _forget_order_requests(self, uow: UnitOfWork, order_ids: list[UUID]) -> int:
        """Drop the idempotency records of the shopper's checkouts: their keys are the client's
        own strings, which may carry anything. (Payment webhook records name provider events
        only and stay, so a replayed webhook is still recognised.)"""
        if not order_ids:
            return 0
        records = uow.idempotency_keys.where(scope=PLACE_SCOPE, result_id=one_of(order_ids))
        for record in records:
            uow.idempotency_keys.delete((record.scope, record.key))
        return len(records)

    def _delete_objects(self, keys: Iterable[str], region: str) -> int:
        deleted = 0
        failed = 0
        for key in dict.fromkeys(keys):
            try:
                if self._ctx.objects.exists(key, region=region):
                    self._ctx.objects.delete(key, region=region)
                    deleted += 1
            except ValidationError:
                continue  # not a valid object key (a photo reference the host made up): nothing stored
            except FitTwinError:
                failed += 1
        if failed:
            raise StoreUnavailable(
                f"{failed} media object(s) of this user could not be deleted: run erase_user again"
            )
        return deleted

    # ------------------------------------------------------------------ retention

    def purge_expired(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = False,
        policy: RetentionPolicy | None = None,
        actor: Actor,
    ) -> PurgeReport:
        """Delete what the retention policy no longer keeps (staff only); with ``dry_run``,
        only report what would go.

        * closed orders whose ``closed_at`` is older than ``closed_order_days``, with their
          items, the referral events and ledger entries of the order and their idempotency
          records — but only once every reward of the order is ``paid`` or ``cancelled``;
        * ``paid``/``cancelled`` ledger entries unchanged for ``settled_reward_days``;
        * event log months that ended more than ``event_log_months`` months before ``now``'s
          month began (whole partitions on PostgreSQL).

        * the ip and device hashes (and device metadata) of referral clicks older than
          ``click_hash_days``; soft-deleted addresses older than ``deleted_row_days`` that
          nothing refers to, and the sources (and photo objects) of avatars soft-deleted that
          long ago; erased profiles older than ``erased_profile_days`` that nothing refers to.
          These go one row per transaction: a row another transaction changed meanwhile is
          skipped and counted in ``conflicts`` (running again is safe).

        ``now`` defaults to the clock's time and may not be later than it (a future ``now``
        would purge what the policy still keeps, audit months included); ``policy`` defaults
        to ``Settings.retention``.
        """
        acting = actor
        authorize(acting, "privacy.purge_expired")
        rules.boolean.check("dry_run", dry_run)
        moment = self.now() if now is None else now
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise ValidationError("now", "must be a datetime with a time zone")
        if moment > self.now():
            raise ValidationError("now", "must not be in the future")
        retention = policy or self._ctx.settings.retention
        if not isinstance(retention, RetentionPolicy):
            raise ValidationError("policy", "must be a RetentionPolicy")
        closed_before = moment - timedelta(days=retention.closed_order_days)
        settled_before = moment - timedelta(days=retention.settled_reward_days)
        logs_before = _months_before(moment, retention.event_log_months)

        tally: dict[str, int] = dict.fromkeys(_PURGE_COUNTS, 0)
        gone_entries: set[UUID] = set()
        self._purge_rows(
            self._expired_orders,
            lambda uow, order, cutoff, dry: self._purge_order(uow, order, cutoff, dry, gone_entries),
            closed_before,
            tally,
            dry_run,
            acting,
        )
        self._in_batches(self._purge_entries, settled_before, tally, gone_entries, dry_run, acting)
        self._in_batches(
            self._purge_click_hashes,
            moment - timedelta(days=retention.click_hash_days),
            tally,
            gone_entries,
            dry_run,
            acting,
        )
        deleted_before = moment - timedelta(days=retention.deleted_row_days)
        self._purge_rows(self._expired_addresses, self._purge_address, deleted_before, tally, dry_run, acting)
        self._purge_rows(self._expired_avatars, self._purge_avatar, deleted_before, tally, dry_run, acting)
        erased_before = moment - timedelta(days=retention.erased_profile_days)
        self._purge_rows(self._expired_profiles, self._purge_profile, erased_before, tally, dry_run, acting)
        store = self._ctx.store
        event_logs = None
        if isinstance(store, EventLogRetention):
            event_logs = store.purge_event_logs(logs_before, dry_run=dry_run)
        report = PurgeReport(
            dry_run=dry_run,
            orders=tally["orders"],
            order_items=tally["order_items"],
            referral_events=tally["referral_events"],
            reward_ledger_entries=tally["reward_ledger_entries"],
            idempotency_keys=tally["idempotency_keys"],
            event_logs=event_logs,
            orders_kept_unsettled=tally["kept"],
            closed_before=closed_before,
            rewards_settled_before=settled_before,
            event_logs_before=logs_before,
            click_hashes=tally["click_hashes"],
            addresses=tally["addresses"],
            avatars=tally["avatars"],
            profiles=tally["profiles"],
            kept_referenced=tally["kept_referenced"],
            conflicts=tally["conflicts"],
        )
        if not dry_run:
            counts = {k: v for k, v in attrs.asdict(report).items() if isinstance(v, int) and k != "dry_run"}
            self.transaction(
                lambda uow: self.record(uow, "retention.purge", "retention", PLATFORM_KEY_OWNER, counts),
                actor=acting,
            )
        return report

    def _in_batches(
        self,
        step: Callable[[UnitOfWork, datetime, UUID | None, frozenset[UUID], bool], _Batch],
        cutoff: datetime,
        tally: dict[str, int],
        gone_entries: set[UUID],
        dry_run: bool,
        actor: Actor,
    ) -> None:
        """Run ``step`` batch after batch (one unit of work each) until it finds nothing more."""
        cursor: UUID | None = None
        while True:
            seen = frozenset(gone_entries)

            def work(uow: UnitOfWork, cursor: UUID | None = cursor, seen: frozenset[UUID] = seen) -> _Batch:
                return step(uow, cutoff, cursor, seen, dry_run)

            batch = self.read(work, actor=actor) if dry_run else self.transaction(work, actor=actor)
            for name, count in batch.counts.items():  # tallied once committed: work may be retried
                tally[name] += count
            gone_entries |= batch.entries
            if batch.last is None:
                return
            cursor = batch.last

    def _expired_orders(self, uow: UnitOfWork, cutoff: datetime, cursor: UUID | None) -> list[Any]:
        # An order is closed after it was created: the created_at bound changes nothing found,
        # and lets PostgreSQL skip the order partitions of months after the cutoff.
        return _next_batch(
            uow.orders,
            cursor,
            {
                "status": OrderStatus.CLOSED,
                "closed_at": before(cutoff),
                "created_at": before(cutoff),
            },
        )

    def _purge_order(
        self, uow: UnitOfWork, order: Any, cutoff: datetime, dry_run: bool, gone_entries: set[UUID]
    ) -> _Purged:
        """One expired closed order, deleted with its dependents (unless ``dry_run``), in its
        own transaction: locked and checked again first, so an order moved meanwhile is a
        conflict, not a mistake."""
        current = uow.orders.find(order.id) if dry_run else uow.orders.lock(order.id)
        if (
            current is None
            or current.status != OrderStatus.CLOSED
            or current.closed_at is None
            or current.closed_at >= cutoff
        ):
            return "conflicts", None
        entries = uow.reward_ledger_entries.where(order_id=current.id)
        if any(e.status not in SETTLED_REWARDS for e in entries):
            return "kept", None
        items = uow.order_items.where(order_id=current.id)
        events = uow.referral_events.where(order_id=current.id)
        records = uow.idempotency_keys.where(result_id=current.id)
        counts = {
            "orders": 1,
            "order_items": len(items),
            "referral_events": len(events),
            "reward_ledger_entries": len(entries),
            "idempotency_keys": len(records),
        }
        if not dry_run:
            # Children first: every foreign key to the order is ON DELETE RESTRICT.
            for item in items:
                uow.order_items.delete(item.id)
            for event in events:
                uow.referral_events.delete(event.id)
            for entry in entries:
                uow.reward_ledger_entries.delete(entry.id)
            for record in records:
                uow.idempotency_keys.delete((record.scope, record.key))
            uow.orders.delete(current.id)
        ids = [e.id for e in entries]
        return counts, lambda: gone_entries.update(ids)  # counted once committed

    def _purge_entries(
        self,
        uow: UnitOfWork,
        settled_before: datetime,
        cursor: UUID | None,
        gone_entries: frozenset[UUID],
        dry_run: bool,
    ) -> _Batch:
        """One batch of settled ledger entries past their time (those that went with their
        order, or would have in a dry run, are not counted twice)."""
        entries = _next_batch(
            uow.reward_ledger_entries,
            cursor,
            {"status": one_of(SETTLED_REWARDS), "updated_at": before(settled_before)},
        )
        batch = _Batch(None if not entries else entries[-1].id)
        for entry in entries:
            if entry.id in gone_entries:
                continue
            batch.entries.add(entry.id)
            batch.counts["reward_ledger_entries"] += 1
            if not dry_run:
                uow.reward_ledger_entries.delete(entry.id)
        return batch

    def _purge_click_hashes(
        self,
        uow: UnitOfWork,
        cutoff: datetime,
        cursor: UUID | None,
        gone_entries: frozenset[UUID],
        dry_run: bool,
    ) -> _Batch:
        """One batch of referral events older than ``cutoff`` that still hold a keyed hash: the
        columns the declaration retains for ``click_hash_days`` cleared, device metadata dropped."""
        columns = _retained("referral_events", "click_hash_days")
        events = _next_batch(
            uow.referral_events, cursor, {"created_at": before(cutoff), "ip_hash": not_equal(None)}
        )
        batch = _Batch(None if not events else events[-1].id)
        for event in events:
            metadata = {k: v for k, v in event.metadata.items() if k not in DEVICE_METADATA_KEYS}
            batch.counts["click_hashes"] += 1
            if not dry_run:
                changes: dict[str, Any] = dict.fromkeys(columns)
                uow.referral_events.update(attrs.evolve(event, **changes, metadata=JsonMap(metadata)))
        return batch

    def _purge_rows(
        self,
        candidates: Callable[[UnitOfWork, datetime, UUID | None], list[Any]],
        purge: Callable[[UnitOfWork, Any, datetime, bool], _Purged],
        cutoff: datetime,
        tally: dict[str, int],
        dry_run: bool,
        actor: Actor,
    ) -> None:
        """Purge candidate rows one per transaction (re-read and re-checked in it); a row
        another transaction changed meanwhile is skipped and counted as a conflict. What a
        purge must do outside the database (delete objects) runs after its commit."""
        cursor: UUID | None = None
        while True:

            def scan(uow: UnitOfWork, after_id: UUID | None = cursor) -> list[Any]:
                return candidates(uow, cutoff, after_id)

            rows = self.read(scan, actor=actor)
            if not rows:
                return
            cursor = rows[-1].id
            for row in rows:

                def work(uow: UnitOfWork, row: Any = row) -> _Purged:
                    return purge(uow, row, cutoff, dry_run)

                outcome: str | Mapping[str, int]
                try:
                    outcome, then = (
                        self.read(work, actor=actor) if dry_run else self.transaction(work, actor=actor)
                    )
                except (Conflict, NotFound):
                    outcome, then = "conflicts", None
                if then is not None:
                    then()
                for name, count in ({outcome: 1} if isinstance(outcome, str) else outcome).items():
                    if name:
                        tally[name] += count

    def _expired_addresses(self, uow: UnitOfWork, cutoff: datetime, cursor: UUID | None) -> list[Any]:
        return _next_batch(uow.addresses, cursor, {"deleted_at": before(cutoff)})

    def _purge_address(self, uow: UnitOfWork, address: Any, cutoff: datetime, dry_run: bool) -> _Purged:
        current = uow.addresses.find(address.id)
        if current is None or current.deleted_at is None or current.deleted_at >= cutoff:
            return "conflicts", None
        if (
            uow.orders.count(shipping_address_id=current.id)
            or uow.orders.count(billing_address_id=current.id)
            or uow.payment_methods.count(billing_address_id=current.id)
            or uow.user_profiles.count(billing_address_id=current.id)
        ):
            return "kept_referenced", None
        if not dry_run:
            uow.addresses.delete(current.id)
        return "addresses", None

    def _expired_avatars(self, uow: UnitOfWork, cutoff: datetime, cursor: UUID | None) -> list[Any]:
        return _next_batch(uow.avatars, cursor, {"deleted_at": before(cutoff)})

    def _purge_avatar(self, uow: UnitOfWork, avatar: Avatar, cutoff: datetime, dry_run: bool) -> _Purged:
        # The row stays (a version names its mesh's object key); its personal contents go.
        current = uow.avatars.find(avatar.id)
        if current is None or current.deleted_at is None or current.deleted_at >= cutoff:
            return "conflicts", None
        if current.sources == AvatarSources() and current.mesh_ref is None:
            return "", None
        if dry_run:
            return "avatars", None
        region = self.shopper(uow, current.user_id).region
        kept = {  # photos another version that was not deleted still names stay
            photo.object_key
            for other in uow.avatars.where(user_id=current.user_id, deleted_at=None)
            for photo in other.sources.photos
        }
        keys = [photo.object_key for photo in current.sources.photos if photo.object_key not in kept]
        cleared = erased_values(current, {"sources": AvatarSources()})
        uow.avatars.update(attrs.evolve(current, **cleared, updated_at=self.now()))
        return "avatars", lambda: self._delete_objects(keys, region)

    def _expired_profiles(self, uow: UnitOfWork, cutoff: datetime, cursor: UUID | None) -> list[Any]:
        return _next_batch(uow.user_profiles, cursor, {"erased_at": before(cutoff)})

    def _purge_profile(
        self, uow: UnitOfWork, profile: UserProfile, cutoff: datetime, dry_run: bool
    ) -> _Purged:
        current = uow.user_profiles.find(profile.id)
        if current is None or current.erased_at is None or current.erased_at >= cutoff:
            return "conflicts", None
        uid = current.id
        if (
            uow.orders.count(user_id=uid)
            or uow.addresses.count(user_id=uid)
            or uow.avatars.count(user_id=uid)
            or uow.payment_methods.count(user_id=uid)
            or uow.referrals.count(referrer_user_id=uid)
        ):
            return "kept_referenced", None
        if not dry_run:
            uow.user_profiles.delete(uid)
        return "profiles", None


_Purged = tuple[str | Mapping[str, int], Callable[[], object] | None]
"""What purging one row did (a :data:`_PURGE_COUNTS` name, ``""`` for nothing, or counts by
name), and what to run once its transaction committed."""


def _next_batch(rows: Repository[Any], cursor: UUID | None, filters: Mapping[str, Any]) -> list[Any]:
    """The next :data:`PURGE_BATCH` rows of a repository matching ``filters``, in id order,
    after ``cursor`` (from the start when ``None``)."""
    where = dict(filters) if cursor is None else {**filters, "id": after(cursor)}
    return list(rows.where(order_by="id", limit=PURGE_BATCH, **where))


def _retained(table: str, setting: str) -> list[str]:
    """The personal columns of ``table`` the declaration bounds by the retention ``setting``."""
    return [c for c, p in TABLES[table].personal.items() if p.retention == setting]


_PURGE_COUNTS = (
    "orders",
    "order_items",
    "referral_events",
    "reward_ledger_entries",
    "idempotency_keys",
    "kept",
    "click_hashes",
    "addresses",
    "avatars",
    "profiles",
    "kept_referenced",
    "conflicts",
)


@attrs.define
class _Batch:
    """What one purge batch did: the last id it looked at (``None``: nothing left), counts, and
    the ledger entries it removed."""

    last: UUID | None
    counts: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(_PURGE_COUNTS, 0))
    entries: set[UUID] = attrs.field(factory=set)


def erased_values(row: Any, replacements: Mapping[str, Any]) -> dict[str, Any]:
    """What erasure writes into ``row``'s personal columns, by the declaration: ``replace``
    columns take ``replacements[column]`` (which also gives the empty value of a column whose
    field has no default), ``clear`` columns their empty value (the field's default, else
    ``None``), ``shred`` columns too where the field has a default (required ones
    stay as ciphertext under the shredded key). Other columns are left to the caller."""
    table = table_for(type(row))
    fields = attrs.fields_dict(type(row))
    values: dict[str, Any] = {}
    for column, declared in table.personal.items():
        if column in replacements:
            values[column] = replacements[column]
        elif declared.erasure is Erasure.REPLACE:
            raise ValueError(f"{table.name}.{column} is replaced on erasure: give its replacement")
        elif declared.erasure in (Erasure.CLEAR, Erasure.SHRED):
            default = fields[column].default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                values[column] = default.factory()  # type: ignore[union-attr]
            elif default is not attrs.NOTHING:
                values[column] = default
            elif declared.erasure is Erasure.CLEAR:
                values[column] = None  # the entity's validators refuse it where a column is required
    return values


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return value is not None


def _without(entity: Any, *columns: str) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(entity)
    for column in columns:
        data.pop(column, None)
    return data


def _months_before(moment: datetime, months: int) -> datetime:
    """The first instant (UTC) of the month ``months`` months before ``moment``'s month."""
    utc = moment.astimezone(UTC)
    index = utc.year * 12 + (utc.month - 1) - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


__all__ = [
    "DEVICE_METADATA_KEYS",
    "ERASED_EMAIL_DOMAIN",
    "EXPORT_FORMAT",
    "SETTLED_REWARDS",
    "ErasureReport",
    "Privacy",
    "PurgeReport",
    "erased_values",
]
