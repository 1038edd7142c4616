"""A minimal host application: a JSON-over-HTTP checkout built on FitTwin (standard library only).

Routes:
  POST /shoppers                     register a shopper (with an address and a card)
  GET  /products/<id>/size?user=...  the size FitTwin recommends
  POST /orders                       place an order (Idempotency-Key header honoured)
  POST /webhooks/payments            the payment provider's webhook (signature verified)
  GET  /orders/<id>                  the order's status

Run it: ``python examples/checkout_app.py`` serves on 127.0.0.1:8080 with a seeded catalog; with
``--self-test`` it starts on a free port, walks through a checkout with HTTP requests and exits.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

from fittwin_adapters import connect
from fittwin_adapters.crypto import Argon2PasswordHasher
from fittwin_adapters.demo import brand_onboarding, catalog, run_story
from fittwin_core import FitTwin, FitTwinError
from fittwin_core.domain import Actor, BodyMetrics


def make_handler(ft: FitTwin) -> type[BaseHTTPRequestHandler]:
    """An HTTP handler class serving ``ft``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._answer(self._post)

        def do_GET(self) -> None:
            self._answer(self._get)

        def _answer(self, route: Any) -> None:
            try:
                status, body = route()
            except FitTwinError as error:  # every error knows its status and code (docs/errors.md)
                status, body = error.http_status, error.as_problem()
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _post(self) -> tuple[int, Any]:
            if self.path == "/shoppers":
                req = json.loads(self._body())
                # One unit of work: a bad address leaves no half-created shopper behind.
                with ft.transaction(actor=Actor.anonymous()) as tx:
                    user = tx.accounts.register(
                        req["email"],
                        req["password"],
                        req["username"],
                        BodyMetrics(**req["body"]),
                        consents={"terms": True},
                        actor=Actor.anonymous(),  # a visitor signing up
                    )
                    as_user = Actor.shopper(user.id)  # from here on, the new shopper
                    address = tx.accounts.add_address(
                        user.id, type="shipping", **req["address"], actor=as_user
                    )
                    card = tx.accounts.add_payment_method(user.id, req["card_token"], actor=as_user)
                return 201, {"user_id": user.id, "address_id": address.id, "payment_method_id": card.id}
            if self.path == "/orders":
                req = json.loads(self._body())
                order = ft.orders.place(
                    UUID(req["user_id"]),
                    [(UUID(variant), qty) for variant, qty in req["items"]],
                    shipping_address_id=UUID(req["address_id"]),
                    billing_address_id=UUID(req["address_id"]),
                    payment_method_id=UUID(req["payment_method_id"]),
                    idempotency_key=self.headers.get("Idempotency-Key"),
                    actor=Actor.shopper(UUID(req["user_id"])),
                )
                return 201, {
                    "order_id": order.id,
                    "total": order.total.format(),
                    "payment": order.payment_intent_ref,
                }
            if self.path == "/webhooks/payments":
                order = ft.orders.handle_payment_webhook(
                    self._body(), self.headers.get("Stripe-Signature", "")
                )
                return 200, {"applied": order is not None}
            return 404, {"error": "NotFound"}

        def _get(self) -> tuple[int, Any]:
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 3 and parts[0] == "products" and parts[2] == "size":
                user = self.path.split("user=")[1]
                rec = ft.fit.recommend(UUID(user), UUID(parts[1]), actor=Actor.shopper(UUID(user)))
                return 200, {
                    "size": rec.size_label,
                    "confidence": rec.confidence,
                    "between_sizes": rec.between_sizes,
                }
            if len(parts) == 2 and parts[0] == "orders":
                order = ft.orders.get(UUID(parts[1]), actor=Actor.system())
                return 200, {"status": order.status.value, "total": order.total.format()}
            return 404, {"error": "NotFound"}

        def log_message(self, format: str, *args: Any) -> None:
            """Keep request bodies and addresses out of logs; log nothing."""

    return Handler


def seeded() -> tuple[FitTwin, Any]:
    """FitTwin on the embedded default with the demo's brand and catalog."""
    ft = connect(hasher=Argon2PasswordHasher.owasp_minimum())
    cast = run_story(ft, io.StringIO(), chapters=(brand_onboarding, catalog))
    return ft, cast


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """One JSON request; returns ``(status, body)``."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def self_test() -> None:
    """Serve on a free port and check out over HTTP."""
    ft, cast = seeded()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(ft))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, shopper = call(
            base,
            "POST",
            "/shoppers",
            {
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
        assert status == 201, shopper
        _, size = call(base, "GET", f"/products/{cast.product.id}/size?user={shopper['user_id']}")
        print("recommended size:", size["size"], f"({size['confidence']}%)")
        cart = {
            "user_id": shopper["user_id"],
            "address_id": shopper["address_id"],
            "payment_method_id": shopper["payment_method_id"],
            "items": [[str(cast.variants[size["size"]].id), 1]],
        }
        status, order = call(base, "POST", "/orders", cart, {"Idempotency-Key": "cart-42"})
        _, again = call(base, "POST", "/orders", cart, {"Idempotency-Key": "cart-42"})
        assert status == 201 and again["order_id"] == order["order_id"]
        print("order placed:", order["total"])
        payload, signature = ft.context.payments.succeed(order["payment"])  # type: ignore[attr-defined]
        status, applied = call(base, "POST", "/webhooks/payments", payload, {"Stripe-Signature": signature})
        assert status == 200 and applied == {"applied": True}
        status, forged = call(base, "POST", "/webhooks/payments", payload, {"Stripe-Signature": "t=1,v1=00"})
        assert status == 401, forged
        _, current = call(base, "GET", f"/orders/{order['order_id']}")
        print("order status:", current["status"])
        assert current["status"] == "paid"
        status, missing = call(base, "GET", f"/orders/{shopper['user_id']}")
        assert status == 404, missing
        print("checkout flow ok")
    finally:
        server.shutdown()


def main() -> None:
    """Serve the app, or run the self-test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--self-test", action="store_true", help="check out over HTTP on a free port and exit"
    )
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    ft, cast = seeded()
    print(f"serving on http://127.0.0.1:{args.port} — product {cast.product.id}")
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(ft)).serve_forever()


if __name__ == "__main__":
    main()
