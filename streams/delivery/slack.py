"""A Slack-compatible incoming webhook: ``{"text": fallback, "blocks": [...]}``."""

from __future__ import annotations

from typing import Any

import orjson

from slowleak.models import Alert, SlackReceiver
from slowleak.streams.delivery.base import HttpNotifier, runbook_url

__all__ = ["SlackNotifier", "headline", "slack_payload"]

EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
RESOLVED_EMOJI = ":white_check_mark:"
#: Slack cuts a header block's text at 150 characters.
HEADER_CHARS = 150


def headline(alert: Alert) -> str:
    """``:warning: [FIRING] cost_budget: support-bot``: emoji by severity, or resolved."""
    emoji = RESOLVED_EMOJI if alert.status == "resolved" else EMOJI[alert.severity]
    return f"{emoji} [{alert.status.upper()}] {alert.kind}: {alert.app}"


def slack_payload(alert: Alert, *, runbook_base_url: str) -> dict[str, Any]:
    runbook = runbook_url(runbook_base_url, alert.kind)
    fields = [
        ("App", alert.app),
        ("Model", alert.model or "-"),
        ("Severity", alert.severity),
        ("Env", alert.labels.get("env") or str(alert.details.get("env") or "-")),
    ]
    return {
        "text": f"{headline(alert)}: {alert.summary}",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": headline(alert)[:HEADER_CHARS]},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.summary}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{runbook}|Runbook> · alert `{alert.alert_id}` #{alert.sequence}",
                    }
                ],
            },
        ],
    }


class SlackNotifier(HttpNotifier):
    def __init__(self, config: SlackReceiver, *, runbook_base_url: str) -> None:
        super().__init__(name=config.name, timeout_s=config.timeout_s)
        self.url = config.url
        self.runbook_base_url = runbook_base_url

    async def send(self, alert: Alert) -> None:
        payload = slack_payload(alert, runbook_base_url=self.runbook_base_url)
        await self.post(self.url, orjson.dumps(payload), {})
