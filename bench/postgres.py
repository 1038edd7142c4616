"""PostgreSQL store benchmarks: bulk referral clicks, and "place and pay an order" units of work
through the library versus a hand-written psycopg script issuing the same statements.

    python bench/postgres.py [--seconds 5] [--clicks 100000] [--write docs/benchmarks.md]

Runs on a throw-away database created on the server named by FITTWIN_TEST_DATABASE_URL
(default postgresql+psycopg://root@127.0.0.1:5432/postgres) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import psycopg
import sqlalchemy as sa
from databases import drop_database, make_database
from psycopg.types.json import Jsonb
from sections import write_section

from fittwin_adapters.postgres import DEFAULT_SCHEMA, PostgresStore
from fittwin_adapters.postgres.jsoncodec import dumps
from fittwin_adapters.postgres.store import STATEMENTS
from fittwin_core.domain import Actor, OrderStatus, ReferralEvent, ReferralEventType
from fittwin_core.schema import TABLES
from fittwin_core.system import SystemIds
from fittwin_core.testing.contract.store import uniquify
from fittwin_core.testing.world import seed_world

# ---------------------------------------------------------------------------- setup


def seed(url: str) -> dict[str, Any]:
    """A world with two variants holding plenty of stock; the ids the workers need."""
    store = PostgresStore(url)
    world = seed_world(store)
    second = uniquify(TABLES["product_variants"], world["product_variants"])
    with store.unit_of_work() as uow:
        uow.product_variants.add(second)
        for variant in (world["product_variants"], second):
            uow.product_variants.update(attrs.evolve(variant, inventory=1_000_000_000))
        uow.commit()
    store.close()
    return {
        "order": world["orders"],
        "item": world["order_items"],
        "variants": sorted([world["product_variants"].id, second.id]),
    }


# ---------------------------------------------------------------------------- clicks


def raw_clicks(url: str, rid: str, count: int, batch: int = 10_000) -> float:
    """Clicks per second through a hand-written psycopg ``COPY`` of the same columns (the rows
    made as plain tuples, in the same batches and transactions, actor settings included)."""
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(
        dsn, options=f"-c TimeZone=UTC -c search_path={DEFAULT_SCHEMA},public", application_name="fittwin-raw"
    )
    ids = SystemIds()
    now = datetime.now(UTC)
    metadata = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "score": 0.12}
    rows = [
        (ids.new_id(), rid, "click", None, secrets.token_hex(16), secrets.token_hex(16), Jsonb(metadata), now)
        for _ in range(count)
    ]
    columns = "id, rid, event_type, order_id, device_fingerprint, ip_hash, metadata, created_at"
    sql = f"COPY referral_events ({columns}) FROM STDIN"
    started = time.perf_counter()
    for start in range(0, count, batch):
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('fittwin.actor_type', 'system', true)")
            with cur.copy(sql) as copy:
                for row in rows[start : start + batch]:
                    copy.write_row(row)
        conn.commit()
    done = time.perf_counter()
    conn.close()
    return count / (done - started)


def bench_clicks(url: str, count: int, batch: int = 10_000) -> tuple[float, float]:
    """Clicks per second through ``add_many`` (COPY): (ingest only, including building entities)."""
    store = PostgresStore(url)
    with store.unit_of_work() as uow:
        rid = uow.referrals.where(limit=1)[0].rid
    ids = SystemIds()
    now = datetime.now(UTC)
    started = time.perf_counter()
    events = [
        ReferralEvent(
            id=ids.new_id(),
            rid=rid,
            event_type=ReferralEventType.CLICK,
            device_fingerprint=secrets.token_hex(16),
            ip_hash=secrets.token_hex(16),
            metadata={"user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "score": 0.12},
            created_at=now,
        )
        for _ in range(count)
    ]
    built = time.perf_counter()
    for start in range(0, count, batch):
        with store.unit_of_work() as uow:
            uow.referral_events.add_many(events[start : start + batch])
            uow.commit()
    done = time.perf_counter()
    store.close()
    return count / (done - built), count / (done - started)


# ---------------------------------------------------------------------------- place and pay


def _order_and_items(setup: dict[str, Any], ids: SystemIds) -> tuple[Any, list[Any], Any]:
    now = datetime.now(UTC)
    order = attrs.evolve(setup["order"], id=ids.new_id(), created_at=now, updated_at=now)
    items = [
        attrs.evolve(
            setup["item"],
            id=ids.new_id(),
            order_id=order.id,
            variant_id=variant,
            qty=1,
            reserved_qty=1,
            created_at=now,
        )
        for variant in setup["variants"]
    ]
    paid = attrs.evolve(order, status=OrderStatus.PAID, paid_at=now, updated_at=now)
    return order, items, paid


def library_worker(url: str, setup: dict[str, Any], seconds: float) -> int:
    store = PostgresStore(url, pool_size=1, max_overflow=0)
    ids = SystemIds()
    actor = Actor.shopper(setup["order"].user_id)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        order, items, paid = _order_and_items(setup, ids)
        with store.unit_of_work(actor) as uow:
            uow.orders.add(order)
            for item in items:
                uow.product_variants.adjust_inventory(item.variant_id, -item.qty)
                uow.order_items.add(item)
            uow.orders.update(paid, expected={"status": OrderStatus.CREATED})
            uow.commit()
        done += 1
    store.close()
    return done


def _insert_sql(table: str) -> str:
    columns = STATEMENTS[table].columns
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"


def _values(table: str, entity: Any) -> list[Any]:
    s = STATEMENTS[table]
    params = s.params(entity)
    return [
        Jsonb(params[c], dumps=dumps) if k == "json" and params[c] is not None else params[c]
        for c, k in s.kinds
    ]


def raw_worker(url: str, setup: dict[str, Any], seconds: float) -> int:
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(
        dsn, options=f"-c TimeZone=UTC -c search_path={DEFAULT_SCHEMA},public", application_name="fittwin-raw"
    )
    ids = SystemIds()
    user = str(setup["order"].user_id)
    insert_order, insert_item = _insert_sql("orders"), _insert_sql("order_items")
    order_columns = [c for c in STATEMENTS["orders"].columns if c != "id"]
    pay = f"UPDATE orders SET {', '.join(f'{c} = %s' for c in order_columns)} WHERE id = %s AND status = %s"
    take = (
        "UPDATE product_variants SET inventory = inventory + %s, updated_at = %s "
        "WHERE id = %s AND inventory + %s >= 0 RETURNING *"
    )
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        order, items, paid = _order_and_items(setup, ids)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('fittwin.actor_type', 'shopper', true), "
                "set_config('fittwin.actor_id', %s, true), set_config('fittwin.library', 'on', true)",
                (user,),
            )
            cur.execute(insert_order, _values("orders", order))
            for item in items:
                cur.execute(take, (-item.qty, datetime.now(UTC), item.variant_id, -item.qty))
                if cur.fetchone() is None:
                    raise RuntimeError("out of stock")
                cur.execute(insert_item, _values("order_items", item))
            values = dict(zip(STATEMENTS["orders"].columns, _values("orders", paid), strict=True))
            cur.execute(pay, [*(values[c] for c in order_columns), paid.id, "created"])
            if cur.rowcount != 1:
                raise RuntimeError("compare-and-set failed")
        conn.commit()
        done += 1
    conn.close()
    return done


EXPLAINED = """\
Referral clicks go in batches of 10 000, one unit of work each, through `add_many` (`COPY`) and
through a hand-written psycopg `COPY` of the same columns (rows made as plain tuples beforehand,
same batches, transactions and actor settings); "incl. building entities" also counts making
the `ReferralEvent`s, which validates them. Aim: ≥ 0.5× the raw `COPY`.

Each "place and pay" unit of work inserts an order, takes stock from two variants with the
guarded `adjust_inventory` statement, inserts two order items, moves the order to `paid` with a
compare-and-set, and commits (audit triggers fire on every write). The raw script issues the
same statements with psycopg directly (same actor settings, no SQLAlchemy, no entities).
Workers are processes; the machine has 2 shared cores, so 4 workers add little. This drives
the store directly; `bench/checkout.py` (below) measures the public API.
"""


def run_workers(target: Any, url: str, setup: dict[str, Any], workers: int, seconds: float) -> float:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        counts = pool.starmap(target, [(url, setup, seconds)] * workers)
    return sum(counts) / seconds


# ---------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each order run")
    parser.add_argument("--clicks", type=int, default=100_000, help="referral clicks to ingest")
    parser.add_argument("--write", type=Path, help="write the results as markdown to this file")
    args = parser.parse_args()
    url = make_database()
    try:
        setup = seed(url)
        with PostgresStore(url) as store, store.unit_of_work() as uow:
            rid = uow.referrals.where(limit=1)[0].rid
        ingest, with_build = bench_clicks(url, args.clicks)
        raw_copy = raw_clicks(url, rid, args.clicks)
        rows = [
            (
                "referral clicks, bulk add_many (COPY)",
                f"{ingest:,.0f} clicks/s ({with_build:,.0f} incl. building entities)",
                f"{raw_copy:,.0f} clicks/s raw psycopg COPY (library {ingest / raw_copy:.2f}x)",
            )
        ]
        for workers in (1, 4):
            library = run_workers(library_worker, url, setup, workers, args.seconds)
            raw = run_workers(raw_worker, url, setup, workers, args.seconds)
            rows.append(
                (
                    f"place and pay an order, {workers} worker{'s' if workers > 1 else ''}",
                    f"{library:,.0f} orders/s library",
                    f"{raw:,.0f} orders/s raw psycopg (library {library / raw:.2f}x)",
                )
            )
    finally:
        drop_database(url)
    table = [
        "| benchmark | result | comparison |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
    ]
    print("\n".join(table))
    if args.write:
        command = f"python bench/postgres.py --seconds {args.seconds:g} --clicks {args.clicks}"
        machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        write_section(
            args.write,
            "PostgreSQL",
            "## PostgreSQL\n\n"
            f"Command: `{command}` ({machine}, PostgreSQL on the same machine, load average {load} "
            f"at the end, run {datetime.now(UTC):%Y-%m-%d}).\n\n" + "\n".join(table) + "\n\n" + EXPLAINED,
        )


if __name__ == "__main__":
    main()
