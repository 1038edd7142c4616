"""Fixtures of the analytics tests: the contract's story on the backend under test, and S3."""

from __future__ import annotations

import pytest

from fittwin_core import FitTwin
from fittwin_core.testing.clock import FrozenClock
from fittwin_core.testing.contract.analytics import Story, build_story


@pytest.fixture
def story(ft: FitTwin, clock: FrozenClock) -> Story:
    """The analytics contract's three-month story, built through the services on ``ft``."""
    return build_story(ft, clock)
