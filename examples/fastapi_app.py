"""FitTwin behind FastAPI: the recipe of docs/web.md, as one runnable app.

What it shows:

* **one transaction per request** — ``ft.transaction`` as a dependency with ``yield``
  (``scope="function"``: committed before the response leaves, rolled back on any error);
* **the actor from the request** — a *toy* bearer header, ``Authorization: Bearer
  shopper:<uuid>`` (or ``brand_user:``, ``platform:``, ``system``); no header is a visitor.
  Anyone can claim anyone with it: a real host verifies a session or a signed token and maps
  the verified identity to an :class:`Actor` in the same place;
* **errors as problem+json** — every ``FitTwinError`` carries ``http_status`` and
  ``as_problem()``; retryable ones get ``Retry-After``;
* **pagination over HTTP** — ``?limit=&after=`` in, ``{"items": [...], "next": ...}`` out;
* **checkout with an ``Idempotency-Key`` header** and the **payment webhook**, which answers
  2xx to events FitTwin ignores (so the provider stops resending them).

Run ``python examples/fastapi_app.py --self-test`` (a checkout through FastAPI's test client on
the embedded store); serve it with any ASGI server, e.g. ``uvicorn`` on ``build_app()``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from fittwin_adapters import connect
from fittwin_adapters.crypto import Argon2PasswordHasher
from fittwin_adapters.demo import brand_onboarding, catalog, run_story
from fittwin_core import AuthenticationFailed, FitTwin, FitTwinError, Page
from fittwin_core.app import Transaction
from fittwin_core.domain import Actor, BodyMetrics, Order
from fittwin_core.pagination import DEFAULT_LIMIT

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = "1"


# ----------------------------------------------------------------------------- request bodies


class AddressIn(BaseModel):
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    state: str | None = None


class SignUp(BaseModel):
    email: str
    password: str
    username: str
    body: dict[str, float]
    address: AddressIn
    card_token: str


class Checkout(BaseModel):
    user_id: UUID
    items: list[tuple[UUID, int]]
    address_id: UUID
    payment_method_id: UUID
    rid: str | None = None


# ----------------------------------------------------------------------------- response bodies


def order_json(order: Order) -> dict[str, Any]:
    """What a client sees of an order: chosen fields, never the whole entity."""
    return {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "status": order.status.value,
        "total": order.totals.total,
        "currency": order.totals.currency,
        "payment_intent": order.payment_intent_ref,
        "created_at": order.created_at.isoformat(),
    }


def page_json(page: Page[Any], item: Any) -> dict[str, Any]:
    """A page as JSON: its items and the cursor of the next page (``null`` on the last)."""
    return {"items": [item(row) for row in page.items], "next": page.next}


# ----------------------------------------------------------------------------- the app


def actor_from(authorization: str | None) -> Actor:
    """The toy identity scheme: ``Bearer <kind>:<uuid>`` claims an actor, no header is a visitor.
    NOT authentication — replace this with the host's verified session or token."""
    if authorization is None:
        return Actor.anonymous()
    scheme, _, credential = authorization.partition(" ")
    kind, _, raw_id = credential.partition(":")
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("the Authorization header must be a bearer token")
    if kind == "system" and not raw_id:
        return Actor.system()
    makers = {"shopper": Actor.shopper, "brand_user": Actor.brand_user, "platform": Actor.platform}
    try:
        return makers[kind](UUID(raw_id))
    except (KeyError, ValueError):
        raise AuthenticationFailed("the bearer token names no actor") from None


def current_actor(authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The request's actor (see :func:`actor_from`)."""
    return actor_from(authorization)


def fittwin(request: Request) -> FitTwin:
    """The app's FitTwin (one per process, with its connection pool)."""
    ft: FitTwin = request.app.state.fittwin
    return ft


def transaction(
    ft: Annotated[FitTwin, Depends(fittwin)], actor: Annotated[Actor, Depends(current_actor)]
) -> Iterator[Transaction]:
    """One ``ft.transaction`` per request. Everything the endpoint does through ``tx`` commits
    once, after it returns and before the response is sent; an exception anywhere rolls it all
    back (and becomes the error response)."""
    with ft.transaction(actor=actor) as tx:
        yield tx


ActorDep = Annotated[Actor, Depends(current_actor)]
FitTwinDep = Annotated[FitTwin, Depends(fittwin)]
# scope="function": the dependency's exit (the commit) runs before the response is sent, so a
# failed commit is answered as an error, never after a 2xx went out.
TxDep = Annotated[Transaction, Depends(transaction, scope="function")]


def create_app(ft: FitTwin) -> FastAPI:
    """The HTTP API over ``ft``."""
    app = FastAPI(title="FitTwin shop")
    app.state.fittwin = ft

    @app.exception_handler(FitTwinError)
    async def problem(request: Request, error: FitTwinError) -> JSONResponse:
        # docs/errors.md: the status and the body come from the error; a retryable one says when.
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.retryable else None
        return JSONResponse(error.as_problem(), error.http_status, headers=headers, media_type=PROBLEM)

    @app.post("/shoppers", status_code=201)
    def sign_up(req: SignUp, tx: TxDep) -> dict[str, str]:
        # Three calls, one transaction: a bad address leaves no half-created shopper behind.
        user = tx.accounts.register(
            req.email,
            req.password,
            req.username,
            BodyMetrics(**req.body),  # type: ignore[arg-type]
            consents={"terms": True},
            actor=Actor.anonymous(),  # a visitor signs up ...
        )
        as_user = Actor.shopper(user.id)  # ... and from here on it is the new shopper
        address = tx.accounts.add_address(
            user.id, type="shipping", **req.address.model_dump(exclude_none=True), actor=as_user
        )
        card = tx.accounts.add_payment_method(user.id, req.card_token, actor=as_user)
        return {"user_id": str(user.id), "address_id": str(address.id), "payment_method_id": str(card.id)}

    @app.get("/shoppers/{user_id}/orders")
    def shopper_orders(
        user_id: UUID, tx: TxDep, actor: ActorDep, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> dict[str, Any]:
        page = tx.orders.for_user(user_id, actor=actor, limit=limit, after=after)
        return page_json(page, order_json)

    @app.get("/brands/{brand_id}/orders")
    def brand_orders(
        brand_id: UUID,
        tx: TxDep,
        actor: ActorDep,
        status: str | None = None,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> dict[str, Any]:
        page = tx.orders.for_brand(brand_id, status=status, actor=actor, limit=limit, after=after)
        return page_json(page, order_json)

    @app.get("/brands/{brand_id}/products")
    def products(
        brand_id: UUID, tx: TxDep, actor: ActorDep, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> dict[str, Any]:
        page = tx.catalog.products(brand_id, status="active", actor=actor, limit=limit, after=after)
        return page_json(page, lambda p: {"id": str(p.id), "title": p.title})

    @app.get("/orders/{order_id}")
    def get_order(order_id: UUID, tx: TxDep, actor: ActorDep) -> dict[str, Any]:
        return order_json(tx.orders.get(order_id, actor=actor))

    @app.post("/orders", status_code=201)
    def check_out(
        req: Checkout,
        ft: FitTwinDep,
        actor: ActorDep,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        # Not through `tx`: placing an order is one call that commits and then opens the payment
        # (inside a transaction the payment would open only after the response was built). The
        # same Idempotency-Key again returns the same order; while the first request is still
        # running the repeat waits for it, and past that is 409 idempotency_key_in_use with
        # Retry-After.
        order = ft.orders.place(
            req.user_id,
            req.items,
            shipping_address_id=req.address_id,
            billing_address_id=req.address_id,
            payment_method_id=req.payment_method_id,
            rid=req.rid,
            idempotency_key=idempotency_key,
            actor=actor,
        )
        return order_json(order)

    @app.post("/webhooks/payments")
    async def payment_webhook(
        request: Request, ft: FitTwinDep, stripe_signature: Annotated[str, Header()] = ""
    ) -> dict[str, Any]:
        # The raw body: the signature covers the bytes, not a re-serialised JSON document.
        payload = await request.body()
        # FitTwin's calls block (database I/O): off the event loop, as FastAPI does for `def` routes.
        order = await run_in_threadpool(ft.orders.handle_payment_webhook, payload, stripe_signature)
        # 200 also for a duplicate delivery or an event type FitTwin ignores (order is None).
        return {"received": True, "order": None if order is None else str(order.id)}

    return app


# ----------------------------------------------------------------------------- running it


def seeded() -> tuple[FitTwin, Any]:
    """FitTwin on the embedded default with the demo's brand and catalog."""
    ft = connect(hasher=Argon2PasswordHasher.owasp_minimum())
    return ft, run_story(ft, io.StringIO(), chapters=(brand_onboarding, catalog))


def build_app() -> FastAPI:
    """An app over a seeded embedded FitTwin (for ``uvicorn --factory``)."""
    return create_app(seeded()[0])


def self_test() -> None:
    """A checkout through the app with FastAPI's test client."""
    from fastapi.testclient import TestClient

    ft, cast = seeded()
    with TestClient(create_app(ft)) as client:
        signed_up = client.post(
            "/shoppers",
            json={
                "email": "ada@example.com",
                "password": "correct horse battery staple",
                "username": "ada",
                "body": {"height_cm": 168, "weight_kg": 61, "chest_cm": 97},
                "address": {
                    "line1": "12 Analytical Row",
                    "city": "London",
                    "postal_code": "SW1A 1AA",
                    "country": "GB",
                },
                "card_token": "pm_card_visa",
            },
        )
        assert signed_up.status_code == 201, signed_up.text
        shopper = signed_up.json()
        me = {"Authorization": f"Bearer shopper:{shopper['user_id']}"}
        cart = {
            "user_id": shopper["user_id"],
            "address_id": shopper["address_id"],
            "payment_method_id": shopper["payment_method_id"],
            "items": [[str(cast.variants["M"].id), 1]],
        }
        placed = client.post("/orders", json=cart, headers={**me, "Idempotency-Key": "cart-42"})
        again = client.post("/orders", json=cart, headers={**me, "Idempotency-Key": "cart-42"})
        assert placed.status_code == again.status_code == 201 and placed.json()["id"] == again.json()["id"]
        order = placed.json()
        print("order placed:", order["total"], order["currency"])
        payload, signature = ft.context.payments.succeed(order["payment_intent"])  # type: ignore[attr-defined]
        paid = client.post("/webhooks/payments", content=payload, headers={"Stripe-Signature": signature})
        assert paid.status_code == 200 and paid.json()["order"] == order["id"], paid.text
        mine = client.get(f"/shoppers/{shopper['user_id']}/orders", params={"limit": 10}, headers=me).json()
        print("order status:", mine["items"][0]["status"])
        refused = client.get(f"/shoppers/{shopper['user_id']}/orders")  # a visitor
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        print("fastapi flow ok")


def main() -> None:
    """Run the self-test, or say how to serve the app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="check out through the test client and exit")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    print("serve it with an ASGI server, e.g.: uvicorn --factory fastapi_app:build_app --app-dir examples")


if __name__ == "__main__":
    main()
