"""The ``fittwin`` command: the demo, database operations, jobs and key rotation.

User mistakes (a bad URL, a missing key ring, an unreachable server) end with one clear line
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fittwin_core.domain import Actor, FitTwinError

EXIT_FAILURE = 1


def _connect(args: argparse.Namespace, **kwargs: Any) -> Any:
    from fittwin_adapters.connect import connect

    return connect(args.store, **kwargs)


def cmd_demo(args: argparse.Namespace) -> int:
    """Tell the whole story on a store (the embedded default unless ``--store`` names one)."""
    from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
    from fittwin_adapters.demo import run_story
    from fittwin_core.testing.clock import FrozenClock

    keyring = LocalKeyRing.generate() if args.store.startswith("memory:") or not _has_keyring() else None
    started = time.perf_counter()
    # The story moves its own clock (a reward's hold passes in a second), starting now.
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    hasher: Any = Argon2PasswordHasher.owasp_minimum()
    if args.shoppers:
        from fittwin_adapters.synthetic import SyntheticPasswordHasher

        hasher = SyntheticPasswordHasher(hasher)  # thousands of synthetic sign-ups in seconds
    with _connect(args, hasher=hasher, keyring=keyring, clock=clock) as ft:
        if not args.store.startswith("memory:"):
            migrate = getattr(ft.store, "migrate", None)
            if migrate is not None:
                migrate()
        if args.shoppers:
            _synthetic_history(ft, args.shoppers)
        run_story(ft, sys.stdout)
        if args.shoppers:
            _print_summary(ft)
    print(f"\nDone in {time.perf_counter() - started:.1f} s on {args.store}.")
    return 0


def _synthetic_history(ft: Any, shoppers: int) -> None:
    """A year of synthetic trade before the story, with a progress bar on stderr."""
    from fittwin_adapters.synthetic import generate

    print(f"Synthetic shop: {shoppers} shoppers over the last 12 months (progress on stderr)")
    report = generate(ft, shoppers=shoppers, months=12, progress=sys.stderr)
    print(
        f"  {report.brands} brands, {report.products} products, {report.orders} orders, "
        f"{report.referral_links} referral links, {report.clicks} clicks, {report.returns} returns "
        f"in {report.seconds:.1f} s"
    )


def _print_summary(ft: Any) -> None:
    """The analytics summary over everything in the store (no pandas needed)."""
    title = "Analytics"
    print(f"\n{title}\n{'─' * len(title)}")
    lines = ft.analytics.summary().lines()
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"    {label.ljust(width)}  {value}")


def _has_keyring() -> bool:
    return bool(os.environ.get("FITTWIN_KEYRING") or os.environ.get("FITTWIN_KEYRING_FILE"))


def _postgres() -> Any:
    try:
        from fittwin_adapters import postgres
    except ImportError as exc:
        raise FitTwinError("database commands need the extra: pip install 'fittwin[postgres]'") from exc
    return postgres


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply migrations up to ``--revision`` (default: the latest)."""
    _postgres().upgrade(args.url, args.revision)
    print(f"database at {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    """Revert migrations down to ``revision`` (``base`` removes every FitTwin table)."""
    _postgres().downgrade(args.url, args.revision)
    print(f"database at {args.revision}")
    return 0


def cmd_db_partitions(args: argparse.Namespace) -> int:
    """Create monthly partitions ahead and drop those past retention."""
    report = _postgres().maintain_partitions(args.url, ahead_months=args.ahead, retain_months=args.retain)
    print(report)
    return 0


def cmd_jobs_close_returns(args: argparse.Namespace) -> int:
    """Close delivered orders whose return window is over."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        closed = ft.orders.close_expired_returns(actor=Actor.system())
    print(f"{len(closed)} orders closed")
    return 0


def cmd_jobs_release_rewards(args: argparse.Namespace) -> int:
    """Move held rewards whose hold ended to payable."""
    today = dt.date.fromisoformat(args.today) if args.today else dt.datetime.now(dt.UTC).date()
    with _connect(args, keyring=_keyring_for(args)) as ft:
        released = ft.rewards.release_due(today, actor=Actor.system())
    print(f"{len(released)} rewards released (hold ended on or before {today.isoformat()})")
    return 0


def cmd_jobs_purge(args: argparse.Namespace) -> int:
    """Apply the retention policy (``--dry-run``: only report what would go)."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        report = ft.privacy.purge_expired(dry_run=args.dry_run, actor=Actor.system())
    verb = "would purge" if report.dry_run else "purged"
    logs = "n/a" if report.event_logs is None else str(report.event_logs)
    print(
        f"{verb}: {report.orders} closed orders ({report.order_items} items), "
        f"{report.reward_ledger_entries} ledger entries, {report.referral_events} referral events, "
        f"{report.idempotency_keys} idempotency records, {logs} event log rows; "
        f"{report.orders_kept_unsettled} orders kept for unsettled rewards"
    )
    return 0


def cmd_jobs_calibrate(args: argparse.Namespace) -> int:
    """Fit the confidence calibration of a brand's fit maps for a garment type from outcomes."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        report = ft.catalog.calibrate_confidence(args.brand, args.garment_type, actor=Actor.system())
    errors = (
        ""
        if report.ece_before is None
        else f"; calibration error {report.ece_before:.3f} -> {report.ece_after:.3f} on held-back outcomes"
    )
    print(f"{len(report.fit_map_ids)} fit maps calibrated on {report.samples} outcomes{errors}")
    return 0


def cmd_jobs_propose_fit(args: argparse.Namespace) -> int:
    """Learn fit-map offsets of a garment type from returns and store them as proposals."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        proposals = ft.catalog.propose_fit_offsets(args.garment_type, actor=Actor.system())
    print(f"{len(proposals)} fit-map proposals for brand managers to review")
    for proposal in proposals:
        zones = ", ".join(
            f"{z} {e['current_cm']:+g} -> {e['proposed_cm']:+g} cm" for z, e in proposal.evidence.items()
        )
        print(f"  {proposal.id} (brand {proposal.brand_id}): {zones}")
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Write a new key ring document (keep it as secret as a database password)."""
    from fittwin_adapters.crypto import LocalKeyRing

    document = LocalKeyRing.generate().to_json()
    if args.output:
        _write_secret(args.output, document)
        print(f"key ring written to {args.output} (mode 600); point FITTWIN_KEYRING_FILE at it")
    else:
        print(document)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Add a new current key-encryption key (with ``--keyring-file``) and re-wrap every data key."""
    from fittwin_adapters.crypto import LocalKeyRing

    if args.keyring_file:
        rotated = LocalKeyRing.from_file(args.keyring_file).rotated()
        _write_secret(args.keyring_file, rotated.to_json())
        keyring = rotated
    elif _has_keyring():
        keyring = LocalKeyRing.from_env()
    else:
        raise FitTwinError("keys rotate needs --keyring-file FILE or FITTWIN_KEYRING / FITTWIN_KEYRING_FILE")
    with _connect(args, keyring=keyring) as ft:
        changed = ft.privacy.rotate_data_keys(actor=Actor.system())
    print(f"{changed} data keys re-wrapped under key-encryption key {keyring.current_kek_id}")
    return 0


def _write_secret(path: str, text: str) -> None:
    target = Path(path)
    partial = target.with_name(f".{target.name}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    partial.replace(target)


def _keyring_for(args: argparse.Namespace) -> Any:
    from fittwin_adapters.crypto import LocalKeyRing

    return LocalKeyRing.generate() if args.store.startswith("memory:") and not _has_keyring() else None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be from 1 to 1000000")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fittwin`` (``--help`` everywhere)."""
    parser = argparse.ArgumentParser(
        prog="fittwin", description="FitTwin core: demo, database and operations."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="tell the whole story on the embedded default (or --store)")
    demo.add_argument("--store", default="memory://", help="store URL (default: memory://)")
    demo.add_argument(
        "--shoppers",
        type=_positive,
        default=0,
        metavar="N",
        help="first play a year of synthetic trade with N shoppers, then print the analytics summary",
    )
    demo.set_defaults(func=cmd_demo)

    db = commands.add_parser("db", help="PostgreSQL schema operations").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    up = db.add_parser("upgrade", help="apply migrations")
    up.add_argument("--url", required=True, help="postgresql+psycopg://user@host/db")
    up.add_argument("--revision", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    down = db.add_parser("downgrade", help="revert migrations")
    down.add_argument("--url", required=True)
    down.add_argument("revision", nargs="?", default="-1", help="target revision (default: one step back)")
    down.set_defaults(func=cmd_db_downgrade)
    parts = db.add_parser("partitions", help="create future monthly partitions, drop expired ones")
    parts.add_argument("--url", required=True)
    parts.add_argument("--ahead", type=int, default=3, help="months to create ahead (default 3)")
    parts.add_argument("--retain", type=int, default=None, help="months of event logs to keep (default: all)")
    parts.set_defaults(func=cmd_db_partitions)

    jobs = commands.add_parser("jobs", help="periodic jobs").add_subparsers(
        dest="job", required=True, metavar="JOB"
    )
    close = jobs.add_parser("close-returns", help="close delivered orders past their return window")
    close.add_argument("--store", required=True)
    close.set_defaults(func=cmd_jobs_close_returns)
    release = jobs.add_parser("release-rewards", help="make held rewards payable once their hold ended")
    release.add_argument("--store", required=True)
    release.add_argument("--today", help="the day to release for (YYYY-MM-DD; default: today, UTC)")
    release.set_defaults(func=cmd_jobs_release_rewards)
    purge = jobs.add_parser("purge", help="delete what the retention policy no longer keeps")
    purge.add_argument("--store", required=True)
    purge.add_argument("--dry-run", action="store_true", help="only report what would be purged")
    purge.set_defaults(func=cmd_jobs_purge)
    calibrate = jobs.add_parser("calibrate", help="fit a brand's confidence calibration from outcomes")
    calibrate.add_argument("--store", required=True)
    calibrate.add_argument("--brand", required=True, help="brand id")
    calibrate.add_argument("--garment-type", required=True, help="e.g. tops")
    calibrate.set_defaults(func=cmd_jobs_calibrate)
    propose = jobs.add_parser("propose-fit", help="learn fit-map offsets from returns, as proposals")
    propose.add_argument("--store", required=True)
    propose.add_argument("--garment-type", required=True, help="e.g. tops")
    propose.set_defaults(func=cmd_jobs_propose_fit)

    keys = commands.add_parser("keys", help="key management").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    generate = keys.add_parser("generate", help="print (or write) a new key ring document")
    generate.add_argument("--output", help="file to write (mode 600) instead of printing")
    generate.set_defaults(func=cmd_keys_generate)
    rotate = keys.add_parser("rotate", help="new key-encryption key; re-wrap every data key")
    rotate.add_argument("--store", required=True, help="store URL")
    rotate.add_argument("--keyring-file", help="key ring file to rotate in place (else FITTWIN_KEYRING*)")
    rotate.set_defaults(func=cmd_keys_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fittwin`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except FitTwinError as exc:
        print(f"fittwin: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("fittwin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
