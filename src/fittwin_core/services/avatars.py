"""``ft.avatars``: versioned 3D avatars whose meshes live in the shopper's region of the object store.

A version is requested (``processing``), then completed with its mesh (``ready``) or failed.
The mesh is uploaded *before* the avatar is marked ready, by a compare-and-set that expects
``processing``: if that transaction fails, the upload is deleted again, so ``mesh_ref`` never
names a missing object. When a version becomes ready, the meshes of earlier versions are
deleted and their ``mesh_ref`` cleared; earlier versions still processing are failed as
superseded. Before uploading, a completion claims its version (a row in
``idempotency_keys``, scope ``avatars.complete``), so two completions of one version never
share an upload. :meth:`Avatars.clean_up` removes uploads a crash left behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Avatar,
    AvatarSources,
    AvatarStatus,
    Conflict,
    IdempotencyRecord,
    InvalidTransition,
    NotFound,
    TransientConflict,
    UserProfile,
    ValidationError,
    rules,
)
from fittwin_core.outbox import Recorded
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork, after, before, not_equal
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_uuid, coerce, require
from fittwin_core.services.effects import Effects
from fittwin_core.services.permissions import authorize

log = logging.getLogger("fittwin.avatars")

MESH_CONTENT_TYPE = "model/gltf-binary"
"""Meshes are stored as binary glTF."""

COMPLETE_SCOPE = "avatars.complete"
"""The ``idempotency_keys`` scope of completion claims: one row per version being completed."""

MAX_MESH_BYTES = 256 * 1024 * 1024
"""The largest mesh :meth:`Avatars.complete` accepts (256 MiB)."""

DEFAULT_STALE_AFTER = timedelta(hours=1)
"""How long a version may stay ``processing`` before :meth:`Avatars.clean_up` fails it."""

_reason = rules.text(max_len=500)
_confidence = rules.integer(ge=0, le=100)


def mesh_key(user_id: UUID, version: int) -> str:
    """The object key of a version's mesh: ``avatars/<user_id>/v<version>.glb``."""
    return f"avatars/{user_id}/v{version}.glb"


@attrs.frozen
class CleanupReport:
    """What :meth:`Avatars.clean_up` did: versions failed as stale, and orphaned objects removed."""

    failed_stale: int
    objects_removed: int


class Avatars(Service):
    """``ft.avatars``: request, complete, fail, fetch and remove a shopper's avatars."""

    def __init__(
        self, ctx: Context, runner: UnitOfWorkRunner | None = None, effects: Effects | None = None
    ) -> None:
        super().__init__(ctx, runner)
        self._effects = effects or Effects(ctx, runner)

    # ------------------------------------------------------------------ reading

    def get(self, avatar_id: UUID, *, actor: Actor) -> Avatar:
        """One avatar version (soft-deleted ones too), for its shopper or staff."""
        aid = as_uuid(avatar_id, "avatar_id")

        def work(uow: UnitOfWork) -> Avatar:
            avatar = uow.avatars.get(aid)
            authorize(actor, "avatars.read", user_id=avatar.user_id)
            return avatar

        return self.read(work, actor=actor)

    def for_user(
        self,
        user_id: UUID,
        *,
        include_deleted: bool = False,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Avatar]:
        """A page of the shopper's avatar versions, oldest first (soft-deleted ones only when asked)."""
        uid = as_uuid(user_id, "user_id")
        window = PageRequest.of(limit, after)
        acting = actor
        authorize(acting, "avatars.read", user_id=uid)

        def work(uow: UnitOfWork) -> Page[Avatar]:
            self.shopper(uow, uid)
            if include_deleted:
                return window.read(uow.avatars, user_id=uid)
            return window.read(uow.avatars, user_id=uid, deleted_at=None)

        return self.read(work, actor=acting)

    def current(self, user_id: UUID, *, actor: Actor) -> Avatar | None:
        """The shopper's newest ``ready`` avatar, or ``None``."""
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "avatars.read", user_id=uid)

        def work(uow: UnitOfWork) -> Avatar | None:
            self.shopper(uow, uid)
            newest = uow.avatars.where(
                user_id=uid,
                deleted_at=None,
                status=AvatarStatus.READY,
                mesh_ref=not_equal(None),
                order_by="-version",
                limit=1,
            )
            return newest[0] if newest else None

        return self.read(work, actor=actor)

    def mesh(self, avatar_id: UUID, *, actor: Actor) -> bytes:
        """The mesh bytes of a ``ready`` avatar (:class:`NotFound` when it has none)."""
        avatar, profile = self._with_mesh(avatar_id, actor)
        assert avatar.mesh_ref is not None
        return self._ctx.objects.get(avatar.mesh_ref, region=profile.region)

    def mesh_url(self, avatar_id: UUID, *, expires_in: int = 3600, actor: Actor) -> str:
        """A time-limited URL for the mesh of a ``ready`` avatar (presigned on S3).

        :class:`NotFound` when the avatar has no mesh (not ready, superseded or deleted);
        :class:`~fittwin_core.domain.errors.ConfigurationError` where the object store cannot
        sign URLs (``memory://``, ``file://``: use :meth:`mesh` there).
        """
        avatar, profile = self._with_mesh(avatar_id, actor)
        assert avatar.mesh_ref is not None
        return self._ctx.objects.signed_url(avatar.mesh_ref, expires_in=expires_in, region=profile.region)

    def _with_mesh(self, avatar_id: UUID, actor: Actor) -> tuple[Avatar, UserProfile]:
        aid = as_uuid(avatar_id, "avatar_id")

        def work(uow: UnitOfWork) -> tuple[Avatar, UserProfile]:
            avatar = uow.avatars.get(aid)
            authorize(actor, "avatars.read", user_id=avatar.user_id)
            profile = self.shopper(uow, avatar.user_id)
            if avatar.deleted_at is not None or avatar.mesh_ref is None:
                raise NotFound("avatar mesh", aid)
            return avatar, profile

        return self.read(work, actor=actor)

    # ------------------------------------------------------------------ lifecycle

    def request(self, user_id: UUID, sources: AvatarSources | Mapping[str, Any], *, actor: Actor) -> Avatar:
        """Start a new avatar version (``processing``) built from ``sources``.

        Versions are numbered 1, 2, 3, ... per shopper, never reused, and unique even when
        requests race (the shopper's row is locked while the next number is taken).
        """
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "avatars.manage", user_id=uid)
        built = coerce(sources, AvatarSources, "sources")

        def work(uow: UnitOfWork) -> Avatar:
            self.live_shopper(uow, uid)  # one version number at a time; never for an erased account
            latest = uow.avatars.where(user_id=uid, order_by="-version", limit=1)
            now = self.now()
            avatar = Avatar(
                id=self._ctx.ids.new_id(),
                user_id=uid,
                version=latest[0].version + 1 if latest else 1,
                sources=built,
                created_at=now,
                updated_at=now,
            )
            try:
                uow.avatars.add(avatar)
            except Conflict as exc:  # the unique (user_id, version) index: take the next number
                raise TransientConflict("avatar version taken concurrently") from exc
            return avatar

        return self.transaction(work, actor=acting)

    def complete(self, avatar_id: UUID, mesh: bytes, *, confidence: int, actor: Actor) -> Avatar:
        """Store the mesh of a ``processing`` version and mark it ``ready``.

        The version is claimed first, in a transaction of its own: a second completion of the
        same version while one is under way is a :class:`Conflict` and uploads nothing. The
        mesh is uploaded next (to ``avatars/<user_id>/v<version>.glb`` in the shopper's
        region), then the avatar is moved to ``ready`` by a compare-and-set. If the upload
        fails, the avatar stays ``processing`` (call again, or :meth:`fail` it); if the move
        fails, the upload is deleted. Earlier versions' meshes are deleted afterwards and
        their ``mesh_ref`` cleared. :class:`InvalidTransition` unless the version is
        ``processing``; :class:`Conflict` when a newer version is already ready.
        """
        aid = as_uuid(avatar_id, "avatar_id")
        if not isinstance(mesh, bytes | bytearray | memoryview):
            raise ValidationError("mesh", "must be bytes")
        data = bytes(mesh)
        require(0 < len(data) <= MAX_MESH_BYTES, "mesh", f"must be 1 byte to {MAX_MESH_BYTES} bytes")
        _confidence.check("confidence", confidence)

        token = self._ctx.ids.new_token().hex

        def claim(uow: UnitOfWork) -> tuple[Avatar, UserProfile]:
            avatar = uow.avatars.get(aid)
            authorize(actor, "avatars.manage", user_id=avatar.user_id)
            profile = self.shopper(uow, avatar.user_id, lock=True)
            current = uow.avatars.lock(aid)
            self._completable(uow, current)
            if uow.idempotency_keys.find((COMPLETE_SCOPE, str(aid))) is not None:
                raise Conflict(f"avatar {aid} is being completed by another request")
            try:
                uow.idempotency_keys.add(
                    IdempotencyRecord(
                        scope=COMPLETE_SCOPE,
                        key=str(aid),
                        request_hash=token,
                        result_id=aid,
                        created_at=self.now(),
                    )
                )
            except Conflict:
                raise Conflict(f"avatar {aid} is being completed by another request") from None
            return current, profile

        # The version is claimed (committed) before anything is uploaded: of two completions
        # of one version, the loser stops here and never writes to the winner's key.
        avatar, profile = self.transaction(claim, actor=actor)
        key = mesh_key(avatar.user_id, avatar.version)
        try:
            self._ctx.objects.put(key, data, content_type=MESH_CONTENT_TYPE, region=profile.region)
        except BaseException:
            self._release_claim(aid, token, actor)
            raise

        recorded: list[Recorded] = []

        def mark_ready(uow: UnitOfWork) -> Avatar:
            recorded.clear()
            self.shopper(uow, avatar.user_id, lock=True)  # one completion per shopper at a time
            current = uow.avatars.get(aid)
            self._completable(uow, current)
            record = uow.idempotency_keys.find((COMPLETE_SCOPE, str(aid)))
            if record is None or record.request_hash != token:
                raise Conflict(f"avatar {aid} is no longer claimed by this completion")
            uow.idempotency_keys.delete((COMPLETE_SCOPE, str(aid)))
            now = self.now()
            superseded = self._supersede(uow, current, now)
            ready = attrs.evolve(
                current,
                status=AvatarStatus.READY,
                mesh_ref=key,
                generated_at=now,
                confidence=confidence,
                failure_reason=None,
                updated_at=now,
            )
            uow.avatars.update(ready, expected={"status": AvatarStatus.PROCESSING, "deleted_at": None})
            self._effects.outbox.delete_objects(uow, superseded, profile.region, recorded)
            return ready

        try:
            ready = self.transaction(mark_ready, actor=actor)
        except BaseException:
            self._discard_upload(aid, key, profile.region, actor)
            self._release_claim(aid, token, actor)
            raise
        self._effects._deliver_after_commit(recorded)
        return ready

    def fail(self, avatar_id: UUID, reason: str, *, actor: Actor) -> Avatar:
        """Mark a ``processing`` version ``failed`` with ``reason`` (no personal data, please).

        Failing a failed version again changes nothing; a ready one is an
        :class:`InvalidTransition`. Any upload left under the version's key is deleted.
        """
        aid = as_uuid(avatar_id, "avatar_id")
        _reason.check("reason", reason)

        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> tuple[Avatar, str]:
            recorded.clear()
            avatar = uow.avatars.get(aid)
            authorize(actor, "avatars.manage", user_id=avatar.user_id)
            profile = self.shopper(uow, avatar.user_id)
            if avatar.status == AvatarStatus.FAILED:
                return avatar, profile.region
            if avatar.status != AvatarStatus.PROCESSING:
                raise InvalidTransition("avatar", avatar.status, AvatarStatus.FAILED)
            failed = attrs.evolve(
                avatar, status=AvatarStatus.FAILED, failure_reason=reason, updated_at=self.now()
            )
            uow.avatars.update(failed, expected={"status": AvatarStatus.PROCESSING})
            # Deleted once committed: with the version no longer processing, no completion can
            # make this key live.
            self._effects.outbox.delete_objects(
                uow, [mesh_key(failed.user_id, failed.version)], profile.region, recorded
            )
            return failed, profile.region

        failed, _ = self.transaction(work, actor=actor)
        self._effects._deliver_after_commit(recorded)
        return failed

    def delete(self, avatar_id: UUID, *, actor: Actor) -> Avatar:
        """Soft-delete a version: ``deleted_at`` is set, ``mesh_ref`` cleared and the mesh deleted."""
        aid = as_uuid(avatar_id, "avatar_id")

        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> tuple[Avatar, str]:
            recorded.clear()
            avatar = uow.avatars.lock(aid)
            authorize(actor, "avatars.manage", user_id=avatar.user_id)
            profile = self.shopper(uow, avatar.user_id)
            if avatar.deleted_at is not None:
                return avatar, profile.region
            now = self.now()
            removed = attrs.evolve(avatar, deleted_at=now, mesh_ref=None, updated_at=now)
            uow.avatars.update(removed)
            self._effects.outbox.delete_objects(
                uow, [mesh_key(removed.user_id, removed.version)], profile.region, recorded
            )
            return removed, profile.region

        removed, _ = self.transaction(work, actor=actor)
        self._effects._deliver_after_commit(recorded)
        return removed

    def clean_up(self, *, stale_after: timedelta = DEFAULT_STALE_AFTER, actor: Actor) -> CleanupReport:
        """Periodic job (staff): fail versions ``processing`` for longer than ``stale_after``, and
        delete objects stored under the key of any version that has no ``mesh_ref`` (failed,
        superseded, soft-deleted: uploads a crash or an unreachable store left behind), and
        the completion claims of versions no longer processing."""
        acting = actor
        authorize(acting, "avatars.clean_up")
        if not isinstance(stale_after, timedelta) or stale_after <= timedelta(0):
            raise ValidationError("stale_after", "must be a positive timedelta")
        cutoff = self.now() - stale_after
        stale = self.read(
            lambda uow: uow.avatars.where(status=AvatarStatus.PROCESSING, updated_at=before(cutoff)),
            actor=acting,
        )
        failed = removed = 0
        regions = self.read(
            lambda uow: {p.id: p.region for p in uow.user_profiles.get_many({a.user_id for a in stale})},
            actor=acting,
        )
        for avatar in stale:
            key, region = mesh_key(avatar.user_id, avatar.version), regions.get(avatar.user_id)
            uploaded = region is not None and self._ctx.objects.exists(key, region=region)
            try:
                self.fail(avatar.id, "timed out while processing", actor=acting)  # deletes the upload
            except (Conflict, InvalidTransition, TransientConflict):  # moved or held meanwhile: next run
                continue
            failed += 1
            removed += uploaded

        def orphans(uow: UnitOfWork) -> list[tuple[str, str]]:
            rows = uow.avatars.where(mesh_ref=None, status=not_equal(AvatarStatus.PROCESSING))
            region = {p.id: p.region for p in uow.user_profiles.get_many({a.user_id for a in rows})}
            return [(mesh_key(a.user_id, a.version), region[a.user_id]) for a in rows if a.user_id in region]

        for key, region in self.read(orphans, actor=acting):
            if self._ctx.objects.exists(key, region=region):
                self._ctx.objects.delete(key, region=region)
                removed += 1

        def released_claims(uow: UnitOfWork) -> None:
            # A completion that crashed between its claim and its end left the claim behind.
            for record in uow.idempotency_keys.where(scope=COMPLETE_SCOPE):
                held = uow.avatars.find(record.result_id)
                if held is None or held.status != AvatarStatus.PROCESSING or held.deleted_at is not None:
                    uow.idempotency_keys.delete((record.scope, record.key))

        self.transaction(released_claims, actor=acting)
        return CleanupReport(failed_stale=failed, objects_removed=removed)

    # ------------------------------------------------------------------ helpers

    def _completable(self, uow: UnitOfWork, avatar: Avatar) -> None:
        if avatar.deleted_at is not None:
            raise Conflict(f"avatar {avatar.id} was deleted")
        if avatar.status != AvatarStatus.PROCESSING:
            raise InvalidTransition("avatar", avatar.status, AvatarStatus.READY)
        newer = uow.avatars.where(
            user_id=avatar.user_id, version=after(avatar.version), status=AvatarStatus.READY, deleted_at=None
        )
        if newer:
            raise Conflict(f"a newer version of avatar {avatar.id} is already ready")

    def _supersede(self, uow: UnitOfWork, avatar: Avatar, now: Any) -> list[str]:
        """Clear the meshes of earlier versions and fail those still processing; the keys to delete."""
        keys = []
        for older in uow.avatars.where(user_id=avatar.user_id, version=before(avatar.version)):
            if older.mesh_ref is not None:
                keys.append(older.mesh_ref)
                uow.avatars.update(attrs.evolve(older, mesh_ref=None, updated_at=now))
            elif older.status == AvatarStatus.PROCESSING and older.deleted_at is None:
                keys.append(mesh_key(older.user_id, older.version))
                uow.avatars.update(
                    attrs.evolve(
                        older,
                        status=AvatarStatus.FAILED,
                        failure_reason=f"superseded by version {avatar.version}",
                        updated_at=now,
                    ),
                    expected={"status": AvatarStatus.PROCESSING},
                )
        return keys

    def _release_claim(self, avatar_id: UUID, token: str, actor: Actor) -> None:
        """Give up this completion's claim on the version (best effort: :meth:`clean_up`
        removes claims of versions no longer processing)."""

        def work(uow: UnitOfWork) -> None:
            record = uow.idempotency_keys.find((COMPLETE_SCOPE, str(avatar_id)))
            if record is not None and record.request_hash == token:
                uow.idempotency_keys.delete((COMPLETE_SCOPE, str(avatar_id)))

        with contextlib.suppress(Exception):
            self.transaction(work, actor=actor)

    def _discard_upload(self, avatar_id: UUID, key: str, region: str, actor: Actor) -> None:
        """After a failed move to ready: delete the upload unless a concurrent completion of the
        same version made it live."""
        with contextlib.suppress(Exception):
            current = self.read(lambda uow: uow.avatars.find(avatar_id), actor=actor)
            if current is not None and current.mesh_ref == key and current.deleted_at is None:
                return
            self._ctx.objects.delete(key, region=region)


__all__ = [
    "DEFAULT_STALE_AFTER",
    "MAX_MESH_BYTES",
    "MESH_CONTENT_TYPE",
    "Avatars",
    "CleanupReport",
    "mesh_key",
]
