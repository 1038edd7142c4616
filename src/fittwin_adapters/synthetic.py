"""Synthetic shops for notebooks, benchmarks and ``fittwin demo --shoppers N``.

:func:`generate` plays months of trade through the real services on a FitTwin whose clock it
can move (a :class:`~fittwin_core.testing.clock.FrozenClock`, as :func:`connect_synthetic`
builds): brands publish products with size charts and fit maps; shoppers with realistic bodies
(heights and BMIs drawn around adult survey means, girths from the fit engine's published
regression plus personal variation, some left to be estimated) sign up, share referral links,
click, order (mostly in the recommended size), pay, receive, keep or return their orders;
weekly jobs close return windows, release held rewards and pay them out. Everything is
seeded: the same arguments give the same shop.

A text progress bar goes to stderr (or any stream given). A few thousand orders take seconds
on the memory store.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TextIO

import attrs

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher
from fittwin_core import FitTwin
from fittwin_core.domain import (
    Actor,
    BodyMetrics,
    ConfigurationError,
    FitTwinError,
    Order,
    OrderStatus,
    Sex,
    ValidationError,
)
from fittwin_core.fit import estimate_measurements
from fittwin_core.ports import PasswordHasher
from fittwin_core.testing.clock import FrozenClock, SequentialIds

PASSWORD = "synthetic shopper password"  # noqa: S105 — published on purpose: synthetic accounts only

_TOPS = {
    "zones": {"chest": {"tolerance": 3.0, "weight": 1.0}, "waist": {"tolerance": 9.0, "weight": 0.5}},
    "sizes": [
        {"label": "XS", "chest": [78, 86], "waist": [64, 72]},
        {"label": "S", "chest": [86, 94], "waist": [72, 80]},
        {"label": "M", "chest": [94, 102], "waist": [80, 88]},
        {"label": "L", "chest": [102, 110], "waist": [88, 96]},
        {"label": "XL", "chest": [110, 118], "waist": [96, 104]},
        {"label": "XXL", "chest": [118, 128], "waist": [104, 116]},
    ],
}
_BOTTOMS = {
    "zones": {"waist": {"tolerance": 3.0, "weight": 1.0}, "hip": {"tolerance": 9.0, "weight": 0.5}},
    "sizes": [
        {"label": "28", "waist": [68, 74], "hip": [84, 92]},
        {"label": "30", "waist": [74, 80], "hip": [92, 98]},
        {"label": "32", "waist": [80, 86], "hip": [98, 104]},
        {"label": "34", "waist": [86, 92], "hip": [104, 110]},
        {"label": "36", "waist": [92, 100], "hip": [110, 118]},
        {"label": "38", "waist": [100, 110], "hip": [118, 128]},
    ],
}
_SHOES = {
    "zones": {"foot_length": {"tolerance": 0.3}},
    "sizes": [
        {"label": str(eu), "foot_length": [round(22.5 + 0.66 * n, 2), round(23.16 + 0.66 * n, 2)]}
        for n, eu in enumerate(range(36, 47))
    ],
}
_LINES: tuple[tuple[str, str, dict[str, Any], tuple[tuple[str, int], ...]], ...] = (
    ("tops", "tops/t-shirts", _TOPS, (("Crew tee", 2900), ("Merino polo", 5900), ("Oxford shirt", 6900))),
    ("bottoms", "bottoms/trousers", _BOTTOMS, (("Chino", 7900), ("Selvedge jean", 11900))),
    ("footwear", "footwear/sneakers", _SHOES, (("Court sneaker", 9900),)),
)
_BRANDS = ("Harbor Threads", "Fjord & Pine", "Atlas Denim", "Sable Row", "Kestrel Goods", "Lumen Works")
_CURRENCIES = ("EUR", "EUR", "GBP", "USD", "EUR", "USD")


class SyntheticPasswordHasher:
    """Hashes each distinct password once with a real argon2id hasher and reuses that hash.

    Equal passwords then get equal hashes (one salt), which is acceptable only for synthetic
    shoppers who all share one published password: it lets thousands of them register in
    seconds. Never use it for real accounts.
    """

    def __init__(self, inner: PasswordHasher | None = None) -> None:
        self._inner = inner or Argon2PasswordHasher.owasp_minimum()
        self._hashes: dict[str, str] = {}

    def hash(self, password: str) -> str:
        """The (shared) argon2id hash of ``password``."""
        if password not in self._hashes:
            self._hashes[password] = self._inner.hash(password)
        return self._hashes[password]

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches the hash."""
        return self._inner.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than the inner hasher's."""
        return self._inner.needs_rehash(password_hash)


def connect_synthetic(
    url: str = "memory://", *, now: datetime | None = None, seed: int = 7, **options: Any
) -> FitTwin:
    """A FitTwin for synthetic data: a movable clock standing at ``now`` (default: today,
    midnight UTC; :func:`generate` plays the months before it), reproducible ids, and the
    shared-hash password hasher. ``options`` go to :func:`fittwin_adapters.connect`."""
    if now is None:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = FrozenClock(now)
    options.setdefault("hasher", SyntheticPasswordHasher())
    ft: FitTwin = connect(url, clock=clock, ids=SequentialIds(clock, seed=seed), **options)
    return ft


class ProgressBar:
    """A one-line text progress bar (``[#####-----]  50%  label``) redrawn in place."""

    def __init__(self, out: TextIO | None, width: int = 30) -> None:
        self.out = out
        self.width = width
        self._shown = -1.0
        self._started = time.perf_counter()

    def update(self, fraction: float, label: str = "", *, force: bool = False) -> None:
        """Show ``fraction`` (0–1) done; redrawn at most once per percent."""
        if self.out is None:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if not force and fraction - self._shown < 0.01:
            return
        self._shown = fraction
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self._started
        self.out.write(f"\r[{bar}] {fraction:4.0%}  {label}  {elapsed:5.1f} s")
        self.out.flush()

    def close(self, label: str = "") -> None:
        """Show 100 % and end the line."""
        self.update(1.0, label, force=True)
        if self.out is not None:
            self.out.write("\n")
            self.out.flush()


@attrs.frozen
class SyntheticReport:
    """What :func:`generate` created."""

    brands: int
    products: int
    shoppers: int
    referral_links: int
    clicks: int
    orders: int
    returns: int
    refused_steps: int
    """Steps the business rules refused and the generator skipped (normally none)."""
    start: datetime
    end: datetime
    seconds: float


@attrs.define
class _Shopper:
    user: Any
    address: Any
    card: Any
    sex: str
    link: str | None = None


@attrs.define
class _Catalog:
    products: list[tuple[Any, dict[str, Any]]] = attrs.field(factory=list)  # (product, variants by size)


def body(rng: random.Random) -> tuple[BodyMetrics, str]:
    """A plausible adult body: sex, height and weight around adult survey means, girths from
    the fit engine's regression plus personal variation; some girths left out (to be estimated)."""
    sex = rng.choice(("female", "male"))
    height = rng.gauss(176.0, 7.2) if sex == "male" else rng.gauss(162.5, 6.6)
    height = min(max(height, 145.0), 205.0)
    bmi = min(max(math.exp(rng.gauss(math.log(26.0), 0.16)), 17.5), 42.0)
    weight = round(bmi * (height / 100) ** 2, 1)
    girths = estimate_measurements(height, weight, sex)
    measured: dict[str, float] = {}
    for zone, share in (("chest_cm", 0.75), ("waist_cm", 0.6), ("hip_cm", 0.45)):
        if rng.random() < share:
            measured[zone] = round(girths[zone] + rng.gauss(0.0, 3.0), 1)
    if rng.random() < 0.7:
        measured["foot_length_cm"] = round(0.152 * height + rng.gauss(0.0, 0.6), 1)
    return BodyMetrics(height_cm=round(height, 1), weight_kg=weight, sex=Sex(sex), **measured), sex


def generate(
    ft: FitTwin,
    *,
    shoppers: int = 1000,
    months: int = 12,
    orders_per_shopper: float = 2.5,
    brands: int = 3,
    seed: int = 7,
    progress: TextIO | bool | None = True,
) -> SyntheticReport:
    """Play ``months`` of trade with ``shoppers`` shoppers through ``ft``'s services, ending at
    the clock's current time; a progress bar goes to stderr (``progress=False`` for none, or a
    stream). ``ft`` needs a movable clock (``set``): build it with :func:`connect_synthetic`.

    Shoppers sign up over the period; each places on average ``orders_per_shopper`` orders
    within the half-year after signing up (those that would fall after the end are not placed).
    """
    clock: Any = ft.context.clock
    if not callable(getattr(clock, "set", None)):
        raise ConfigurationError(
            "synthetic data needs a movable clock: build FitTwin with connect_synthetic()"
        )
    for name, value, low, high in (
        ("shoppers", shoppers, 1, 1_000_000),
        ("months", months, 1, 120),
        ("brands", brands, 1, len(_BRANDS)),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValidationError(name, f"must be an integer from {low} to {high}")
    if not 0 < orders_per_shopper <= 50:
        raise ValidationError("orders_per_shopper", "must be above 0 and at most 50")
    out = sys.stderr if progress is True else (progress or None)
    run = _Run(ft, clock, random.Random(seed), ProgressBar(out))  # noqa: S311 — reproducible data
    return run.play(shoppers=shoppers, months=months, orders_per_shopper=orders_per_shopper, brands=brands)


class _Run:
    def __init__(self, ft: FitTwin, clock: Any, rng: random.Random, bar: ProgressBar) -> None:
        self.ft = ft
        self.clock = clock
        self.rng = rng
        self.bar = bar
        self.queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self.counter = itertools.count()
        self.catalog = _Catalog()
        self.shoppers: list[_Shopper] = []
        self.links: list[tuple[str, datetime, int]] = []  # rid, created, owner index
        self.counts = {"clicks": 0, "orders": 0, "returns": 0, "refused": 0}
        self.platform = Actor.platform(ft.context.ids.new_id())

    # ------------------------------------------------------------------ the timeline

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.counter), action))

    def play(self, *, shoppers: int, months: int, orders_per_shopper: float, brands: int) -> SyntheticReport:
        started = time.perf_counter()
        end = self.clock.now()
        start = end - timedelta(days=round(months * 30.44))
        self.clock.set(start)
        self.open_brands(brands)
        span = (end - start).total_seconds()
        for n in range(shoppers):
            # Sign-ups spread over the period, more of them later (a growing shop).
            joined = start + timedelta(seconds=span * 0.9 * self.rng.random() ** 0.8)
            self.at(joined, partial(self.sign_up, n, orders_per_shopper))
        week = start + timedelta(days=7)
        while week < end:
            self.at(week, self.weekly_jobs)
            week += timedelta(days=7)
        while self.queue and self.queue[0][0] < end:
            when, _, action = heapq.heappop(self.queue)
            self.clock.set(when)
            try:
                action()
            except FitTwinError:
                self.counts["refused"] += 1  # a step the rules refused (say, a late return): skipped
            label = f"{len(self.shoppers)} shoppers, {self.counts['orders']} orders"
            self.bar.update((when - start).total_seconds() / span, label)
        self.clock.set(end)
        self.bar.close(f"{len(self.shoppers)} shoppers, {self.counts['orders']} orders")
        return SyntheticReport(
            brands=brands,
            products=len(self.catalog.products),
            shoppers=len(self.shoppers),
            referral_links=len(self.links),
            clicks=self.counts["clicks"],
            orders=self.counts["orders"],
            returns=self.counts["returns"],
            refused_steps=self.counts["refused"],
            start=start,
            end=end,
            seconds=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ brands and catalog

    def open_brands(self, count: int) -> None:
        ft, platform = self.ft, self.platform
        for b in range(count):
            brand = ft.brands.create(_BRANDS[b], {"email": f"partners@brand{b}.example"}, actor=platform)
            ft.brands.submit_kyc(brand.id, actor=platform)
            ft.brands.activate(brand.id, actor=platform)
            runs_small = b % 2 == 1
            for garment, category, chart_rules, titles in _LINES:
                chart = ft.catalog.create_size_chart(brand.id, garment, chart_rules, actor=platform)
                fit_map = None
                if runs_small and garment != "footwear":
                    first_zone = next(iter(chart_rules["zones"]))
                    fit_map = ft.catalog.create_fit_map(
                        brand.id, garment, {"offset": {first_zone: -1.5}}, actor=platform
                    )
                for title, price in titles:
                    product = ft.catalog.create_product(
                        brand.id,
                        title=f"{title}",
                        category=category,
                        size_chart_id=chart.id,
                        fit_map_id=None if fit_map is None else fit_map.id,
                        actor=platform,
                    )
                    variants = {
                        size["label"]: ft.catalog.add_variant(
                            product.id,
                            sku=f"B{b}-{product.id.hex[-8:]}-{size['label']}",
                            size_label=size["label"],
                            price_cents=price + 500 * b,
                            currency=_CURRENCIES[b],
                            inventory=1_000_000,
                            actor=platform,
                        )
                        for size in chart_rules["sizes"]
                    }
                    ft.catalog.publish_product(product.id, actor=platform)
                    self.catalog.products.append((product, variants))

    # ------------------------------------------------------------------ shoppers

    def sign_up(self, n: int, orders_per_shopper: float) -> None:
        ft, rng = self.ft, self.rng
        metrics, sex = body(rng)
        preference = rng.choices(("slim", "regular", "relaxed"), (0.25, 0.55, 0.2))[0]
        user = ft.accounts.register(
            f"shopper{n}@synthetic.example",
            PASSWORD,
            f"shopper{n}",
            metrics,
            consents={"terms": True, "marketing": rng.random() < 0.4},
            style_preferences={"fit_prefs": preference},
            actor=Actor.anonymous(),
        )
        address = ft.accounts.add_address(
            user.id,
            type="shipping",
            line1=f"{n} Synthetic Street",
            city="Lyon",
            postal_code=f"69{n % 1000:03d}",
            country="FR",
            actor=Actor.shopper(user.id),
        )
        card = ft.accounts.add_payment_method(
            user.id, f"pm_synthetic_{n}", brand="visa", last4="4242", actor=Actor.shopper(user.id)
        )
        shopper = _Shopper(user, address, card, sex)
        index = len(self.shoppers)
        self.shoppers.append(shopper)
        now = self.clock.now()
        if rng.random() < 0.3:  # a third of shoppers share a link
            self.at(now + timedelta(hours=rng.uniform(1, 72)), lambda: self.share(index))
        # Orders come within half a year of signing up (those past the end are never placed).
        for _ in range(_poisson(rng, orders_per_shopper)):
            when = now + timedelta(days=rng.uniform(0, 180))
            self.at(when, lambda: self.shop(index))

    def share(self, index: int) -> None:
        shopper = self.shoppers[index]
        product = self.rng.choice(self.catalog.products)[0]
        link = self.ft.referrals.create(
            shopper.user.id, target_product_id=product.id, actor=Actor.shopper(shopper.user.id)
        )
        shopper.link = link.rid
        self.links.append((link.rid, self.clock.now(), index))
        for _ in range(_poisson(self.rng, 4.0)):  # clicks that never convert
            self.at(
                self.clock.now() + timedelta(days=self.rng.uniform(0, 60)),
                partial(self.click, link.rid),
            )

    def click(self, rid: str) -> None:
        rng = self.rng
        ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        device = f"device-{rng.getrandbits(48):012x}"
        if self.ft.referrals.record_click(
            rid,
            ip=ip,
            user_agent="Mozilla/5.0 (synthetic)",
            device_fingerprint=device,
            actor=Actor.anonymous(),
        ):
            self.counts["clicks"] += 1

    # ------------------------------------------------------------------ orders

    def shop(self, index: int) -> None:
        rng, ft = self.rng, self.ft
        shopper = self.shoppers[index]
        product, variants = rng.choice(self.catalog.products)
        rec = ft.fit.recommend(shopper.user.id, product.id, actor=Actor.shopper(shopper.user.id))
        labels = list(variants)
        if rec.size_label is not None and rng.random() < 0.78:
            size = rec.size_label
        else:  # a neighbour of the recommendation, or a guess when there is none
            anchor = labels.index(rec.size_label) if rec.size_label in labels else len(labels) // 2
            size = labels[min(max(anchor + rng.choice((-1, 1)), 0), len(labels) - 1)]
        rid = None
        others = [link for link in self.links if link[2] != index]
        if others and rng.random() < 0.22:  # arrived through a friend's link: click, then buy
            rid = rng.choice(others)[0]
            self.click(rid)
        elif shopper.link is not None and rng.random() < 0.02:  # buys through their own link
            rid = shopper.link
            self.click(rid)
        if rid is not None:
            self.clock.set(self.clock.now() + timedelta(minutes=rng.uniform(2, 90)))
        order = ft.orders.place(
            shopper.user.id,
            [(variants[size].id, 1 if rng.random() < 0.85 else 2)],
            shipping_address_id=shopper.address.id,
            billing_address_id=shopper.address.id,
            payment_method_id=shopper.card.id,
            rid=rid,
            actor=Actor.shopper(shopper.user.id),
        )
        self.counts["orders"] += 1
        now = self.clock.now()
        if rng.random() < 0.04:
            self.at(
                now + timedelta(minutes=rng.uniform(5, 120)),
                lambda: _done(ft.orders.cancel(order.id, actor=Actor.system())),
            )
            return
        fits = rec.size_label == size
        self.at(now + timedelta(minutes=rng.uniform(1, 20)), lambda: self.pay_and_ship(order, fits))

    def pay_and_ship(self, order: Order, fits: bool) -> None:
        ft, rng = self.ft, self.rng
        paid = _pay(ft, order)
        now = self.clock.now()
        if paid.status != OrderStatus.PAID:
            return
        sent = now + timedelta(hours=rng.uniform(2, 30))
        shipped = sent + timedelta(days=rng.uniform(0.5, 3))
        delivered = shipped + timedelta(days=rng.uniform(1, 6))
        self.at(sent, lambda: _done(ft.orders.send_to_brand(order.id, actor=Actor.system())))
        self.at(shipped, lambda: _done(ft.orders.mark_fulfilled(order.id, actor=Actor.system())))
        self.at(delivered, lambda: _done(ft.orders.mark_delivered(order.id, actor=Actor.system())))
        if rng.random() < (0.09 if fits else 0.38):  # wrong sizes come back far more often
            asked = delivered + timedelta(days=rng.uniform(1, 25))
            self.at(asked, lambda: self.send_back(order.id))

    def send_back(self, order_id: Any) -> None:
        self.ft.orders.request_return(order_id, actor=Actor.system())
        self.counts["returns"] += 1
        received = self.clock.now() + timedelta(days=self.rng.uniform(3, 12))
        self.at(received, lambda: _done(self.ft.orders.close(order_id, actor=Actor.system())))

    def weekly_jobs(self) -> None:
        ft = self.ft
        ft.orders.close_expired_returns(limit=100_000, actor=Actor.system())
        ft.rewards.release_due(actor=Actor.system())
        payable = ft.rewards.entries(status="payable", actor=Actor.system())
        positive = [e.id for e in payable if e.amount_cents > 0]
        if positive and self.clock.now().day <= 7:  # payouts once a month
            ft.rewards.mark_paid(positive, actor=Actor.system())


def _done(_: object) -> None:
    """Discard a service call's result (timeline steps return nothing)."""


def _pay(ft: FitTwin, order: Order) -> Order:
    succeed = getattr(ft.context.payments, "succeed", None)
    if succeed is None or order.payment_intent_ref is None:
        return ft.orders.mark_paid(order.id, actor=Actor.system())
    payload, header = succeed(order.payment_intent_ref)
    paid = ft.orders.handle_payment_webhook(payload, header)
    return paid if paid is not None else ft.orders.get(order.id, actor=Actor.system())


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


__all__ = [
    "PASSWORD",
    "ProgressBar",
    "SyntheticPasswordHasher",
    "SyntheticReport",
    "body",
    "connect_synthetic",
    "generate",
]
