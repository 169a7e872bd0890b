"""slowleak's data contracts: events, alerts, dead letters and settings (pydantic v2)."""

from slowleak.models.alerts import Alert, AlertStatus, Severity
from slowleak.models.dead_letters import DeadLetter
from slowleak.models.events import FeedbackEvent, InteractionEvent, Status
from slowleak.models.settings import ClickHouseTarget, Settings

__all__ = [
    "Alert",
    "AlertStatus",
    "ClickHouseTarget",
    "DeadLetter",
    "FeedbackEvent",
    "InteractionEvent",
    "Settings",
    "Severity",
    "Status",
]
