"""A call about one shopper cannot name another shopper's address or card (NotFound, as if it
did not exist), nor a removed address (ValidationError naming the argument)."""

from __future__ import annotations

import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import NotFound, ValidationError
from tests.support.shop import open_shop


def test_orders_use_only_the_shoppers_own_live_address_and_card(ft: FitTwin) -> None:
    shop = open_shop(ft)
    _, other_address, other_card = shop.new_shopper("bob")
    for kwargs, entity, key in (
        ({"shipping_address_id": other_address.id}, "addresses", other_address.id),
        ({"billing_address_id": other_address.id}, "addresses", other_address.id),
        ({"payment_method_id": other_card.id}, "payment_methods", other_card.id),
    ):
        with pytest.raises(NotFound) as caught:
            shop.place(**kwargs)
        assert (caught.value.entity, caught.value.key) == (entity, key)
    me = Actor.shopper(shop.shopper.id)
    spare = ft.accounts.add_address(
        shop.shopper.id,
        type="shipping",
        line1="2 Row",
        city="Leeds",
        postal_code="LS1 1AA",
        country="GB",
        actor=me,
    )
    ft.accounts.remove_address(spare.id, actor=me)
    with pytest.raises(ValidationError) as removed:
        shop.place(shipping_address_id=spare.id)
    assert (removed.value.field, removed.value.rule) == ("shipping_address_id", "refers to a removed address")
    assert shop.place().user_id == shop.shopper.id  # its own address and card work
