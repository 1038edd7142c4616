"""The object store contract, run on memory://, file:// and s3:// (moto)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from fittwin_adapters.objectstore import FsspecObjectStore, InterruptedObjectStore
from fittwin_core.ports import ObjectStore
from fittwin_core.testing.contract.objects import ObjectStoreContract
from tests.support.s3 import MotoS3

REGIONS = ("eu", "us")


class FsspecFixtures:
    """Stores over the ``urls`` (one per region) and ``storage_options`` a backend provides."""

    @pytest.fixture
    def storage_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def objects(self, urls: dict[str, str], storage_options: dict[str, Any]) -> ObjectStore:
        return FsspecObjectStore(urls, default_region="eu", storage_options=storage_options)

    @pytest.fixture
    def interrupted_objects(self, urls: dict[str, str], storage_options: dict[str, Any]) -> ObjectStore:
        return InterruptedObjectStore(
            urls, default_region="eu", storage_options=storage_options, fail_after=16
        )

    @pytest.fixture
    def regions(self) -> tuple[str, ...]:
        return REGIONS


class FolderBackendFixtures(FsspecFixtures):
    """Capabilities of backends with folders and no way to sign (memory://, file://)."""

    @pytest.fixture
    def supports_signing(self) -> bool:
        return False

    @pytest.fixture
    def supports_nested_keys(self) -> bool:
        return False


class TestMemoryObjects(FolderBackendFixtures, ObjectStoreContract):
    @pytest.fixture
    def urls(self) -> dict[str, str]:
        # memory:// is one store per process: a fresh bucket name keeps each test on its own.
        run = uuid.uuid4().hex
        return {region: f"memory://fittwin-{run}-{region}/media" for region in REGIONS}


class TestFileObjects(FolderBackendFixtures, ObjectStoreContract):
    @pytest.fixture
    def urls(self, tmp_path: Path) -> dict[str, str]:
        return {region: (tmp_path / region / "media").as_uri() for region in REGIONS}


@pytest.mark.s3
class TestS3Objects(FsspecFixtures, ObjectStoreContract):
    @pytest.fixture
    def urls(self, s3_urls: dict[str, str]) -> dict[str, str]:
        # One bucket per region, as production would keep them.
        return s3_urls

    @pytest.fixture
    def storage_options(self, moto_s3: MotoS3) -> dict[str, Any]:
        return dict(moto_s3.storage_options)

    @pytest.fixture
    def supports_signing(self) -> bool:
        return True

    @pytest.fixture
    def supports_nested_keys(self) -> bool:
        return True
