"""The race contract on both stores: threads on memory, processes on PostgreSQL.

On PostgreSQL one database and one pool of worker processes serve the whole class (spawning
processes is the slow part); every scenario makes data of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from fittwin_adapters.crypto import LocalKeyRing
from fittwin_core.testing.contract.races import ProcessRacers, Race, RaceContract, ThreadRacers
from tests.support.postgres import TestDatabases
from tests.support.races import racing_fittwin


class TestMemoryRaces(RaceContract):
    """Threads sharing one FitTwin on the memory store."""

    @pytest.fixture
    def race(self) -> Iterator[Race]:
        ft = racing_fittwin("memory://", LocalKeyRing.generate().to_json(), "memory://fittwin-races")
        racers = ThreadRacers(ft)
        yield Race(ft, racers)
        racers.close()


@pytest.fixture(scope="module")
def postgres_race(
    postgres_databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Race]:
    """One database and one pool of racing processes for every PostgreSQL scenario."""
    url = postgres_databases.new_database()
    keyring = LocalKeyRing.generate().to_json()
    objects = (tmp_path_factory.mktemp("race-objects") / "media").as_uri()
    factory = functools.partial(racing_fittwin, url.render_as_string(hide_password=False), keyring, objects)
    ft = factory()
    racers = ProcessRacers(factory)
    try:
        yield Race(ft, racers)
    finally:
        racers.close()
        ft.context.store.close()
        postgres_databases.drop(url)


@pytest.mark.postgres
class TestPostgresRaces(RaceContract):
    """Worker processes, each with its own FitTwin and pool, on one PostgreSQL database."""

    @pytest.fixture
    def race(self, postgres_race: Race) -> Race:
        return postgres_race


def test_objects_of_the_shared_store_are_files(tmp_path: Path) -> None:
    """Processes share meshes through the file system: the store under test writes files."""
    ft = racing_fittwin("memory://", LocalKeyRing.generate().to_json(), (tmp_path / "m").as_uri())
    ft.context.objects.put("avatars/x/v1.glb", b"glTF")
    assert any(p.is_file() for p in tmp_path.rglob("*"))
