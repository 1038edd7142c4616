"""Avatars: versions, meshes in the object store, regeneration, failures, soft delete, clean-up."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore, InterruptedObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AvatarStatus,
    BodyMetrics,
    ConfigurationError,
    Conflict,
    EffectKind,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.ports import ObjectStore, Store, StoredObject
from fittwin_core.services.avatars import MESH_CONTENT_TYPE, mesh_key
from fittwin_core.services.base import Settings
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import PASSWORD

SOURCES = {"measurements": {"chest_cm": 97.0}, "quick_estimate": True}
HASHER = Argon2PasswordHasher.owasp_minimum()


def mesh(n: int, size: int = 64) -> bytes:
    return b"glTF" + n.to_bytes(4, "little") + bytes([n % 256]) * size


def shopper(ft: FitTwin, tag: str = "ada", **kwargs: Any) -> Any:
    return ft.accounts.register(
        f"{tag}@example.com",
        PASSWORD,
        tag,
        BodyMetrics(height_cm=168, weight_kg=61),
        consents={"terms": True},
        **{"actor": Actor.anonymous(), **kwargs},
    )


def has_object(ft: FitTwin, user: Any, version: int) -> bool:
    return ft.context.objects.exists(mesh_key(user.id, version), region=user.region)


@pytest.fixture
def make_ft(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> Iterator[Callable[[ObjectStore], FitTwin]]:
    """A FitTwin on the test's store with the object store a test chooses."""

    keyring = LocalKeyRing.generate()  # every FitTwin made here reads the same store

    def make(objects: ObjectStore) -> FitTwin:
        return connect(
            store,
            objects=objects,
            payments=FakePayments(clock=clock),
            keyring=keyring,
            hasher=HASHER,
            clock=clock,
            ids=ids,
        )

    yield make  # the store fixture closes the store


def memory_url() -> str:
    return f"memory://fittwin-tests/{uuid.uuid4().hex}"


# ---------------------------------------------------------------------------- versions


def test_versions_count_up_per_shopper(ft: FitTwin) -> None:
    ada, bob = shopper(ft, "ada"), shopper(ft, "bob")

    first = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    second = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    bobs = ft.avatars.request(bob.id, SOURCES, actor=Actor.shopper(bob.id))

    assert (first.version, second.version, bobs.version) == (1, 2, 1)
    assert first.status == AvatarStatus.PROCESSING and first.mesh_ref is None
    assert first.sources.quick_estimate and first.sources.measurements == {"chest_cm": 97.0}
    assert [a.version for a in ft.avatars.for_user(ada.id, actor=Actor.shopper(ada.id)).items] == [1, 2]


def test_concurrent_requests_get_distinct_versions(ft: FitTwin) -> None:
    ada = shopper(ft)
    versions: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def request() -> None:
        try:
            start.wait()
            versions.append(ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_a_version_is_never_reused_after_a_soft_delete(ft: FitTwin) -> None:
    ada = shopper(ft)
    first = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    ft.avatars.delete(first.id, actor=Actor.system())

    assert ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).version == 2


def test_sources_are_validated(ft: FitTwin) -> None:
    ada = shopper(ft)

    with pytest.raises(ValidationError) as raised:
        ft.avatars.request(ada.id, {"measurements": {"chest_cm": 900}}, actor=Actor.shopper(ada.id))

    assert raised.value.field.startswith("sources.measurements")
    assert ft.avatars.for_user(ada.id, actor=Actor.shopper(ada.id)).items == ()


# ---------------------------------------------------------------------------- completion


def test_complete_uploads_then_marks_ready(ft: FitTwin, clock: FrozenClock) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    clock.advance(minutes=2)

    ready = ft.avatars.complete(avatar.id, mesh(1), confidence=81, actor=Actor.system())

    assert ready.status == AvatarStatus.READY
    assert ready.mesh_ref == f"avatars/{ada.id}/v1.glb"
    assert ready.generated_at == clock.now() and ready.confidence == 81
    assert ft.avatars.get(avatar.id, actor=Actor.system()) == ready
    assert ft.avatars.mesh(avatar.id, actor=Actor.system()) == mesh(1)
    stored = ft.context.objects.info(ready.mesh_ref, region=ada.region)
    assert stored.content_type == MESH_CONTENT_TYPE and stored.size == len(mesh(1))
    assert ft.avatars.current(ada.id, actor=Actor.shopper(ada.id)) == ready


def test_regeneration_deletes_earlier_meshes_and_clears_their_refs(ft: FitTwin) -> None:
    ada = shopper(ft)
    first = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )
    second = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(2),
        confidence=80,
        actor=Actor.system(),
    )
    third = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(3),
        confidence=90,
        actor=Actor.system(),
    )

    versions = {a.version: a for a in ft.avatars.for_user(ada.id, actor=Actor.shopper(ada.id)).items}
    assert versions[1].mesh_ref is None and versions[2].mesh_ref is None
    assert versions[3].mesh_ref == third.mesh_ref
    assert [has_object(ft, ada, v) for v in (1, 2, 3)] == [False, False, True]
    assert all(v.status == AvatarStatus.READY for v in versions.values())
    with pytest.raises(NotFound):
        ft.avatars.mesh(first.id, actor=Actor.system())
    assert ft.avatars.mesh(third.id, actor=Actor.system()) == mesh(3)
    assert second.id != third.id and ft.avatars.current(ada.id, actor=Actor.shopper(ada.id)) == versions[3]


def test_completing_a_newer_version_fails_older_ones_still_processing(ft: FitTwin) -> None:
    ada = shopper(ft)
    old = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    new = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))

    ft.avatars.complete(new.id, mesh(2), confidence=80, actor=Actor.system())

    superseded = ft.avatars.get(old.id, actor=Actor.system())
    assert superseded.status == AvatarStatus.FAILED
    assert superseded.failure_reason == "superseded by version 2"
    with pytest.raises(InvalidTransition):
        ft.avatars.complete(old.id, mesh(1), confidence=60, actor=Actor.system())
    assert not has_object(ft, ada, 1)


def test_a_stale_version_cannot_replace_a_newer_ready_one(ft: FitTwin) -> None:
    ada = shopper(ft)
    old = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    new = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    # The older version's upload starts before the newer one completes ...
    ft.context.objects.put(mesh_key(ada.id, 1), mesh(1), region=ada.region)
    ft.avatars.complete(new.id, mesh(2), confidence=80, actor=Actor.system())

    with pytest.raises(InvalidTransition):
        ft.avatars.complete(old.id, mesh(1), confidence=60, actor=Actor.system())

    assert ft.avatars.current(ada.id, actor=Actor.shopper(ada.id)) is not None
    assert ft.avatars.current(ada.id, actor=Actor.shopper(ada.id)).version == 2  # type: ignore[union-attr]
    assert not has_object(ft, ada, 1)


def test_completing_twice_is_an_invalid_transition_and_keeps_the_mesh(ft: FitTwin) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    with pytest.raises(InvalidTransition):
        ft.avatars.complete(avatar.id, mesh(9), confidence=70, actor=Actor.system())

    assert ft.avatars.mesh(avatar.id, actor=Actor.system()) == mesh(1)


@pytest.mark.parametrize(
    ("payload", "confidence", "field"),
    [(b"", 50, "mesh"), ("text", 50, "mesh"), (mesh(1), 101, "confidence"), (mesh(1), True, "confidence")],
)
def test_bad_completions_are_refused_before_uploading(
    ft: FitTwin, payload: Any, confidence: Any, field: str
) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))

    with pytest.raises(ValidationError) as raised:
        ft.avatars.complete(avatar.id, payload, confidence=confidence, actor=Actor.system())

    assert raised.value.field == field
    assert not has_object(ft, ada, 1)
    assert ft.avatars.get(avatar.id, actor=Actor.system()).status == AvatarStatus.PROCESSING


# ---------------------------------------------------------------------------- failures


def test_an_interrupted_upload_leaves_the_avatar_processing_without_a_mesh(
    make_ft: Callable[[ObjectStore], FitTwin],
) -> None:
    objects = InterruptedObjectStore(memory_url(), fail_after=16)
    ft = make_ft(objects)
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))

    with pytest.raises(StoreUnavailable):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    assert objects.interrupted == 1
    after = ft.avatars.get(avatar.id, actor=Actor.system())
    assert after.status == AvatarStatus.PROCESSING and after.mesh_ref is None
    assert not has_object(ft, ada, 1)

    objects.fail_after = None  # the connection is back: the same call now succeeds
    ready = ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())
    assert ft.avatars.mesh(ready.id, actor=Actor.system()) == mesh(1)


def test_a_silently_truncated_upload_is_caught_and_removed(make_ft: Callable[[ObjectStore], FitTwin]) -> None:
    objects = InterruptedObjectStore(memory_url(), fail_after=16, silent=True)
    ft = make_ft(objects)
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))

    with pytest.raises(StoreUnavailable):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    assert ft.avatars.get(avatar.id, actor=Actor.system()).mesh_ref is None
    assert not has_object(ft, ada, 1)


class _RacingObjectStore(FsspecObjectStore):
    """Runs ``before_put`` just before an upload starts and ``after_put`` right after it lands:
    another worker acting while a completion is under way."""

    before_put: Callable[[], None] | None = None
    after_put: Callable[[], None] | None = None

    def put(self, key: str, data: bytes, **kwargs: Any) -> StoredObject:
        early, self.before_put = self.before_put, None
        if early is not None:
            early()
        stored = super().put(key, data, **kwargs)
        hook, self.after_put = self.after_put, None
        if hook is not None:
            hook()
        return stored


def test_a_failure_between_upload_and_ready_deletes_the_upload(
    make_ft: Callable[[ObjectStore], FitTwin],
) -> None:
    objects = _RacingObjectStore(memory_url())
    ft = make_ft(objects)
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    objects.after_put = lambda: ft.avatars.fail(avatar.id, "pipeline gave up", actor=Actor.system())

    with pytest.raises(InvalidTransition):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    failed = ft.avatars.get(avatar.id, actor=Actor.system())
    assert failed.status == AvatarStatus.FAILED and failed.mesh_ref is None
    assert not has_object(ft, ada, 1)


def test_an_upload_overtaken_by_a_newer_version_is_deleted(
    make_ft: Callable[[ObjectStore], FitTwin],
) -> None:
    objects = _RacingObjectStore(memory_url())
    ft = make_ft(objects)
    ada = shopper(ft)
    old = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    new = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    # While v1's upload is on its way, v2 completes (and supersedes v1).
    objects.before_put = lambda: (
        ft.avatars.complete(new.id, mesh(2), confidence=90, actor=Actor.system()) and None
    )

    with pytest.raises(InvalidTransition):
        ft.avatars.complete(old.id, mesh(1), confidence=60, actor=Actor.system())

    assert ft.avatars.get(old.id, actor=Actor.system()).status == AvatarStatus.FAILED
    assert not has_object(ft, ada, 1)
    assert ft.avatars.mesh(new.id, actor=Actor.system()) == mesh(2)


def test_a_delete_during_the_upload_wins_and_the_upload_goes(
    make_ft: Callable[[ObjectStore], FitTwin],
) -> None:
    objects = _RacingObjectStore(memory_url())
    ft = make_ft(objects)
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    objects.after_put = lambda: ft.avatars.delete(avatar.id, actor=Actor.system())

    with pytest.raises(Conflict):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    assert ft.avatars.get(avatar.id, actor=Actor.system()).deleted_at is not None
    assert not has_object(ft, ada, 1)


def test_a_completion_racing_one_under_way_is_refused_before_it_uploads(
    make_ft: Callable[[ObjectStore], FitTwin],
) -> None:
    objects = _RacingObjectStore(memory_url())
    ft = make_ft(objects)
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    refused: list[BaseException] = []

    def second_completion() -> None:
        try:
            ft.avatars.complete(avatar.id, mesh(2), confidence=70, actor=Actor.system())
        except Conflict as exc:
            refused.append(exc)

    objects.after_put = second_completion

    ready = ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    assert len(refused) == 1  # the version was claimed: the second never uploaded
    assert ready.status == AvatarStatus.READY
    assert ft.avatars.mesh(avatar.id, actor=Actor.system()) == mesh(1)
    with pytest.raises(InvalidTransition):  # and once ready, completing again is a wrong move
        ft.avatars.complete(avatar.id, mesh(2), confidence=70, actor=Actor.system())


def test_fail_records_the_reason_and_removes_a_stray_upload(ft: FitTwin) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    ft.context.objects.put(mesh_key(ada.id, 1), mesh(1), region=ada.region)  # a crashed completion's

    failed = ft.avatars.fail(avatar.id, "not enough photos", actor=Actor.system())

    assert failed.status == AvatarStatus.FAILED and failed.failure_reason == "not enough photos"
    assert not has_object(ft, ada, 1)
    assert (
        ft.avatars.fail(avatar.id, "again", actor=Actor.system()) == failed
    )  # failing a failed version changes nothing
    with pytest.raises(InvalidTransition):
        ft.avatars.complete(avatar.id, mesh(1), confidence=50, actor=Actor.system())


def test_a_ready_avatar_cannot_fail(ft: FitTwin) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )

    with pytest.raises(InvalidTransition):
        ft.avatars.fail(avatar.id, "late", actor=Actor.system())

    assert has_object(ft, ada, 1)


# ---------------------------------------------------------------------------- reading and deleting


def test_mesh_urls_need_a_backend_that_signs(ft: FitTwin) -> None:
    ada = shopper(ft)
    processing = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    with pytest.raises(NotFound):
        ft.avatars.mesh_url(processing.id, actor=Actor.system())
    ready = ft.avatars.complete(processing.id, mesh(1), confidence=70, actor=Actor.system())

    with pytest.raises(ConfigurationError):
        ft.avatars.mesh_url(ready.id, expires_in=60, actor=Actor.system())


def test_soft_delete_clears_the_mesh_and_hides_the_version(ft: FitTwin) -> None:
    ada = shopper(ft)
    avatar = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )

    removed = ft.avatars.delete(avatar.id, actor=Actor.system())

    assert removed.deleted_at is not None and removed.mesh_ref is None
    assert not has_object(ft, ada, 1)
    assert ft.avatars.for_user(ada.id, actor=Actor.shopper(ada.id)).items == ()
    assert ft.avatars.for_user(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items == (removed,)
    assert ft.avatars.current(ada.id, actor=Actor.shopper(ada.id)) is None
    with pytest.raises(NotFound):
        ft.avatars.mesh(avatar.id, actor=Actor.system())
    assert ft.avatars.delete(avatar.id, actor=Actor.system()) == removed


def test_a_mesh_is_deleted_through_the_outbox_once_the_change_committed(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    ft = connect(
        store,
        objects=FsspecObjectStore(memory_url()),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=HASHER,
        clock=clock,
        ids=ids,
        settings=Settings(dispatch_inline=False),  # as if the process stopped after each commit
    )
    ada = shopper(ft)
    first = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )
    with pytest.raises(RuntimeError), ft.transaction(actor=Actor.system()) as tx:
        tx.avatars.delete(first.id, actor=Actor.system())
        raise RuntimeError("the host's request fails after the delete")
    assert ft.effects.dispatch(actor=Actor.system()).attempted == 0  # rolled back: nothing to delete
    assert has_object(ft, ada, 1)

    ft.avatars.delete(first.id, actor=Actor.system())
    assert has_object(ft, ada, 1)  # committed; the deletion waits in the outbox
    report = ft.effects.dispatch(actor=Actor.system())
    assert len(report.delivered) == 1 and not has_object(ft, ada, 1)
    effect = ft.effects.get(report.delivered[0], actor=Actor.system())
    assert (effect.kind, effect.payload["key"], effect.outcome) == (
        EffectKind.DELETE_OBJECT,
        mesh_key(ada.id, 1),
        "deleted",
    )
    assert ft.effects.dispatch(actor=Actor.system()).attempted == 0  # delivered once


def test_shoppers_act_only_on_their_own_avatars(ft: FitTwin) -> None:
    ada, bob = shopper(ft, "ada"), shopper(ft, "bob")
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    bob_actor = Actor.shopper(bob.id)

    with pytest.raises(PermissionDenied):
        ft.avatars.request(ada.id, SOURCES, actor=bob_actor)
    with pytest.raises(PermissionDenied):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=bob_actor)
    with pytest.raises(PermissionDenied):
        ft.avatars.delete(avatar.id, actor=bob_actor)
    with pytest.raises(PermissionDenied):
        ft.avatars.get(avatar.id, actor=bob_actor)
    assert not has_object(ft, ada, 1)

    staff = Actor.platform(uuid.uuid4())
    ready = ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=staff)
    assert ready.status == AvatarStatus.READY
    with pytest.raises(PermissionDenied):
        ft.avatars.clean_up(actor=Actor.shopper(ada.id))


def test_meshes_stay_in_the_shoppers_region(make_ft: Callable[[ObjectStore], FitTwin]) -> None:
    urls = {"eu": memory_url(), "us": memory_url()}
    ft = make_ft(FsspecObjectStore(urls, default_region="eu"))
    eve = shopper(ft, "eve", region="eu")
    sam = shopper(ft, "sam", region="us")

    ft.avatars.complete(
        ft.avatars.request(eve.id, SOURCES, actor=Actor.shopper(eve.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )
    ft.avatars.complete(
        ft.avatars.request(sam.id, SOURCES, actor=Actor.shopper(sam.id)).id,
        mesh(2),
        confidence=70,
        actor=Actor.system(),
    )

    eu_only, us_only = FsspecObjectStore(urls["eu"]), FsspecObjectStore(urls["us"])
    assert eu_only.get(mesh_key(eve.id, 1)) == mesh(1) and not us_only.exists(mesh_key(eve.id, 1))
    assert us_only.get(mesh_key(sam.id, 1)) == mesh(2) and not eu_only.exists(mesh_key(sam.id, 1))


# ---------------------------------------------------------------------------- clean-up


def test_clean_up_fails_stale_versions_and_removes_orphaned_uploads(ft: FitTwin, clock: FrozenClock) -> None:
    ada = shopper(ft)
    stale = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    # A worker uploaded v1's mesh and crashed before marking it ready.
    ft.context.objects.put(mesh_key(ada.id, 1), mesh(1), region=ada.region)
    clock.advance(hours=2)
    fresh = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
    ft.context.objects.put(mesh_key(ada.id, 2), mesh(2), region=ada.region)  # upload in flight

    report = ft.avatars.clean_up(stale_after=timedelta(hours=1), actor=Actor.system())

    assert (report.failed_stale, report.objects_removed) == (1, 1)
    assert ft.avatars.get(stale.id, actor=Actor.system()).status == AvatarStatus.FAILED
    assert ft.avatars.get(fresh.id, actor=Actor.system()).status == AvatarStatus.PROCESSING
    assert not has_object(ft, ada, 1) and has_object(ft, ada, 2)
    ready = ft.avatars.complete(fresh.id, mesh(2), confidence=70, actor=Actor.system())
    assert ft.avatars.clean_up(actor=Actor.system()).objects_removed == 0
    assert ft.avatars.mesh(ready.id, actor=Actor.system()) == mesh(2)


# ---------------------------------------------------------------------------- a property


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["request", "complete", "break", "fail", "delete"]),
            st.integers(min_value=0, max_value=5),
        ),
        max_size=14,
    )
)
def test_every_mesh_ref_names_a_stored_object_and_nothing_else_is_stored(
    steps: list[tuple[str, int]],
) -> None:
    clock = FrozenClock()
    objects = InterruptedObjectStore(memory_url(), fail_after=None)
    ft = connect(
        MemoryStore(clock=clock, ids=SequentialIds(clock)),
        objects=objects,
        keyring=LocalKeyRing.generate(),
        hasher=HASHER,
        clock=clock,
        ids=SequentialIds(clock),
    )
    ada = shopper(ft)
    for action, pick in steps:
        clock.advance(seconds=1)
        versions = ft.avatars.for_user(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items
        target = versions[pick % len(versions)] if versions else None
        try:
            if action == "request" or target is None:
                ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))
            elif action in ("complete", "break"):
                objects.fail_after = 8 if action == "break" else None
                ft.avatars.complete(target.id, mesh(target.version), confidence=50, actor=Actor.system())
            elif action == "fail":
                ft.avatars.fail(target.id, "gave up", actor=Actor.system())
            else:
                ft.avatars.delete(target.id, actor=Actor.system())
        except (StoreUnavailable, InvalidTransition, Conflict):
            pass
    versions = ft.avatars.for_user(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items
    for avatar in versions:
        stored = has_object(ft, ada, avatar.version)
        assert stored == (avatar.mesh_ref is not None), (avatar.version, avatar.status)
    live = [a for a in versions if a.mesh_ref is not None]
    assert len(live) <= 1
    assert all(a.status == AvatarStatus.READY and a.deleted_at is None for a in live)
