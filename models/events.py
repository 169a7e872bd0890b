"""The event contract: one :class:`InteractionEvent` per model call, :class:`FeedbackEvent` for
outcomes that arrive later.

Field names are a public contract (other languages publish JSON that validates against the JSON
Schema generated from these models, see ``schemas/json``): add optional fields only, never
rename. Validation is strict (``"12"`` is not an integer, ``"true"`` is not a boolean) and unknown
fields are rejected, so that a typo such as ``input_token`` is a visible error in the dead-letter
topic rather than a silent null; free-form data belongs in ``attributes``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "TS_MAX",
    "TS_MIN",
    "UINT32_MAX",
    "FeedbackEvent",
    "InteractionEvent",
    "Status",
]

#: Bounds of a plausible event time. A timestamp in 1970 or 9999 is a producer bug, not an event;
#: the stream rejects it to the DLQ. The upper bound stays below 2106, where ClickHouse's
#: ``toDateTime`` (used by the tables' TTL) and ``toDate`` (partitions) wrap around.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)
#: Token counts are stored as ClickHouse ``UInt32``.
UINT32_MAX = 4_294_967_295

Status = Literal["ok", "error", "timeout"]


#: When something happened: RFC 3339 with an offset, e.g. ``2026-11-25T10:00:00.123+00:00``.
EventTime = Annotated[AwareDatetime, Field(ge=TS_MIN, lt=TS_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=256)]
OptionalName = Annotated[str | None, Field(default=None, min_length=1, max_length=256)]
Tokens = Annotated[int, Field(ge=0, le=UINT32_MAX)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

_CONFIG = ConfigDict(
    strict=True,
    extra="forbid",
    frozen=True,
    allow_inf_nan=False,
    str_max_length=1_000_000,
)


class InteractionEvent(BaseModel):
    """One model call, published by the app to topic ``slowleak.events`` with key = ``app``."""

    model_config = _CONFIG

    # Required.
    event_id: Name = Field(description="Unique per call; the idempotency key.")
    ts: EventTime = Field(description="When the call completed (RFC 3339 with offset).")
    app: Name = Field(description="The application that made the call.")
    model: Name = Field(description="The model the app asked for.")
    input_tokens: Tokens
    output_tokens: Tokens
    latency_ms: float = Field(ge=0.0, description="Wall-clock duration of the call.")
    status: Status

    # Optional.
    type: Literal["interaction"] = "interaction"
    schema_version: Literal[1] = 1
    env: Name = "prod"
    tenant: OptionalName = None
    user_id: OptionalName = None
    session_id: OptionalName = None
    trace_id: OptionalName = None
    intent: OptionalName = Field(default=None, description="The purpose of the call.")
    variant: Name = "champion"
    provider: OptionalName = None
    response_model: OptionalName = Field(
        default=None, description="The model the provider says served the call."
    )
    system_fingerprint: OptionalName = None
    fallback_from: OptionalName = Field(
        default=None, description="The primary model this call fell back from."
    )
    prompt_id: OptionalName = None
    prompt_version: OptionalName = None
    input_text: str | None = None
    output_text: str | None = None
    finish_reason: OptionalName = None
    cached_input_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    cost_usd: float | None = Field(default=None, ge=0.0, description="When the caller knows it.")
    outcome: bool | None = Field(
        default=None, description="Did we get what we wanted, when known at call time."
    )
    score: Fraction | None = None
    error_type: OptionalName = None
    attributes: dict[Name, str] = Field(default_factory=dict)


class FeedbackEvent(BaseModel):
    """A judgement of an earlier call, on topic ``slowleak.feedback`` with key = ``app``.

    Outcomes often arrive minutes after the call; they are joined to it by ``event_id``.
    """

    model_config = _CONFIG

    type: Literal["feedback"] = Field(
        description="Required, unlike on interactions: it tells the two apart in one file."
    )
    schema_version: Literal[1] = 1
    event_id: Name = Field(description="The event_id of the call this judges.")
    ts: EventTime = Field(description="When the judgement was made.")
    app: Name
    outcome: bool
    score: Fraction | None = None
    source: OptionalName = Field(default=None, description='Who judged: "user", "eval", ...')
