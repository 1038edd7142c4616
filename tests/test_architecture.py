"""The rules of the house that code structure must keep (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import fittwin_core

INFRASTRUCTURE = (
    "sqlalchemy",
    "psycopg",
    "fsspec",
    "s3fs",
    "stripe",
    "argon2",
    "cryptography",
    "boto3",
    "botocore",
)
CORE = Path(fittwin_core.__file__).parent


def _core_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages([str(CORE)], prefix="fittwin_core.")
        if not info.name.startswith("fittwin_core.testing")
    ]


def test_fittwin_core_imports_no_infrastructure_library() -> None:
    modules = _core_modules()
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    )
    offending = [m for m in loaded if m.split(".")[0] in INFRASTRUCTURE]
    assert len(modules) > 10
    assert offending == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_and_fit_do_not_reach_outwards() -> None:
    for package in ("domain", "fit"):
        for path in (CORE / package).rglob("*.py"):
            forbidden = {
                name
                for name in _imports(path)
                if name.startswith(("fittwin_core.services", "fittwin_core.ports", "fittwin_adapters"))
            }
            assert forbidden == set(), path


def test_adapters_do_not_import_each_other() -> None:
    adapters = Path(fittwin_core.__file__).parent.parent / "fittwin_adapters"
    packages = {p.name for p in adapters.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for package in packages:
        for path in (adapters / package).rglob("*.py"):
            others = {
                name.split(".")[1]
                for name in _imports(path)
                if name.startswith("fittwin_adapters.") and name.split(".")[1] in packages - {package}
            }
            assert others == set(), path
