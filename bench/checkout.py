"""Checkout through the public API on PostgreSQL: ``ft.orders.place`` (2 lines) then
``ft.orders.mark_paid``, against a minimal hand-written psycopg place-and-pay in the same run.

    python bench/checkout.py [--seconds 6] [--rounds 3] [--workers 1 4] [--write docs/benchmarks.md]

The raw script does what a checkout must, and no more: in a first transaction the actor
settings the audit triggers read, two guarded stock decrements, the order and its two lines;
in a second one the compare-and-set to ``paid``; one statement per round trip, as psycopg
sends them. The audit triggers write their rows for both. Workers are processes, each with
one connection. Latency is per place+pay, in milliseconds. Round trips per order are counted
on the wire (``RoundTripCounter``) over orders placed after a warm-up, outside the timed runs.

Runs on a throw-away database created on the server named by FITTWIN_TEST_DATABASE_URL
(default postgresql+psycopg://root@127.0.0.1:5432/postgres) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from databases import drop_database, make_database
from psycopg.types.json import Jsonb
from sections import write_section

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.demo import TEE_CHART
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.postgres import DEFAULT_SCHEMA, PostgresStore
from fittwin_adapters.postgres.roundtrips import RoundTripCounter
from fittwin_core import FitTwin
from fittwin_core.domain import Actor, BodyMetrics
from fittwin_core.services.base import Settings
from fittwin_core.system import SystemIds

STOCK = 1_000_000_000
WARM_UP = 8  # the raw script's psycopg prepares a statement on its 5th run: count after that


# ---------------------------------------------------------------------------- setup


def open_ft(url: Any, *, pool_size: int = 1, dispatch_inline: bool = True) -> FitTwin:
    store = PostgresStore(url, pool_size=pool_size, max_overflow=0)
    return connect(
        store,
        payments=FakePayments(),
        keyring=KEYRING,
        hasher=Argon2PasswordHasher.owasp_minimum(),
        settings=Settings(dispatch_inline=dispatch_inline),
    )


KEYRING = LocalKeyRing({"bench": b"\x07" * 32}, current="bench", index_key=b"\x08" * 32)


def seed(url: str) -> dict[str, Any]:
    """A selling brand with a tee in two sizes (plenty of stock) and a shopper with an address
    and a card, made through the services; the ids the workers need."""
    ft = open_ft(url)
    platform_actor = Actor.platform(ft.context.ids.new_id())
    brand = ft.brands.create("Bench brand", {"email": "bench@brand.example"}, actor=platform_actor)
    ft.brands.submit_kyc(brand.id, actor=platform_actor)
    ft.brands.activate(brand.id, actor=platform_actor)
    invite = ft.brands.invite_user(brand.id, "owner@bench.example", "owner", actor=platform_actor)
    owner = Actor.brand_user(ft.brands.accept_invite(invite.invite_token).id)
    chart = ft.catalog.create_size_chart(brand.id, "tops", TEE_CHART, actor=owner)
    product = ft.catalog.create_product(
        brand.id, title="Bench tee", category="tops/t-shirts", size_chart_id=chart.id, actor=owner
    )
    variants = [
        ft.catalog.add_variant(
            product.id,
            sku=f"BENCH-{size}",
            size_label=size,
            price_cents=2500,
            currency="EUR",
            inventory=STOCK,
            actor=owner,
        )
        for size in ("M", "L")
    ]
    ft.catalog.publish_product(product.id, actor=owner)
    shopper = ft.accounts.register(
        "bench.ada@example.com",
        "correct horse battery staple",
        "bench_ada",
        BodyMetrics(height_cm=168, weight_kg=61, chest_cm=97),
        consents={"terms": True},
        actor=Actor.anonymous(),
    )
    me = Actor.shopper(shopper.id)
    address = ft.accounts.add_address(
        shopper.id,
        type="shipping",
        line1="12 Analytical Row",
        city="London",
        postal_code="SW1A 1AA",
        country="GB",
        actor=me,
    )
    card = ft.accounts.add_payment_method(shopper.id, "pm_bench", brand="visa", last4="4242", actor=me)
    ft.close()
    return {
        "user_id": shopper.id,
        "address_id": address.id,
        "card_id": card.id,
        "psp_token_id": card.psp_token_id,
        "brand_id": brand.id,
        "product_id": product.id,
        "variants": sorted((v.id, v.sku, v.size_label) for v in variants),
    }


# ---------------------------------------------------------------------------- library


def library_checkout(url: Any, setup: dict[str, Any], *, dispatch_inline: bool = True) -> Callable[[], None]:
    """A checkout through the public API; its effects (the shopper's two notifications) are
    delivered after each commit (``dispatch_inline``, the default) or left in the outbox for
    ``fittwin jobs dispatch``."""
    ft = open_ft(url, dispatch_inline=dispatch_inline)
    me = Actor.shopper(setup["user_id"])
    lines = [(variant_id, 1) for variant_id, _, _ in setup["variants"]]

    def checkout() -> None:
        order = ft.orders.place(
            setup["user_id"],
            lines,
            shipping_address_id=setup["address_id"],
            billing_address_id=setup["address_id"],
            payment_method_id=setup["card_id"],
            actor=me,
        )
        ft.orders.mark_paid(order.id, actor=Actor.system())

    return checkout


# ---------------------------------------------------------------------------- raw psycopg

RAW_ACTOR = (
    "SELECT set_config('fittwin.actor_type', %s, true), set_config('fittwin.actor_id', %s, true), "
    "set_config('fittwin.library', 'on', true)"
)
RAW_TAKE = (
    "UPDATE product_variants SET inventory = inventory - %s, updated_at = now() "
    "WHERE id = %s AND inventory >= %s RETURNING price_cents"
)
RAW_ORDER = (
    "INSERT INTO orders (id, user_id, status, totals, shipping_address_id, billing_address_id, "
    "psp_token_id, refunded_cents) VALUES (%s, %s, 'created', %s, %s, %s, %s, 0)"
)
RAW_ITEM = (
    "INSERT INTO order_items (id, order_id, product_id, brand_id, variant_id, sku, size_label, qty, "
    "reserved_qty, unit_price_cents, currency) VALUES (%s, %s, %s, %s, %s, %s, %s, 1, 1, %s, 'EUR')"
)
RAW_PAY = (
    "UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now() "
    "WHERE id = %s AND status = 'created'"
)


def raw_checkout(url: Any, setup: dict[str, Any]) -> Callable[[], None]:
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(
        dsn, options=f"-c TimeZone=UTC -c search_path={DEFAULT_SCHEMA},public", application_name="fittwin-raw"
    )
    ids = SystemIds()
    user = str(setup["user_id"])

    def checkout() -> None:
        order_id = ids.new_id()
        with conn.cursor() as cur:
            cur.execute(RAW_ACTOR, ("shopper", user))
            prices = []
            for variant_id, _, _ in setup["variants"]:
                cur.execute(RAW_TAKE, (1, variant_id, 1))
                row = cur.fetchone()
                if row is None:
                    raise RuntimeError("out of stock")
                prices.append(row[0])
            subtotal = sum(prices)
            totals = dict(currency="EUR", subtotal=subtotal, tax=0, shipping=0, discounts=0, total=subtotal)
            address = setup["address_id"]
            order = (order_id, setup["user_id"], Jsonb(totals), address, address, setup["psp_token_id"])
            cur.execute(RAW_ORDER, order)
            for (variant_id, sku, size), price in zip(setup["variants"], prices, strict=True):
                line = (
                    ids.new_id(),
                    order_id,
                    setup["product_id"],
                    setup["brand_id"],
                    variant_id,
                    sku,
                    size,
                    price,
                )
                cur.execute(RAW_ITEM, line)
        conn.commit()
        with conn.cursor() as cur:
            cur.execute(RAW_ACTOR, ("system", ""))
            cur.execute(RAW_PAY, (order_id,))
            if cur.rowcount != 1:
                raise RuntimeError("compare-and-set failed")
        conn.commit()

    return checkout


def library_checkout_calls(url: Any, setup: dict[str, Any]) -> Callable[[], None]:
    """:func:`library_checkout` with the effects left to the dispatcher job."""
    return library_checkout(url, setup, dispatch_inline=False)


MAKERS: dict[str, Callable[[Any, dict[str, Any]], Callable[[], None]]] = {
    "library": library_checkout,
    "library, dispatch as a job": library_checkout_calls,
    "raw": raw_checkout,
}


# ---------------------------------------------------------------------------- running


def worker(kind: str, url: str, setup: dict[str, Any], seconds: float) -> list[float]:
    """Checkouts for ``seconds`` after a short warm-up; each one's latency in seconds."""
    checkout = MAKERS[kind](url, setup)
    for _ in range(WARM_UP):
        checkout()
    latencies = []
    deadline = time.perf_counter() + seconds
    while (started := time.perf_counter()) < deadline:
        checkout()
        latencies.append(time.perf_counter() - started)
    return latencies


def run(
    kind: str, url: str, setup: dict[str, Any], workers: int, seconds: float
) -> tuple[float, list[float]]:
    """Orders per second and every latency, ``workers`` processes at once."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.starmap(worker, [(kind, url, setup, seconds)] * workers)
    latencies = [x for r in results for x in r]
    return len(latencies) / seconds, latencies


def round_trips(kind: str, url: str, setup: dict[str, Any], orders: int = 10) -> float:
    """Round trips per checkout, counted on the wire after the warm-up."""
    with RoundTripCounter(url) as counter:
        checkout = MAKERS[kind](counter.url, setup)
        for _ in range(WARM_UP):
            checkout()
        counter.reset()
        for _ in range(orders):
            checkout()
        return counter.count / orders


EXPLAINED = """\
One order is `ft.orders.place` of two lines (two variants of one product, with the fit summary,
pricing, the sealed shipping country and the payment intent at the fake provider) and then
`ft.orders.mark_paid`; the raw script is the minimal place-and-pay in two transactions (actor
settings, two guarded stock decrements, the order and two lines; then the compare-and-set to
`paid`), one statement per round trip, with no outbox and no notification. Both write their
audit rows through the triggers. Workers are processes with one connection each; latency is
per place+pay; round trips are counted on the wire over 10 orders after a warm-up. The kinds
take turns (`--rounds`), a slice of the time each per round.

`library` is the default configuration: each call's effects (here the shopper's "placed" and
"paid" notifications, logged on the order) are delivered right after its commit, so the
numbers include the deliveries and their outcomes (the effects are written claimed by the
call, so there is no claim transaction; the "placed" outcome goes with the payment intent's
compare-and-set, the "paid" one takes a transaction of its own that does not wait for the
disk). `library, dispatch as a job` is
`Settings(dispatch_inline=False)`: the calls record their effects in the outbox in their own
transaction and `fittwin jobs dispatch` delivers them elsewhere, which is what a host that
cares about checkout latency runs.

Round trips: `place` 3 (the transaction's start with both checkout reads; the outbox row, the
stock, the order and its lines with the commit, while every line leaves more stock than the
low-stock threshold; the payment intent's compare-and-set, a transaction of one round trip
sent without `BEGIN` and `COMMIT`) and `mark_paid` 2 (the start with the order row's lock; the
move's compare-and-set of the changed columns, its outbox row and the commit), against the
aims of 6 and 2; inline delivery adds one, for the "paid" notification's outcome. Before issue
16 the library took 30–33 round trips per order and reached 0.12–0.19× raw; with the outbox,
29 (13 without inline delivery) and 0.15–0.38×; three versions ago 8 (6) and 0.35–0.40×
(0.46–0.51× with the job); two versions ago 7 (6) and about 0.4× (0.48–0.58× at 1 worker and
0.54–0.56× at 4 with the job); in the previous version 6 (5), the same as now, and
0.34–0.48× (0.43–0.57× at 1 worker and 0.52–0.62× at 4 with the job).

In three runs of this version (the table is a fourth), the dispatch job reached 0.51–0.56× at 1
worker and 0.61–0.74× at 4: the aim of 0.5× holds at both. Inline delivery, which also delivers
the two notifications the raw script never sends and writes their outcomes (two outbox
compare-and-sets and two more audited updates of the order), reached 0.37–0.45× at 1 worker and
0.48–0.57× at 4.

What changed in this version: a unit of work's pipelines run on psycopg's libpq connection
(`fittwin_adapters.postgres.pipeline`) instead of `Connection.pipeline()` with a cursor per
statement, and every statement, the transaction's settings included, is prepared once per
connection in the round trip that first runs it (psycopg's automatic preparing is off on the
store's connections). Counted with callgrind, the client now runs about 6.9 million
instructions per order with the dispatch job and 8.7 million with inline delivery (8.8 and
11.3 million before), against 0.9 million for the raw script. Instructions per order are the
difference of two counts of `valgrind --tool=callgrind python bench/checkout.py --serial KIND
ORDERS`, for 40 and 10 orders, over 30.

What is left at 1 worker is mostly the server's work. Summed from the server's own statement
durations (`log_min_duration_statement = 0` over 200 serial orders, 3 December 2026), a
place-and-pay costs the server about 5.7 ms with the dispatch job and 7.4 ms with inline
delivery, against about 3.8 ms for the raw script: the audit trigger of each audited write
(0.3–0.6 ms each: seven per order inline, five with the job, four for the raw script), the
payment intent's uniqueness check, the outbox rows and the second transaction that attaches
the intent. With a client that took no time at all, the dispatch job could not pass about
0.65× raw at 1 worker. The statements' planning (`Bind`, 0.6–1.1 ms per order) is the
largest part left that is not the work itself: PostgreSQL keeps planning custom plans for
statements on the partitioned `orders`, whose generic plans look dearer to it;
`plan_cache_mode = force_generic_plan` took about 0.5 ms per order off in a probe, but would
change plans for every prepared statement of a transaction, so it is not set. The machine is
two cores shared with other jobs, so quote ratios from a single run.
"""


def percentile(values: list[float], p: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]
    )


def serial(kind: str, orders: int) -> None:
    """``orders`` checkouts of ``kind`` after the warm-up, in this process, on a new database."""
    url = make_database()
    try:
        checkout = MAKERS[kind](url, seed(url))
        for _ in range(WARM_UP + orders):
            checkout()
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time each kind is timed, in all")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4], help="worker processes")
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns the kinds take, each a slice of --seconds"
    )
    parser.add_argument("--write", type=Path, help="write the results into this markdown file")
    parser.add_argument(
        "--serial",
        nargs=2,
        metavar=("KIND", "ORDERS"),
        help="only run ORDERS checkouts of KIND in this process, after the warm-up, untimed "
        "(for an instruction counter: the difference of two counts over the difference of ORDERS)",
    )
    args = parser.parse_args()
    if args.serial:
        serial(args.serial[0], int(args.serial[1]))
        return
    url = make_database()
    rows = []
    try:
        setup = seed(url)
        trips = {kind: round_trips(kind, url, setup) for kind in MAKERS}
        for workers in args.workers:
            # The kinds take turns, a slice of the time each per round, so that a machine
            # whose speed drifts during the run (shared cores) weighs on all of them alike.
            done: dict[str, list[float]] = {kind: [] for kind in MAKERS}
            for _ in range(args.rounds):
                for kind in MAKERS:
                    done[kind].extend(run(kind, url, setup, workers, args.seconds / args.rounds)[1])
            measured = {kind: (len(lat) / args.seconds, lat) for kind, lat in done.items()}
            raw_rate = measured["raw"][0]
            for kind, (rate, latencies) in measured.items():
                rows.append(
                    f"| {workers} | {kind} | {rate:,.0f} | {rate / raw_rate:.2f}× "
                    f"| {percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 99) * 1000:.1f} "
                    f"| {trips[kind]:g} |"
                )
    finally:
        drop_database(url)
    table = [
        "| workers | checkout | orders/s | / raw | p50 / p99 ms | round trips |",
        "|---:|:---|---:|---:|---:|---:|",
        *rows,
    ]
    print("\n".join(table))
    if args.write:
        workers = " ".join(map(str, args.workers))
        command = (
            f"python bench/checkout.py --seconds {args.seconds:g} --rounds {args.rounds} --workers {workers}"
        )
        machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        write_section(
            args.write,
            "Checkout through the public API",
            "## Checkout through the public API\n\n"
            f"Command: `{command}` ({machine}, PostgreSQL on the same machine, load average {load} at the "
            f"end, run {datetime.now(UTC):%Y-%m-%d}).\n\n" + "\n".join(table) + "\n\n" + EXPLAINED,
        )


if __name__ == "__main__":
    main()
