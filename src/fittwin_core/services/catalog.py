"""The catalog: size charts and fit maps, products (``draft → active → archived``) and their
variants with unique SKUs, prices and stock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import attrs

from fittwin_core import fit
from fittwin_core.domain import (
    Actor,
    Conflict,
    FitMap,
    FitMapProposal,
    InvalidTransition,
    Product,
    ProductAssets,
    ProductStatus,
    ProductVariant,
    ProposalStatus,
    SizeChart,
    UnitSystem,
    VariantStatus,
)
from fittwin_core.domain.catalog import PRODUCT_TRANSITIONS, category, size_label, sku, stock
from fittwin_core.domain.money import cents, currency
from fittwin_core.domain.rules import JsonMap, evolved, json_object_from, parse_enum, thaw_json
from fittwin_core.outbox import Recorded
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork, one_of
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_uuid, coerce, require
from fittwin_core.services.brands import BrandEvent, Brands
from fittwin_core.services.permissions import authorize

MIN_CALIBRATION_OUTCOMES = 50
"""Fewest known outcomes :meth:`Catalog.calibrate_confidence` fits a calibration on."""
MIN_OFFSET_CHANGE_CM = 0.5
"""Smallest change of a zone offset worth proposing."""


@attrs.frozen
class CalibrationReport:
    """What :meth:`Catalog.calibrate_confidence` fitted: the fit maps it wrote, the outcomes it
    fitted on and held back, and the expected calibration error on the held-back ones."""

    fit_map_ids: tuple[UUID, ...]
    samples: int
    held_back: int
    ece_before: float | None
    ece_after: float | None


def next_variant_status(variant: ProductVariant) -> VariantStatus:
    """The stock status a variant should have for its inventory: ``active`` variants with no
    stock become ``out_of_stock`` and come back when restocked; ``backorder`` stays as set."""
    if variant.status == VariantStatus.ACTIVE and variant.inventory == 0:
        return VariantStatus.OUT_OF_STOCK
    if variant.status == VariantStatus.OUT_OF_STOCK and variant.inventory > 0:
        return VariantStatus.ACTIVE
    return variant.status


class Catalog(Service):
    """``ft.catalog``: size charts, fit maps, products and variants of a brand."""

    def __init__(self, ctx: Context, brands: Brands, runner: UnitOfWorkRunner | None = None) -> None:
        super().__init__(ctx, runner)
        self._brands = brands

    # ------------------------------------------------------------------ charts and fit maps

    def create_size_chart(
        self,
        brand_id: UUID,
        garment_type: str,
        measurement_rules: Mapping[str, Any],
        *,
        grading_rules: Mapping[str, Any] | None = None,
        unit_system: UnitSystem | str = UnitSystem.METRIC,
        actor: Actor,
    ) -> SizeChart:
        """Add a size chart (managers and owners). Imperial charts are converted to cm once and
        stored that way; ``unit_system`` records what the brand entered. See ``docs/fit.md``
        for the rules' schema; an invalid chart raises :class:`ValidationError` naming the size
        and zone."""
        bid = as_uuid(brand_id, "brand_id")
        category.check("garment_type", garment_type)
        units = parse_enum(UnitSystem, unit_system, "unit_system")
        rules_cm, grading_cm = fit.normalize_size_chart(measurement_rules, grading_rules, units)

        def work(uow: UnitOfWork) -> SizeChart:
            authorize(actor, "catalog.create_size_chart", uow=uow, brand_ids={bid})
            uow.brands.get(bid)
            now = self.now()
            chart = SizeChart(
                id=self._ctx.ids.new_id(),
                brand_id=bid,
                garment_type=garment_type,
                measurement_rules=JsonMap(rules_cm),
                grading_rules=None if grading_cm is None else JsonMap(grading_cm),
                unit_system=units,
                created_at=now,
                updated_at=now,
            )
            uow.size_charts.add(chart)
            return chart

        return self.transaction(work, actor=actor)

    def create_fit_map(
        self,
        brand_id: UUID,
        garment_type: str,
        rule_set: Mapping[str, Any],
        *,
        confidence_model: Mapping[str, Any] | None = None,
        actor: Actor,
    ) -> FitMap:
        """Add a fit map (managers and owners); see ``docs/fit.md`` for ``rule_set`` and
        ``confidence_model``."""
        bid = as_uuid(brand_id, "brand_id")
        category.check("garment_type", garment_type)
        checked_rules, checked_model = fit.validate_fit_map(rule_set, confidence_model)

        def work(uow: UnitOfWork) -> FitMap:
            authorize(actor, "catalog.create_fit_map", uow=uow, brand_ids={bid})
            uow.brands.get(bid)
            now = self.now()
            fit_map = FitMap(
                id=self._ctx.ids.new_id(),
                brand_id=bid,
                garment_type=garment_type,
                rule_set=JsonMap(checked_rules),
                confidence_model=None if checked_model is None else JsonMap(checked_model),
                created_at=now,
                updated_at=now,
            )
            uow.fit_maps.add(fit_map)
            return fit_map

        return self.transaction(work, actor=actor)

    def size_chart(self, size_chart_id: UUID, *, actor: Actor) -> SizeChart:
        """A size chart (the catalog is public: any actor may read it)."""
        cid = as_uuid(size_chart_id, "size_chart_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.size_charts.get(cid), actor=actor)

    def fit_map(self, fit_map_id: UUID, *, actor: Actor) -> FitMap:
        """A fit map."""
        fid = as_uuid(fit_map_id, "fit_map_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.fit_maps.get(fid), actor=actor)

    # ------------------------------------------------------------------ products

    def create_product(
        self,
        brand_id: UUID,
        *,
        title: str,
        category: str,
        size_chart_id: UUID,
        description: str = "",
        fit_map_id: UUID | None = None,
        assets: ProductAssets | Mapping[str, Any] | None = None,
        actor: Actor,
    ) -> Product:
        """Add a ``draft`` product using one of the brand's size charts (and fit maps)."""
        bid = as_uuid(brand_id, "brand_id")
        chart_id = as_uuid(size_chart_id, "size_chart_id")
        map_id = None if fit_map_id is None else as_uuid(fit_map_id, "fit_map_id")
        media = ProductAssets() if assets is None else coerce(assets, ProductAssets, "assets")
        title_text = title.strip() if isinstance(title, str) else title

        def work(uow: UnitOfWork) -> Product:
            authorize(actor, "catalog.create_product", uow=uow, brand_ids={bid})
            uow.brands.get(bid)
            chart = uow.size_charts.get(chart_id)
            require(chart.brand_id == bid, "size_chart_id", "must be a size chart of the same brand")
            if map_id is not None:
                require(
                    uow.fit_maps.get(map_id).brand_id == bid,
                    "fit_map_id",
                    "must be a fit map of the same brand",
                )
            now = self.now()
            product = Product(
                id=self._ctx.ids.new_id(),
                brand_id=bid,
                title=title_text,
                description=description,
                category=category,
                assets=media,
                size_chart_id=chart_id,
                fit_map_id=map_id,
                created_at=now,
                updated_at=now,
            )
            uow.products.add(product)
            return product

        return self.transaction(work, actor=actor)

    def publish_product(self, product_id: UUID, *, actor: Actor) -> Product:
        """``draft → active``: the product can be ordered (it needs at least one variant)."""
        return self._move_product(product_id, ProductStatus.ACTIVE, actor, "catalog.publish_product")

    def archive_product(self, product_id: UUID, *, actor: Actor) -> Product:
        """``→ archived``: the product can no longer be ordered; history keeps it."""
        return self._move_product(product_id, ProductStatus.ARCHIVED, actor, "catalog.archive_product")

    def _move_product(self, product_id: UUID, target: ProductStatus, actor: Actor, action: str) -> Product:
        pid = as_uuid(product_id, "product_id")

        def work(uow: UnitOfWork) -> Product:
            product = uow.products.get(pid)
            authorize(actor, action, uow=uow, brand_ids={product.brand_id})
            if product.status == target:
                return product
            if target not in PRODUCT_TRANSITIONS[product.status]:
                raise InvalidTransition("product", product.status, target)
            if target == ProductStatus.ACTIVE and not uow.product_variants.where(product_id=pid, limit=1):
                raise InvalidTransition("product", product.status, target, "it has no variants")
            moved = attrs.evolve(product, status=target, updated_at=self.now())
            uow.products.update(moved, expected={"status": product.status})
            return moved

        return self.transaction(work, actor=actor)

    def product(self, product_id: UUID, *, actor: Actor) -> Product:
        """A product."""
        pid = as_uuid(product_id, "product_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.products.get(pid), actor=actor)

    def products(
        self,
        brand_id: UUID,
        *,
        status: ProductStatus | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Product]:
        """A page of a brand's products, oldest first, optionally of one status."""
        bid = as_uuid(brand_id, "brand_id")
        window = PageRequest.of(limit, after)
        authorize(actor, "catalog.read")
        filters: dict[str, Any] = {"brand_id": bid}
        if status is not None:
            filters["status"] = parse_enum(ProductStatus, status, "status")
        return self.read(lambda uow: window.read(uow.products, **filters), actor=actor)

    # ------------------------------------------------------------------ variants and stock

    def add_variant(
        self,
        product_id: UUID,
        *,
        sku: str,
        size_label: str,
        price_cents: int,
        currency: str,
        inventory: int,
        color: str | None = None,
        backorder: bool = False,
        fit_metadata: Mapping[str, Any] | None = None,
        actor: Actor,
    ) -> ProductVariant:
        """Add a size/colour of a product. The SKU is unique across the catalog; the size label
        must be one of the product's size chart (listed or graded); all variants of a product
        share one currency. ``backorder`` variants keep selling when out of stock."""
        pid = as_uuid(product_id, "product_id")
        _check_variant_fields(sku, size_label, price_cents, currency, inventory)

        def work(uow: UnitOfWork) -> ProductVariant:
            product = uow.products.get(pid)
            authorize(actor, "catalog.add_variant", uow=uow, brand_ids={product.brand_id})
            require(product.status != ProductStatus.ARCHIVED, "product_id", "refers to an archived product")
            chart = uow.size_charts.get(product.size_chart_id)
            labels = fit.parse_chart(chart).labels
            require(
                size_label in labels,
                "size_label",
                f"must be one of the size chart's sizes: {', '.join(labels)}",
            )
            siblings = uow.product_variants.where(product_id=pid)
            require(
                all(v.currency == currency for v in siblings),
                "currency",
                "must match the product's other variants",
            )
            if uow.product_variants.where(sku=sku, limit=1):
                raise Conflict("this SKU is already used")
            now = self.now()
            status = VariantStatus.BACKORDER if backorder else VariantStatus.ACTIVE
            variant = ProductVariant(
                id=self._ctx.ids.new_id(),
                product_id=pid,
                sku=sku,
                size_label=size_label,
                color=color,
                price_cents=price_cents,
                currency=currency,
                inventory=inventory,
                fit_metadata=None if fit_metadata is None else json_object_from(fit_metadata, "fit_metadata"),
                status=status,
                created_at=now,
                updated_at=now,
            )
            variant = attrs.evolve(variant, status=next_variant_status(variant))
            uow.product_variants.add(variant)
            return variant

        return self.transaction(work, actor=actor)

    def set_inventory(self, variant_id: UUID, inventory: int, *, actor: Actor) -> ProductVariant:
        """Set a variant's stock count (a stock take); its stock status follows. A brand
        subscribed to ``variant.low_stock`` hears when stock falls to the threshold or below."""
        vid = as_uuid(variant_id, "variant_id")
        stock.check("inventory", inventory)
        recorded: list[Recorded] = []

        def work(uow: UnitOfWork) -> ProductVariant:
            recorded.clear()
            variant = uow.product_variants.lock(vid)
            product = uow.products.get(variant.product_id)
            authorize(actor, "catalog.set_inventory", uow=uow, brand_ids={product.brand_id})
            updated, _ = uow.product_variants.adjust_inventory(vid, inventory - variant.inventory)
            restated = evolved(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)
            self._brands._record_events(
                uow, self.low_stock_events(product.brand_id, variant, restated), recorded
            )
            return restated

        result = self.transaction(work, actor=actor)
        self._brands.effects._deliver_after_commit(recorded)
        return result

    def set_backorder(self, variant_id: UUID, backorder: bool, *, actor: Actor) -> ProductVariant:
        """Allow (or stop) selling a variant beyond its stock."""
        vid = as_uuid(variant_id, "variant_id")

        def work(uow: UnitOfWork) -> ProductVariant:
            variant = uow.product_variants.lock(vid)
            product = uow.products.get(variant.product_id)
            authorize(actor, "catalog.set_backorder", uow=uow, brand_ids={product.brand_id})
            status = VariantStatus.BACKORDER if backorder else VariantStatus.ACTIVE
            updated = attrs.evolve(variant, status=status, updated_at=self.now())
            updated = evolved(updated, status=next_variant_status(updated))
            uow.product_variants.update(updated)
            return updated

        return self.transaction(work, actor=actor)

    def variant(self, variant_id: UUID, *, actor: Actor) -> ProductVariant:
        """A variant."""
        vid = as_uuid(variant_id, "variant_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.product_variants.get(vid), actor=actor)

    def variants(
        self, product_id: UUID, *, actor: Actor, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Page[ProductVariant]:
        """A page of a product's variants, oldest first."""
        pid = as_uuid(product_id, "product_id")
        window = PageRequest.of(limit, after)
        authorize(actor, "catalog.read")
        return self.read(lambda uow: window.read(uow.product_variants, product_id=pid), actor=actor)

    def low_stock_events(
        self, brand_id: UUID, before: ProductVariant, after: ProductVariant
    ) -> list[BrandEvent]:
        """A ``variant.low_stock`` event when stock crossed down to the threshold or below."""
        threshold = self._ctx.settings.low_stock_threshold
        if after.inventory <= threshold < before.inventory:
            return [
                BrandEvent(
                    brand_id,
                    "variant.low_stock",
                    {"variant_id": str(after.id), "sku": after.sku, "inventory": after.inventory},
                    key=f"low-stock:{after.id}:{self._ctx.ids.new_id()}",
                )
            ]
        return []

    # ------------------------------------------------------------------ learning from outcomes

    def calibrate_confidence(self, brand_id: UUID, garment_type: str, *, actor: Actor) -> CalibrationReport:
        """Fit the confidence calibration of the brand's fit maps for ``garment_type`` from
        outcomes, and store it in their ``confidence_model`` (managers and owners; a job).

        Lines bought in the recommended size whose outcome is known (kept, or returned too small
        or too large; see :mod:`fittwin_core.fit.outcomes`) are split: every fifth (by id) is held
        back, the rest fit an isotonic map from the engine's score to the share kept. The held-back
        lines give the expected calibration error before (the confidences shoppers were shown) and
        after; both are stored with the model. :class:`ValidationError` without a fit map for
        the garment type or with fewer than ``MIN_CALIBRATION_OUTCOMES`` outcomes to fit.
        """
        bid = as_uuid(brand_id, "brand_id")
        category.check("garment_type", garment_type)

        def work(uow: UnitOfWork) -> CalibrationReport:
            authorize(actor, "catalog.calibrate_confidence", uow=uow, brand_ids={bid})
            maps = uow.fit_maps.where(brand_id=bid, garment_type=garment_type, order_by="id")
            require(bool(maps), "garment_type", "has no fit map for this brand: create one first")
            map_ids = {m.id for m in maps}
            products = [p.id for p in uow.products.where(brand_id=bid) if p.fit_map_id in map_ids]
            items = uow.order_items.where(product_id=one_of(products)) if products else []
            orders = {o.id: o for o in uow.orders.get_many({i.order_id for i in items})}
            fitted: list[tuple[float, bool]] = []
            held: list[tuple[float, float, bool]] = []
            for item in items:
                known = fit.outcomes.kept_recommended(orders[item.order_id], item)
                if known is None:
                    continue
                shown, score, kept = known
                if item.id.int % 5 == 0:
                    held.append((shown, score, kept))
                else:
                    fitted.append((score, kept))
            require(
                len(fitted) >= MIN_CALIBRATION_OUTCOMES,
                "brand_id",
                f"has {len(fitted)} known outcomes to calibrate on; "
                f"at least {MIN_CALIBRATION_OUTCOMES} are needed",
            )
            model = fit.learning.fit_isotonic([s for s, _ in fitted], [k for _, k in fitted])
            before = after = None
            if held:
                outcomes = [k for _, _, k in held]
                before = fit.learning.expected_calibration_error([c for c, _, _ in held], outcomes)
                after = fit.learning.expected_calibration_error(
                    [fit.learning.apply_isotonic(model, s) for _, s, _ in held], outcomes
                )
                model["ece_before"], model["ece_after"] = round(before, 4), round(after, 4)
            model["notes"] = (
                f"isotonic (pool-adjacent-violators) on {len(fitted)} outcomes, {len(held)} held back"
            )
            _, checked = fit.validate_fit_map(None, model)
            now = self.now()
            for fit_map in maps:
                current = uow.fit_maps.lock(fit_map.id)
                uow.fit_maps.update(
                    attrs.evolve(current, confidence_model=JsonMap(checked or {}), updated_at=now)
                )
            return CalibrationReport(
                fit_map_ids=tuple(m.id for m in maps),
                samples=len(fitted),
                held_back=len(held),
                ece_before=before,
                ece_after=after,
            )

        return self.transaction(work, actor=actor)

    def propose_fit_offsets(self, garment_type: str, *, actor: Actor) -> list[FitMapProposal]:
        """Learn, per brand, the zone offsets that best explain keeps and size returns of
        ``garment_type`` and store them as **proposals** (staff only: a job that reads every
        brand's outcomes). Nothing changes until a brand manager accepts one
        (:meth:`accept_fit_proposal`).

        A zone is proposed when the brand has size returns in it, the learned offset differs from
        the fit map's by at least ``MIN_OFFSET_CHANGE_CM`` and its 90 % interval excludes the
        current offset. Offsets are bounded by ``fittwin_core.fit.learning.MAX_OFFSET_CM``. A
        newer proposal supersedes (rejects) the open one of the same fit map.
        """
        category.check("garment_type", garment_type)
        authorize(actor, "catalog.propose_fit_offsets")

        def work(uow: UnitOfWork) -> list[FitMapProposal]:
            maps = {m.id: m for m in uow.fit_maps.where(garment_type=garment_type, order_by="id")}
            products = [p for p in uow.products.where() if p.fit_map_id in maps]
            by_product = {p.id: p for p in products}
            items = uow.order_items.where(product_id=one_of(list(by_product))) if by_product else []
            orders = {o.id: o for o in uow.orders.get_many({i.order_id for i in items})}
            chart_ids = {i.fit_summary.size_chart_id for i in items if i.fit_summary is not None}
            charts = {c.id: fit.parse_chart(c) for c in uow.size_charts.get_many(chart_ids)}
            per_zone: dict[str, dict[str, list[fit.learning.FitObservation]]] = {}
            for fit_map_id in maps:
                lines = [i for i in items if by_product[i.product_id].fit_map_id == fit_map_id]
                for zone, found in fit.outcomes.observations(lines, orders, charts).items():
                    per_zone.setdefault(zone, {})[str(fit_map_id)] = found
            learned = {zone: fit.learning.learn_offsets(groups) for zone, groups in per_zone.items()}
            now = self.now()
            made: list[FitMapProposal] = []
            for fit_map_id, fit_map in maps.items():
                rules = fit.parse_fit_map(fit_map)
                offsets, eases = dict(rules.offset), dict(rules.ease)
                evidence: dict[str, Any] = {}
                proposed = dict(offsets)
                for zone, estimates in sorted(learned.items()):
                    estimate = estimates.get(str(fit_map_id))
                    if estimate is None or estimate.size_returns == 0:
                        continue
                    current = offsets.get(zone, 0.0)
                    target = round(estimate.offset_cm + eases.get(zone, 0.0), 1)
                    low = estimate.low_cm + eases.get(zone, 0.0)
                    high = estimate.high_cm + eases.get(zone, 0.0)
                    if abs(target - current) < MIN_OFFSET_CHANGE_CM or low <= current <= high:
                        continue
                    proposed[zone] = target
                    evidence[zone] = {
                        "current_cm": current,
                        "proposed_cm": target,
                        "interval_cm": [round(low, 2), round(high, 2)],
                        "observations": estimate.observations,
                        "too_small": estimate.too_small,
                        "too_large": estimate.too_large,
                        "margin_cm": estimate.margin_cm,
                        "scale_cm": estimate.scale_cm,
                    }
                if not evidence:
                    continue
                rule_set = {**thaw_json(fit_map.rule_set), "offset": proposed}
                checked, _ = fit.validate_fit_map(rule_set)
                for open_one in uow.fit_map_proposals.where(
                    fit_map_id=fit_map_id, status=ProposalStatus.PROPOSED
                ):
                    uow.fit_map_proposals.update(
                        attrs.evolve(
                            open_one,
                            status=ProposalStatus.REJECTED,
                            decided_by=actor.id,
                            decided_at=now,
                            updated_at=now,
                        ),
                        expected={"status": ProposalStatus.PROPOSED},
                    )
                proposal = FitMapProposal(
                    id=self._ctx.ids.new_id(),
                    fit_map_id=fit_map_id,
                    brand_id=fit_map.brand_id,
                    garment_type=garment_type,
                    rule_set=JsonMap(checked),
                    evidence=JsonMap(evidence),
                    created_at=now,
                    updated_at=now,
                )
                uow.fit_map_proposals.add(proposal)
                made.append(proposal)
            return made

        return self.transaction(work, actor=actor)

    def fit_proposals(
        self,
        brand_id: UUID,
        *,
        status: ProposalStatus | str | None = None,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[FitMapProposal]:
        """A page of a brand's fit-map proposals, oldest first (analysts and above, or staff)."""
        bid = as_uuid(brand_id, "brand_id")
        window = PageRequest.of(limit, after)
        filters: dict[str, Any] = {"brand_id": bid}
        if status is not None:
            filters["status"] = parse_enum(ProposalStatus, status, "status")

        def work(uow: UnitOfWork) -> Page[FitMapProposal]:
            authorize(actor, "catalog.read_fit_proposals", uow=uow, brand_ids={bid})
            return window.read(uow.fit_map_proposals, **filters)

        return self.read(work, actor=actor)

    def accept_fit_proposal(self, proposal_id: UUID, *, actor: Actor) -> FitMap:
        """Apply a proposal to its fit map (managers and owners of the brand, or staff): the fit
        map's ``rule_set`` becomes the proposal's, audited like any fit-map change, and the
        proposal is marked ``accepted``. A proposal already decided is an :class:`InvalidTransition`."""
        return self._decide(proposal_id, ProposalStatus.ACCEPTED, actor)

    def reject_fit_proposal(self, proposal_id: UUID, *, actor: Actor) -> FitMap:
        """Decline a proposal (managers and owners, or staff); the fit map stays as it is."""
        return self._decide(proposal_id, ProposalStatus.REJECTED, actor)

    def _decide(self, proposal_id: UUID, target: ProposalStatus, actor: Actor) -> FitMap:
        pid = as_uuid(proposal_id, "proposal_id")

        def work(uow: UnitOfWork) -> FitMap:
            proposal = uow.fit_map_proposals.lock(pid)
            authorize(actor, "catalog.decide_fit_proposals", uow=uow, brand_ids={proposal.brand_id})
            if proposal.status != ProposalStatus.PROPOSED:
                raise InvalidTransition("fit map proposal", proposal.status, target)
            now = self.now()
            fit_map = uow.fit_maps.lock(proposal.fit_map_id)
            if target == ProposalStatus.ACCEPTED:
                rules, _ = fit.validate_fit_map(proposal.rule_set)
                fit_map = attrs.evolve(fit_map, rule_set=JsonMap(rules), updated_at=now)
                uow.fit_maps.update(fit_map)
            uow.fit_map_proposals.update(
                attrs.evolve(proposal, status=target, decided_by=actor.id, decided_at=now, updated_at=now),
                expected={"status": ProposalStatus.PROPOSED},
            )
            return fit_map

        return self.transaction(work, actor=actor)


def _check_variant_fields(
    sku_value: object, label: object, price: object, code: object, count: object
) -> None:
    sku.check("sku", sku_value)
    size_label.check("size_label", label)
    cents.check("price_cents", price)
    currency.check("currency", code)
    stock.check("inventory", count)


__all__ = [
    "MIN_CALIBRATION_OUTCOMES",
    "MIN_OFFSET_CHANGE_CM",
    "CalibrationReport",
    "Catalog",
    "next_variant_status",
]
