"""slowleak.streams.publisher: bounded, never blocking, every drop counted.

Unit tests point the publisher at a port nothing listens on; integration tests use the broker
started by scripts/test.sh (and one starts its own, to come up after the publisher).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from kafka.future import Future

from slowleak.models import FeedbackEvent, InteractionEvent
from slowleak.streams.localstack import TansuBroker, free_port
from slowleak.streams.publisher import RECORD_OVERHEAD_BYTES, Publisher, PublisherStats

NewTopicFactory = Callable[..., str]
TS = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _event(i: int, *, app: str = "app-a", **fields: Any) -> InteractionEvent:
    return InteractionEvent(
        event_id=f"e-{i}",
        ts=TS,
        app=app,
        model="gpt-x",
        input_tokens=10,
        output_tokens=20,
        latency_ms=123.5,
        status="ok",
        **fields,
    )


def _mapping(**changes: Any) -> dict[str, Any]:
    data = _event(1).model_dump(mode="json", exclude_none=True)
    data.update(changes)
    return data


def _unreachable(**kwargs: Any) -> Publisher:
    """A publisher whose broker address has nothing listening."""
    return Publisher(bootstrap_servers=f"127.0.0.1:{free_port()}", **kwargs)


class _Drops:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, reason: str, event_id: str) -> None:
        self.calls.append((reason, event_id))


# --- without a broker -----------------------------------------------------------------------


def test_buffer_is_bounded_and_publish_never_blocks() -> None:
    publisher = _unreachable(max_buffer_events=1_000)
    try:
        results = []
        slowest_s = 0.0
        for i in range(1_050):
            event = _event(i)
            started = time.perf_counter()
            results.append(publisher.publish(event))
            slowest_s = max(slowest_s, time.perf_counter() - started)
        stats = publisher.stats()
    finally:
        publisher.close(timeout_s=0.2)

    assert results == [True] * 1_000 + [False] * 50
    assert stats == PublisherStats(
        enqueued=1_000, sent=0, dropped={"buffer_full": 50}, buffered=1_000
    )
    assert slowest_s < 0.05  # non-blocking, not a speed test


def test_bound_holds_with_many_publishing_threads() -> None:
    publisher = _unreachable(max_buffer_events=1_000)
    accepted: list[int] = []

    def publish_500(thread: int) -> None:
        accepted.append(sum(publisher.publish(_event(thread * 500 + i)) for i in range(500)))

    threads = [threading.Thread(target=publish_500, args=(t,)) for t in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = publisher.stats()
    finally:
        publisher.close(timeout_s=0.1)

    assert sum(accepted) == 1_000
    assert stats == PublisherStats(
        enqueued=1_000, sent=0, dropped={"buffer_full": 1_000}, buffered=1_000
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"input_tokens": "12"}, "invalid: input_tokens: Input should be a valid integer"),
        ({"input_token": 12}, "invalid: input_token: Extra inputs are not permitted"),
        ({"ts": "2026-11-25T10:00:00"}, "invalid: ts: Input should have timezone info"),
        ({"status": "fine"}, "invalid: status: Input should be 'ok', 'error' or 'timeout'"),
        ({"attributes": {"k": {1, 2}}}, "invalid: event: Type is not JSON serializable: set"),
    ],
)
def test_invalid_event_is_dropped_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    drops = _Drops()
    publisher = _unreachable(on_drop=drops)
    try:
        accepted = publisher.publish(_mapping(**changes))
        stats = publisher.stats()
    finally:
        publisher.close(timeout_s=0.2)

    assert accepted is False
    assert stats.dropped == {reason: 1}
    assert stats.enqueued == 0
    assert drops.calls == [(reason, "e-1")]


def test_missing_field_and_wrong_type_are_invalid() -> None:
    drops = _Drops()
    publisher = _unreachable(on_drop=drops)
    try:
        missing_app = {k: v for k, v in _mapping().items() if k != "app"}
        results = [
            publisher.publish(missing_app),
            publisher.publish(None),  # type: ignore[arg-type]
            publisher.publish_feedback(_event(2)),  # type: ignore[arg-type]
        ]
    finally:
        publisher.close(timeout_s=0.2)

    assert results == [False, False, False]
    assert drops.calls == [
        ("invalid: app: Field required", "e-1"),
        ("invalid: event: expected InteractionEvent or a mapping, not NoneType", ""),
        ("invalid: event: expected FeedbackEvent or a mapping, not InteractionEvent", ""),
    ]


def test_valid_mappings_are_buffered() -> None:
    publisher = _unreachable()
    try:
        results = [
            publisher.publish(_mapping(ts="2026-11-25T10:00:00+00:00")),
            publisher.publish(_mapping(ts=TS)),
            publisher.publish_feedback(
                {"type": "feedback", "event_id": "e-1", "ts": TS, "app": "a", "outcome": True}
            ),
            publisher.publish_feedback(
                FeedbackEvent(type="feedback", event_id="e-2", ts=TS, app="a", outcome=False)
            ),
        ]
        stats = publisher.stats()
    finally:
        publisher.close(timeout_s=0.2)

    assert results == [True] * 4
    assert (stats.enqueued, stats.buffered, stats.dropped) == (4, 4, {})


def test_without_validation_a_mapping_still_needs_an_app() -> None:
    drops = _Drops()
    publisher = _unreachable(validate=False, on_drop=drops)
    try:
        results = [
            publisher.publish({"event_id": "x-1", "app": "a", "anything": "goes"}),
            publisher.publish({"event_id": "x-2", "app": 7}),
        ]
    finally:
        publisher.close(timeout_s=0.2)

    assert results == [True, False]
    assert drops.calls[0] == ("invalid: app: must be a non-empty string", "x-2")


def test_too_large_event_is_dropped() -> None:
    drops = _Drops()
    publisher = _unreachable(max_message_bytes=4_096, on_drop=drops)
    try:
        small = publisher.publish(_event(1, output_text="x" * 1_000))
        large = publisher.publish(_event(2, output_text="x" * 4_096))
        stats = publisher.stats()
    finally:
        publisher.close(timeout_s=0.2)

    assert (small, large) == (True, False)
    assert stats.dropped == {"too_large": 1}
    assert drops.calls[0] == ("too_large", "e-2")


def test_size_limit_counts_key_and_framing() -> None:
    event = _event(1)
    size = len(orjson.dumps(event.model_dump(mode="json", exclude_none=True))) + len(b"app-a")
    exact = _unreachable(max_message_bytes=size + RECORD_OVERHEAD_BYTES)
    short = _unreachable(max_message_bytes=size + RECORD_OVERHEAD_BYTES - 1)
    try:
        assert exact.publish(event) is True
        assert short.publish(event) is False
    finally:
        exact.close(timeout_s=0.2)
        short.close(timeout_s=0.2)


def test_close_without_a_broker_returns_in_time_and_reports_the_undelivered() -> None:
    drops = _Drops()
    publisher = _unreachable(on_drop=drops)
    for i in range(10):
        publisher.publish(_event(i))

    started = time.monotonic()
    publisher.close(timeout_s=0.5)
    elapsed_s = time.monotonic() - started
    publisher.close(timeout_s=0.5)  # idempotent

    assert 0.4 < elapsed_s < 0.7
    assert publisher.stats() == PublisherStats(
        enqueued=10, sent=0, dropped={"undelivered_at_close": 10}, buffered=0
    )
    assert drops.calls == [("undelivered_at_close", f"e-{i}") for i in range(10)]
    assert publisher.publish(_event(11)) is False
    assert publisher.stats().dropped["closed"] == 1


def test_flush_without_a_broker_times_out() -> None:
    publisher = _unreachable()
    try:
        publisher.publish(_event(1))
        started = time.monotonic()
        flushed = publisher.flush(timeout_s=0.3)
        elapsed_s = time.monotonic() - started
        flushed_now = publisher.flush(timeout_s=0)
    finally:
        publisher.close(timeout_s=0.1)

    assert (flushed, flushed_now) == (False, False)
    assert elapsed_s < 0.5


def test_a_failing_on_drop_does_not_reach_the_caller() -> None:
    def explode(reason: str, event_id: str) -> None:
        raise RuntimeError("boom")

    publisher = _unreachable(max_buffer_events=1, on_drop=explode)
    try:
        results = [publisher.publish(_event(1)), publisher.publish(_event(2))]
    finally:
        publisher.close(timeout_s=0.1)

    assert results == [True, False]
    assert publisher.stats().dropped == {"buffer_full": 1, "undelivered_at_close": 1}


def test_drop_warnings_are_throttled_and_leave_out_the_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = _unreachable(max_buffer_events=1)
    with caplog.at_level(logging.WARNING, logger="slowleak.streams.publisher"):
        publisher.publish(_event(0))
        for i in range(1, 6):
            publisher.publish(_event(i, input_text="SECRET prompt"))
        publisher.publish(_mapping(input_tokens=-1, output_text="SECRET answer"))
        publisher.close(timeout_s=0.1)

    drops = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert drops == [
        "publisher dropped events reason=buffer_full count=1 total=1 buffered=1 event_id=e-1",
        "publisher dropped events reason=invalid: input_tokens: Input should be greater than or "
        "equal to 0 count=1 total=1 buffered=1 event_id=e-1",
        "publisher dropped events reason=undelivered_at_close count=1 total=1 buffered=0 "
        "event_id=e-0",
    ]
    assert "SECRET" not in caplog.text
    assert publisher.stats().dropped["buffer_full"] == 5


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bootstrap_server": "x"}, "kafka-python does not know: ['bootstrap_server']"),
        ({"linger_ms": 5}, "may not set ['linger_ms']: use the Publisher arguments"),
    ],
)
def test_producer_config_mistakes_fail_at_construction(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Publisher(bootstrap_servers="127.0.0.1:9", producer_config=config)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_buffer_events must be at least 1"):
        Publisher(bootstrap_servers="127.0.0.1:9", max_buffer_events=0)
    with pytest.raises(ValueError, match="compression_type must be one of"):
        Publisher(bootstrap_servers="127.0.0.1:9", compression_type="brotli")


# --- with a fake producer: what the broker does is the producer's report -------------------


class _FakeProducer:
    """Acknowledges or fails each send at once; the first ``metadata_misses`` sends time out."""

    def __init__(self, *, fail_keys: frozenset[bytes] = frozenset(), metadata_misses: int = 0):
        self.fail_keys = fail_keys
        self.metadata_misses = metadata_misses
        self.records: list[tuple[str, bytes, bytes]] = []
        self.closed = False

    def send(self, topic: str, *, value: bytes, key: bytes) -> Future:
        if self.metadata_misses:
            self.metadata_misses -= 1
            raise KafkaTimeoutError("Failed to update metadata after 1.0 secs.")
        future = Future()
        if key in self.fail_keys:
            return future.failure(NotLeaderForPartitionError("retries exhausted"))
        self.records.append((topic, key, value))
        return future.success(None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def _with_producer(
    monkeypatch: pytest.MonkeyPatch, producer: _FakeProducer, **kwargs: Any
) -> Publisher:
    monkeypatch.setattr(Publisher, "_create_producer", lambda self: producer)
    return Publisher(bootstrap_servers="127.0.0.1:9", **kwargs)


def test_failed_sends_are_counted_not_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    drops = _Drops()
    producer = _FakeProducer(fail_keys=frozenset({b"app-bad"}))
    publisher = _with_producer(monkeypatch, producer, on_drop=drops)
    for i in range(10):
        publisher.publish(_event(i, app="app-bad" if i % 5 == 0 else "app-a"))
    flushed = publisher.flush(timeout_s=5)
    publisher.close()

    assert flushed is True
    assert publisher.stats() == PublisherStats(
        enqueued=10, sent=8, dropped={"send_failed": 2}, buffered=0
    )
    assert drops.calls == [("send_failed", "e-0"), ("send_failed", "e-5")]
    assert producer.closed


def test_events_wait_in_order_while_topic_metadata_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = _FakeProducer(metadata_misses=2)
    publisher = _with_producer(monkeypatch, producer)
    for i in range(5):
        publisher.publish(_event(i))
    flushed = publisher.flush(timeout_s=5)
    publisher.close()

    assert flushed is True
    assert [orjson.loads(value)["event_id"] for _, _, value in producer.records] == [
        f"e-{i}" for i in range(5)
    ]
    assert {(topic, key) for topic, key, _ in producer.records} == {("slowleak.events", b"app-a")}
    assert publisher.stats().sent == 5


# --- against a broker ------------------------------------------------------------------------


def _consume(bootstrap: str, topic: str, *, expected: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of every record on ``topic``, reading a little past ``expected``."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"publisher-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
        consumer_timeout_ms=1_000,
    )
    records: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            before = len(records)
            records.extend((r.key, r.value) for r in consumer)  # stops after 1 s of quiet
            if len(records) >= expected and len(records) == before:
                break
    finally:
        consumer.close()
    return records


@pytest.mark.integration
def test_events_arrive_once_each_keyed_by_app(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = new_topic("publisher", partitions=3)
    apps = ["app-a", "app-b", "app-c", "app-d"]
    publisher = Publisher(bootstrap_servers=kafka_bootstrap, events_topic=topic)
    try:
        results = [publisher.publish(_event(i, app=apps[i % 4])) for i in range(2_000)]
        flushed = publisher.flush(timeout_s=30)
        stats = publisher.stats()
    finally:
        publisher.close()

    records = _consume(kafka_bootstrap, topic, expected=2_000)
    values = [orjson.loads(value) for _, value in records]

    assert all(results)
    assert flushed is True
    assert stats == PublisherStats(enqueued=2_000, sent=2_000, dropped={}, buffered=0)
    assert len(records) == 2_000
    assert {v["event_id"] for v in values} == {f"e-{i}" for i in range(2_000)}
    assert all(
        key == value["app"].encode() for (key, _), value in zip(records, values, strict=True)
    )
    assert InteractionEvent.model_validate_json(records[0][1]).model == "gpt-x"


@pytest.mark.integration
def test_feedback_goes_to_the_feedback_topic(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    events, feedback = new_topic("events"), new_topic("feedback")
    with Publisher(
        bootstrap_servers=kafka_bootstrap, events_topic=events, feedback_topic=feedback
    ) as publisher:
        for i in range(5):
            publisher.publish_feedback(
                {"type": "feedback", "event_id": f"e-{i}", "ts": TS, "app": "a", "outcome": True}
            )
        assert publisher.flush(timeout_s=10)

    records = _consume(kafka_bootstrap, feedback, expected=5)
    assert sorted(orjson.loads(v)["event_id"] for _, v in records) == [f"e-{i}" for i in range(5)]
    assert {key for key, _ in records} == {b"a"}


@pytest.mark.integration
def test_events_buffered_before_the_broker_starts_are_delivered() -> None:
    port = free_port()
    publisher = Publisher(bootstrap_servers=f"127.0.0.1:{port}", events_topic="late")
    try:
        for i in range(100):
            assert publisher.publish(_event(i))
        time.sleep(0.5)  # the publisher is retrying its connection meanwhile
        with TansuBroker(port=port) as broker:
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
            try:
                admin.create_topics(
                    {"late": {"num_partitions": 1, "replication_factor": 1}},
                    wait_for_metadata=True,
                )
            finally:
                admin.close()
            assert publisher.flush(timeout_s=20) is True
            records = _consume(broker.bootstrap_servers, "late", expected=100)
            publisher.close()
    finally:
        publisher.close()

    assert publisher.stats() == PublisherStats(enqueued=100, sent=100, dropped={}, buffered=0)
    assert sorted(orjson.loads(v)["event_id"] for _, v in records) == sorted(
        f"e-{i}" for i in range(100)
    )
