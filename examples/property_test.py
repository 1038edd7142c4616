"""A host's own business rule, property-tested with FitTwin's shipped strategies.

The rule: our free-shipping promotion (free shipping from 100 EUR) never charges shipping on a
cart at or above the threshold, and totals always add up. The second property buys random carts
through the real services and checks that stock never goes negative and every sale is accounted.

Run it: ``pytest examples/property_test.py`` or ``python examples/property_test.py``.
"""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_adapters import connect
from fittwin_adapters.crypto import Argon2PasswordHasher
from fittwin_adapters.demo import brand_onboarding, catalog, run_story, shopper
from fittwin_core.domain import Actor, InsufficientInventory, Totals
from fittwin_core.ports import PriceLine
from fittwin_core.services.pricing import FlatRatePricing
from fittwin_core.testing import strategies as fst

PROMOTION = FlatRatePricing(tax_percent="20", shipping_cents=495, free_shipping_from=10_000)


@settings(max_examples=50)
@given(subtotal=fst.cents(1_000_000), currency=fst.currencies(), ids=st.tuples(fst.uuid7s(), fst.uuid7s()))
def test_free_shipping_from_the_threshold(subtotal: int, currency: str, ids: tuple[Any, Any]) -> None:
    line = PriceLine(variant_id=ids[0], product_id=ids[1], qty=1, unit_price_cents=subtotal)
    quote = PROMOTION.quote(lines=[line], currency=currency, subtotal=subtotal, shipping_country="GB")
    totals = Totals.compute(subtotal=subtotal, currency=currency, tax=quote.tax, shipping=quote.shipping)
    assert (quote.shipping == 0) == (subtotal >= 10_000)
    assert totals.total == subtotal + quote.tax + quote.shipping


@settings(max_examples=10, deadline=None)
@given(
    carts=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["S", "M", "L", "XL"]), st.integers(1, 4)), min_size=1, max_size=3
        ),
        min_size=1,
        max_size=6,
    )
)
def test_random_carts_never_oversell(carts: list[list[tuple[str, int]]]) -> None:
    ft = connect(hasher=Argon2PasswordHasher.owasp_minimum(), pricing=PROMOTION)
    cast: Any = run_story(ft, io.StringIO(), chapters=(brand_onboarding, catalog, shopper))
    sold = dict.fromkeys(cast.variants, 0)
    for cart in carts:
        items: dict[str, int] = {}
        for size, qty in cart:
            items[size] = items.get(size, 0) + qty
        try:
            ft.orders.place(
                cast.shopper.id,
                [(cast.variants[s].id, q) for s, q in items.items()],
                shipping_address_id=cast.address.id,
                billing_address_id=cast.address.id,
                payment_method_id=cast.card.id,
                actor=Actor.shopper(cast.shopper.id),
            )
        except InsufficientInventory:
            continue
        for size, qty in items.items():
            sold[size] += qty
    for size, variant in cast.variants.items():
        left = ft.catalog.variant(variant.id, actor=Actor.anonymous()).inventory
        assert left >= 0 and left == variant.inventory - sold[size]


if __name__ == "__main__":
    test_free_shipping_from_the_threshold()
    test_random_carts_never_oversell()
    print("properties hold")
