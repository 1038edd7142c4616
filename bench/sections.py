"""Writing a benchmark's results into ``docs/benchmarks.md``: one ``## Heading`` section each."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the ``## heading`` section of ``path`` with ``section`` (or append it), leaving
    the other sections alone."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
