"""The documentation: every page's examples run as written, and the site builds without a
broken reference.

In a page, a ```` ```python ```` block runs; one starting with ``>>>`` is checked as a doctest
(its output must match); blocks of one page share their names, in order. Illustrative code that
needs outside services is fenced ```` ```py ```` and not run.
"""

from __future__ import annotations

import doctest
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_page(page: Path) -> None:
    """Run the page's examples; raise AssertionError describing the first failure."""
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    parser = doctest.DocTestParser()
    for number, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8"))):
        block = match.group(1)
        line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 2
        where = f"{page.name}:{line}"
        if block.lstrip().startswith(">>>"):
            test = parser.get_doctest(block, namespace, where, str(page), line)
            report = io.StringIO()
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            result = runner.run(test, out=report.write, clear_globs=False)
            assert result.failed == 0, f"example {number} at {where} failed:\n{report.getvalue()}"
            namespace = test.globs
        else:
            exec(compile(block, where, "exec"), namespace)


def test_every_page_has_runnable_examples() -> None:
    quiet = {"benchmarks.md", "index.md", "postgres.md"}
    for page in PAGES:
        if page.name not in quiet:
            assert BLOCK.search(page.read_text(encoding="utf-8")), f"{page.name} has no runnable example"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_examples_run(page: Path) -> None:
    run_page(page)


def test_the_permissions_page_shows_the_matrix_of_the_module() -> None:
    from tests.support.permissions_table import render

    assert render() in (DOCS / "permissions.md").read_text(encoding="utf-8")


def test_the_site_builds_without_broken_references(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is a development dependency"
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr


def test_every_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        assert page.name in config, f"{page.name} is missing from mkdocs.yml's nav"


def test_the_readme_has_exactly_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, re.M)
    assert commands == ["make demo", "make test"]
