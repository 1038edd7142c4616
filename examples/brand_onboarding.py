"""Onboard a brand from a plain description: the brand, its team, a size chart, a fit map, and a
product with its variants — the script a platform team runs when a new brand signs up.

Run it: ``python examples/brand_onboarding.py`` (embedded default) or with ``--url URL``.
"""

from __future__ import annotations

import argparse
from typing import Any

from fittwin_adapters import NoPayments, connect
from fittwin_core import Actor, FitTwin

BRAND: dict[str, Any] = {
    "name": "Fjord Denim",
    "contact": {"email": "partners@fjord.example", "name": "Sigrid Berg"},
    "team": [
        ("owner@fjord.example", "owner"),
        ("merch@fjord.example", "manager"),
        ("bi@fjord.example", "analyst"),
    ],
    "chart": {
        "garment_type": "bottoms/jeans",
        "unit_system": "imperial",
        "rules": {
            "kind": "body",
            "zones": {"waist": {"tolerance": 1}, "hip": {"tolerance": 1, "weight": 0.8}},
            "sizes": [
                {"label": "30", "waist": [29, 31], "hip": [36, 38]},
                {"label": "32", "waist": [31, 33], "hip": [38, 40]},
                {"label": "34", "waist": [33, 35], "hip": [40, 42]},
            ],
        },
    },
    "fit_map": {"offset": {"waist": -1}, "stretch": {"waist": 0.02, "hip": 0.02}},
    "product": {
        "title": "Slim selvedge jeans",
        "category": "bottoms/jeans",
        "price_cents": 12900,
        "currency": "EUR",
    },
}


def onboard(ft: FitTwin, spec: dict[str, Any], platform: Actor) -> dict[str, Any]:
    """Create everything ``spec`` describes; returns the created objects."""
    brand = ft.brands.create(spec["name"], spec["contact"], actor=platform)
    ft.brands.submit_kyc(brand.id, actor=platform)
    brand = ft.brands.activate(brand.id, actor=platform)
    members = {}
    for email, role in spec["team"]:
        invite = ft.brands.invite_user(brand.id, email, role, actor=platform)
        members[role] = ft.brands.accept_invite(invite.invite_token)
    owner = Actor.brand_user(members["owner"].id)
    chart_spec = spec["chart"]
    chart = ft.catalog.create_size_chart(
        brand.id,
        chart_spec["garment_type"],
        chart_spec["rules"],
        unit_system=chart_spec["unit_system"],
        actor=owner,
    )
    fit_map = ft.catalog.create_fit_map(brand.id, chart_spec["garment_type"], spec["fit_map"], actor=owner)
    item = spec["product"]
    product = ft.catalog.create_product(
        brand.id,
        title=item["title"],
        category=item["category"],
        size_chart_id=chart.id,
        fit_map_id=fit_map.id,
        actor=owner,
    )
    variants = [
        ft.catalog.add_variant(
            product.id,
            sku=f"FJ-SLIM-{label}",
            size_label=label,
            price_cents=item["price_cents"],
            currency=item["currency"],
            inventory=25,
            actor=owner,
        )
        for label in ft.fit.sizes(chart.id, actor=Actor.anonymous())
    ]
    product = ft.catalog.publish_product(product.id, actor=owner)
    return {"brand": brand, "members": members, "chart": chart, "product": product, "variants": variants}


def main() -> None:
    """Onboard the example brand and print what was created."""
    parser = argparse.ArgumentParser(description="Onboard a brand.")
    parser.add_argument("--url", default=None, help="store URL (default: $FITTWIN_DATABASE_URL or memory://)")
    args = parser.parse_args()
    with connect(args.url, payments=NoPayments()) as ft:  # onboarding takes no payment
        platform = Actor.platform(ft.context.ids.new_id())
        made = onboard(ft, BRAND, platform)
        print(f"brand: {made['brand'].name} ({made['brand'].onboarding_status.value})")
        print("team:", ", ".join(f"{role} {m.status.value}" for role, m in made["members"].items()))
        waist = [size["waist"] for size in made["chart"].measurement_rules["sizes"]]
        print("chart (stored in cm): waist", ", ".join(f"{low:g}–{high:g}" for low, high in waist))
        product = made["product"]
        print(f"product: {product.title}, {len(made['variants'])} variants, {product.status.value}")
        records = ft.audit.events(entity_type="product_variants", actor=platform).items
        print(f"audit: {len(records)} variant records")


if __name__ == "__main__":
    main()
