"""``HttpWebhookSender``: brand webhooks POSTed over HTTP(S), for the outbox to drive.

It uses the standard library's :mod:`urllib.request` (no extra dependency): one POST per
attempt with the signed body and FitTwin's headers (``FitTwin-Signature``, ``FitTwin-Event-Id``),
a bounded timeout, and no redirects followed (a signed delivery goes where the brand said).
A 2xx answer is delivered; anything else — another status, a refused connection, a timeout —
raises :class:`WebhookDeliveryFailed`, and the outbox retries with backoff and keeps every
attempt. The sender itself never retries, so a brand that is down costs one bounded attempt.

    ft = connect("postgresql+psycopg://…", payments=..., webhooks=HttpWebhookSender(timeout=5))
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from fittwin_core.domain import ValidationError
from fittwin_core.domain.errors import WebhookDeliveryFailed
from fittwin_core.ports import OutgoingWebhook

DEFAULT_TIMEOUT = 5.0
"""Seconds to connect and to wait for each read of the answer."""

USER_AGENT = "FitTwin-Webhooks/1"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx: not delivered


class HttpWebhookSender:
    """The :class:`~fittwin_core.ports.WebhookSender` that POSTs each webhook to its URL."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
            raise ValidationError("timeout", "must be a number of seconds above 0, at most 60")
        self.timeout = float(timeout)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:
        return f"HttpWebhookSender(timeout={self.timeout})"

    def send(self, webhook: OutgoingWebhook) -> None:
        """POST the webhook; :class:`WebhookDeliveryFailed` unless the answer is 2xx."""
        if not webhook.url.startswith(("https://", "http://")):
            raise WebhookDeliveryFailed("webhook URL is not http(s)")
        headers = {"User-Agent": USER_AGENT, **dict(webhook.headers)}
        request = urllib.request.Request(webhook.url, data=webhook.payload, headers=headers, method="POST")  # noqa: S310 - http(s) checked above
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status = int(answer.status)
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WebhookDeliveryFailed(f"brand endpoint unreachable: {type(reason).__name__}") from None
        if not 200 <= status < 300:
            raise WebhookDeliveryFailed(f"brand endpoint answered HTTP {status}")


__all__ = ["DEFAULT_TIMEOUT", "HttpWebhookSender", "WebhookDeliveryFailed"]
