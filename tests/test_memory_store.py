"""The memory store against the shared store contract, plus what only it promises."""

from __future__ import annotations

import threading

import pytest

from fittwin_adapters.memory import MemoryStore
from fittwin_core.domain import Conflict, TransientConflict
from fittwin_core.schema import TABLES
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
