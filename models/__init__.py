"""slowleak's data contracts: events, alerts, dead letters and settings (pydantic v2)."""

from slowleak.models.alerts import Alert, AlertStatus, Severity
from slowleak.models.dead_letters import DeadLetter
from slowleak.models.events import FeedbackEvent, InteractionEvent, Status
from slowleak.models.settings import (
    AlertmanagerReceiver,
    ClickHouseTarget,
    Receiver,
    Settings,
    SlackReceiver,
    StdoutReceiver,
    WebhookReceiver,
)

__all__ = [
    "Alert",
    "AlertStatus",
    "AlertmanagerReceiver",
    "ClickHouseTarget",
    "DeadLetter",
    "FeedbackEvent",
    "InteractionEvent",
    "Receiver",
    "Settings",
    "Severity",
    "SlackReceiver",
    "Status",
    "StdoutReceiver",
    "WebhookReceiver",
]
