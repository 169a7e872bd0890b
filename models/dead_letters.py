"""Dead letters: input the worker could not accept, on topic ``slowleak.dlq``."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["DeadLetter"]


class DeadLetter(BaseModel):
    """A rejected message with the reason, its origin and its raw bytes (base64)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(description="What was wrong, naming the field, for a person.")
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Each validation error: type, loc, msg."
    )
    topic: str
    partition: int = Field(ge=-1)
    offset: int = Field(ge=-1)
    key: str | None = None
    raw_b64: str = Field(description="The message value as received, base64 (maybe truncated).")
    raw_bytes: int = Field(ge=0, description="Size of the message value as received.")
    raw_truncated: bool = False
    received_at: AwareDatetime
