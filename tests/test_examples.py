"""The scripts in ``examples/`` run as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=EXAMPLES.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_checkout_app_checks_out_over_http() -> None:
    out = run("examples/checkout_app.py", "--self-test")
    assert "order status: paid" in out and "checkout flow ok" in out


def test_the_fastapi_app_checks_out_through_its_test_client() -> None:
    out = run("examples/fastapi_app.py", "--self-test")
    assert "order status: paid" in out and "fastapi flow ok" in out


def test_the_brand_onboarding_script() -> None:
    out = run("examples/brand_onboarding.py")
    assert "Fjord Denim (active)" in out and "3 variants, active" in out
    assert "waist 73.66–78.74" in out


@pytest.mark.slow
def test_the_property_test_example_runs_under_pytest_and_alone() -> None:
    assert "properties hold" in run("examples/property_test.py")
    run("-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/property_test.py")
