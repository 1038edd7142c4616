"""A local stand-in for Stripe's API: Stripe-shaped JSON over HTTP on 127.0.0.1.

It answers the endpoints ``StripePayments`` calls (create, retrieve and cancel a
PaymentIntent; create a refund), checks the bearer API key, records every request, and
honours the ``Idempotency-Key`` header as Stripe does: the first answer for a key is saved
and replayed to a repeat with the same parameters; other parameters get a 400
``idempotency_error``. Failures queued with :meth:`StripeServer.fail_next` play an error met
before the endpoint ran (so, as with Stripe, nothing is saved for the key).

The provider's side is driven directly: :meth:`StripeServer.succeed` makes a payment succeed,
and :meth:`StripeServer.event` / :meth:`StripeServer.refund_event` build the events Stripe
would send (unsigned; tests sign them).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

_CANCELABLE = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
}


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    form: dict[str, str]


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, type_: str, message: str, **extra: str) -> _Answer:
    return _Answer(status, {"error": {"type": type_, "message": message, **extra}})


class StripeServer:
    """Serve a Stripe-like API for ``api_key`` on ``127.0.0.1`` (a free port); use as a context manager."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._saved: dict[str, tuple[tuple[str, str, tuple[tuple[str, str], ...]], _Answer]] = {}
        self._failures: list[_Answer] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve in a background thread; yields the base URL (``http://127.0.0.1:<port>``)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self)

            def do_POST(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._httpd = httpd
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    # ------------------------------------------------------------------ the provider's side

    def fail_next(self, status: int, type_: str, message: str = "failure", **extra: str) -> None:
        """Answer the next API request with this error (``code=``, ``decline_code=`` in ``extra``)."""
        with self._lock:
            self._failures.append(_error(status, type_, message, **extra))

    def succeed(self, intent_id: str, *, created: int) -> dict[str, Any]:
        """Make the payment succeed (a charge is created); returns the intent."""
        with self._lock:
            intent = self.intents[intent_id]
            charge_id = self._id("ch")
            self.charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": intent["amount"],
                "amount_refunded": 0,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "refunded": False,
                "status": "succeeded",
                "created": created,
            }
            intent.update(status="succeeded", latest_charge=charge_id, amount_received=intent["amount"])
            return dict(intent)

    def event(self, event_type: str, obj: dict[str, Any], *, created: int) -> bytes:
        """The event Stripe sends about ``obj``, as raw JSON bytes."""
        with self._lock:
            event_id = self._id("evt")
        body = {
            "id": event_id,
            "object": "event",
            "api_version": "2025-01-01",
            "created": created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def refund_event(self, refund_id: str, *, created: int) -> bytes:
        """The ``charge.refunded`` event for a refund (the charge as it is now)."""
        with self._lock:
            charge = dict(self.charges[self.refunds[refund_id]["charge"]])
        return self.event("charge.refunded", charge, created=created)

    # ------------------------------------------------------------------ HTTP

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        form = dict(parse_qsl(raw, keep_blank_values=True))
        path = handler.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(handler.command, path, headers, form))
            answer = self._answer(handler.command, path, headers, form)
        payload = json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Request-Id", f"req_local_{len(self.requests):06d}")
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, method: str, path: str, headers: dict[str, str], form: dict[str, str]) -> _Answer:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self._failures:
            return self._failures.pop(0)
        key = headers.get("idempotency-key") if method == "POST" else None
        request = (method, path, tuple(sorted(form.items())))
        if key is not None and key in self._saved:
            first, answer = self._saved[key]
            if first != request:
                return _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
            return _Answer(answer.status, answer.body, {"Idempotent-Replayed": "true"})
        answer = self._route(method, path, form)
        if key is not None:
            self._saved[key] = (request, answer)
        return answer

    def _route(self, method: str, path: str, form: dict[str, str]) -> _Answer:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payment_intents"]:
            return self._create_intent(form)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
            intent = self.intents.get(parts[2])
            if intent is None:
                return _error(404, "invalid_request_error", "No such payment_intent", code="resource_missing")
            if method == "GET" and len(parts) == 3:
                return _Answer(200, dict(intent))
            if method == "POST" and parts[3:] == ["cancel"]:
                return self._cancel(intent)
        if method == "POST" and parts == ["v1", "refunds"]:
            return self._refund(form)
        return _error(404, "invalid_request_error", "Unrecognized request URL")

    def _create_intent(self, form: dict[str, str]) -> _Answer:
        if "amount" not in form or "currency" not in form:
            return _error(400, "invalid_request_error", "Missing required param", code="parameter_missing")
        intent_id = self._id("pi")
        metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "amount_received": 0,
            "currency": form["currency"],
            "status": "requires_confirmation" if form.get("payment_method") else "requires_payment_method",
            "payment_method": form.get("payment_method"),
            "metadata": metadata,
            "client_secret": f"{intent_id}_secret_local",
            "latest_charge": None,
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return _Answer(200, dict(intent))

    def _cancel(self, intent: dict[str, Any]) -> _Answer:
        if intent["status"] not in _CANCELABLE:
            return _error(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent["status"] = "canceled"
        return _Answer(200, dict(intent))

    def _refund(self, form: dict[str, str]) -> _Answer:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return _error(400, "invalid_request_error", "No such payment_intent", code="resource_missing")
        if intent["status"] != "succeeded":
            return _error(
                400,
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                code="payment_intent_unexpected_state",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(form.get("amount", left))
        if left == 0:
            return _error(
                400,
                "invalid_request_error",
                "Charge has already been refunded.",
                code="charge_already_refunded",
            )
        if amount > left:
            return _error(
                400, "invalid_request_error", "Refund amount is greater than unrefunded amount on charge."
            )
        refund_id = self._id("re")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds[refund_id] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return _Answer(200, dict(refund))

    def _id(self, prefix: str) -> str:
        return f"{prefix}_local_{next(self._ids):06d}"
