"""Bytes to validated events, or a :class:`Rejected` that says, naming the field, what is wrong."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from slowleak.models import DeadLetter, FeedbackEvent, InteractionEvent

__all__ = [
    "Record",
    "Rejected",
    "SourceRecord",
    "dead_letter",
    "decode_feedback",
    "decode_interaction",
]

_M = TypeVar("_M", bound=BaseModel)

#: How many validation errors a reason spells out; the full list is in ``DeadLetter.errors``.
_REASON_ERRORS = 5
#: A field or attribute name shown as is in a reason; others are quoted, and cut at
#: ``_MAX_NAME_CHARS`` characters.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_NAME_CHARS = 64


class SourceRecord(Protocol):
    """Where a message came from; aiokafka's ``ConsumerRecord`` has this shape."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Record(NamedTuple):
    """A :class:`SourceRecord` that did not come from Kafka (replay, tests)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Rejected(Exception):
    """A message that does not meet the contract. ``reason`` is for a person on call."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


def _check_size(raw: bytes | None, max_bytes: int) -> bytes:
    if raw is None:
        raise Rejected("message has no value (null); expected a JSON object")
    if len(raw) > max_bytes:
        raise Rejected(
            f"message is {len(raw):,} bytes, over the limit of {max_bytes:,} "
            "(setting max_message_bytes); drop or truncate input_text/output_text"
        )
    return raw


def _field_name(loc: tuple[int | str, ...]) -> str:
    """``loc`` as a person reads it: ``attributes.region``; a key that is empty, long or not a
    plain name is quoted (and cut), so that an unknown field ``""`` still reads as a field."""
    names: list[str] = []
    for part in loc:
        if part == "[key]" and names:  # pydantic's marker: the error is in the key itself
            names[-1] += " (the key)"
        elif isinstance(part, str) and not _PLAIN_NAME.fullmatch(part):
            quoted = json.dumps(part[:_MAX_NAME_CHARS], ensure_ascii=False)
            names.append(quoted if len(part) <= _MAX_NAME_CHARS else f"{quoted}...")
        else:
            names.append(str(part))
    return ".".join(names)


def _rejected(exc: ValidationError, raw: bytes) -> Rejected:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if errors and errors[0]["type"] == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Rejected(
                f"not valid UTF-8 at byte {bad.start}: JSON text must be UTF-8", [dict(errors[0])]
            )
    parts = []
    for error in errors[:_REASON_ERRORS]:
        loc = _field_name(error["loc"])
        if error["type"] == "json_invalid":
            parts.append(f"not valid JSON: {error['msg'].removeprefix('Invalid JSON: ')}")
        elif not loc:
            parts.append(f"message: {error['msg']}")
        else:
            parts.append(f"{loc}: {error['msg']}")
    if len(errors) > _REASON_ERRORS:
        parts.append(f"and {len(errors) - _REASON_ERRORS} more")
    return Rejected("; ".join(parts), [dict(e) for e in errors])


def _decode(model: type[_M], raw: bytes | None, max_bytes: int) -> _M:
    data = _check_size(raw, max_bytes)
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _rejected(exc, data) from None


def decode_interaction(raw: bytes | None, *, max_bytes: int) -> InteractionEvent:
    """Validate one ``slowleak.events`` message; raise :class:`Rejected` when it is not valid."""
    return _decode(InteractionEvent, raw, max_bytes)


def decode_feedback(raw: bytes | None, *, max_bytes: int) -> FeedbackEvent:
    """Validate one ``slowleak.feedback`` message; raise :class:`Rejected` when it is not valid."""
    return _decode(FeedbackEvent, raw, max_bytes)


def dead_letter(
    record: SourceRecord, rejected: Rejected, *, received_at: datetime, max_raw_bytes: int
) -> DeadLetter:
    """The dead letter for ``record``: reason, origin, and at most ``max_raw_bytes`` raw bytes."""
    raw = record.value or b""
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return DeadLetter(
        reason=rejected.reason,
        errors=rejected.errors,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        raw_b64=base64.b64encode(raw[:max_raw_bytes]).decode("ascii"),
        raw_bytes=len(raw),
        raw_truncated=len(raw) > max_raw_bytes,
        received_at=received_at,
    )
