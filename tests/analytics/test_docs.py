"""The examples in docs/analytics.md run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 8


def test_the_examples_run_in_order() -> None:
    namespace: dict[str, object] = {}
    for example in EXAMPLES:
        exec(compile(example, str(DOC), "exec"), namespace)
    files = namespace["files"]
    assert isinstance(files, list) and files
    assert namespace["report"].orders > 100  # type: ignore[attr-defined]
