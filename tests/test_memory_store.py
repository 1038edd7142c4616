"""The memory store against the shared store contract, plus what only it promises."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

import attrs
import pytest

from fittwin_adapters.memory import MemoryStore
from fittwin_core.domain import Actor, Conflict, EventLog, TransientConflict, ValidationError
from fittwin_core.schema import TABLES
from fittwin_core.system import SystemIds
from fittwin_core.testing.contract.store import StoreContract, uniquify
from fittwin_core.testing.world import seed_world


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


def test_nested_writing_units_of_work_in_one_thread_fail_fast() -> None:
    store = MemoryStore()
    world = seed_world(store)
    with store.unit_of_work() as outer, store.unit_of_work() as inner:
        outer.brands.add(uniquify(TABLES["brands"], world["brands"]))
        with pytest.raises(Conflict, match="nested"):
            inner.brands.add(uniquify(TABLES["brands"], world["brands"]))


def test_a_writer_waiting_too_long_gets_a_transient_conflict() -> None:
    store = MemoryStore(lock_timeout=0.05)
    world = seed_world(store)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.unit_of_work() as uow:
            uow.brands.lock(world["brands"].id)
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        with store.unit_of_work() as uow, pytest.raises(TransientConflict):
            uow.brands.lock(world["brands"].id)
    finally:
        release.set()
        thread.join()


def test_audit_rows_equal_event_logs_built_and_validated_from_their_fields() -> None:
    store = MemoryStore()
    world = seed_world(store)  # an audited insert for every audited table of the world
    admin = Actor.platform(uuid.uuid4())
    with store.unit_of_work(admin) as uow:
        brand = uow.brands.get(world["brands"].id)
        uow.brands.update(attrs.evolve(brand, name=f"{brand.name} renamed"))
        uow.commit()
    with store.unit_of_work() as uow:
        logs = uow.event_logs.where(order_by="id")
    audited = {table.name for table in TABLES.values() if table.audited}
    assert {log.entity_type for log in logs} == audited & set(world.rows)
    assert {log.action for log in logs} == {"insert", "update"}
    for log in logs:
        built = EventLog(**{field.name: getattr(log, field.name) for field in attrs.fields(EventLog)})
        assert type(log) is EventLog and log == built and hash(log) == hash(built)
        assert attrs.asdict(log) == attrs.asdict(built)
    assert logs[-1].actor == admin and logs[-1].metadata["new"] == {"name": f"{brand.name} renamed"}


class _NaiveClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 15, 12, 0)  # no time zone: the broken port under test


class _TextIds(SystemIds):
    def new_id(self) -> uuid.UUID:
        return "not a uuid"  # type: ignore[return-value]  # the broken port under test


@pytest.mark.parametrize(
    ("port", "broken", "field"), [("clock", _NaiveClock(), "created_at"), ("ids", _TextIds(), "id")]
)
def test_an_audit_row_refuses_a_time_or_id_from_a_broken_port(port: str, broken: object, field: str) -> None:
    store = MemoryStore()
    world = seed_world(store)
    setattr(store, port, broken)
    with store.unit_of_work() as uow, pytest.raises(ValidationError) as refused:
        uow.brands.add(uniquify(TABLES["brands"], world["brands"]))
    assert refused.value.field == field
