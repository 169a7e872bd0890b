"""Alerts: what the detectors decide, on topic ``slowleak.alerts`` and in ClickHouse ``alerts``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from slowleak.models.events import EventTime, Name

__all__ = ["Alert", "AlertStatus", "Severity"]

Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["firing", "resolved"]
#: Alert kinds are snake_case words (``accuracy_drift``, ``cost_budget``, ...); each detector
#: family names its own.
Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Alert(BaseModel):
    """One decision of a detector about one ongoing condition."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    alert_id: Name = Field(description="Stable for one firing of one condition.")
    kind: Kind
    severity: Severity
    status: AlertStatus
    ts: EventTime = Field(description="Event time of the event at which it was decided.")
    event_id: Name = Field(description="The event at which it was decided.")
    app: Name
    model: Name | None = None
    labels: dict[Name, str] = Field(default_factory=dict)
    sequence: int = Field(
        default=0,
        ge=0,
        description="Transition number of this alert_id: 0 when it first fires, then +1 per "
        "repeat or resolve; with alert_id and status it identifies one notification.",
    )
    starts_at: EventTime | None = Field(
        default=None, description="When the condition started (event time); ts if not given."
    )
    ends_at: EventTime | None = Field(
        default=None, description="When the condition ended (event time), on a resolved alert."
    )
    summary: str = Field(
        min_length=1,
        max_length=2000,
        description="One sentence a person on call understands, with the numbers.",
    )
    details: dict[str, Any] = Field(default_factory=dict)
