"""Hostile input through the real parts: 100,000 messages, good, hostile and re-sent, published
to Tansu and read by a `slowleak worker` process that writes to ClickHouse.

The worker must stay up; ``dead_letters`` must hold one row per bad message, with a reason that
names the field; ``events`` must hold each good event once. A retrying producer's re-send is a
second copy of the same bytes: the worker writes it again (at least once), and ``events``, a
ReplacingMergeTree whose sorting key ends with ``event_id``, keeps one row, so the counts here
read ``events FINAL`` (the merged view). ``dead_letters`` is keyed by the source partition and
offset, so a bad message read twice after a restart is one row there too.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from .hostile import Hostile, Message
from .test_fuzz_decode import _names_field
from .test_ingest import Worker

pytestmark = pytest.mark.integration

N_MESSAGES = 100_000
#: Long enough for 100,000 messages on a 2-core machine with the broker and ClickHouse beside.
SETTLE_TIMEOUT_S = 240.0
#: The 10 MB messages: the producer's request limit must let them through.
MAX_REQUEST_BYTES = 12_000_000


def _publish(kafka: str, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
    """Send every message (keyed by its position mod 64, so both partitions get some); return
    each one's (partition, offset)."""
    producer = KafkaProducer(
        bootstrap_servers=kafka,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
    )
    try:
        futures = [
            producer.send(topic, key=f"k{i % 64}".encode(), value=m.raw)
            for i, m in enumerate(messages)
        ]
        producer.flush(120)
        return [(md.partition, md.offset) for md in (f.get(0) for f in futures)]
    finally:
        producer.close()


@pytest.fixture
def fuzz_worker(kafka_bootstrap: str, clickhouse_url: str, ch_database: str, tmp_path: Path) -> Any:
    w = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database, tmp=tmp_path
    )
    # No restart here, so no changelog recovery to protect: normal producer batches for the
    # 50,000 dead letters the worker sends to its DLQ topic.
    w.env["SLOWLEAK_FAUST_OPTIONS"] = "{}"
    w.start()
    yield w
    w.stop()


def _wait(worker: Worker, expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        stats = worker.stats() or stats
        if stats.get("interactions", 0) + stats.get("rejected", 0) >= expected and stats.get(
            "settled"
        ):
            return stats
        time.sleep(0.5)
    raise AssertionError(f"not settled: {stats}\n{worker.log_tail()}")


def test_hundred_thousand_hostile_messages_through_the_worker(
    fuzz_worker: Worker, ch_client: Any
) -> None:
    hostile = Hostile(
        seed=23,
        now=datetime.now(UTC),
        future_margins_s=(3_600.0, 86_400.0 * 365),
        id_prefix="wk",
    )
    messages = list(hostile.stream(N_MESSAGES, bad_share=0.3, duplicate_share=0.02))
    kinds = Counter(m.kind for m in messages)
    good = {m.event_id for m in messages if m.ok}
    bad = [i for i, m in enumerate(messages) if not m.ok]

    started = time.monotonic()
    positions = _publish(fuzz_worker.kafka, fuzz_worker.topics["events"], messages)
    published_s = time.monotonic() - started
    stats = _wait(fuzz_worker, len(messages))
    settled_s = time.monotonic() - started

    assert fuzz_worker.proc is not None and fuzz_worker.proc.poll() is None
    assert stats["interactions"] == len(messages) - len(bad)
    assert stats["rejected"] == len(bad)

    # events: each good event_id once. FINAL merges the rows the re-sends added.
    assert ch_client.command("SELECT count() FROM events FINAL") == len(good)
    assert ch_client.command("SELECT uniqExact(event_id) FROM events") == len(good)
    # Without FINAL, re-sends are extra rows until a merge: at least one row per event.
    assert ch_client.command("SELECT count() FROM events") >= len(good)
    ids = ch_client.query("SELECT event_id FROM events FINAL").result_columns[0]
    assert set(ids) == good

    # dead_letters: one row per bad message, at its partition and offset, naming the field.
    rows = ch_client.query(
        "SELECT kafka_partition, kafka_offset, reason, errors FROM dead_letters FINAL"
    ).result_rows
    assert len(rows) == len(bad)
    by_position = {(p, o): (reason, errors) for p, o, reason, errors in rows}
    for i in bad:
        message = messages[i]
        reason, errors = by_position[positions[i]]
        fields = {str(e["loc"][0]) for e in json.loads(errors) if e.get("loc")}
        if message.field is None:
            assert reason and fields == set(), (message.kind, reason)
        else:
            assert fields == {message.field}, (message.kind, message.field, reason)
            assert _names_field(reason, message.field), (message.kind, reason)
    print(
        f"\nworker fuzz: {len(messages):,} messages ({len(messages) - len(bad):,} good, "
        f"{kinds['duplicate']:,} of them re-sent; {len(bad):,} bad, {kinds['oversize']} of "
        f"10 MB) published in {published_s:.0f} s, all written in {settled_s:.0f} s"
    )
