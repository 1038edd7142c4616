"""``examples/analysis.ipynb`` runs from top to bottom (offline, on the embedded default) and
writes its charts as PNG files; any cell error fails the test."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "analysis.ipynb"
CHARTS = (
    "referral_funnel",
    "reward_liability",
    "orders_by_status",
    "size_recommendations",
    "returns_by_size",
    "returns_by_reason",
    "reliability",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_example_notebook_runs_and_saves_its_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = tmp_path / "figures"
    monkeypatch.setenv(
        "FITTWIN_NOTEBOOK_SHOPPERS", "600"
    )  # smaller than the default, big enough to calibrate
    monkeypatch.setenv("FITTWIN_NOTEBOOK_FIGURES", str(figures))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    for chart in CHARTS:
        png = figures / f"{chart}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, chart
        assert png.stat().st_size > 5_000, chart  # a drawn chart, not an empty canvas
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    stderr = [o for o in outputs if o.output_type == "stream" and o.get("name") == "stderr"]
    assert not stderr, "".join(o.get("text", "") for o in stderr)[:500]  # no progress frames, no warnings
    assert "referral funnel" in streams
    assert "proposals learned from returns" in streams
    assert "size-return rate before and after" in streams
