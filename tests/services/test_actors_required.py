"""Actors are required: every public service method is found by introspection, and each one
that changes data or reads a shopper's or a brand's data refuses a call without ``actor=``.

The only methods without a required ``actor`` are listed below, each with the reason; a new
method that forgets its actor fails :func:`test_every_public_method_requires_an_actor`.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import ValidationError
from fittwin_core.services.base import Service
from tests.support.snapshots import snapshot

WITHOUT_ACTOR = {
    # Authenticated by their own credential: the credential says who is calling.
    "accounts.authenticate": "the password",
    "accounts.verify_email": "the signed e-mail token",
    "brands.accept_invite": "the invitation token",
    "orders.handle_payment_webhook": "the payment provider's signature",
    # Read and write nothing.
    "referrals.share_url": "formats a URL from the settings",
    "catalog.low_stock_events": "computes events from the variants it is given",
    # Runs inside the unit of work of an order move that was authorized.
    "rewards.on_order_moved": "the order service's hook, given its unit of work",
    "rewards.on_order_refunded": "the order service's reaction to a refund, given its unit of work",
}


def public_methods(ft: FitTwin) -> Iterator[tuple[str, Any]]:
    """``("group.method", bound method)`` for every public method of every service group
    (the base class's helpers for services excluded)."""
    base = {name for name, _ in inspect.getmembers(Service)}
    for group, service in vars(ft).items():
        if not isinstance(service, Service):
            continue
        for name, member in inspect.getmembers(type(service)):
            if name.startswith("_") or name in base or not inspect.isfunction(member):
                continue
            yield f"{group}.{name}", getattr(service, name)


def needs_actor(method: Any) -> bool:
    parameter = inspect.signature(method).parameters.get("actor")
    return (
        parameter is not None
        and parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
    )


def test_every_public_method_requires_an_actor(ft: FitTwin) -> None:
    methods = dict(public_methods(ft))
    assert len(methods) > 80  # the introspection finds the services' methods
    without = {name for name, method in methods.items() if not needs_actor(method)}
    assert without == set(WITHOUT_ACTOR), "methods without a required keyword-only actor: " + ", ".join(
        sorted(without - set(WITHOUT_ACTOR))
    )


def test_every_call_without_an_actor_is_a_type_error_and_writes_nothing(ft: FitTwin) -> None:
    from tests.support.shop import open_shop

    open_shop(ft)  # data a call could change if it ran
    before = snapshot(ft.context.store)
    called = 0
    for name, method in public_methods(ft):
        if name in WITHOUT_ACTOR:
            continue
        # Every other argument is given (any value: Python refuses the call before it runs).
        arguments = {
            p.name: uuid.uuid4()
            for p in inspect.signature(method).parameters.values()
            if p.default is inspect.Parameter.empty and p.name != "actor"
        }
        with pytest.raises(TypeError, match="actor") as caught:
            method(**arguments)
        assert "missing 1 required keyword-only argument: 'actor'" in str(caught.value), name
        called += 1
    assert called > 80
    assert snapshot(ft.context.store) == before


def test_the_allow_list_names_only_existing_methods(ft: FitTwin) -> None:
    assert set(WITHOUT_ACTOR) <= dict(public_methods(ft)).keys()


def test_a_non_actor_is_a_validation_error(ft: FitTwin) -> None:
    for bad in (None, "system", {"type": "system"}, object()):
        with pytest.raises(ValidationError) as caught:
            ft.audit.events(actor=bad)  # type: ignore[arg-type]
        assert caught.value.field == "actor"
        with pytest.raises(ValidationError):
            ft.accounts.get(uuid.uuid4(), actor=bad)  # type: ignore[arg-type]


def test_units_of_work_of_services_need_an_actor_too(ft: FitTwin) -> None:
    with pytest.raises(TypeError, match="actor"):
        ft.orders.transaction(lambda uow: None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="actor"):
        ft.orders.read(lambda uow: None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ft.orders.read(lambda uow: None, actor=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actor"):
        ft.transaction()  # type: ignore[call-arg]


def test_an_anonymous_actor_has_no_id_and_a_shopper_needs_one() -> None:
    assert Actor.anonymous().id is None and Actor.anonymous().is_anonymous
    assert not Actor.shopper(uuid.uuid4()).is_anonymous
    assert not Actor.system().is_anonymous
    with pytest.raises(ValidationError):
        Actor.shopper(None)  # type: ignore[arg-type]
