"""Crashes and outages with the real parts: a worker killed with SIGKILL while calls flow, and a
ClickHouse server stopped for a minute under load. Nothing lost, nothing doubled.

`events` is a ReplacingMergeTree whose sorting key ends with ``event_id``: a call written again
after a crash is one row once merged, which ``FINAL`` reads. Window rows are inserted one block
per insert with a deduplication token, so a block sent again after a crash is dropped by
``cost_windows_1m`` and by the materialized views of the hourly and daily rollups. Detector
states are stored once their chunk's rows are written, with the offset where the partition's
next chunk starts, so a call read again after a crash is not fed to the detectors twice; each
app's window state also carries the offset of the last call it counted (its fence) and the
blocks it has not seen written (its outbox). The figures these tests print go to RELIABILITY.md.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect import get_client
from kafka import KafkaProducer

from slowleak.models import InteractionEvent
from slowleak.streams.core.cost import PriceBook
from slowleak.streams.localstack import TansuBroker, free_ports
from slowleak.streams.synthetic import TrafficGenerator

from .test_ingest import Worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N_CALLS = 50_000
MIN_KILLS = 5
SETTLE_TIMEOUT_S = 240.0


def _calls(n: int, *, seed: int, start: datetime) -> list[dict[str, Any]]:
    gen = TrafficGenerator(seed=seed, start=start, calls_per_second=200.0)
    return [gen.interaction(with_text=False) for _ in range(n)]


def _closers(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One call per app an hour after the last: it closes every window of the calls before (its
    own window stays open, so it is not in the expected totals)."""
    last = max(datetime.fromisoformat(c["ts"]) for c in calls)
    apps = sorted({c["app"] for c in calls})
    ts = (last + timedelta(hours=1)).isoformat()
    return [calls[0] | {"event_id": f"closer-{app}", "app": app, "ts": ts} for app in apps]


def _expected(calls: list[dict[str, Any]]) -> dict[str, tuple[int, int, float]]:
    """Per app: calls, input tokens and cost, as the windows price them."""
    prices = PriceBook()
    out: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0.0])
    for raw in calls:
        event = InteractionEvent.model_validate_json(orjson.dumps(raw))
        acc = out[event.app]
        acc[0] += 1
        acc[1] += event.input_tokens
        acc[2] += prices.price(event).cost_usd
    return {app: (a[0], a[1], a[2]) for app, a in out.items()}


def _publish_slowly(kafka: str, topic: str, calls: list[dict[str, Any]], seconds: float) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=5)
    try:
        step = max(1, len(calls) // 200)
        for i in range(0, len(calls), step):
            for raw in calls[i : i + step]:
                producer.send(topic, key=raw["app"].encode(), value=orjson.dumps(raw))
            producer.flush(60)
            time.sleep(seconds / 200)
    finally:
        producer.close()


def _window_totals(client: Any, table: str) -> dict[str, tuple[int, int, float]]:
    rows = client.query(
        f"SELECT app, sum(calls), sum(input_tokens), sum(cost_usd) FROM {table} GROUP BY app"
    ).result_rows
    return {app: (int(c), int(t), float(usd)) for app, c, t, usd in rows}


def _assert_totals(got: dict[str, tuple[int, int, float]], want: dict[str, Any]) -> None:
    print(f"\nwindow totals per app (got, want): { {a: (got.get(a), w) for a, w in want.items()} }")
    assert set(got) == set(want)
    for app, (calls, tokens, usd) in want.items():
        assert got[app][:2] == (calls, tokens), app
        assert got[app][2] == pytest.approx(usd, rel=1e-9), app


def _wait_written(
    client: Any, rows: int, window_calls: int, *, worker: Worker | None = None
) -> None:
    """Until ``events`` holds ``rows`` rows and the minute windows ``window_calls`` calls (or the
    settle timeout; the test's assertions say what is missing), ``worker`` staying up."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        got = _window_totals(client, "cost_windows_1m FINAL")
        written = client.command("SELECT count() FROM events FINAL")
        if written == rows and sum(c for c, _, _ in got.values()) >= window_calls:
            return
        if worker is not None:
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        time.sleep(1.0)


def _minutes_differing(client: Any, calls: list[dict[str, Any]]) -> str:
    """Calls per app and minute where the windows and the input differ (to tell a lost block
    from calls skipped by a fence)."""
    want: dict[tuple[str, str], int] = defaultdict(int)
    for raw in calls:
        ts = datetime.fromisoformat(raw["ts"]).astimezone(UTC).replace(second=0, microsecond=0)
        want[raw["app"], ts.strftime("%H:%M")] += 1
    rows = client.query(
        "SELECT app, formatDateTime(window_start, '%H:%i'), late, sum(calls) "
        "FROM cost_windows_1m FINAL GROUP BY app, window_start, late"
    ).result_rows
    got: dict[tuple[str, str], int] = defaultdict(int)
    late: dict[tuple[str, str], list[int]] = defaultdict(list)
    for app, minute, n, count in rows:
        got[app, minute] += int(count)
        if n:
            late[app, minute].append(int(n))
    lines = [
        f"  {app} {minute}: windows {got.get((app, minute), 0)}, input {count}, "
        f"late rows {sorted(late.get((app, minute), []))}"
        for (app, minute), count in sorted(want.items())
        if got.get((app, minute), 0) != count
    ]
    return "minutes that differ:\n" + "\n".join(lines)


def _warnings(log: Path) -> str:
    """The worker log's warnings and errors (the log itself goes with pytest's tmp folders)."""
    lines = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "[WARNING]" in line or "[ERROR]" in line
    ]
    return f"worker log {log}, warnings and errors:\n" + "\n".join(lines[-60:])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_sigkill_while_calls_flow_loses_and_doubles_nothing(
    kafka_bootstrap: str, clickhouse_url: str, ch_database: str, ch_client: Any, tmp_path: Path
) -> None:
    worker = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database, tmp=tmp_path
    )
    calls = _calls(N_CALLS, seed=11, start=datetime.now(UTC) - timedelta(hours=2))
    closers = _closers(calls)
    rng = random.Random(20261125)
    worker.start()
    publisher = threading.Thread(
        target=_publish_slowly, args=(kafka_bootstrap, worker.topics["events"], calls, 40.0)
    )
    publisher.start()
    kills = 0
    try:
        while publisher.is_alive() or kills < MIN_KILLS:
            time.sleep(rng.uniform(2.0, 6.0))
            worker.kill()
            kills += 1
            worker.start()
        publisher.join()
        _publish_slowly(kafka_bootstrap, worker.topics["events"], closers, 0.0)
        worker.wait_settled(0)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        want_rows = N_CALLS + len(closers)
        while time.monotonic() < deadline:
            if ch_client.command("SELECT count() FROM events FINAL") == want_rows:
                break
            time.sleep(1.0)
        want = _expected(calls)
        while time.monotonic() < deadline:
            got = _window_totals(ch_client, "cost_windows_1m FINAL")
            if sum(c for c, _, _ in got.values()) >= N_CALLS:
                break
            time.sleep(1.0)
        stats = worker.stats() or {}
    finally:
        worker.stop()
    fenced = stats.get("detectors", {}).get("cost_windows", {}).get("replayed_calls")
    print(
        f"\nSIGKILL: {kills} kills over {N_CALLS:,} calls; the last worker wrote again, without "
        f"feeding them to the detectors, {stats.get('replayed')} calls its restored states had "
        f"seen (the window fences skipped {fenced} more); it read again "
        f"{stats.get('rewound_records')} records its restored states lacked"
    )
    assert kills >= MIN_KILLS
    assert ch_client.command("SELECT count() FROM events FINAL") == want_rows
    assert ch_client.command("SELECT uniqExact(event_id) FROM events") == want_rows
    minutes = _window_totals(ch_client, "cost_windows_1m FINAL")
    if any(minutes.get(app, (0, 0))[:2] != (n, tokens) for app, (n, tokens, _) in want.items()):
        print(_minutes_differing(ch_client, calls), _warnings(worker.log_path))
    _assert_totals(minutes, want)
    # The rollups are fed by materialized views at insert time: exact only if no block was
    # inserted twice (the deduplication tokens).
    _assert_totals(_window_totals(ch_client, "cost_hourly_by_app"), want)


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Any:
    """A ClickHouse server of this test's own, which it may stop and start again."""
    cache = os.environ.get("SLOWLEAK_TEST_CLICKHOUSE_CACHE")
    if not cache:
        pytest.skip("integration: run via bash scripts/test.sh, which caches the ClickHouse engine")
    http_port, tcp_port = free_ports(2)
    data, pidfile, log = tmp_path / "ch", tmp_path / "ch.pid", tmp_path / "ch.log"
    script = [sys.executable, str(ROOT / "scripts" / "clickhouse_server.py")]
    start = [
        *script, "start", "--cache", cache, "--data", str(data), "--http-port", str(http_port),
        "--tcp-port", str(tcp_port), "--pidfile", str(pidfile), "--log", str(log),
    ]  # fmt: skip
    stop = [*script, "stop", "--pidfile", str(pidfile)]

    class Server:
        url = f"http://127.0.0.1:{http_port}"

        def start(self) -> None:
            subprocess.run(start, check=True, capture_output=True)

        def stop(self) -> None:
            subprocess.run(stop, check=True, capture_output=True)

    server = Server()
    server.start()
    yield server
    subprocess.run(stop, check=False, capture_output=True)


OUTAGE_S = 60.0


def test_a_clickhouse_outage_pauses_the_worker_and_everything_is_written_after(
    kafka_bootstrap: str, own_clickhouse: Any, tmp_path: Path
) -> None:
    database = "slowleak_outage"
    worker = Worker(
        kafka=kafka_bootstrap, clickhouse_url=own_clickhouse.url, database=database, tmp=tmp_path
    )
    calls = _calls(90_000, seed=12, start=datetime.now(UTC) - timedelta(hours=3))
    worker.start()
    assert worker.proc is not None
    publisher = threading.Thread(
        target=_publish_slowly,
        args=(kafka_bootstrap, worker.topics["events"], calls, OUTAGE_S + 30.0),
    )
    try:
        publisher.start()
        time.sleep(10.0)
        baseline_kb = _rss_kb(worker.proc.pid)
        own_clickhouse.stop()
        stopped = time.monotonic()
        peak_kb, seen = baseline_kb, []
        while time.monotonic() - stopped < OUTAGE_S:
            peak_kb = max(peak_kb, _rss_kb(worker.proc.pid))
            stats = worker.stats() or {}
            seen.append(stats.get("interactions", 0))
            assert worker.proc.poll() is None, worker.log_tail()
            time.sleep(1.0)
        own_clickhouse.start()
        publisher.join()
        stats = worker.wait_settled(len(calls))
    finally:
        worker.stop()
    # Reading stopped while nothing could be written: the count read in the outage's second
    # half did not grow by more than the bounded buffers (the stream's queue and the writers).
    half = seen[len(seen) // 2 :]
    client = get_client(
        host="127.0.0.1", port=int(own_clickhouse.url.rsplit(":", 1)[1]), database=database
    )
    try:
        rows = client.command("SELECT count() FROM events FINAL")
        distinct = client.command("SELECT uniqExact(event_id) FROM events")
    finally:
        client.close()
    print(
        f"\nClickHouse outage: {OUTAGE_S:.0f} s under load; worker RSS {baseline_kb / 1024:.0f} MiB"
        f" before, peak {peak_kb / 1024:.0f} MiB during; calls read during the second half of the"
        f" outage: {half[-1] - half[0]:,}; failed writes retried: {stats['failed_writes']};"
        f" rows after: {rows:,} of {len(calls):,}"
    )
    assert stats["failed_writes"] > 0
    assert half[-1] - half[0] <= 30_000
    assert peak_kb - baseline_kb < 400 * 1024
    assert rows == distinct == len(calls)


def test_two_workers_share_partitions_and_one_leaving_moves_its_state(
    kafka_bootstrap: str, clickhouse_url: str, ch_database: str, ch_client: Any, tmp_path: Path
) -> None:
    """Two workers of one group share the partitions; one stops while calls flow, the other
    takes its partitions over with their window state (from the changelog): every call once in
    ``events``, every window total exact."""
    (tmp_path / "a").mkdir()
    first = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database,
        tmp=tmp_path / "a",
    )  # fmt: skip
    (tmp_path / "b").mkdir()
    second = Worker(
        kafka=kafka_bootstrap, clickhouse_url=clickhouse_url, database=ch_database,
        tmp=tmp_path / "b",
    )  # fmt: skip
    second.topics = first.topics
    second.env = first.env | {
        "SLOWLEAK_WEB_PORT": str(second.web_port),
        "SLOWLEAK_DATA_DIR": str(tmp_path / "b" / "data"),
    }
    calls = _calls(20_000, seed=13, start=datetime.now(UTC) - timedelta(hours=2))
    closers = _closers(calls)
    first.start()
    second.start()
    publisher = threading.Thread(
        target=_publish_slowly, args=(kafka_bootstrap, first.topics["events"], calls, 20.0)
    )
    try:
        publisher.start()
        time.sleep(8.0)
        second.stop()  # its partitions move to the first worker
        publisher.join()
        _publish_slowly(kafka_bootstrap, first.topics["events"], closers, 0.0)
        want_rows = len(calls) + len(closers)
        want = _expected(calls)
        _wait_written(ch_client, want_rows, len(calls))
    finally:
        first.stop()
        second.stop()
    assert ch_client.command("SELECT count() FROM events FINAL") == want_rows
    _assert_totals(_window_totals(ch_client, "cost_windows_1m FINAL"), want)
    _assert_totals(_window_totals(ch_client, "cost_hourly_by_app"), want)


BROKER_OUTAGE_S = 20.0


def test_a_broker_outage_stalls_the_worker_and_it_resumes_with_nothing_lost(
    clickhouse_url: str, ch_database: str, ch_client: Any, tmp_path: Path
) -> None:
    """The broker stops answering for longer than the consumer's session timeout while calls
    flow (SIGSTOP: connections stay open, nothing answers, as a hung or partitioned broker):
    the worker stays up (its commits and fetches wait; the commit that spanned the outage took
    about 20 s) and carries on when the broker is back, with every call written once and every
    window total exact. (Tansu keeps its data in memory, so a restart of the
    broker process itself would lose the topics; that case needs a persistent broker.)"""
    with TansuBroker(log_path=tmp_path / "tansu.log") as broker:
        worker = Worker(
            kafka=broker.bootstrap_servers, clickhouse_url=clickhouse_url, database=ch_database,
            tmp=tmp_path,
        )  # fmt: skip
        calls = _calls(20_000, seed=14, start=datetime.now(UTC) - timedelta(hours=2))
        closers = _closers(calls)
        worker.start()
        assert worker.proc is not None and broker.pid is not None
        publisher = threading.Thread(
            target=_publish_slowly,
            args=(broker.bootstrap_servers, worker.topics["events"], calls, 30.0),
        )
        try:
            publisher.start()
            time.sleep(8.0)
            before = (worker.stats() or {}).get("interactions", 0)
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                time.sleep(BROKER_OUTAGE_S)
                assert worker.proc.poll() is None, worker.log_tail()
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            publisher.join()
            _publish_slowly(broker.bootstrap_servers, worker.topics["events"], closers, 0.0)
            want_rows = len(calls) + len(closers)
            want = _expected(calls)
            _wait_written(ch_client, want_rows, len(calls), worker=worker)
            after = (worker.stats() or {}).get("interactions", 0)
        finally:
            worker.stop()
    print(
        f"\nbroker outage: {BROKER_OUTAGE_S:.0f} s (session timeout 6 s) after {before:,} calls;"
        f" the same worker process read {after:,} calls in all"
    )
    assert 0 < before < len(calls)
    assert ch_client.command("SELECT count() FROM events FINAL") == want_rows
    assert ch_client.command("SELECT uniqExact(event_id) FROM events") == want_rows
    _assert_totals(_window_totals(ch_client, "cost_windows_1m FINAL"), want)
    _assert_totals(_window_totals(ch_client, "cost_hourly_by_app"), want)
