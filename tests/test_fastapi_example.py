"""The FastAPI recipe (examples/fastapi_app.py) driven with HTTP requests, on memory and on
PostgreSQL: the request-scoped transaction, the toy actor header, problem+json errors,
pagination over HTTP, checkout with an Idempotency-Key (also sixteen at once), and the payment
webhook answering 2xx to events FitTwin ignores."""

from __future__ import annotations

import importlib.util
import io
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from fastapi.testclient import TestClient

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.demo import brand_onboarding, catalog, run_story
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
PROBLEM = "application/problem+json"
WORKERS = 16


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the request models' annotations there
    spec.loader.exec_module(module)
    return module


example = _load()


@attrs.define
class Host:
    ft: FitTwin
    client: TestClient
    cast: Any

    def sign_up(self, tag: str, **changes: Any) -> dict[str, str]:
        body = {
            "email": f"{tag}@example.com",
            "password": "correct horse battery staple",
            "username": tag,
            "body": {"height_cm": 168, "weight_kg": 61, "chest_cm": 97},
            "address": {"line1": "1 Row", "city": "Lyon", "postal_code": "69001", "country": "FR"},
            "card_token": f"pm_{tag}",
            **changes,
        }
        answer = self.client.post("/shoppers", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def cart(self, shopper: dict[str, str], qty: int = 1, size: str = "M") -> dict[str, Any]:
        return {
            "user_id": shopper["user_id"],
            "address_id": shopper["address_id"],
            "payment_method_id": shopper["payment_method_id"],
            "items": [[str(self.cast.variants[size].id), qty]],
        }


def bearer(kind: str, id_: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {kind}:{id_}"}


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def host(request: pytest.FixtureRequest) -> Iterator[Host]:
    hasher = Argon2PasswordHasher.owasp_minimum()
    if request.param == "memory":
        ft = connect(hasher=hasher)
    else:
        url = request.getfixturevalue("postgres_url")
        # A persistent store takes its payment gateway on purpose: the fake one, for tests.
        ft = connect(
            url.render_as_string(hide_password=False),
            payments=FakePayments(),
            keyring=LocalKeyRing.generate(),
            hasher=hasher,
            pool_size=WORKERS,
        )
    cast = run_story(ft, io.StringIO(), chapters=(brand_onboarding, catalog))
    try:
        with TestClient(example.create_app(ft)) as client:
            yield Host(ft, client, cast)
    finally:
        ft.close()


def test_sign_up_is_one_transaction(host: Host) -> None:
    bad = host.client.post(
        "/shoppers",
        json={
            "email": "grace@example.com",
            "password": "correct horse battery staple",
            "username": "grace",
            "body": {"height_cm": 170, "weight_kg": 60},
            "address": {"line1": "1 Row", "city": "Lyon", "postal_code": "69001", "country": "Atlantis"},
            "card_token": "pm_grace",
        },
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["code"] == "validation_error" and bad.json()["field"] == "country"
    assert "Retry-After" not in bad.headers
    # Nothing of the first attempt was kept: the same email signs up now.
    assert host.sign_up("grace")["user_id"]


def test_the_actor_comes_from_the_request(host: Host) -> None:
    ada = host.sign_up("ada")
    path = f"/shoppers/{ada['user_id']}/orders"
    assert host.client.get(path, headers=bearer("shopper", ada["user_id"])).json() == {
        "items": [],
        "next": None,
    }
    visitor = host.client.get(path)
    assert visitor.status_code == 403 and visitor.json()["code"] == "permission_denied"
    other = host.sign_up("bob")
    assert host.client.get(path, headers=bearer("shopper", other["user_id"])).status_code == 403
    for header in ("Basic abc", "Bearer shopper:nope", "Bearer wizard:1"):
        refused = host.client.get(path, headers={"Authorization": header})
        assert refused.status_code == 401 and refused.json()["code"] == "authentication_failed", header


def test_pages_over_http(host: Host) -> None:
    ada = host.sign_up("ada")
    me = bearer("shopper", ada["user_id"])
    placed = [host.client.post("/orders", json=host.cart(ada), headers=me).json()["id"] for _ in range(5)]
    seen, after, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        page = host.client.get(f"/shoppers/{ada['user_id']}/orders", params=params, headers=me).json()
        seen += [o["id"] for o in page["items"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert seen == placed and pages == 3
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"after": "nonsense"}, "after"),
    ):
        bad = host.client.get(f"/shoppers/{ada['user_id']}/orders", params=params, headers=me)
        assert bad.status_code == 422 and bad.json()["field"] == field, params
    products = host.client.get(f"/brands/{host.cast.brand.id}/products", params={"limit": 1}).json()
    assert [p["id"] for p in products["items"]] == [str(host.cast.product.id)]


def test_a_brand_reads_its_orders(host: Host) -> None:
    ada = host.sign_up("ada")
    order = host.client.post("/orders", json=host.cart(ada), headers=bearer("shopper", ada["user_id"])).json()
    owner = bearer("brand_user", host.cast.owner.id)
    listed = host.client.get(
        f"/brands/{host.cast.brand.id}/orders", params={"status": "created"}, headers=owner
    )
    assert [o["id"] for o in listed.json()["items"]] == [order["id"]]
    assert host.client.get(
        f"/brands/{host.cast.brand.id}/orders", params={"status": "paid"}, headers=owner
    ).json() == {
        "items": [],
        "next": None,
    }
    shopper = host.client.get(
        f"/brands/{host.cast.brand.id}/orders", headers=bearer("shopper", ada["user_id"])
    )
    assert shopper.status_code == 403


def test_checkout_with_an_idempotency_key_and_the_payment_webhook(host: Host) -> None:
    ada = host.sign_up("ada")
    me = {**bearer("shopper", ada["user_id"]), "Idempotency-Key": "cart-1"}
    first = host.client.post("/orders", json=host.cart(ada), headers=me)
    again = host.client.post("/orders", json=host.cart(ada), headers=me)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    reused = host.client.post("/orders", json=host.cart(ada, qty=2), headers=me)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert reused.json()["retryable"] is False

    payments: Any = host.ft.context.payments
    payload, signature = payments.succeed(first.json()["payment_intent"])
    paid = host.client.post("/webhooks/payments", content=payload, headers={"Stripe-Signature": signature})
    assert paid.status_code == 200 and paid.json() == {"received": True, "order": first.json()["id"]}
    repeat = host.client.post("/webhooks/payments", content=payload, headers={"Stripe-Signature": signature})
    assert repeat.status_code == 200 and repeat.json()["order"] is None  # a duplicate delivery
    forged = host.client.post(
        "/webhooks/payments", content=payload, headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert forged.status_code == 401 and forged.headers["content-type"] == PROBLEM
    ignored, ignored_signature = payments.sign(
        {
            "id": "evt_customer",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1"}},
        }
    )
    answer = host.client.post(
        "/webhooks/payments", content=ignored, headers={"Stripe-Signature": ignored_signature}
    )
    assert answer.status_code == 200 and answer.json() == {"received": True, "order": None}
    status = host.client.get(
        f"/orders/{first.json()['id']}", headers=bearer("shopper", ada["user_id"])
    ).json()
    assert status["status"] == "paid"


def test_sixteen_concurrent_checkouts_with_one_key_over_http(host: Host) -> None:
    ada = host.sign_up("ada")
    me = {**bearer("shopper", ada["user_id"]), "Idempotency-Key": "one-cart"}
    variant = host.cast.variants["L"].id
    stock = host.ft.catalog.variant(variant, actor=Actor.anonymous()).inventory
    start = threading.Barrier(WORKERS)
    app = host.client.app

    def checkout(_: int) -> Any:
        with TestClient(app) as client:  # one client per worker: requests really overlap
            start.wait()
            return client.post("/orders", json=host.cart(ada, size="L"), headers=me)

    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(checkout, range(WORKERS)))

    orders = host.ft.orders.for_user(ada["user_id"], actor=Actor.system()).items
    assert len(orders) == 1, "one order for one key"
    for answer in answers:
        if answer.status_code == 201:
            assert answer.json()["id"] == str(orders[0].id)
        else:  # the documented retryable answer (docs/errors.md)
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "idempotency_key_in_use" and answer.json()["retryable"] is True
            assert answer.headers["Retry-After"] == "1"
    assert any(a.status_code == 201 for a in answers)
    assert host.ft.catalog.variant(variant, actor=Actor.anonymous()).inventory == stock - 1
