"""A generic, signed JSON webhook.

The body is the alert as JSON plus ``transition`` (its status) and ``idempotency_key``
(``{alert_id}:{sequence}:{status}``, also sent as the ``Idempotency-Key`` header): a receiver
that stores the keys it has seen drops the rare repeat after a crash between delivery and
commit. With a secret, ``X-Slowleak-Signature: sha256=<hex>`` is HMAC-SHA256 over
``f"{timestamp}.".encode() + body`` with ``timestamp`` the ``X-Slowleak-Timestamp`` header; a
receiver checks it with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson

from slowleak.models import Alert, WebhookReceiver
from slowleak.streams.delivery.base import HttpNotifier, runbook_url

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookNotifier",
    "idempotency_key",
    "sign",
    "verify_signature",
    "webhook_payload",
]

SIGNATURE_HEADER = "X-Slowleak-Signature"
TIMESTAMP_HEADER = "X-Slowleak-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_PREFIX = "sha256="


def idempotency_key(alert: Alert) -> str:
    return f"{alert.alert_id}:{alert.sequence}:{alert.status}"


def webhook_payload(alert: Alert, *, runbook_base_url: str) -> dict[str, Any]:
    return {
        **alert.model_dump(mode="json"),
        "transition": alert.status,
        "idempotency_key": idempotency_key(alert),
        "runbook_url": runbook_url(runbook_base_url, alert.kind),
    }


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Slowleak-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``ts.`` + body."""
    message = f"{timestamp}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes,
    header: str,
    tolerance_s: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` at ``timestamp`` and the timestamp is fresh.

    For receivers: pass the raw request body (before any JSON parsing), the
    ``X-Slowleak-Timestamp`` and ``X-Slowleak-Signature`` headers. A timestamp more than
    ``tolerance_s`` away from ``now`` (default: the clock) is refused, so a captured request
    cannot be replayed later.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), header or "")


class WebhookNotifier(HttpNotifier):
    def __init__(
        self,
        config: WebhookReceiver,
        *,
        runbook_base_url: str,
        clock: Any = time.time,
    ) -> None:
        super().__init__(name=config.name, timeout_s=config.timeout_s)
        self.url = config.url
        self._secret = config.secret
        self.runbook_base_url = runbook_base_url
        self.clock = clock

    def request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the POST for ``alert``."""
        body = orjson.dumps(webhook_payload(alert, runbook_base_url=self.runbook_base_url))
        timestamp = int(self.clock())
        headers = {TIMESTAMP_HEADER: str(timestamp), IDEMPOTENCY_HEADER: idempotency_key(alert)}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.get_secret_value(), timestamp, body)
        return body, headers

    async def send(self, alert: Alert) -> None:
        body, headers = self.request(alert)
        await self.post(self.url, body, headers)
