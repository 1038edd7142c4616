"""Shared test configuration: hypothesis profiles and service fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Fast locally, more thorough in CI; FITTWIN_HYPOTHESIS_PROFILE overrides either.
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci", max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(
    os.environ.get("FITTWIN_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)
