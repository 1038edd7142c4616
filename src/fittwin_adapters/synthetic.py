"""Synthetic shops with a hidden truth, for notebooks, benchmarks and ``fittwin demo --shoppers N``.

:func:`generate` plays months of trade on a FitTwin whose clock it can move (build it with
:func:`connect_synthetic`). Brands, charts, fit maps and products are created through the
services; everything else — shoppers, links, clicks, orders and their lifecycles — is built in
bulk: entities made by the domain's own rules (the order state machine for every status move,
the pricing port for totals, the fit engine for fit summaries, the rewards service's reaction to
every move of a referred order for conversions and the ledger), written in units of work of many
steps, with Python's cyclic garbage collector paused for the run. Each order's whole lifecycle
(paid, sent, shipped, delivered, perhaps sent back, closed; or cancelled) is drawn when it is
placed. An order that is not referred takes all its moves at once (one ``transitions`` call) and
is written once, when it closes; a referred order is written at placement and at every move, at
the move's time, as the order service writes it, and the rewards service reacts to each move.
How long a 100 000-order year takes on the memory store is measured by ``bench/synthetic.py``
(``docs/benchmarks.md``).

**The hidden truth.** Each brand's garments fit as their charts say, shifted by a per-brand,
per-zone offset the library is never told (:class:`HiddenTruth`; by default the second brand
runs 3 cm small at the chest). A shopper keeps a line or sends it back *too small* / *too large*
by comparing their true body, with some noise in how they feel the fit, against that true
garment plus the room shoppers accept beyond a size's range (a per-zone ease). Style, quality
and other returns happen regardless of fit. Nothing depends on whether the engine agreed with
the size bought, so what the library learns from returns (calibration, fit-map proposals) can
be checked against what was hidden.

Shoppers: sex, height and BMI drawn around adult survey means; true girths from the fit
engine's equations plus personal variation; most shoppers type some of them in (with tape
error), the rest are left to the estimator. Everything is seeded: the same arguments give the
same shop. A tqdm progress bar shows on a terminal's stderr (or on any stream given).

Payments are not opened at a provider (orders carry no payment intent; refunds are recorded on
the order), and brand webhooks are not sent.
"""

from __future__ import annotations

import functools
import gc
import heapq
import itertools
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from uuid import UUID

import attrs

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher
from fittwin_core import FitTwin, fit
from fittwin_core.domain import (
    Actor,
    Address,
    AddressType,
    BodyMetrics,
    ConfigurationError,
    Consents,
    FitPreference,
    Order,
    OrderItem,
    OrderStatus,
    PaymentMethod,
    Referral,
    ReturnReason,
    ReturnReasonCode,
    Sex,
    StylePreferences,
    Totals,
    UserProfile,
    ValidationError,
)
from fittwin_core.domain.orders import Effect, transitions
from fittwin_core.fit.estimation import COEFFICIENTS, estimate_one
from fittwin_core.pagination import MAX_LIMIT, every
from fittwin_core.ports import PasswordHasher, PriceLine, UnitOfWork
from fittwin_core.services.referrals import Click
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
        {"label": "28", "waist": [62, 68], "hip": [84, 92]},
        {"label": "30", "waist": [68, 74], "hip": [92, 98]},
        {"label": "32", "waist": [74, 80], "hip": [98, 104]},
        {"label": "34", "waist": [80, 86], "hip": [104, 110]},
        {"label": "36", "waist": [86, 94], "hip": [110, 118]},
        {"label": "38", "waist": [94, 104], "hip": [118, 128]},
    ],
}
_SHOES = {
    "zones": {"foot_length": {"tolerance": 0.3}},
    "sizes": [
        {"label": str(eu), "foot_length": [round(22.5 + 0.66 * n, 2), round(23.16 + 0.66 * n, 2)]}
        for n, eu in enumerate(range(36, 47))
    ],
}
LINES: Mapping[str, tuple[str, dict[str, Any], tuple[tuple[str, int], ...]]] = {
    "tops": ("tops/t-shirts", _TOPS, (("Crew tee", 2900), ("Merino polo", 5900), ("Oxford shirt", 6900))),
    "bottoms": ("bottoms/trousers", _BOTTOMS, (("Chino", 7900), ("Selvedge jean", 11900))),
    "footwear": ("footwear/sneakers", _SHOES, (("Court sneaker", 9900),)),
}
"""Garment type → (category, size chart, products with their prices in minor units)."""
_BRANDS = ("Harbor Threads", "Fjord & Pine", "Atlas Denim", "Sable Row", "Kestrel Goods", "Lumen Works")
_CURRENCIES = ("EUR", "EUR", "GBP", "USD", "EUR", "USD")
_STYLE_REASONS = (ReturnReasonCode.STYLE, ReturnReasonCode.QUALITY, ReturnReasonCode.OTHER)
CHUNK = 50
"""Timeline steps per unit of work: small units keep the stores' per-transaction buffers small,
and so the reads of the rewards service's reactions, which also look through the unit of work's
own writes."""


@attrs.frozen(kw_only=True)
class HiddenTruth:
    """How the shop's garments really fit, which the library is never told.

    ``offsets``: brand index → zone → cm by which that brand's garments differ from their chart
    (negative: smaller, the brand runs small). ``ease``: ``(garment type, zone)`` → cm of room
    shoppers accept beyond a size's range before it feels too small or too large. ``noise_cm``:
    how unsure a shopper's feel of fit is (standard deviation; a quarter of it for feet).
    ``style_returns``: chance a line goes back for style, quality or another reason.
    ``names_zone``: chance a size return says which zone was wrong.
    """

    offsets: Mapping[int, Mapping[str, float]] = attrs.field(factory=lambda: {1: {"chest": -3.0}})
    ease: Mapping[tuple[str, str], float] = attrs.field(
        factory=lambda: {
            ("tops", "chest"): 3.0,
            ("tops", "waist"): 10.0,
            ("bottoms", "waist"): 3.0,
            ("bottoms", "hip"): 8.0,
            ("footwear", "foot_length"): 0.5,
        }
    )
    noise_cm: float = 1.2
    style_returns: float = 0.06
    names_zone: float = 0.8

    def offset(self, brand: int, zone: str) -> float:
        """The hidden offset (cm) of ``brand`` in ``zone``."""
        return float(self.offsets.get(brand, {}).get(zone, 0.0))

    def outcome(
        self,
        rng: random.Random,
        brand: int,
        garment: str,
        chart: fit.Chart,
        size: int,
        body: Mapping[str, float],
    ) -> tuple[ReturnReasonCode, str] | None:
        """How a line of ``size`` fits ``body`` (true girths by zone name): ``None`` when it fits,
        else ``(too_small | too_large, zone)`` for the zone that fits worst."""
        worst: tuple[float, ReturnReasonCode, str] | None = None
        for rule in chart.zones:
            value = body.get(rule.name)
            if value is None:
                continue
            shift = self.offset(brand, rule.name)
            room = self.ease.get((garment, rule.name), 2.0)
            noise = self.noise_cm * (0.25 if rule.name == "foot_length" else 1.0)
            felt = value + rng.gauss(0.0, noise)
            over = felt - (rule.highs[size] + shift + room)
            under = (rule.lows[size] + shift - room) - felt
            for excess, code in ((over, ReturnReasonCode.TOO_SMALL), (under, ReturnReasonCode.TOO_LARGE)):
                if excess > 0 and (worst is None or excess > worst[0]):
                    worst = (excess, code, rule.name)
        return None if worst is None else (worst[1], worst[2])


class SyntheticPasswordHasher:
    """Hashes each distinct password once with a real argon2id hasher and reuses that hash.

    Equal passwords then get equal hashes (one salt), which is acceptable only for synthetic
    shoppers who all share one published password: it lets thousands of them exist in
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
    """The generator's progress bar, drawn by tqdm.

    On the process's stderr (``auto``) it is ``tqdm.auto``'s: a widget in a notebook with
    ipywidgets, a text bar in a terminal, and nothing at all when stderr is not a terminal (a
    log, a CI run, a notebook without widgets). On a stream given explicitly it is always drawn.
    """

    def __init__(self, out: TextIO | None, *, auto: bool = False) -> None:
        self._bar: Any = None
        if out is None:
            return
        if auto:
            with warnings.catch_warnings():  # tqdm.auto warns in a notebook without ipywidgets
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm
            widget = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
            disable = False if widget else None  # None: quiet unless the stream is a terminal
        else:
            from tqdm import tqdm

            disable = False
        self._bar = tqdm(
            total=100,
            file=out,
            disable=disable,
            leave=True,
            bar_format="{percentage:3.0f}%|{bar:30}| {desc}  {elapsed}",
        )

    def update(self, fraction: float, label: str = "", *, force: bool = False) -> None:
        """Show ``fraction`` (0–1) done, with ``label``; tqdm redraws at most ten times a second
        (``force`` redraws now)."""
        if self._bar is None:
            return
        done = round(min(max(fraction, 0.0), 1.0) * 100)
        if done == self._bar.n and not force:
            return
        self._bar.set_description_str(label, refresh=False)
        self._bar.update(done - self._bar.n)
        if force:
            self._bar.refresh()

    def close(self, label: str = "") -> None:
        """Show 100 % and end the bar."""
        if self._bar is None:
            return
        self.update(1.0, label, force=True)
        self._bar.close()


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
    size_returns: int = 0
    """Returns whose reason was too small or too large."""


def true_body(rng: random.Random) -> tuple[str, float, float, dict[str, float]]:
    """A plausible adult: sex, height, weight and true girths (cm) by zone name."""
    sex = rng.choice(("female", "male"))
    height = rng.gauss(176.0, 7.2) if sex == "male" else rng.gauss(162.5, 6.6)
    height = min(max(height, 145.0), 205.0)
    bmi = min(max(math.exp(rng.gauss(math.log(26.0), 0.16)), 17.5), 42.0)
    weight = round(bmi * (height / 100) ** 2, 1)
    girths = {
        name.removesuffix("_cm"): estimate_one(name, height, weight, sex) + rng.gauss(0.0, spread)
        for name, spread in (("chest_cm", 3.5), ("waist_cm", 3.5), ("hip_cm", 3.0), ("thigh_cm", 2.0))
        if name in COEFFICIENTS
    }
    girths["foot_length"] = 0.152 * height + rng.gauss(0.0, 0.6)
    return sex, round(height, 1), weight, girths


def body(rng: random.Random) -> tuple[BodyMetrics, str]:
    """A plausible adult's body metrics as a shopper would enter them (some girths measured with
    a tape, the rest left to be estimated), and their sex."""
    metrics, sex, _ = _shopper_body(rng)
    return metrics, sex


def _shopper_body(rng: random.Random) -> tuple[BodyMetrics, str, dict[str, float]]:
    sex, height, weight, truth = true_body(rng)
    measured: dict[str, float] = {}
    for zone, share in (("chest", 0.75), ("waist", 0.6), ("hip", 0.45), ("foot_length", 0.7)):
        if rng.random() < share:
            tape = 0.3 if zone == "foot_length" else 1.0
            measured[f"{zone}_cm"] = round(truth[zone] + rng.gauss(0.0, tape), 1)
    return BodyMetrics(height_cm=height, weight_kg=weight, sex=Sex(sex), **measured), sex, truth


def generate(
    ft: FitTwin,
    *,
    shoppers: int = 1000,
    months: int = 12,
    orders_per_shopper: float = 2.5,
    brands: int = 3,
    seed: int = 7,
    progress: TextIO | bool | None = True,
    truth: HiddenTruth | None = None,
    lines: Sequence[str] = tuple(LINES),
) -> SyntheticReport:
    """Play ``months`` of trade with ``shoppers`` new shoppers on ``ft``, ending at the clock's
    current time. ``progress``: ``True`` shows a tqdm bar on stderr when it is a terminal (a
    widget in a notebook with ipywidgets; nothing in logs), a stream draws it there, ``False`` none.
    ``ft`` needs a movable clock (``set``): build it with :func:`connect_synthetic`.

    The first call opens the brands (``brands`` of them, selling the garment ``lines``); a later
    call on the same FitTwin (after moving its clock on) trades with the same brands and
    catalog — with whatever fit maps they have by then — and new shoppers. Shoppers sign up over
    the period and place on average ``orders_per_shopper`` orders within the half-year after
    signing up (those that would fall after the end are not placed). ``truth`` decides how
    garments really fit (default :class:`HiddenTruth`).
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
    unknown = [line for line in lines if line not in LINES]
    if unknown or not lines:
        raise ValidationError("lines", f"must name garment lines among {', '.join(LINES)}")
    bar = ProgressBar(sys.stderr, auto=True) if progress is True else ProgressBar(progress or None)
    run = _Run(ft, clock, random.Random(seed), bar, truth or HiddenTruth())  # noqa: S311
    with _no_cycle_collection():
        return run.play(
            shoppers=shoppers,
            months=months,
            orders_per_shopper=orders_per_shopper,
            brands=brands,
            lines=lines,
        )


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the shop is built, as it was before.

    Every row the run creates stays alive in the store, so each collection walks a heap that
    only grows (about a fifth of the CPU time of a 10 000-order run went there), while the run
    makes almost no reference cycles (reference counting frees its temporaries). The pause is
    process-wide; collection resumes, as it was, when the run ends or fails."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@attrs.define
class _Product:
    product: Any
    brand: int
    garment: str
    chart: fit.Chart
    size_chart: Any
    fit_map: Any
    variants: dict[str, Any]


@attrs.define
class _Shopper:
    index: int
    user: UserProfile
    address: Address
    card: PaymentMethod
    truth: dict[str, float]
    link: str | None = None


_Move = tuple[datetime, OrderStatus, ReturnReason | None]
"""A move of an order's lifecycle: when, to which status, and (for a return) why."""


@attrs.define
class _Line:
    order: Order
    item: OrderItem
    product: _Product
    shopper: _Shopper
    written: OrderStatus | None = None
    """The status the order row has in the store; ``None``: not written yet."""


class _Run:
    def __init__(
        self, ft: FitTwin, clock: Any, rng: random.Random, bar: ProgressBar, truth: HiddenTruth
    ) -> None:
        self.ft = ft
        self.clock = clock
        self.rng = rng
        self.bar = bar
        self.truth = truth
        # The timeline: (POSIX time, tie-break, time, action); floats compare faster than datetimes.
        self.queue: list[tuple[float, int, datetime, Callable[[UnitOfWork], None]]] = []
        self.counter = itertools.count()
        self.products: list[_Product] = []
        self.shoppers: list[_Shopper] = []
        self.links: list[tuple[str, int]] = []  # rid, owner index
        self.counts = {"clicks": 0, "orders": 0, "returns": 0, "size_returns": 0, "refused": 0}
        self.platform = Actor.platform(ft.context.ids.new_id())
        self.stock: dict[UUID, int] = {}
        self.open: dict[UUID, _Line] = {}  # orders not settled yet, by id
        self.window = timedelta(days=ft.context.settings.return_window_days)
        self.end = ft.context.clock.now()  # the end of the period played (set by play)
        self.weekly: Callable[[UnitOfWork], None] = self._weekly

    # ------------------------------------------------------------------ the whole run

    def play(
        self, *, shoppers: int, months: int, orders_per_shopper: float, brands: int, lines: Sequence[str]
    ) -> SyntheticReport:
        started = time.perf_counter()
        end = self.end = self.clock.now()
        start = end - timedelta(days=round(months * 30.44))
        self.clock.set(start)
        self.open_brands(brands, lines)
        span = (end - start).total_seconds()
        joined = sorted(
            start + timedelta(seconds=span * 0.9 * self.rng.random() ** 0.8) for _ in range(shoppers)
        )
        self.sign_up(joined)
        self.bar.update(0.2, f"{len(self.shoppers)} shoppers")
        self.share(end)
        for shopper, when in zip(self.shoppers, joined, strict=True):
            for _ in range(_poisson(self.rng, orders_per_shopper)):
                self.at(when + timedelta(days=self.rng.uniform(0, 180)), self._shop(shopper))
        week = start + timedelta(days=7)
        while week < end:
            self.at(week, self.weekly)
            week += timedelta(days=7)
        self.trade(start, end, span)
        self.clock.set(end)
        self.bar.close(f"{len(self.shoppers)} shoppers, {self.counts['orders']} orders")
        return SyntheticReport(
            brands=brands,
            products=len(self.products),
            shoppers=len(self.shoppers),
            referral_links=len(self.links),
            clicks=self.counts["clicks"],
            orders=self.counts["orders"],
            returns=self.counts["returns"],
            refused_steps=self.counts["refused"],
            start=start,
            end=end,
            seconds=time.perf_counter() - started,
            size_returns=self.counts["size_returns"],
        )

    def at(self, when: datetime, action: Callable[[UnitOfWork], None]) -> None:
        heapq.heappush(self.queue, (when.timestamp(), next(self.counter), when, action))

    # ------------------------------------------------------------------ brands and catalog

    def open_brands(self, count: int, lines: Sequence[str]) -> None:
        """Open the brands through the services, or find them when an earlier run opened them."""
        ft, platform = self.ft, self.platform
        with ft.context.store.unit_of_work() as uow:
            existing = {b.name: b for b in uow.brands.where()}
        for b in range(count):
            brand = existing.get(_BRANDS[b])
            if brand is None:
                brand = ft.brands.create(_BRANDS[b], {"email": f"partners@brand{b}.example"}, actor=platform)
                ft.brands.submit_kyc(brand.id, actor=platform)
                ft.brands.activate(brand.id, actor=platform)
                self._new_catalog(b, brand, lines)
            self._load_catalog(b, brand)

    def _new_catalog(self, b: int, brand: Any, lines: Sequence[str]) -> None:
        ft, platform = self.ft, self.platform
        for garment in lines:
            category, chart_rules, titles = LINES[garment]
            chart = ft.catalog.create_size_chart(brand.id, garment, chart_rules, actor=platform)
            fit_map = ft.catalog.create_fit_map(brand.id, garment, {}, actor=platform)
            for title, price in titles:
                product = ft.catalog.create_product(
                    brand.id,
                    title=title,
                    category=category,
                    size_chart_id=chart.id,
                    fit_map_id=fit_map.id,
                    actor=platform,
                )
                for size in chart_rules["sizes"]:
                    ft.catalog.add_variant(
                        product.id,
                        sku=f"B{b}-{product.id.hex[-8:]}-{size['label']}",
                        size_label=size["label"],
                        price_cents=price + 500 * b,
                        currency=_CURRENCIES[b],
                        inventory=1_000_000,
                        actor=platform,
                    )
                ft.catalog.publish_product(product.id, actor=platform)

    def _load_catalog(self, b: int, brand: Any) -> None:
        with self.ft.context.store.unit_of_work() as uow:
            for product in uow.products.where(brand_id=brand.id, order_by="id"):
                size_chart = uow.size_charts.get(product.size_chart_id)
                fit_map = None if product.fit_map_id is None else uow.fit_maps.get(product.fit_map_id)
                variants = {v.size_label: v for v in uow.product_variants.where(product_id=product.id)}
                self.products.append(
                    _Product(
                        product,
                        b,
                        size_chart.garment_type,
                        fit.parse_chart(size_chart),
                        size_chart,
                        fit_map,
                        variants,
                    )
                )

    # ------------------------------------------------------------------ shoppers, in bulk

    def sign_up(self, joined: Sequence[datetime]) -> None:
        ft, rng = self.ft, self.rng
        vault = ft.accounts.vault
        password_hash = ft.context.hasher.hash(PASSWORD)
        with ft.context.store.unit_of_work() as uow:
            first = uow.user_profiles.count()
        region = ft.context.settings.region or ft.context.settings.default_region
        blind = vault.blind_indexes(Address, postal_code="69000", country="FR")
        for chunk_start in range(0, len(joined), CHUNK):
            users: list[UserProfile] = []
            addresses: list[Address] = []
            cards: list[PaymentMethod] = []
            with ft.context.store.unit_of_work(Actor.system()) as uow:
                for offset, when in enumerate(joined[chunk_start : chunk_start + CHUNK]):
                    n = first + chunk_start + offset
                    self.clock.set(when)
                    metrics, _, truth = _shopper_body(rng)
                    preference = rng.choices(("slim", "regular", "relaxed"), (0.25, 0.55, 0.2))[0]
                    user = UserProfile(
                        id=ft.context.ids.new_id(),
                        email=f"shopper{n}@synthetic.example",
                        password_hash=password_hash,
                        username=f"shopper{n}",
                        body_metrics=metrics,
                        consents=Consents(terms=True, marketing=rng.random() < 0.4),
                        region=region,
                        style_preferences=StylePreferences(fit_prefs=FitPreference(preference)),
                        created_at=when,
                        updated_at=when,
                    )
                    users.append(user)
                    address_id = ft.context.ids.new_id()
                    lines = {
                        "line1": f"{n} Synthetic Street",
                        "city": "Lyon",
                        "postal_code": "69000",
                        "country": "FR",
                    }
                    sealed = vault.seal_fields(uow, user.id, Address, address_id, **lines)
                    address = Address(
                        id=address_id,
                        user_id=user.id,
                        type=AddressType.SHIPPING,
                        line1=sealed["line1"],
                        city=sealed["city"],
                        postal_code=sealed["postal_code"],
                        country=sealed["country"],
                        **blind,
                        created_at=when,
                        updated_at=when,
                    )
                    addresses.append(address)
                    card = PaymentMethod(
                        id=ft.context.ids.new_id(),
                        user_id=user.id,
                        psp_token_id=f"pm_synthetic_{n}",
                        brand="visa",
                        last4="4242",
                        created_at=when,
                        updated_at=when,
                    )
                    cards.append(card)
                    self.shoppers.append(_Shopper(n, user, address, card, truth))
                uow.user_profiles.add_many(users)
                uow.addresses.add_many(addresses)
                uow.payment_methods.add_many(cards)
                uow.commit()

    def share(self, end: datetime) -> None:
        """A third of shoppers share a link soon after signing up; strangers click it."""
        ft, rng = self.ft, self.rng
        policy = ft.context.settings.referral_policy
        clicks: list[Click] = []
        with ft.context.store.unit_of_work(Actor.system()) as uow:
            for shopper in self.shoppers:
                if rng.random() >= 0.3:
                    continue
                when = shopper.user.created_at + timedelta(hours=rng.uniform(1, 72))
                if when >= end:
                    continue
                self.clock.set(when)
                rid = ft.context.ids.new_rid()
                product = rng.choice(self.products).product
                uow.referrals.add(
                    Referral(
                        rid=rid,
                        referrer_user_id=shopper.user.id,
                        target_product_id=product.id,
                        share_url=ft.referrals.share_url(rid),
                        policy_snapshot=policy,
                        created_at=when,
                    )
                )
                shopper.link = rid
                self.links.append((rid, shopper.index))
                for _ in range(_poisson(rng, 4.0)):  # clicks that never convert
                    at = when + timedelta(days=rng.uniform(0, 60))
                    if at < end:
                        clicks.append(self._click(rid, at))
            uow.commit()
        self.record(clicks)

    def _click(self, rid: str, at: datetime) -> Click:
        rng = self.rng
        ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        device = f"device-{rng.getrandbits(48):012x}"
        return Click(rid=rid, ip=ip, user_agent="Mozilla/5.0 (synthetic)", device_fingerprint=device, at=at)

    def record(self, clicks: list[Click]) -> None:
        for start in range(0, len(clicks), 5000):
            self.counts["clicks"] += self.ft.referrals.record_clicks(
                clicks[start : start + 5000], actor=Actor.system()
            )

    # ------------------------------------------------------------------ trade: the timeline

    def trade(self, start: datetime, end: datetime, span: float) -> None:
        """Run the order timeline in time order, many steps per unit of work."""
        clicks: list[Click] = []
        # Clicks that lead to purchases are known before trading starts: record them first so
        # attribution finds them, as it would in the live shop.
        for _, _, when, action in self.queue:
            link = getattr(action, "referral", None)
            if link is not None and when < end:
                clicks.append(self._click(link, when - timedelta(minutes=self.rng.uniform(2, 90))))
        self.record(clicks)
        steps = 0
        uow = self.ft.context.store.unit_of_work(Actor.system())
        try:
            stop = end.timestamp()
            while self.queue and self.queue[0][0] < stop:
                _, _, when, action = heapq.heappop(self.queue)
                self.clock.set(when)
                if action is self.weekly:
                    self._flush(uow, stock=True)
                    action(uow)
                    continue
                action(uow)
                steps += 1
                if steps % CHUNK == 0:
                    self._flush(uow)
                    label = f"{len(self.shoppers)} shoppers, {self.counts['orders']} orders"
                    self.bar.update(0.2 + 0.8 * (when - start).total_seconds() / span, label)
            self._flush(uow, stock=True, orders=True)
        finally:
            uow.rollback()

    def _flush(self, uow: UnitOfWork, *, stock: bool = False, orders: bool = False) -> None:
        """Commit; with ``stock``, first take the stock sold since the last time (one guarded
        change per variant); with ``orders``, write every order still open in its current state."""
        if orders:
            for line in self.open.values():
                self._write(uow, line)
            self.open.clear()
        if stock:
            for variant_id, delta in sorted(self.stock.items()):
                if delta:
                    uow.product_variants.adjust_inventory(variant_id, delta)
            self.stock.clear()
        uow.commit()

    def _weekly(self, uow: UnitOfWork) -> None:
        """The weekly jobs that are not part of an order's own timeline: release held rewards,
        and pay them out once a month."""
        ft = self.ft
        ft.rewards.release_due(actor=Actor.system())
        if self.clock.now().day <= 7:
            entries = every(
                lambda after: ft.rewards.entries(
                    status="payable", actor=Actor.system(), limit=MAX_LIMIT, after=after
                )
            )
            payable = [e.id for e in entries if e.amount_cents > 0]
            if payable:
                ft.rewards.mark_paid(payable, actor=Actor.system())

    # ------------------------------------------------------------------ one order

    def _shop(self, shopper: _Shopper) -> Callable[[UnitOfWork], None]:
        rng = self.rng
        rid = None
        friend = rng.choice(self.links) if self.links else None
        if friend is not None and friend[1] != shopper.index and rng.random() < 0.22:
            rid = friend[0]  # arrived through a friend's link: clicked, then bought
        elif shopper.link is not None and rng.random() < 0.02:  # buys through their own link
            rid = shopper.link

        def place(uow: UnitOfWork) -> None:
            self.place(uow, shopper, rid)

        place.referral = rid  # type: ignore[attr-defined]
        return place

    def place(self, uow: UnitOfWork, shopper: _Shopper, rid: str | None) -> None:
        ft, rng = self.ft, self.rng
        product = rng.choice(self.products)
        assert shopper.user.body_metrics is not None
        rec = fit.recommend(
            shopper.user.body_metrics, product.size_chart, product.fit_map, shopper.user.style_preferences
        )
        labels = list(product.chart.labels)
        if rec.size_label is not None and rng.random() < 0.78:
            size = rec.size_label
        else:  # a neighbour of the recommendation, or a guess when there is none
            anchor = labels.index(rec.size_label) if rec.size_label in labels else len(labels) // 2
            size = labels[min(max(anchor + rng.choice((-1, 1)), 0), len(labels) - 1)]
        variant = product.variants[size]
        qty = 1 if rng.random() < 0.85 else 2
        now = self.clock.now()
        order_id = ft.context.ids.new_id()
        item = OrderItem(
            id=ft.context.ids.new_id(),
            order_id=order_id,
            product_id=product.product.id,
            brand_id=product.product.brand_id,
            variant_id=variant.id,
            sku=variant.sku,
            size_label=size,
            qty=qty,
            reserved_qty=qty,
            unit_price_cents=variant.price_cents,
            currency=variant.currency,
            fit_summary=rec.to_fit_summary(),
            created_at=now,
        )
        subtotal = item.line_total_cents
        quote = ft.context.pricing.quote(
            lines=[
                PriceLine(
                    variant_id=variant.id,
                    product_id=product.product.id,
                    qty=qty,
                    unit_price_cents=variant.price_cents,
                )
            ],
            currency=variant.currency,
            subtotal=subtotal,
            shipping_country="FR",
        )
        totals = Totals.compute(
            subtotal=subtotal,
            currency=variant.currency,
            tax=quote.tax,
            shipping=quote.shipping,
            discounts=quote.discounts,
        )
        order = Order(
            id=order_id,
            user_id=shopper.user.id,
            totals=totals,
            shipping_address_id=shopper.address.id,
            billing_address_id=shopper.address.id,
            psp_token_id=shopper.card.psp_token_id,
            rid=rid,
            created_at=now,
            updated_at=now,
        )
        line = _Line(order, item, product, shopper)
        self.stock[variant.id] = self.stock.get(variant.id, 0) - qty
        self.counts["orders"] += 1
        moves = self._lifecycle(line, now)
        if rid is None:
            self._settle(line, moves)
            return
        # A referred order exists from placement on (the rewards service records against it)
        # and moves at the times its lifecycle drew, one move of the timeline each.
        self._write(uow, line)
        self.open[order.id] = line
        for when, target, reason in moves:
            if reason is not None:
                self.at(when, functools.partial(self.send_back, line=line, reason=reason))
            else:
                self.at(when, functools.partial(self.move, line=line, target=target))

    def _lifecycle(self, line: _Line, placed: datetime) -> list[_Move]:
        """The whole life of an order drawn when it is placed: when it is paid, sent, shipped
        and delivered, whether it comes back (the hidden truth decides how the line fits) and
        when it closes. A cancelled order closes before it is paid."""
        rng = self.rng
        if rng.random() < 0.04:
            return [(placed + timedelta(minutes=rng.uniform(5, 120)), OrderStatus.CLOSED, None)]
        paid = placed + timedelta(minutes=rng.uniform(1, 20))
        sent = paid + timedelta(hours=rng.uniform(2, 30))
        shipped = sent + timedelta(days=rng.uniform(0.5, 3))
        delivered = shipped + timedelta(days=rng.uniform(1, 6))
        moves: list[_Move] = [
            (paid, OrderStatus.PAID, None),
            (sent, OrderStatus.SENT_TO_BRAND, None),
            (shipped, OrderStatus.FULFILLED, None),
            (delivered, OrderStatus.DELIVERED, None),
        ]
        product = line.product
        size = product.chart.labels.index(line.item.size_label)
        verdict = self.truth.outcome(
            rng, product.brand, product.garment, product.chart, size, line.shopper.truth
        )
        reason: ReturnReason | None = None
        if verdict is not None:
            code, zone = verdict
            reason = ReturnReason(reason=code, zone=zone if rng.random() < self.truth.names_zone else None)
        elif rng.random() < self.truth.style_returns:
            reason = ReturnReason(reason=rng.choice(_STYLE_REASONS))
        if reason is None:  # kept: the weekly job closes it once the return window is over
            closed = delivered + self.window + timedelta(days=rng.uniform(0, 7))
            moves.append((closed, OrderStatus.CLOSED, None))
            return moves
        asked = delivered + timedelta(days=rng.uniform(1, 25))
        received = asked + timedelta(days=rng.uniform(3, 12))
        moves.append((asked, OrderStatus.RETURN_REQUESTED, reason))
        moves.append((received, OrderStatus.CLOSED, None))
        return moves

    def _settle(self, line: _Line, moves: Sequence[_Move]) -> None:
        """An order that is not referred takes every move of its lifecycle before the end at
        once (nothing reacts to them: one ``transitions`` call) and is written once: when it
        closes, or at the end of the run in the state it reached."""
        taken = list(itertools.takewhile(lambda move: move[0] < self.end, moves))
        for _, _, reason in taken:
            if reason is not None:
                self._return(line, reason)
        self._step(line, [(target, when) for when, target, _ in taken])
        if line.order.status != OrderStatus.CLOSED:
            self.open[line.order.id] = line
        else:
            self.at(taken[-1][0], functools.partial(self._write, line=line))

    def _step(self, line: _Line, moves: Sequence[tuple[OrderStatus, datetime]]) -> Order:
        """Legal moves of the order state machine and their effects; the order before them."""
        before = line.order
        after, changes = transitions(before, moves, return_window_days=self.window.days)
        for change in changes:
            if Effect.RELEASE_STOCK in change.effects:
                self.stock[line.item.variant_id] = (
                    self.stock.get(line.item.variant_id, 0) + line.item.reserved_qty
                )
            if Effect.REFUND in change.effects and after.paid_at is not None:
                after = attrs.evolve(after, refunded_cents=after.totals.total)
        line.order = after
        return before

    def _return(self, line: _Line, reason: ReturnReason) -> None:
        line.item = attrs.evolve(line.item, return_reason=reason)
        self.counts["returns"] += 1
        self.counts["size_returns"] += int(reason.about_size)

    def move(self, uow: UnitOfWork, line: _Line, target: OrderStatus) -> None:
        """One move of a referred order on the timeline: written as the order service writes
        it (one audited update), and the rewards service's reaction to it."""
        before = self._step(line, [(target, self.clock.now())])
        after = line.order
        self._write(uow, line)
        if after.status == OrderStatus.CLOSED:
            self.open.pop(after.id, None)
        self.ft.rewards.on_order_moved(uow, before, after)

    def _write(self, uow: UnitOfWork, line: _Line) -> None:
        """Store the order (and its line) as it stands."""
        if line.written is None:
            uow.orders.add(line.order)
            uow.order_items.add(line.item)
        elif line.written != line.order.status:
            uow.orders.update(line.order, expected={"status": line.written})
        line.written = line.order.status

    def send_back(self, uow: UnitOfWork, line: _Line, reason: ReturnReason) -> None:
        """A referred order's line comes back: the line says why, then the order moves."""
        self._return(line, reason)
        uow.order_items.update(line.item)
        self.move(uow, line, OrderStatus.RETURN_REQUESTED)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


__all__ = [
    "LINES",
    "PASSWORD",
    "HiddenTruth",
    "ProgressBar",
    "SyntheticPasswordHasher",
    "SyntheticReport",
    "body",
    "connect_synthetic",
    "generate",
    "true_body",
]
