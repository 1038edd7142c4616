"""Fixtures of the analytics tests: the contract's story on the backend under test, and S3."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fittwin_core import FitTwin
from fittwin_core.testing.clock import FrozenClock
from fittwin_core.testing.contract.analytics import Story, build_story
from tests.support.s3 import MotoS3, moto_s3_session


@pytest.fixture
def story(ft: FitTwin, clock: FrozenClock) -> Story:
    """The analytics contract's three-month story, built through the services on ``ft``."""
    return build_story(ft, clock)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server, started once per session (skipped, or failed under CI=true, if it cannot start)."""
    yield from moto_s3_session()
