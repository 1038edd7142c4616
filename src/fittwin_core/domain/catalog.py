"""The catalog: products, their variants (sizes and colours with price and stock), and the
size charts and fit maps the recommender reads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import JsonMap


class ProductStatus(StrEnum):
    """``products.status``: ``draft → active → archived``."""

    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


PRODUCT_TRANSITIONS: dict[ProductStatus, frozenset[ProductStatus]] = {
    ProductStatus.DRAFT: frozenset({ProductStatus.ACTIVE, ProductStatus.ARCHIVED}),
    ProductStatus.ACTIVE: frozenset({ProductStatus.ARCHIVED}),
    ProductStatus.ARCHIVED: frozenset(),
}


class VariantStatus(StrEnum):
    """``product_variants.status``. ``active`` sells from stock, ``backorder`` sells beyond it,
    ``out_of_stock`` does not sell."""

    ACTIVE = "active"
    BACKORDER = "backorder"
    OUT_OF_STOCK = "out_of_stock"


class UnitSystem(StrEnum):
    """``size_charts.unit_system``: the units the brand entered; rules are stored in cm."""

    METRIC = "metric"
    IMPERIAL = "imperial"


CATEGORIES = frozenset(
    {
        "tops",
        "bottoms",
        "dresses",
        "outerwear",
        "suits",
        "underwear",
        "swimwear",
        "activewear",
        "sleepwear",
        "footwear",
        "accessories",
    }
)
"""Top level of the controlled category taxonomy; sub-categories follow after a slash
(``"tops/t-shirts"``, ``"bottoms/jeans/slim"``)."""

_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"


def _category(field: str, value: Any) -> None:
    rules.text(
        max_len=120, pattern=rf"{_SLUG}(?:/{_SLUG})*", rule="must be a slash-separated lower-case slug"
    ).check(field, value)
    top = value.split("/", 1)[0]
    if top not in CATEGORIES:
        raise ValidationError(field, f"must start with one of {', '.join(sorted(CATEGORIES))}")


category = rules.Rule(_category)
"""attrs validator for ``products.category`` and ``garment_type`` columns."""

sku = rules.text(
    max_len=64, pattern=r"[A-Za-z0-9][A-Za-z0-9._/-]*", rule="may contain letters, digits, '.', '_', '/', '-'"
)
size_label = rules.text(max_len=32)
MAX_STOCK = 2**31 - 1
"""Stock counts are INTEGER columns."""
stock = rules.integer(ge=0, le=MAX_STOCK)
"""attrs validator: a stock count (0 … 2**31 − 1)."""


def _urls(field: str, value: Any) -> None:
    rules.sequence_of(rules.text(max_len=2048)).check(field, value)


@attrs.frozen(kw_only=True)
class ProductAssets:
    """``products.assets``: image, 3D model and video URLs.

    JSON keys are the data model's: ``images``, ``models``, ``videourls``."""

    images: tuple[str, ...] = attrs.field(default=(), converter=rules.to_tuple, validator=rules.Rule(_urls))
    models: tuple[str, ...] = attrs.field(default=(), converter=rules.to_tuple, validator=rules.Rule(_urls))
    video_urls: tuple[str, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.Rule(_urls), metadata={"json": "videourls"}
    )


@attrs.frozen(kw_only=True)
class Product:
    """A product of a brand (``products``). It is sold through its variants."""

    id: UUID = attrs.field(validator=rules.uuid)
    brand_id: UUID = attrs.field(validator=rules.uuid)
    title: str = attrs.field(validator=rules.text(max_len=300))
    description: str = attrs.field(default="", validator=rules.text(min_len=0, max_len=20000))
    category: str = attrs.field(validator=category)
    assets: ProductAssets = attrs.field(factory=ProductAssets, validator=rules.instance_of(ProductAssets))
    size_chart_id: UUID = attrs.field(validator=rules.uuid)
    fit_map_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    status: ProductStatus = attrs.field(default=ProductStatus.DRAFT, validator=rules.member_of(ProductStatus))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


@attrs.frozen(kw_only=True)
class ProductVariant:
    """A sellable size/colour of a product (``product_variants``): unique ``sku``, price in minor
    units, stock that never goes negative."""

    id: UUID = attrs.field(validator=rules.uuid)
    product_id: UUID = attrs.field(validator=rules.uuid)
    sku: str = attrs.field(validator=sku)
    size_label: str = attrs.field(validator=size_label)
    color: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=60)))
    price_cents: int = attrs.field(validator=money.cents)
    currency: str = attrs.field(validator=money.currency)
    inventory: int = attrs.field(validator=stock)
    fit_metadata: JsonMap | None = attrs.field(
        default=None, converter=rules.to_json_map, validator=rules.optional(rules.json_object)
    )
    status: VariantStatus = attrs.field(
        default=VariantStatus.ACTIVE, validator=rules.member_of(VariantStatus)
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)

    @property
    def price(self) -> money.Money:
        """The unit price as :class:`~fittwin_core.domain.money.Money`."""
        return money.Money(self.price_cents, self.currency)


def _non_empty_json(field: str, value: Any) -> None:
    rules.json_object.check(field, value)
    if not value:
        raise ValidationError(field, "must not be empty")


@attrs.frozen(kw_only=True)
class SizeChart:
    """A brand's size chart (``size_charts``). ``measurement_rules`` and ``grading_rules`` are
    stored in centimetres whatever ``unit_system`` the brand entered them in; their schema is
    documented in ``docs/fit.md`` and checked by :func:`fittwin_core.fit.parse_chart`."""

    id: UUID = attrs.field(validator=rules.uuid)
    brand_id: UUID = attrs.field(validator=rules.uuid)
    garment_type: str = attrs.field(validator=category)
    measurement_rules: JsonMap = attrs.field(
        converter=rules.to_json_map, validator=rules.Rule(_non_empty_json)
    )
    grading_rules: JsonMap | None = attrs.field(
        default=None, converter=rules.to_json_map, validator=rules.optional(rules.json_object)
    )
    unit_system: UnitSystem = attrs.field(default=UnitSystem.METRIC, validator=rules.member_of(UnitSystem))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


@attrs.frozen(kw_only=True)
class FitMap:
    """A brand's fit adjustments for a garment type (``fit_maps``): ``rule_set`` shifts the
    chart (runs small, stretch, ease) and ``confidence_model`` calibrates confidence."""

    id: UUID = attrs.field(validator=rules.uuid)
    brand_id: UUID = attrs.field(validator=rules.uuid)
    garment_type: str = attrs.field(validator=category)
    rule_set: JsonMap = attrs.field(
        factory=rules.JsonMap, converter=rules.to_json_map, validator=rules.json_object
    )
    confidence_model: JsonMap | None = attrs.field(
        default=None, converter=rules.to_json_map, validator=rules.optional(rules.json_object)
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


class ProposalStatus(StrEnum):
    """``fit_map_proposals.status``: ``proposed → accepted`` or ``proposed → rejected``."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@attrs.frozen(kw_only=True)
class FitMapProposal:
    """A learned update of a fit map, waiting for a brand manager (``fit_map_proposals``, an
    addition to the data model). ``rule_set`` is the fit map's rule set as it would become;
    ``evidence`` holds, per zone, the current and proposed offset, the 90 % interval and the
    outcomes it was learned from. Nothing changes until the proposal is accepted."""

    id: UUID = attrs.field(validator=rules.uuid)
    fit_map_id: UUID = attrs.field(validator=rules.uuid)
    brand_id: UUID = attrs.field(validator=rules.uuid)
    garment_type: str = attrs.field(validator=category)
    status: ProposalStatus = attrs.field(
        default=ProposalStatus.PROPOSED, validator=rules.member_of(ProposalStatus)
    )
    rule_set: JsonMap = attrs.field(converter=rules.to_json_map, validator=rules.json_object)
    evidence: JsonMap = attrs.field(converter=rules.to_json_map, validator=rules.json_object)
    decided_by: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    decided_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = [
    "CATEGORIES",
    "MAX_STOCK",
    "PRODUCT_TRANSITIONS",
    "FitMap",
    "FitMapProposal",
    "Product",
    "ProductAssets",
    "ProductStatus",
    "ProductVariant",
    "ProposalStatus",
    "SizeChart",
    "UnitSystem",
    "VariantStatus",
    "category",
    "stock",
]
