"""The ingest path against the real parts: Tansu broker, slowleak worker process, ClickHouse.

Events are published with kafka-python; the worker runs as `slowleak worker` would in
production; rows are read back through ClickHouse's HTTP interface.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from slowleak.streams.core import Output, Processor, Record
from slowleak.streams.core.detectors import default_detectors
from slowleak.streams.core.lifecycle import AlertLifecycle
from slowleak.streams.localstack import free_port
from slowleak.streams.scenarios import SCENARIOS, scenario_traffic
from slowleak.streams.synthetic import TrafficGenerator, malformed_messages
from slowleak.streams.worker import fetch_stats

pytestmark = pytest.mark.integration

SETTLE_TIMEOUT_S = 90.0


class Worker:
    """A `slowleak worker` process with its own topics, consumer group and database."""

    def __init__(self, *, kafka: str, clickhouse_url: str, database: str, tmp: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.topics = {name: f"{name}-{suffix}" for name in ("events", "feedback", "alerts", "dlq")}
        self.kafka = kafka
        self.database = database
        self.web_port = free_port()
        self.log_path = tmp / "worker.log"
        self.env = {
            **os.environ,
            "SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS": kafka,
            "SLOWLEAK_CLICKHOUSE_URL": clickhouse_url,
            "SLOWLEAK_CLICKHOUSE_DATABASE": database,
            "SLOWLEAK_APP_ID": f"slowleak_test_{suffix}",
            "SLOWLEAK_DATA_DIR": str(tmp / "data"),
            "SLOWLEAK_WEB_PORT": str(self.web_port),
            "SLOWLEAK_TOPIC_PARTITIONS": "2",
            "SLOWLEAK_SINK_FLUSH_INTERVAL_MS": "200",
            "SLOWLEAK_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            # Tansu reports end offsets of multi-record batches short, which cuts faust's
            # changelog recovery; single-record batches keep table recovery exact in tests.
            "SLOWLEAK_FAUST_OPTIONS": '{"producer_max_batch_size": 1}',
            **{f"SLOWLEAK_{k.upper()}_TOPIC": v for k, v in self.topics.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "slowleak.streams.cli", "worker", "--apply-schema"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while self.stats() is None:
            assert self.proc.poll() is None, f"worker exited:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"worker not up in 60 s:\n{self.log_tail()}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no leaving the group."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stats(self) -> dict[str, Any] | None:
        return fetch_stats(self.web_port)

    def wait_settled(self, expected: int) -> dict[str, Any]:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stats = self.stats() or stats
            seen = stats.get("interactions", 0) + stats.get("feedback", 0)
            if seen + stats.get("rejected", 0) >= expected and stats.get("settled"):
                return stats
            time.sleep(0.2)
        raise AssertionError(f"not settled: {stats}\n{self.offsets()}\n{self.log_tail()}")

    def offsets(self) -> str:
        """Per partition of the events topic: the group's committed offset and the end offset
        (to tell a partition never read from one read only in part, when a wait fails)."""
        from kafka.structs import TopicPartition

        group = self.env["SLOWLEAK_APP_ID"]
        topic = self.topics["events"]
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.kafka)
            try:
                committed = admin.list_group_offsets(group).get(group, {})
            finally:
                admin.close()
            consumer = KafkaConsumer(bootstrap_servers=self.kafka)
            try:
                tps = [TopicPartition(topic, p) for p in (0, 1)]
                ends = consumer.end_offsets(tps)
            finally:
                consumer.close()
        except Exception as exc:  # diagnostics only: never hide the real failure
            return f"offsets unavailable: {exc!r}"
        # Tansu reports the end of a multi-record batch short: read the ends with that in mind.
        return "events partitions (committed / end as the broker reports it): " + ", ".join(
            f"{tp.partition}: {getattr(committed.get(tp), 'offset', None)}/{ends[tp]}" for tp in tps
        )

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def worker(
    kafka_bootstrap: str, clickhouse_url: str, ch_database: str, tmp_path: Path
) -> Iterator[Worker]:
    w = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database, tmp=tmp_path
    )
    w.start()
    yield w
    w.stop()


def _produce(
    kafka: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes]],
    *,
    one_per_batch: bool = False,
) -> None:
    """Publish and wait. ``one_per_batch``: Tansu reports the end offset of a multi-record batch
    short, which misleads a consumer resuming at the end of a partition after a restart."""
    options: dict[str, Any] = (
        {"batch_size": 1, "linger_ms": 0} if one_per_batch else {"linger_ms": 5}
    )
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", **options)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(30)
    producer.close()


def _read_topic(kafka: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON message on ``topic``, read from the beginning by a fresh group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
        group_id=f"reader-{uuid.uuid4().hex[:6]}",
        session_timeout_ms=6_000,
    )
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def _events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    gen = TrafficGenerator(seed=seed, start=datetime.now(UTC))
    return [gen.interaction() for _ in range(n)]


def test_every_event_becomes_exactly_one_row_with_its_fields(
    worker: Worker, ch_client: Any
) -> None:
    events = _events(3_000)
    _produce(
        worker.kafka,
        worker.topics["events"],
        [(e["app"].encode(), orjson.dumps(e)) for e in events],
    )
    stats = worker.wait_settled(len(events))
    assert stats["interactions"] == 3_000 and stats["rejected"] == 0

    assert ch_client.command("SELECT count() FROM events") == 3_000
    assert ch_client.command("SELECT uniqExact(event_id) FROM events") == 3_000
    sent = events[1234]
    result = ch_client.query(
        "SELECT * FROM events WHERE event_id = {id:String}", parameters={"id": sent["event_id"]}
    )
    row = dict(zip(result.column_names, result.result_rows[0], strict=True))
    for field in (
        "app",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "tenant",
        "intent",
        "response_model",
        "system_fingerprint",
        "prompt_version",
        "input_text",
    ):
        assert row[field] == sent[field], field
    assert row["latency_ms"] == pytest.approx(sent["latency_ms"])
    assert row["cost_usd"] == pytest.approx(sent["cost_usd"])
    assert row["ts"].replace(tzinfo=UTC) == datetime.fromisoformat(sent["ts"])
    assert row["input_chars"] == len(sent["input_text"])
    assert row["env"] == "prod" and row["variant"] == "champion"
    assert row["kafka_partition"] in (0, 1) and row["kafka_offset"] >= 0


def test_malformed_messages_go_to_the_dlq_with_reasons_and_nothing_is_lost(
    worker: Worker, ch_client: Any
) -> None:
    good = _events(500, seed=2)
    bad = malformed_messages()
    messages = [(e["app"].encode(), orjson.dumps(e)) for e in good[:250]]
    messages += [(b"support-bot", raw) for _, raw in bad]
    messages += [(e["app"].encode(), orjson.dumps(e)) for e in good[250:]]
    _produce(worker.kafka, worker.topics["events"], messages)
    stats = worker.wait_settled(len(messages))
    assert stats["interactions"] == 500 and stats["rejected"] == len(bad)
    assert ch_client.command("SELECT count() FROM events") == 500

    reasons = dict(ch_client.query("SELECT raw_prefix, reason FROM dead_letters").result_rows)
    assert len(reasons) == len(bad)
    by_raw = dict(reasons)
    expected = {
        b"this is not json": "not valid JSON: expected ident at line 1 column 2",
        bad[2][1]: "input_tokens: Input should be greater than or equal to 0",
        bad[3][1]: "latency_ms: Field required",
        bad[4][1]: "ts: Input should have timezone info",
        bad[5][1]: "output_token: Extra inputs are not permitted",
        bad[6][1]: "status: Input should be 'ok', 'error' or 'timeout'",
    }
    for raw, reason in expected.items():
        assert by_raw[raw.decode()] == reason

    letters = _read_topic(worker.kafka, worker.topics["dlq"])
    assert len(letters) == len(bad)
    raws = {base64.b64decode(d["raw_b64"]) for d in letters}
    assert raws == {raw for _, raw in bad}
    for letter in letters:
        assert letter["topic"] == worker.topics["events"]
        assert letter["partition"] in (0, 1) and letter["offset"] >= 0
        assert letter["reason"]


def test_feedback_lands_beside_its_call(worker: Worker, ch_client: Any) -> None:
    gen = TrafficGenerator(seed=3, start=datetime.now(UTC))
    events = [gen.interaction() for _ in range(200)]
    feedback = [gen.feedback(e) for e in events[:80]]
    _produce(
        worker.kafka,
        worker.topics["events"],
        [(e["app"].encode(), orjson.dumps(e)) for e in events],
    )
    _produce(
        worker.kafka,
        worker.topics["feedback"],
        [(f["app"].encode(), orjson.dumps(f)) for f in feedback],
    )
    worker.wait_settled(280)
    joined = ch_client.command(
        "SELECT count() FROM feedback AS f INNER JOIN events AS e ON e.event_id = f.event_id"
    )
    assert joined == 80


def test_offsets_are_committed_for_everything_written(worker: Worker, ch_client: Any) -> None:
    events = _events(2_000, seed=4)
    _produce(
        worker.kafka,
        worker.topics["events"],
        [(e["app"].encode(), orjson.dumps(e)) for e in events],
    )
    worker.wait_settled(len(events))
    admin = KafkaAdminClient(bootstrap_servers=worker.kafka)
    deadline = time.monotonic() + 30
    committed = 0
    try:
        while time.monotonic() < deadline:
            group = worker.env["SLOWLEAK_APP_ID"]
            offsets = admin.list_group_offsets(group)[group]
            committed = sum(
                meta.offset for tp, meta in offsets.items() if tp.topic == worker.topics["events"]
            )
            if committed == len(events):
                break
            time.sleep(0.5)
    finally:
        admin.close()
    assert committed == len(events)
    assert ch_client.command("SELECT count() FROM events") == len(events)


def _restart(worker: Worker, ch_client: Any, *, backlog: bool) -> None:
    """A first burst, a graceful stop, a second burst (``backlog``: published while the worker
    is down, else once it is back): every call once in ClickHouse."""
    first, second = _events(1_000, seed=5), _events(1_000, seed=6)

    def publish(events: list[dict[str, Any]]) -> None:
        messages = [(e["app"].encode(), orjson.dumps(e)) for e in events]
        _produce(worker.kafka, worker.topics["events"], messages, one_per_batch=True)

    publish(first)
    worker.wait_settled(len(first))
    worker.stop()  # graceful: writes and commits before it exits
    if backlog:
        publish(second)
    worker.start()
    if not backlog:
        publish(second)
    stats = worker.wait_settled(len(second))
    # At least once: the restarted worker reads everything after its last commit. It usually
    # resumes exactly after the first burst, but a commit racing the shutdown can make it read
    # that burst again; the ReplacingMergeTree then holds each call once (FINAL).
    assert stats["interactions"] in (len(second), len(first) + len(second))
    assert ch_client.command("SELECT count() FROM events FINAL") == 2_000
    assert ch_client.command("SELECT uniqExact(event_id) FROM events") == 2_000


def test_feedback_after_a_restart_is_joined_to_calls_read_before_it(
    worker: Worker, ch_client: Any
) -> None:
    """The feedback join is in memory: the restarted worker finds the calls in ``events``."""
    gen = TrafficGenerator(seed=8, start=datetime.now(UTC))
    calls = [gen.interaction() for _ in range(300)]
    for call in calls:  # outcomes come later, as feedback
        call.pop("outcome", None)
    messages = [(c["app"].encode(), orjson.dumps(c)) for c in calls]
    _produce(worker.kafka, worker.topics["events"], messages)
    worker.wait_settled(len(calls))
    worker.stop()
    worker.start()
    judged = [gen.feedback(c) | {"outcome": i % 4 != 0} for i, c in enumerate(calls[:120])]
    judged += [gen.feedback(c) for c in calls[:10]]  # a second judgement of ten of them
    feedback = [(f["app"].encode(), orjson.dumps(f)) for f in judged]
    _produce(worker.kafka, worker.topics["feedback"], feedback, one_per_batch=True)
    stats = worker.wait_settled(len(judged))
    join = stats["detectors"]["drift"]["feedback_join"]
    assert (join["joined"], join["duplicate"], join["early"]) == (120, 10, 0)
    assert stats["recall"]["failed"] == 0
    if stats["interactions"] == 0:  # resumed exactly after the calls (usually; see _restart)
        assert stats["recall"]["found"] == join["recalled"] == 120


def test_restart_resumes_after_the_committed_offset(worker: Worker, ch_client: Any) -> None:
    _restart(worker, ch_client, backlog=False)


def test_restart_with_a_backlog(worker: Worker, ch_client: Any) -> None:
    _restart(worker, ch_client, backlog=True)


def test_a_state_larger_than_a_record_is_stored_in_parts_and_survives_a_restart(
    kafka_bootstrap: str, clickhouse_url: str, ch_database: str, tmp_path: Path, ch_client: Any
) -> None:
    """An app with thousands of tenants in an open minute: its cost-window state is larger than
    the producer takes in one record (20 KB here, 1 MB by default), so it is stored in parts.
    A restart in the middle of the minute loses none of the minute's calls."""
    w = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database, tmp=tmp_path
    )
    w.env["SLOWLEAK_FAUST_OPTIONS"] = (
        '{"producer_max_batch_size": 1, "producer_max_request_size": 20000}'
    )
    minute = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    calls = [
        e
        | {
            "app": "wide-bot",
            "tenant": f"tenant-{i:05d}",
            "ts": f"2026-11-25T03:00:{i // 100:02d}Z",
        }
        for i, e in enumerate(_events(4_000, seed=12))
    ]
    closing = _events(1, seed=13)[0] | {"app": "wide-bot", "ts": "2026-11-25T03:05:00Z"}

    def publish(batch: list[dict[str, Any]]) -> None:
        messages = [(b"wide-bot", orjson.dumps(c)) for c in batch]
        _produce(w.kafka, w.topics["events"], messages, one_per_batch=True)

    w.start()
    try:
        publish(calls[:2_000])
        stats = w.wait_settled(2_000)
        assert stats["states_in_parts"].get("cost_windows/wide-bot", 0) >= 2, stats
        w.stop()
        w.start()
        publish([*calls[2_000:], closing])
        w.wait_settled(2_001)
    finally:
        w.stop()
    row = ch_client.query(
        "SELECT sum(calls), uniqExact(tenant) FROM cost_windows_1m FINAL "
        "WHERE app = 'wide-bot' AND window_start = {minute:DateTime('UTC')}",
        parameters={"minute": minute},
    ).result_rows[0]
    assert tuple(row) == (4_000, 4_000)
    assert "stored in" in w.log_path.read_text()


def _with_fingerprint(events: list[dict[str, Any]], fingerprint: str) -> list[tuple[bytes, bytes]]:
    """The calls as one app's calls to one model, served under ``fingerprint``."""
    served = {"app": "support-bot", "model": "gpt-4o", "response_model": "gpt-4o-2024-08-06"}
    return [
        (b"support-bot", orjson.dumps(e | served | {"system_fingerprint": fingerprint}))
        for e in events
    ]


def test_model_change_alert_reaches_topic_and_table_and_state_survives_restart(
    worker: Worker, ch_client: Any
) -> None:
    events = _events(400, seed=7)
    messages = _with_fingerprint(events[:200], "fp_a") + _with_fingerprint(events[200:300], "fp_b")
    _produce(worker.kafka, worker.topics["events"], messages, one_per_batch=True)
    stats = worker.wait_settled(len(messages))
    assert stats["alerts"] == 1

    worker.stop()
    # After the restart the detector must remember fp_a and fp_b (from its faust table's
    # changelog): fp_b again is not a change, fp_c is.
    later = _with_fingerprint(events[300:350], "fp_b") + _with_fingerprint(events[350:], "fp_c")
    worker.start()
    _produce(worker.kafka, worker.topics["events"], later, one_per_batch=True)
    stats = worker.wait_settled(len(later))
    assert stats["alerts"] == 1

    rows = ch_client.query(
        "SELECT kind, app, model, event_id, summary, details FROM alerts ORDER BY ts"
    ).result_rows
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("model_change", "support-bot", "gpt-4o", events[200]["event_id"]),
        ("model_change", "support-bot", "gpt-4o", events[350]["event_id"]),
    ]
    assert [(json.loads(r[5])["old"], json.loads(r[5])["new"]) for r in rows] == [
        ("fp_a", "fp_b"),
        ("fp_b", "fp_c"),
    ]
    published = _read_topic(worker.kafka, worker.topics["alerts"])
    assert [a["details"]["new"] for a in published] == ["fp_b", "fp_c"]
    assert all(a["summary"].startswith("support-bot asks for gpt-4o") for a in published)


def _replay_alerts(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``slowleak replay`` decides for the same calls (the same core, no broker)."""
    processor = Processor(detectors=default_detectors(), lifecycle=AlertLifecycle())
    out = Output()
    records = [Record("replay", -1, i, None, orjson.dumps(c)) for i, c in enumerate(calls)]
    for start in range(0, len(records), 2_000):
        processor.interactions(records[start : start + 2_000], out)
    return [a.model_dump(mode="json") for a in out.alerts]


def test_drift_alerts_match_replay_and_detector_state_survives_a_restart(
    worker: Worker, ch_client: Any
) -> None:
    picked = tuple(s for s in SCENARIOS if s.app in ("steady-bot", "helpdesk-bot", "summarizer"))
    calls = list(
        scenario_traffic(
            start=datetime(2026, 11, 25, 1, 0, tzinfo=UTC), calls_per_app=34_000,
            change_at=32_000, scenarios=picked,
        )
    )  # fmt: skip
    # Stop the worker in the middle of the warm-ups (25,000 calls per app of 10,000-30,000):
    # the restarted worker must resume them from the detector_state table's changelog.
    split = 25_000 * len(picked)
    first, second = calls[:split], calls[split:]
    _produce(
        worker.kafka, worker.topics["events"], [(c["app"].encode(), orjson.dumps(c)) for c in first]
    )
    worker.wait_settled(len(first))
    worker.stop()
    worker.start()
    later = [(c["app"].encode(), orjson.dumps(c)) for c in second]
    _produce(worker.kafka, worker.topics["events"], later)
    stats = worker.wait_settled(len(second))

    expected = _replay_alerts(calls)
    assert {(a["app"], a["kind"]) for a in expected} >= {
        ("helpdesk-bot", "accuracy_drift"), ("summarizer", "model_change"),
    }  # fmt: skip
    assert not [a for a in expected if a["app"] == "steady-bot"]
    rows = ch_client.query("SELECT alert_id, app, kind, event_id FROM alerts").result_rows
    published = _read_topic(worker.kafka, worker.topics["alerts"])
    if stats["interactions"] == len(second):  # resumed exactly after the first burst
        assert sorted(r[0] for r in rows) == sorted(a["alert_id"] for a in expected)
        assert sorted(a["alert_id"] for a in published) == sorted(a["alert_id"] for a in expected)
    else:  # the first burst's tail was read twice (at least once): the same alerts, near by
        assert sorted((r[1], r[2]) for r in rows) == sorted((a["app"], a["kind"]) for a in expected)


class _Hook:
    """A webhook receiver on 127.0.0.1 that records the JSON bodies it is sent."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []  # type: list[dict[str, Any]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.bodies)


def test_worker_delivers_to_a_webhook_and_a_restart_does_not_deliver_again(
    kafka_bootstrap: str, clickhouse_url: str, ch_database: str, tmp_path: Path
) -> None:
    hook = _Hook()
    worker = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database, tmp=tmp_path
    )
    worker.env["SLOWLEAK_RECEIVERS"] = json.dumps(
        [{"type": "webhook", "name": "hook", "url": hook.url, "secret": "s3cret"}]
    )
    events = _events(300, seed=8)
    try:
        worker.start()
        first = _with_fingerprint(events[:100], "fp_a") + _with_fingerprint(events[100:200], "fp_b")
        _produce(worker.kafka, worker.topics["events"], first, one_per_batch=True)
        worker.wait_settled(len(first))
        (page,) = hook.wait_for(1)
        assert (page["kind"], page["transition"], page["details"]["new"]) == (
            "model_change", "firing", "fp_b",
        )  # fmt: skip
        assert page["idempotency_key"] == f"{page['alert_id']}:0:firing"

        worker.stop()
        later = _with_fingerprint(events[200:250], "fp_b") + _with_fingerprint(events[250:], "fp_c")
        worker.start()
        _produce(worker.kafka, worker.topics["events"], later, one_per_batch=True)
        worker.wait_settled(len(later))
        bodies = hook.wait_for(2)
        time.sleep(1.0)  # anything delivered twice would arrive by now
        assert [b["details"]["new"] for b in hook.bodies] == ["fp_b", "fp_c"]
    finally:
        worker.stop()
        hook.server.shutdown()
        hook.server.server_close()
    assert len(bodies) == 2
