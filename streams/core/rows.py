"""Rows for the ClickHouse tables, as tuples in the column order of ``schemas/clickhouse``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Literal, NamedTuple

import orjson

from slowleak.models import Alert, DeadLetter, FeedbackEvent, InteractionEvent
from slowleak.streams.core.guardrails.mask import mask_text

__all__ = [
    "ALERT_COLUMNS",
    "DEAD_LETTER_COLUMNS",
    "DETECTOR_STATS_COLUMNS",
    "EVENT_COLUMNS",
    "FEEDBACK_COLUMNS",
    "Row",
    "TableBlock",
    "alert_row",
    "dead_letter_row",
    "event_row",
    "feedback_row",
    "stored_text",
]

Row = tuple[object, ...]
TextPolicy = Literal["full", "masked", "hash", "none"]


class TableBlock(NamedTuple):
    """Rows inserted on their own, with ClickHouse's ``insert_deduplication_token``: a block
    built again after a crash, the same rows with the same token, is dropped by the table and
    by the materialized views fed from it."""

    table: str
    columns: Sequence[str]
    token: str
    rows: list[Row]
    #: Called with the token once the block is inserted.
    written: Callable[[str], None] | None = None


#: Bytes of a rejected message kept in ClickHouse ``dead_letters.raw_prefix``.
DEAD_LETTER_PREFIX_BYTES = 4096

#: Event fields stored as they are, in insert order; computed columns follow them.
_EVENT_FIELDS = (
    "event_id", "ts", "app", "env", "model", "variant", "status",
    "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
    "latency_ms", "cost_usd", "outcome", "score",
    "tenant", "user_id", "session_id", "trace_id", "intent", "provider",
    "response_model", "system_fingerprint", "fallback_from", "prompt_id", "prompt_version",
    "finish_reason", "error_type", "input_text", "output_text", "attributes", "schema_version",
)  # fmt: skip
EVENT_COLUMNS = (
    *_EVENT_FIELDS, "input_chars", "output_chars", "kafka_partition", "kafka_offset",
)  # fmt: skip
# Reading the model's __dict__ with one itemgetter is 3x faster than 32 attribute lookups.
_event_fields = itemgetter(*_EVENT_FIELDS)
_INPUT_AT = _EVENT_FIELDS.index("input_text")
assert _EVENT_FIELDS[_INPUT_AT + 1] == "output_text"


def event_row(
    e: InteractionEvent,
    *,
    partition: int,
    offset: int,
    text: TextPolicy = "full",
    secrets: Sequence[str] = (),
) -> Row:
    """The ``events`` row of one call. ``partition``/``offset`` are -1 when not from Kafka.

    ``text`` is the app's storage policy for ``input_text`` and ``output_text``: ``full``;
    ``masked`` (PII, secrets and the app's ``secrets`` replaced by typed placeholders such as
    ``<EMAIL>``); ``hash`` (``sha256:<hex>``); ``none``. The lengths are the original texts'.
    """
    input_text = e.input_text
    output_text = e.output_text
    fields = _event_fields(e.__dict__)
    if text != "full" and (input_text is not None or output_text is not None):
        fields = (
            *fields[:_INPUT_AT],
            stored_text(input_text, text, secrets),
            stored_text(output_text, text, secrets),
            *fields[_INPUT_AT + 2 :],
        )
    return (
        *fields,
        None if input_text is None else len(input_text),
        None if output_text is None else len(output_text),
        partition,
        offset,
    )


def stored_text(value: str | None, policy: TextPolicy, secrets: Sequence[str] = ()) -> str | None:
    """A prompt or completion as ``policy`` lets slowleak store it (see :func:`event_row`)."""
    if value is None or policy == "full":
        return value
    if policy == "masked":
        return mask_text(value, secrets=tuple(secrets))
    if policy == "hash":
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return None


FEEDBACK_COLUMNS = (
    "event_id", "ts", "app", "outcome", "score", "source", "schema_version",
    "kafka_partition", "kafka_offset",
)  # fmt: skip


def feedback_row(f: FeedbackEvent, *, partition: int, offset: int) -> Row:
    """The ``feedback`` row of one judgement."""
    return (
        f.event_id, f.ts, f.app, f.outcome, f.score, f.source, f.schema_version,
        partition, offset,
    )  # fmt: skip


ALERT_COLUMNS = (
    "alert_id", "kind", "severity", "status", "ts", "event_id", "app", "model", "labels",
    "sequence", "starts_at", "ends_at", "summary", "details",
)  # fmt: skip


def alert_row(a: Alert) -> Row:
    """The ``alerts`` row of one alert decision."""
    return (
        a.alert_id, a.kind, a.severity, a.status, a.ts, a.event_id, a.app, a.model, a.labels,
        a.sequence, a.starts_at, a.ends_at, a.summary,
        orjson.dumps(a.details, option=orjson.OPT_SORT_KEYS).decode(),
    )  # fmt: skip


DEAD_LETTER_COLUMNS = (
    "received_at", "topic", "kafka_partition", "kafka_offset", "reason", "errors", "raw_bytes",
    "raw_prefix",
)  # fmt: skip


def dead_letter_row(d: DeadLetter, raw: bytes | None) -> Row:
    """The ``dead_letters`` row: the first few KiB of the message, decoded leniently."""
    prefix = (raw or b"")[:DEAD_LETTER_PREFIX_BYTES].decode("utf-8", "replace")
    return (
        d.received_at, d.topic, d.partition, d.offset, d.reason,
        orjson.dumps(d.errors, default=str).decode(), d.raw_bytes, prefix,
    )  # fmt: skip


#: Columns of ``detector_stats``; the drift detector builds its rows in this order.
DETECTOR_STATS_COLUMNS = (
    "ts", "app", "env", "variant", "model", "signal", "kind", "phase", "n", "reference",
    "estimate", "statistic", "threshold",
)  # fmt: skip
