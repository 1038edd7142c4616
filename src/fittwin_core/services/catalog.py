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
    InvalidTransition,
    Product,
    ProductAssets,
    ProductStatus,
    ProductVariant,
    SizeChart,
    UnitSystem,
    VariantStatus,
)
from fittwin_core.domain.catalog import PRODUCT_TRANSITIONS, category, size_label, sku, stock
from fittwin_core.domain.money import cents, currency
from fittwin_core.domain.rules import JsonMap, json_object_from, parse_enum
from fittwin_core.ports import UnitOfWork
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_uuid, coerce, require
from fittwin_core.services.brands import BrandEvent, Brands
from fittwin_core.services.permissions import authorize


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
        self, brand_id: UUID, *, status: ProductStatus | str | None = None, actor: Actor
    ) -> list[Product]:
        """A brand's products, oldest first, optionally of one status."""
        bid = as_uuid(brand_id, "brand_id")
        authorize(actor, "catalog.read")
        filters: dict[str, Any] = {"brand_id": bid}
        if status is not None:
            filters["status"] = parse_enum(ProductStatus, status, "status")
        return self.read(lambda uow: uow.products.where(order_by="id", **filters), actor=actor)

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
        events: list[BrandEvent] = []

        def work(uow: UnitOfWork) -> ProductVariant:
            events.clear()
            variant = uow.product_variants.lock(vid)
            product = uow.products.get(variant.product_id)
            authorize(actor, "catalog.set_inventory", uow=uow, brand_ids={product.brand_id})
            updated, _ = uow.product_variants.adjust_inventory(vid, inventory - variant.inventory)
            restated = attrs.evolve(updated, status=next_variant_status(updated))
            if restated != updated:
                uow.product_variants.update(restated)
            events.extend(self.low_stock_events(product.brand_id, variant, restated))
            return restated

        result = self.transaction(work, actor=actor)
        self._brands._dispatch_after_commit(events)
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
            updated = attrs.evolve(updated, status=next_variant_status(updated))
            uow.product_variants.update(updated)
            return updated

        return self.transaction(work, actor=actor)

    def variant(self, variant_id: UUID, *, actor: Actor) -> ProductVariant:
        """A variant."""
        vid = as_uuid(variant_id, "variant_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.product_variants.get(vid), actor=actor)

    def variants(self, product_id: UUID, *, actor: Actor) -> list[ProductVariant]:
        """A product's variants, oldest first."""
        pid = as_uuid(product_id, "product_id")
        authorize(actor, "catalog.read")
        return self.read(lambda uow: uow.product_variants.where(product_id=pid, order_by="id"), actor=actor)

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
                )
            ]
        return []


def _check_variant_fields(
    sku_value: object, label: object, price: object, code: object, count: object
) -> None:
    sku.check("sku", sku_value)
    size_label.check("size_label", label)
    cents.check("price_cents", price)
    currency.check("currency", code)
    stock.check("inventory", count)


__all__ = ["Catalog", "next_variant_status"]
