"""The broker-free core: decoding, reasons that name the field, rows, and purity."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from slowleak.models import Alert, FeedbackEvent, InteractionEvent
from slowleak.streams.core import Output, Processor, Rejected, decode_interaction
from slowleak.streams.core import Record as Rec
from slowleak.streams.core.rows import EVENT_COLUMNS, FEEDBACK_COLUMNS, event_row, feedback_row

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EVENT = {
    "event_id": "e-1",
    "ts": "2026-11-25T10:00:00.123+01:00",
    "app": "support-bot",
    "model": "gpt-4o",
    "input_tokens": 512,
    "output_tokens": 128,
    "latency_ms": 812.5,
    "status": "ok",
    "input_text": "Where is my order?",
    "output_text": "It ships today.",
    "attributes": {"region": "eu"},
}


def rec(value: bytes | None, offset: int = 0) -> Rec:
    return Rec("slowleak.events", 1, offset, b"support-bot", value)


def test_valid_event_becomes_one_row_in_column_order() -> None:
    out = Output()
    Processor(clock=lambda: NOW).interactions([rec(orjson.dumps(EVENT), 7)], out)
    assert out.dead_letters == [] and len(out.events) == 1
    row = dict(zip(EVENT_COLUMNS, out.events[0], strict=True))
    assert row["event_id"] == "e-1"
    assert row["ts"] == datetime(2026, 11, 25, 9, 0, 0, 123000, tzinfo=UTC)
    assert (row["input_chars"], row["output_chars"]) == (18, 15)
    assert (row["kafka_partition"], row["kafka_offset"]) == (1, 7)
    assert row["env"] == "prod" and row["variant"] == "champion"
    assert row["attributes"] == {"region": "eu"}


def test_event_columns_cover_every_model_field_but_type() -> None:
    fields = set(InteractionEvent.model_fields) - {"type"}
    assert fields <= set(EVENT_COLUMNS)
    assert len(EVENT_COLUMNS) == len(set(EVENT_COLUMNS))


def test_feedback_row() -> None:
    fb = FeedbackEvent.model_validate_json(
        b'{"type":"feedback","event_id":"e-1","ts":"2026-11-25T10:05:00Z","app":"a",'
        b'"outcome":false,"source":"user"}'
    )
    row = dict(zip(FEEDBACK_COLUMNS, feedback_row(fb, partition=0, offset=3), strict=True))
    assert row["outcome"] is False and row["source"] == "user" and row["kafka_offset"] == 3


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"this is not json", "not valid JSON: expected ident at line 1 column 2"),
        (b'{"event_id": "\xff\xfe"}', "not valid UTF-8 at byte 14: JSON text must be UTF-8"),
        (b"[1, 2]", "message: Input should be an object"),
        (None, "message has no value (null); expected a JSON object"),
        (
            orjson.dumps({**EVENT, "input_tokens": -3}),
            "input_tokens: Input should be greater than or equal to 0",
        ),
        (
            orjson.dumps({**EVENT, "output_token": 5}),
            "output_token: Extra inputs are not permitted",
        ),
        (
            orjson.dumps({**EVENT, "ts": "2026-11-25T10:00:00"}),
            "ts: Input should have timezone info",
        ),
        (
            orjson.dumps({**EVENT, "status": "done"}),
            "status: Input should be 'ok', 'error' or 'timeout'",
        ),
        (
            orjson.dumps({**EVENT, "attributes": {"a": 1}}),
            "attributes.a: Input should be a valid string",
        ),
    ],
)
def test_rejection_reason_names_the_field(raw: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        decode_interaction(raw, max_bytes=1_000_000)
    assert info.value.reason == reason


def test_many_errors_are_summarised() -> None:
    with pytest.raises(Rejected) as info:
        decode_interaction(b"{}", max_bytes=1000)
    assert info.value.reason == (
        "event_id: Field required; ts: Field required; app: Field required; "
        "model: Field required; input_tokens: Field required; and 3 more"
    )
    assert len(info.value.errors) == 8
    assert info.value.errors[0] == {
        "type": "missing",
        "loc": ("event_id",),
        "msg": "Field required",
    }


def test_oversize_message_is_rejected_before_parsing() -> None:
    with pytest.raises(Rejected) as info:
        decode_interaction(b"x" * 2001, max_bytes=2000)
    assert info.value.reason.startswith("message is 2,001 bytes, over the limit of 2,000")


def test_dead_letter_keeps_origin_reason_and_raw_bytes() -> None:
    raw = b'{"event_id": "\xff\xfe"}'
    out = Output()
    processor = Processor(clock=lambda: NOW, dlq_max_raw_bytes=10)
    processor.interactions([rec(orjson.dumps(EVENT), 1), rec(raw, 2)], out)
    assert len(out.events) == 1 and len(out.dead_letters) == 1
    letter, kept = out.dead_letters[0]
    assert kept == raw
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (
        "slowleak.events", 1, 2, "support-bot",
    )  # fmt: skip
    assert letter.reason == "not valid UTF-8 at byte 14: JSON text must be UTF-8"
    assert base64.b64decode(letter.raw_b64) == raw[:10]
    assert letter.raw_bytes == len(raw) and letter.raw_truncated is True
    assert letter.received_at == NOW
    assert processor.stats.interactions == 1 and processor.stats.rejected == 1


def test_every_record_is_either_a_row_or_a_dead_letter() -> None:
    records = [rec(orjson.dumps({**EVENT, "event_id": f"e{i}"}), i) for i in range(50)]
    records += [rec(b"{}", 100 + i) for i in range(7)]
    out = Output()
    Processor().interactions(records, out)
    assert len(out.events) + len(out.dead_letters) == len(records)


class _CountingDetector:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_interaction(self, event: InteractionEvent) -> list[Alert]:
        self.seen.append(event.event_id)
        if event.status != "ok":
            return [
                Alert(
                    alert_id=f"a-{event.event_id}", kind="availability", severity="warning",
                    status="firing", ts=event.ts, event_id=event.event_id, app=event.app,
                    model=event.model, summary=f"{event.model} failed",
                )
            ]  # fmt: skip
        return []

    def on_feedback(self, feedback: FeedbackEvent) -> list[Alert]:
        return []


def test_detectors_see_valid_events_in_order_and_their_alerts_are_collected() -> None:
    detector = _CountingDetector()
    out = Output()
    processor = Processor(detectors=[detector])
    processor.interactions(
        [
            rec(orjson.dumps({**EVENT, "event_id": "a"})),
            rec(b"bad"),
            rec(orjson.dumps({**EVENT, "event_id": "b", "status": "error"})),
        ],
        out,
    )
    assert detector.seen == ["a", "b"]
    assert [a.alert_id for a in out.alerts] == ["a-b"]
    assert processor.stats.alerts == 1


def test_processor_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_message_bytes must be at least 1"):
        Processor(max_message_bytes=0)


def test_pure_core_imports_no_broker_or_database_client() -> None:
    code = (
        "import sys, slowleak.streams.core, slowleak.streams.core.rows, slowleak.models;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust', 'kafka', 'aiokafka', 'clickhouse_connect', 'chdb', 'mode'});"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_row_of_event_built_from_model() -> None:
    event = InteractionEvent.model_validate_json(orjson.dumps(EVENT))
    assert len(event_row(event, partition=-1, offset=-1)) == len(EVENT_COLUMNS)


def test_a_resent_call_is_written_again_but_fed_to_the_detectors_once() -> None:
    """A retrying producer's second copy: a second row (the table keeps one), one detector feed."""
    seen: list[str] = []

    class Spy:
        def on_interactions(self, events: Any) -> list[Any]:
            seen.extend(e.event_id for e in events)
            return []

        def on_feedback(self, feedback: Any) -> list[Any]:
            return []

    def raw(i: int) -> bytes:
        return InteractionEvent(
            event_id=f"e{i}", ts=datetime(2026, 11, 25, 10, tzinfo=UTC), app="a", model="m",
            input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
        ).model_dump_json().encode()  # fmt: skip

    processor = Processor(detectors=[Spy()], recent_ids=2)
    out = Output()
    values = [raw(0), raw(1), raw(0), raw(2), raw(3), raw(0)]
    processor.interactions([Rec("t", 0, i, b"a", v) for i, v in enumerate(values)], out)
    assert len(out.events) == 6
    # e0 again at once is a duplicate; later, past the 2 remembered ids, it is fed again.
    assert seen == ["e0", "e1", "e2", "e3", "e0"]
    assert processor.stats.duplicates == 1
