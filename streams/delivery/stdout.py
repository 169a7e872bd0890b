"""One line per alert on standard output (the demo, or a log shipper reading stdout)."""

from __future__ import annotations

import sys
from typing import TextIO

from slowleak.models import Alert, StdoutReceiver
from slowleak.streams.delivery.base import describe_details, rfc3339

__all__ = ["StdoutNotifier", "alert_line"]


def alert_line(alert: Alert) -> str:
    model = f" model={alert.model}" if alert.model else ""
    details = describe_details(alert.details)
    return (
        f"ALERT {alert.status} {alert.severity} {alert.kind} app={alert.app}{model} "
        f"ts={rfc3339(alert.ts)} alert_id={alert.alert_id} sequence={alert.sequence}: "
        f"{alert.summary}" + (f" ({details})" if details else "")
    )


class StdoutNotifier:
    def __init__(self, config: StdoutReceiver, *, out: TextIO | None = None) -> None:
        self.name = config.name
        self.out = out

    async def setup(self) -> None:
        return None

    async def send(self, alert: Alert) -> None:
        out = self.out or sys.stdout
        out.write(alert_line(alert) + "\n")
        out.flush()

    async def close(self) -> None:
        return None
