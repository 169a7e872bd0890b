"""Prometheus Alertmanager: ``POST {url}/api/v2/alerts``.

Alertmanager identifies an alert by its label set, so the labels are the alert's identity
(kind, severity, app, model, env, variant and the alert's own labels) and nothing volatile
(event ids and sequence numbers go to annotations, or nowhere). A resolved alert carries
``endsAt`` and ends the firing one with the same labels; a firing one carries no ``endsAt``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from slowleak.models import Alert, AlertmanagerReceiver
from slowleak.streams.delivery.base import HttpNotifier, describe_details, rfc3339, runbook_url

__all__ = ["AlertmanagerNotifier", "alertmanager_payload"]

API_PATH = "/api/v2/alerts"
#: Labels taken from ``details`` when the alert's own labels do not set them.
CONTEXT_LABELS = ("env", "variant")
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


def _label_name(key: str) -> str:
    name = _LABEL_NAME.sub("_", key)
    return f"_{name}" if name[:1].isdigit() else name


def alertmanager_labels(alert: Alert) -> dict[str, str]:
    """The label set: the alert's identity in Alertmanager."""
    labels = {_label_name(k): v for k, v in alert.labels.items() if v}
    for key in CONTEXT_LABELS:
        value = alert.details.get(key)
        if key not in labels and isinstance(value, str) and value:
            labels[key] = value
    labels.update(alertname=alert.kind, severity=alert.severity, app=alert.app)
    if alert.model:
        labels["model"] = alert.model
    return dict(sorted(labels.items()))


def alertmanager_payload(
    alert: Alert,
    *,
    runbook_base_url: str,
    generator_url: str | None = None,
    firing_until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The JSON body Alertmanager's ``POST /api/v2/alerts`` takes: a list of one alert.

    A firing alert without ``endsAt`` is resolved by Alertmanager itself after its
    ``resolve_timeout`` (5 min by default); slowleak sends an open alert again only every
    ``alert_repeat_interval_s``, so a firing one carries ``endsAt`` = ``firing_until``, past the
    next repeat."""
    annotations = {
        "summary": alert.summary,
        "runbook_url": runbook_url(runbook_base_url, alert.kind),
        "slowleak_alert_id": alert.alert_id,
    }
    if description := describe_details(alert.details):
        annotations["description"] = description
    item: dict[str, Any] = {
        "labels": alertmanager_labels(alert),
        "annotations": annotations,
        "startsAt": rfc3339(alert.starts_at or alert.ts),
    }
    if alert.status == "resolved":
        item["endsAt"] = rfc3339(alert.ends_at or alert.ts)
    elif firing_until is not None:
        item["endsAt"] = rfc3339(firing_until)
    if generator_url:
        item["generatorURL"] = generator_url
    return [item]


class AlertmanagerNotifier(HttpNotifier):
    def __init__(
        self, config: AlertmanagerReceiver, *, runbook_base_url: str, firing_ttl_s: float
    ) -> None:
        super().__init__(name=config.name, timeout_s=config.timeout_s)
        #: How long past now a firing alert stays active in Alertmanager without news.
        self.firing_ttl_s = firing_ttl_s
        self.url = config.url.rstrip("/") + API_PATH
        self.generator_url = config.generator_url
        self.runbook_base_url = runbook_base_url

    async def send(self, alert: Alert) -> None:
        payload = alertmanager_payload(
            alert,
            runbook_base_url=self.runbook_base_url,
            generator_url=self.generator_url,
            firing_until=datetime.now(UTC) + timedelta(seconds=self.firing_ttl_s),
        )
        await self.post(self.url, orjson.dumps(payload), {})
