"""Return reasons, confidence calibration and fit-map proposals through the services, on both
stores."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from fittwin_adapters.synthetic import HiddenTruth, generate
from fittwin_core import FitTwin
from fittwin_core.domain import (
    Actor,
    InvalidTransition,
    PermissionDenied,
    ProposalStatus,
    ReturnReason,
    ReturnReasonCode,
    ValidationError,
)
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop

STAFF = Actor.system()


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def _delivered(shop: Shop) -> Any:
    order = shop.pay(shop.place([(shop.variants["M"].id, 1), (shop.variants["L"].id, 1)]))
    shop.ft.orders.send_to_brand(order.id, actor=STAFF)
    shop.ft.orders.mark_fulfilled(order.id, actor=STAFF)
    return shop.ft.orders.mark_delivered(order.id, actor=STAFF)


def test_a_return_records_a_reason_and_zone_per_line(shop: Shop) -> None:
    order = _delivered(shop)
    m, big = shop.ft.orders.items(order.id, actor=STAFF)
    shop.ft.orders.request_return(
        order.id,
        reasons={m.id: {"reason": "too_small", "zone": "chest"}, big.id: "style"},
        actor=Actor.shopper(shop.shopper.id),
    )
    m, big = shop.ft.orders.items(order.id, actor=STAFF)
    assert m.return_reason == ReturnReason(reason=ReturnReasonCode.TOO_SMALL, zone="chest")
    assert big.return_reason == ReturnReason(reason=ReturnReasonCode.STYLE)
    exported = shop.ft.privacy.export_user(shop.shopper.id, actor=STAFF)
    assert {"reason": "too_small", "zone": "chest"} in [i["return_reason"] for i in exported["order_items"]]
    rows = shop.ft.context.store.returns_by_reason(product_id=shop.product.id)  # type: ignore[attr-defined]
    assert [(r["bought_size"], r["reason"], r["zone"], r["lines"]) for r in rows] == [
        ("L", "style", None, 1),
        ("M", "too_small", "chest", 1),
    ]


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        ("too_tight", "reason"),
        ({"reason": "too_small", "zone": "elbow"}, "zone"),
        ({"reason": "too_small", "colour": "red"}, ""),
    ],
)
def test_a_bad_reason_changes_nothing(shop: Shop, reason: Any, field: str) -> None:
    order = _delivered(shop)
    line = shop.ft.orders.items(order.id, actor=STAFF)[0]
    with pytest.raises(ValidationError) as info:
        shop.ft.orders.request_return(
            order.id, reasons={line.id: reason}, actor=Actor.shopper(shop.shopper.id)
        )
    assert info.value.field.startswith(f"reasons.{line.id}")
    assert info.value.field.endswith(field)
    assert shop.ft.orders.get(order.id, actor=STAFF).status == "delivered"
    assert shop.ft.orders.items(order.id, actor=STAFF)[0].return_reason is None


def test_a_reason_for_a_line_of_another_order_is_refused(shop: Shop) -> None:
    order, other = _delivered(shop), _delivered(shop)
    stranger = shop.ft.orders.items(other.id, actor=STAFF)[0]
    with pytest.raises(ValidationError, match="not a line of this order"):
        shop.ft.orders.request_return(
            order.id, reasons={stranger.id: "too_large"}, actor=Actor.shopper(shop.shopper.id)
        )
    assert shop.ft.orders.get(order.id, actor=STAFF).status == "delivered"


@pytest.fixture
def traded(ft: FitTwin, clock: FrozenClock) -> FitTwin:
    """A small synthetic half-year on the store under test: two brands of tees, the second
    secretly 4 cm small at the chest."""
    generate(
        ft,
        shoppers=300,
        months=6,
        orders_per_shopper=3.0,
        brands=2,
        lines=("tops",),
        truth=HiddenTruth(offsets={1: {"chest": -4.0}}),
        progress=False,
        seed=3,
    )
    return ft


def _manager(ft: FitTwin, brand_id: Any, role: str = "manager") -> Actor:
    platform = Actor.platform(ft.context.ids.new_id())
    email = f"{role}.{uuid.uuid4().hex[:8]}@example.com"
    invite = ft.brands.invite_user(brand_id, email, role, actor=platform)
    return Actor.brand_user(ft.brands.accept_invite(invite.invite_token).id)


def test_a_proposal_is_only_applied_when_a_brand_manager_accepts_it(traded: FitTwin) -> None:
    ft = traded
    platform = Actor.platform(ft.context.ids.new_id())
    with pytest.raises(PermissionDenied):
        ft.catalog.propose_fit_offsets(
            "tops", actor=_manager(ft, ft.catalog.products(_brand(ft, 1), actor=STAFF).items[0].brand_id)
        )
    (proposal,) = ft.catalog.propose_fit_offsets("tops", actor=platform)
    small = _brand(ft, 1)
    assert proposal.brand_id == small and proposal.status == ProposalStatus.PROPOSED
    assert proposal.evidence["chest"]["proposed_cm"] < -2.0
    fit_map_before = ft.catalog.fit_map(proposal.fit_map_id, actor=STAFF)
    assert dict(fit_map_before.rule_set) == {}  # nothing applied silently
    assert [p.id for p in ft.catalog.fit_proposals(small, actor=platform).items] == [proposal.id]

    with pytest.raises(PermissionDenied):
        ft.catalog.accept_fit_proposal(proposal.id, actor=_manager(ft, small, "analyst"))
    with pytest.raises(PermissionDenied):
        ft.catalog.accept_fit_proposal(proposal.id, actor=_manager(ft, _brand(ft, 0)))
    manager = _manager(ft, small)
    fit_map = ft.catalog.accept_fit_proposal(proposal.id, actor=manager)
    assert fit_map.rule_set["offset"]["chest"] == proposal.evidence["chest"]["proposed_cm"]
    assert ft.catalog.fit_proposals(small, status="accepted", actor=manager).items[0].decided_by == manager.id
    with pytest.raises(InvalidTransition):
        ft.catalog.accept_fit_proposal(proposal.id, actor=manager)
    changes = [
        e
        for e in ft.audit.events(entity_type="fit_maps", entity_id=fit_map.id, actor=STAFF).items
        if e.metadata["op"] == "update"
    ]
    assert changes[-1].actor_id == manager.id
    assert changes[-1].metadata["new"]["rule_set"] == {
        "offset": {"chest": fit_map.rule_set["offset"]["chest"]}
    }


def test_calibration_is_fitted_from_outcomes_and_applied_by_the_recommender(traded: FitTwin) -> None:
    ft = traded
    small = _brand(ft, 1)
    report = ft.catalog.calibrate_confidence(small, "tops", actor=_manager(ft, small))
    assert report.samples >= 50 and report.held_back > 0
    assert report.ece_before is not None and report.ece_after is not None
    (fit_map_id,) = report.fit_map_ids
    model = ft.catalog.fit_map(fit_map_id, actor=STAFF).confidence_model
    assert model is not None and model["method"] == "isotonic" and model["samples"] == report.samples
    shopper = ft.accounts.authenticate("shopper0@synthetic.example", "synthetic shopper password")
    product = next(p for p in ft.catalog.products(small, actor=STAFF).items if p.fit_map_id == fit_map_id)
    rec = ft.fit.recommend(shopper.id, product.id, actor=Actor.shopper(shopper.id))
    if rec.size_label is not None:
        values = model["values"]
        assert rec.confidence in {math.floor(100 * v + 0.5) for v in values}


def test_calibration_needs_enough_outcomes(shop: Shop) -> None:
    fit_map = shop.ft.catalog.create_fit_map(shop.brand.id, "tops", {}, actor=shop.owner_actor)
    assert fit_map.confidence_model is None
    with pytest.raises(ValidationError, match="at least 50"):
        shop.ft.catalog.calibrate_confidence(shop.brand.id, "tops", actor=shop.owner_actor)
    with pytest.raises(ValidationError, match="no fit map"):
        shop.ft.catalog.calibrate_confidence(shop.brand.id, "bottoms", actor=shop.owner_actor)


def test_without_size_returns_nothing_is_proposed(ft: FitTwin) -> None:
    generate(
        ft,
        shoppers=40,
        months=3,
        brands=1,
        lines=("tops",),
        truth=HiddenTruth(
            offsets={}, ease={("tops", "chest"): 60.0, ("tops", "waist"): 60.0}, style_returns=0.2
        ),
        progress=False,
    )
    assert ft.catalog.propose_fit_offsets("tops", actor=Actor.system()) == []


def _brand(ft: FitTwin, index: int) -> Any:
    names = ("Harbor Threads", "Fjord & Pine")
    with ft.context.store.unit_of_work() as uow:
        (brand,) = uow.brands.where(name=names[index])
    return brand.id


def test_the_learning_jobs_run_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from fittwin_adapters.cli import main

    assert main(["jobs", "propose-fit", "--url", "memory://", "--garment-type", "tops"]) == 0
    assert "0 fit-map proposals" in capsys.readouterr().out
    brand = str(uuid.uuid4())
    assert main(["jobs", "calibrate", "--url", "memory://", "--brand", brand, "--garment-type", "tops"]) == 2
    assert "no fit map" in capsys.readouterr().err
