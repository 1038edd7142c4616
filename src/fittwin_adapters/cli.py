"""The ``fittwin`` command: the demo, database operations, jobs and key rotation.

A mistake (a bad URL or revision, a missing key ring, an unreachable server) ends with one
clear line on stderr and exit status 2 — 1 when the store was unavailable or busy, which
retrying may cure — never a traceback (``--debug`` shows it). ``--url`` names the database
everywhere (default: ``FITTWIN_DATABASE_URL``), ``--schema`` FitTwin's schema in it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from fittwin_core.domain import Actor, ConfigurationError, FitTwinError, StoreUnavailable, TransientConflict

EXIT_FAILURE = 1
"""Exit status when the store was unavailable or busy (retrying may help)."""
EXIT_MISTAKE = 2
"""Exit status of a mistake in the command or the configuration (and of argparse's errors)."""
DATABASE_URL_ENV = "FITTWIN_DATABASE_URL"  # connect.DATABASE_URL_ENV, without importing connect for --help


def _url(args: argparse.Namespace) -> str:
    """The database URL: ``--url``, else ``FITTWIN_DATABASE_URL``."""
    url = args.url or os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        raise ConfigurationError(f"no database given: pass --url URL or set {DATABASE_URL_ENV}")
    return str(url)


def _schema(args: argparse.Namespace) -> dict[str, str]:
    return {} if args.schema is None else {"schema": args.schema}


def _connect(args: argparse.Namespace, **kwargs: Any) -> Any:
    from fittwin_adapters.connect import connect
    from fittwin_adapters.disabled import NoPayments
    from fittwin_core.services.base import Settings

    # Jobs take no payment, and leave the effects they record to `fittwin jobs dispatch`.
    options: dict[str, Any] = {
        "payments": NoPayments(),
        "settings": Settings(dispatch_inline=False),
        **_schema(args),
        **kwargs,
    }
    return connect(_url(args), **options)


STRIPE_KEY_ENV = "FITTWIN_STRIPE_API_KEY"
STRIPE_SECRET_ENV = "FITTWIN_STRIPE_WEBHOOK_SECRET"  # noqa: S105 - the name of a variable


def _stripe_from_env() -> Any:
    key = os.environ.get(STRIPE_KEY_ENV, "").strip()
    secret = os.environ.get(STRIPE_SECRET_ENV, "").strip()
    if not key or not secret:
        raise ConfigurationError(
            f"`fittwin jobs dispatch` refunds and cancels payments: set {STRIPE_KEY_ENV} and "
            f"{STRIPE_SECRET_ENV} (or run ft.effects.dispatch() in your own job with your gateway)"
        )
    from fittwin_adapters.stripe import StripePayments

    return StripePayments(key, secret)


def cmd_jobs_dispatch(args: argparse.Namespace) -> int:
    """Deliver due outbox effects (refunds, payment cancellations, brand webhooks, notifications)."""
    from fittwin_adapters.http import HttpWebhookSender

    with _connect(
        args,
        keyring=_keyring_for(args),
        payments=_stripe_from_env(),
        webhooks=HttpWebhookSender(timeout=args.timeout),
    ) as ft:
        report = ft.effects.dispatch(actor=Actor.system(), limit=args.limit)
    print(
        f"{report.attempted} effects attempted: {len(report.delivered)} delivered, "
        f"{len(report.retrying)} to retry, {len(report.dead)} dead"
    )
    return 0


def cmd_jobs_outbox(args: argparse.Namespace) -> int:
    """List dead letters (``--failed``) or put one back in the queue (``--retry ID``)."""
    from fittwin_core.pagination import every

    with _connect(args, keyring=_keyring_for(args)) as ft:
        if args.retry:
            effect = ft.effects.retry(args.retry, actor=Actor.system())
            print(f"{effect.id} {effect.kind.value} queued again")
            return 0
        dead = list(every(lambda after: ft.effects.failed(actor=Actor.system(), after=after)))
    for effect in dead:
        order = effect.order_id or "-"
        print(
            f"{effect.id} {effect.kind.value} order={order} attempts={effect.attempts} {effect.outcome or ''}"
        )
    print(f"{len(dead)} dead letters")
    return 0


def cmd_jobs_abandoned(args: argparse.Namespace) -> int:
    """Cancel ``created`` orders left unpaid (their intents are cancelled by the dispatch)."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        cancelled = ft.orders.cancel_abandoned(actor=Actor.system(), older_than_minutes=args.older_than)
    print(f"{len(cancelled)} abandoned checkouts cancelled")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Tell the whole story on a store (the embedded default unless ``--url`` names one, which
    must hold no FitTwin data: the story writes its own)."""
    from fittwin_adapters.connect import connect
    from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
    from fittwin_adapters.demo import run_story
    from fittwin_adapters.memory import FakePayments
    from fittwin_core.testing.clock import FrozenClock

    url = args.url or "memory://"
    embedded = url.startswith("memory:")
    keyring = LocalKeyRing.generate() if embedded or not _has_keyring() else None
    started = time.perf_counter()
    # The story moves its own clock (a reward's hold passes in a second), starting now.
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    hasher: Any = Argon2PasswordHasher.owasp_minimum()
    if args.shoppers:
        from fittwin_adapters.synthetic import SyntheticPasswordHasher

        hasher = SyntheticPasswordHasher(hasher)  # thousands of synthetic sign-ups in seconds
    target: Any = url if embedded else _empty_store(url, args.schema, clock)
    # The story's payments are the fake provider's, on purpose, on any store.
    with connect(
        target, hasher=hasher, keyring=keyring, clock=clock, payments=FakePayments(clock=clock)
    ) as ft:
        if args.shoppers:
            _synthetic_history(ft, args.shoppers)
        run_story(ft, sys.stdout)
        if args.shoppers:
            _print_summary(ft)
    print(f"\nDone in {time.perf_counter() - started:.1f} s on {_shown(url)}.")
    return 0


def _shown(url: str) -> str:
    """The URL with any password masked."""
    if url.startswith("memory:"):
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _empty_store(url: str, schema: str | None, clock: Any) -> Any:
    """A migrated PostgreSQL store for the demo, refusing one that already holds data."""
    from fittwin_adapters.connect import open_store
    from fittwin_core.system import SystemIds

    options: dict[str, Any] = {} if schema is None else {"schema": schema}
    store: Any = open_store(url, clock=clock, ids=SystemIds(), **options)
    try:
        if store.revision() is not None:
            with store.unit_of_work() as uow:
                counts = {"brands": uow.brands.count(), "user_profiles": uow.user_profiles.count()}
            used = [name for name, count in counts.items() if count]
            if used:
                raise ConfigurationError(
                    f"the demo writes its own sample data and refuses a database that holds some (schema "
                    f"{store.schema}: {', '.join(used)}): point --url at an empty database"
                )
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def _synthetic_history(ft: Any, shoppers: int) -> None:
    """A year of synthetic trade before the story, with a progress bar on stderr."""
    from fittwin_adapters.synthetic import generate

    print(f"Synthetic shop: {shoppers} shoppers over the last 12 months")
    report = generate(ft, shoppers=shoppers, months=12, progress=True)
    print(
        f"  {report.brands} brands, {report.products} products, {report.orders} orders, "
        f"{report.referral_links} referral links, {report.clicks} clicks, {report.returns} returns "
        f"in {report.seconds:.1f} s"
    )


def _print_summary(ft: Any) -> None:
    """The analytics summary over everything in the store (no pandas needed)."""
    title = "Analytics"
    print(f"\n{title}\n{'─' * len(title)}")
    lines = ft.analytics.summary(actor=Actor.system()).lines()
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
    postgres = _postgres()
    url = _url(args)
    postgres.upgrade(url, args.revision, **_schema(args))
    schema = args.schema or postgres.DEFAULT_SCHEMA
    print(f"schema {schema} at {postgres.current_revision(url, **_schema(args))}")
    if args.app_role:
        return cmd_db_grant(args)
    if args.analytics_role or args.create_roles:
        raise ConfigurationError("--analytics-role and --create-roles go with --app-role")
    return 0


def _add_role_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--app-role",
        required=required,
        default=None,
        help="the role the application connects as (not the owner)",
    )
    parser.add_argument("--analytics-role", default=None, help="a read-only role for analysts")
    parser.add_argument("--create-roles", action="store_true", help="create the roles when missing")


def cmd_db_grant(args: argparse.Namespace) -> int:
    """Grant the application role (not the owner) and a read-only analytics role their
    privileges on FitTwin's schema (``--create-roles``: create missing roles first)."""
    postgres = _postgres()
    postgres.grant(
        _url(args),
        app_role=args.app_role,
        analytics_role=args.analytics_role,
        create=args.create_roles,
        **_schema(args),
    )
    schema = args.schema or postgres.DEFAULT_SCHEMA
    granted = args.app_role + (f" and {args.analytics_role}" if args.analytics_role else "")
    print(f"schema {schema}: privileges granted to {granted}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    """Revert migrations down to ``revision`` (``base`` removes every FitTwin table)."""
    postgres = _postgres()
    url = _url(args)
    schema = args.schema or postgres.DEFAULT_SCHEMA
    if not args.yes:
        raise ConfigurationError(
            f"db downgrade deletes what the reverted revisions hold (schema {schema}, down to "
            f"{args.revision}): add --yes to go ahead"
        )
    postgres.downgrade(url, args.revision, **_schema(args))
    print(f"schema {schema} at {postgres.current_revision(url, **_schema(args)) or 'base'}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    """Print the revision FitTwin's schema is at."""
    postgres = _postgres()
    current = postgres.current_revision(_url(args), **_schema(args))
    head = postgres.history()[0][0]
    schema = args.schema or postgres.DEFAULT_SCHEMA
    if current is None:
        print(f"schema {schema}: not migrated (run fittwin db upgrade)")
    else:
        print(f"schema {schema}: {current}" + (" (head)" if current == head else f" (head is {head})"))
    return 0


def cmd_db_history(args: argparse.Namespace) -> int:
    """List FitTwin's revisions, newest first (the current one marked when a database is given)."""
    postgres = _postgres()
    current = None
    if args.url or os.environ.get(DATABASE_URL_ENV, "").strip():
        current = postgres.current_revision(_url(args), **_schema(args))
    for revision, doc in postgres.history():
        mark = "  (current)" if revision == current else ""
        print(f"{revision}  {doc}{mark}")
    return 0


def cmd_db_partitions(args: argparse.Namespace) -> int:
    """Create monthly partitions ahead and drop those past retention."""
    report = _postgres().maintain_partitions(
        _url(args), ahead_months=args.ahead, retain_months=args.retain, **_schema(args)
    )
    print(report)
    return 0


def cmd_jobs_close_returns(args: argparse.Namespace) -> int:
    """Close delivered orders whose return window is over."""
    with _connect(args, keyring=_keyring_for(args)) as ft:
        closed = ft.orders.close_expired_returns(actor=Actor.system())
    print(f"{len(closed)} orders closed" + _skipped(closed.skipped))
    return 0


def cmd_jobs_release_rewards(args: argparse.Namespace) -> int:
    """Move held rewards whose hold ended to payable."""
    today = args.today or dt.datetime.now(dt.UTC).date()
    with _connect(args, keyring=_keyring_for(args)) as ft:
        released = ft.rewards.release_due(today, actor=Actor.system())
    print(
        f"{len(released)} rewards released (hold ended on or before {today.isoformat()})"
        + _skipped(released.skipped)
    )
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
        _write_secret(args.output, document, replace=args.force)
        print(f"key ring written to {args.output} (mode 600); point FITTWIN_KEYRING_FILE at it")
    else:
        print(document)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Add a new current key-encryption key (with ``--keyring-file``) and re-wrap every data key."""
    from fittwin_adapters.crypto import LocalKeyRing

    if args.keyring_file:
        rotated = LocalKeyRing.from_file(args.keyring_file).rotated()
        _write_secret(args.keyring_file, rotated.to_json(), replace=True)
        keyring = rotated
    elif _has_keyring():
        keyring = LocalKeyRing.from_env()
    else:
        raise FitTwinError("keys rotate needs --keyring-file FILE or FITTWIN_KEYRING / FITTWIN_KEYRING_FILE")
    with _connect(args, keyring=keyring) as ft:
        changed = ft.privacy.rotate_data_keys(actor=Actor.system())
    print(f"{changed} data keys re-wrapped under key-encryption key {keyring.current_kek_id}")
    return 0


def _write_secret(path: str, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` (mode 600) in one step: a reader sees the old file or the new
    one. Without ``replace`` an existing file is refused (checked atomically, by linking)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.tmp")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        if replace:
            partial.replace(target)
        else:
            try:
                os.link(partial, target)
            finally:
                partial.unlink()
    except FileExistsError:
        raise ConfigurationError(
            f"{path} exists: a key ring is never replaced by accident (the data it unlocks would be lost); "
            "pass --force to overwrite it"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None


def _keyring_for(args: argparse.Namespace) -> Any:
    from fittwin_adapters.crypto import LocalKeyRing

    return LocalKeyRing.generate() if _url(args).startswith("memory:") and not _has_keyring() else None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be from 1 to 1000000")
    return value


def _months(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of months") from None
    if not 0 <= value <= 1200:
        raise argparse.ArgumentTypeError("must be from 0 to 1200 months")
    return value


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fittwin")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (``fittwin db upgrade: error: …``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_MISTAKE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_jobs(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``fittwin jobs …`` subcommands."""
    jobs = commands.add_parser("jobs", help="periodic jobs").add_subparsers(
        dest="job", required=True, metavar="JOB"
    )
    close = jobs.add_parser(
        "close-returns", parents=[common], help="close delivered orders past their return window"
    )
    close.set_defaults(func=cmd_jobs_close_returns)
    release = jobs.add_parser(
        "release-rewards", parents=[common], help="make held rewards payable once their hold ended"
    )
    release.add_argument(
        "--today", type=_day, help="the day to release for (YYYY-MM-DD; default: today, UTC)"
    )
    release.set_defaults(func=cmd_jobs_release_rewards)
    purge = jobs.add_parser(
        "purge", parents=[common], help="delete what the retention policy no longer keeps"
    )
    purge.add_argument("--dry-run", action="store_true", help="only report what would be purged")
    purge.set_defaults(func=cmd_jobs_purge)
    calibrate = jobs.add_parser(
        "calibrate", parents=[common], help="fit a brand's confidence calibration from outcomes"
    )
    calibrate.add_argument("--brand", required=True, help="brand id")
    calibrate.add_argument("--garment-type", required=True, help="e.g. tops")
    calibrate.set_defaults(func=cmd_jobs_calibrate)
    propose = jobs.add_parser(
        "propose-fit", parents=[common], help="learn fit-map offsets from returns, as proposals"
    )
    propose.add_argument("--garment-type", required=True, help="e.g. tops")
    propose.set_defaults(func=cmd_jobs_propose_fit)
    dispatch = jobs.add_parser(
        "dispatch",
        parents=[common],
        help=f"deliver due outbox effects (needs {STRIPE_KEY_ENV} and {STRIPE_SECRET_ENV})",
    )
    dispatch.add_argument("--limit", type=_positive, default=100, help="effects to attempt (default 100)")
    dispatch.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per brand webhook request (default 5)"
    )
    dispatch.set_defaults(func=cmd_jobs_dispatch)
    outbox = jobs.add_parser("outbox", parents=[common], help="dead letters of the outbox")
    which = outbox.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="list effects that kept failing")
    which.add_argument("--retry", metavar="EFFECT_ID", help="queue a dead effect again")
    outbox.set_defaults(func=cmd_jobs_outbox)
    abandoned = jobs.add_parser(
        "abandoned", parents=[common], help="cancel created orders left unpaid, releasing their stock"
    )
    abandoned.add_argument(
        "--older-than",
        type=_positive,
        default=None,
        metavar="MINUTES",
        help="unpaid for longer than this (default: Settings.abandoned_checkout_minutes)",
    )
    abandoned.set_defaults(func=cmd_jobs_abandoned)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fittwin`` (``--help`` everywhere)."""
    parser = _Parser(prog="fittwin", description="FitTwin core: demo, database and operations.")
    parser.add_argument("--version", action="version", version=f"fittwin {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument(
        "--url", default=None, help=f"postgresql+psycopg://user@host/db (default: ${DATABASE_URL_ENV})"
    )
    common.add_argument("--store", dest="url", help=argparse.SUPPRESS)  # the former flag name
    common.add_argument("--schema", default=None, help="FitTwin's PostgreSQL schema (default: fittwin)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    demo = commands.add_parser(
        "demo", parents=[common], help="tell the whole story on the embedded default (or an empty --url)"
    )
    demo.set_defaults(func=cmd_demo)
    demo.add_argument(
        "--shoppers",
        type=_positive,
        default=0,
        metavar="N",
        help="first play a year of synthetic trade with N shoppers, then print the analytics summary",
    )

    db = commands.add_parser("db", help="PostgreSQL schema operations").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    up = db.add_parser("upgrade", parents=[common], help="apply migrations")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    _add_role_options(up, required=False)
    up.set_defaults(func=cmd_db_upgrade)
    grant = db.add_parser(
        "grant", parents=[common], help="grant the application and analytics roles (run as the owner)"
    )
    _add_role_options(grant, required=True)
    grant.set_defaults(func=cmd_db_grant)
    down = db.add_parser("downgrade", parents=[common], help="revert migrations (asks for --yes)")
    down.add_argument(
        "revision", help="target revision: a revision id, -N, or base (removes FitTwin's tables)"
    )
    down.add_argument("--yes", action="store_true", help="confirm: the reverted revisions' data is deleted")
    down.set_defaults(func=cmd_db_downgrade)
    current = db.add_parser("current", parents=[common], help="the revision FitTwin's schema is at")
    current.set_defaults(func=cmd_db_current)
    history = db.add_parser("history", parents=[common], help="FitTwin's revisions, newest first")
    history.set_defaults(func=cmd_db_history)
    parts = db.add_parser(
        "partitions", parents=[common], help="create future monthly partitions, drop expired ones"
    )
    parts.add_argument("--ahead", type=_months, default=3, help="months to create ahead (default 3)")
    parts.add_argument(
        "--retain", type=_months, default=None, help="months of event logs to keep (default: all)"
    )
    parts.set_defaults(func=cmd_db_partitions)

    _add_jobs(commands, common)

    keys = commands.add_parser("keys", help="key management").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    generate = keys.add_parser("generate", help="print (or write) a new key ring document")
    generate.add_argument("--output", help="file to write (mode 600) instead of printing")
    generate.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    generate.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    generate.set_defaults(func=cmd_keys_generate)
    rotate = keys.add_parser(
        "rotate", parents=[common], help="new key-encryption key; re-wrap every data key"
    )
    rotate.add_argument("--keyring-file", help="key ring file to rotate in place (else FITTWIN_KEYRING*)")
    rotate.set_defaults(func=cmd_keys_rotate)
    return parser


def _skipped(ids: Sequence[object]) -> str:
    """The tail of a job's summary line: how many rows it skipped on a conflict."""
    return f"; {len(ids)} skipped (changed concurrently: run the job again)" if ids else ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")).strip() or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fittwin`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except FitTwinError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"fittwin: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE if isinstance(exc, StoreUnavailable | TransientConflict) else EXIT_MISTAKE
    except KeyboardInterrupt:
        print("fittwin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
