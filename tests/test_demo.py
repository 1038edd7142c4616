"""``fittwin demo`` tells the whole story on the embedded default and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fittwin_adapters.cli import main

CHAPTERS = (
    "Brand onboarding",
    "Catalog",
    "Shopper",
    "Fit and checkout",
    "Order lifecycle",
    "Referral reward",
    "Avatar",
    "Data-subject requests",
    "Summary",
)


def test_demo_on_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert time.perf_counter() - started < 30
    for chapter in CHAPTERS:
        assert f"\n{chapter}\n" in out
    assert "same order" in out and "paid, applied once" in out and "flagged" in out
    assert "v1 mesh deleted" in out and "refused" in out and "already erased" in out
    assert "CHANGED" not in out and "KEPT" not in out
    assert "Ada Lovelace" not in out


@pytest.mark.postgres
def test_demo_on_postgres(postgres_url: object, capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    assert main(["demo", "--store", url]) == 0
    out = capsys.readouterr().out
    for chapter in CHAPTERS:
        assert f"\n{chapter}\n" in out
    assert "postgresql" in out


def test_the_console_script_reports_user_mistakes_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fittwin_adapters.cli", "demo", "--store", "mysql://nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "unsupported store URL" in done.stderr
    assert "Traceback" not in done.stderr
