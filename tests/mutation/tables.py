"""Table mutants: edits to the rule *tables* that mutmut (which mutates code inside functions)
does not make — each must make the specification tests fail. Run by ``make mutate``:

    python -m tests.mutation.tables

Each mutant is applied to a copy of the source tree (the working tree is never touched), the
tests of ``[tool.mutmut]`` run against it on the memory store, and the file is restored. A
surviving mutant fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDERS = Path("src/fittwin_core/domain/orders.py")
PERMISSIONS = Path("src/fittwin_core/services/permissions.py")


def _grant(action: str, old: str, new: str) -> tuple[Path, str, str]:
    return (PERMISSIONS, f'    "{action}": frozenset({{{old}}}),', f'    "{action}": frozenset({{{new}}}),')


MUTANTS: dict[str, tuple[Path, str, str]] = {
    "created → sent_to_brand is allowed (shipping an unpaid order)": (
        ORDERS,
        '    (S.CREATED, S.PAID): Transition("pay"),',
        '    (S.CREATED, S.PAID): Transition("pay"),\n'
        '    (S.CREATED, S.SENT_TO_BRAND): Transition("send_to_brand", frozenset({Effect.NOTIFY_BRAND})),',
    ),
    "paid → delivered is allowed": (
        ORDERS,
        '    (S.SENT_TO_BRAND, S.FULFILLED): Transition("fulfil"),',
        '    (S.SENT_TO_BRAND, S.FULFILLED): Transition("fulfil"),\n'
        '    (S.PAID, S.DELIVERED): Transition("deliver"),',
    ),
    "delivered → closed is removed": (
        ORDERS,
        '    (S.DELIVERED, S.CLOSED): Transition("close", close_reason=CloseReason.COMPLETED),',
        "",
    ),
    "a return no longer refunds": (
        ORDERS,
        '"receive_return", frozenset({Effect.REFUND}), CloseReason.RETURNED',
        '"receive_return", frozenset(), CloseReason.RETURNED',
    ),
    "a cancel no longer releases stock": (
        ORDERS,
        '"cancel", frozenset({Effect.RELEASE_STOCK, Effect.CANCEL_PAYMENT}), CloseReason.CANCELLED',
        '"cancel", frozenset({Effect.CANCEL_PAYMENT}), CloseReason.CANCELLED',
    ),
    "an analyst may fulfil orders": _grant(
        "orders.fulfil", "_ADMIN, _SYSTEM, _OWNER, _MANAGER", "_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST"
    ),
    "a shopper may mark their own order delivered": _grant(
        "orders.deliver", "_ADMIN, _SYSTEM, _OWNER, _MANAGER", "_ADMIN, _SYSTEM, _OWNER, _MANAGER, _SELF"
    ),
    "a shopper may no longer cancel": _grant("orders.cancel", "_ADMIN, _SYSTEM, _SELF", "_ADMIN, _SYSTEM"),
    "a manager may invite owners": _grant(
        "brands.invite_owner", "_ADMIN, _SYSTEM, _OWNER", "_ADMIN, _SYSTEM, _OWNER, _MANAGER"
    ),
    "an analyst may create products": _grant(
        "catalog.create_product",
        "_ADMIN, _SYSTEM, _OWNER, _MANAGER",
        "_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST",
    ),
    "any shopper may read any account": _grant(
        "accounts.read", "_ADMIN, _SYSTEM, _SELF", "_ADMIN, _SYSTEM, _SELF, _SHOPPER"
    ),
    "shoppers see their password hash": _grant(
        "accounts.read_password_hash", "_ADMIN, _SYSTEM", "_ADMIN, _SYSTEM, _SELF"
    ),
    "the system may reinstate rewards": _grant("rewards.reinstate", "_ADMIN", "_ADMIN, _SYSTEM"),
    "shoppers read platform analytics": _grant(
        "analytics.read", "_ADMIN, _SYSTEM", "_ADMIN, _SYSTEM, _SHOPPER"
    ),
    "anonymous visitors may place orders": _grant(
        "orders.place", "_ADMIN, _SYSTEM, _SELF", "_ADMIN, _SYSTEM, _SELF, _ANONYMOUS"
    ),
}


def tests_to_run() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [*config["pytest_add_cli_args_test_selection"], *config["pytest_add_cli_args"]]


def passes(tree: Path) -> bool:
    """Whether the tests pass on the copy ``tree`` as it is."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    command = [sys.executable, "-m", "pytest", *tests_to_run()]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, check=False).returncode == 0


def run(tree: Path, name: str, path: Path, old: str, new: str) -> bool:
    """Whether the mutant was killed (its tests failed) in the copy ``tree``."""
    target = tree / path
    source = target.read_text()
    assert source.count(old) == 1, f"{name}: the text to mutate is not in {path.name} exactly once"
    try:
        target.write_text(source.replace(old, new))
        return not passes(tree)
    finally:
        target.write_text(source)


def main() -> int:
    survived = []
    tree = Path(tempfile.mkdtemp(prefix="fittwin-table-mutants-"))
    for part in ("src", "tests"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    if not passes(tree):  # a mutant is only "killed" by tests that pass without it
        print("the tests fail on the unmutated tree: fix them first")
        return 2
    for name, (path, old, new) in MUTANTS.items():
        killed = run(tree, name, path, old, new)
        print(f"{'killed  ' if killed else 'SURVIVED'}  {name}", flush=True)
        if not killed:
            survived.append(name)
    print(f"table mutants: {len(MUTANTS) - len(survived)}/{len(MUTANTS)} killed")
    shutil.rmtree(tree, ignore_errors=True)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
