"""``slowleak demo``: the whole ingest path on one machine, with nothing but pip.

Broker (Tansu) -> ``slowleak worker`` (faust, embedded ClickHouse) -> SQL, narrated for a person.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slowleak.models import Settings
from slowleak.streams.localstack import TansuBroker, free_port
from slowleak.streams.scenarios import SCENARIOS, scenario_traffic
from slowleak.streams.synthetic import TrafficGenerator, malformed_messages
from slowleak.streams.worker import fetch_stats

__all__ = ["DEMO_QUERIES", "run_demo"]

#: Waiting for the worker to account for every message, at most.
SETTLE_TIMEOUT_S = 120.0
FEEDBACK_SHARE = 0.3
#: Share of the calls after which the provider quietly swaps the snapshot behind gpt-4o.
PROVIDER_SWAP_SHARE = 0.6
#: The scenario apps' guardrail profiles (``apps`` setting): pizza-bot takes orders, and a
#: program in its answers is off task.
DEMO_APPS = {
    "pizza-bot": {
        "description": "Takes pizza orders: menu, sizes, toppings, delivery times.",
        "code_expected": False,
    }
}

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Calls, errors, tokens and spend per app and model",
        """SELECT app, model, count() AS calls, countIf(status != 'ok') AS errors,
       sum(input_tokens + output_tokens) AS tokens, round(sum(cost_usd), 2) AS cost_usd
FROM events GROUP BY app, model ORDER BY cost_usd DESC""",
    ),
    (
        "Latency per app (p50 / p95, ms)",
        """SELECT app, round(quantile(0.5)(latency_ms)) AS p50_ms,
       round(quantile(0.95)(latency_ms)) AS p95_ms
FROM events WHERE status = 'ok' GROUP BY app ORDER BY p95_ms DESC""",
    ),
    (
        "Success rate from late user feedback, joined to the calls by event_id",
        """SELECT e.app AS app, count() AS judged, round(avg(f.outcome) * 100, 1) AS success_pct
FROM feedback AS f INNER JOIN events AS e ON e.event_id = f.event_id
GROUP BY app ORDER BY app""",
    ),
    (
        "Alerts, first of each kind per app (all of them are on topic slowleak.alerts)",
        """SELECT app, kind, labels['signal'] AS signal, min(ts) AS first_ts, count() AS n,
       argMin(summary, ts) AS first_summary
FROM alerts GROUP BY app, kind, signal ORDER BY app, first_ts""",
    ),
    (
        "Guardrail findings on pizza-bot: jailbreak attempts, and answers that gave in (a program "
        "instead of an order)",
        """SELECT detector, kind, count() AS findings, min(ts) AS first_ts, any(evidence) AS example
FROM guardrail_findings WHERE app = 'pizza-bot'
GROUP BY detector, kind ORDER BY findings DESC""",
    ),
    (
        "A detector's statistic against its threshold, per minute (helpdesk-bot's success rate)",
        """SELECT ts, phase, n, round(reference * 100, 1) AS reference_pct,
       round(estimate * 100, 1) AS estimate_pct, round(statistic, 1) AS statistic,
       round(threshold, 1) AS threshold
FROM detector_stats FINAL
WHERE app = 'helpdesk-bot' AND signal = 'success_rate'
ORDER BY ts DESC LIMIT 8""",
    ),
    (
        "What the worker rejected, and why (also on topic slowleak.dlq)",
        """SELECT kafka_offset AS offset, reason FROM dead_letters
ORDER BY kafka_partition, offset""",
    ),
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _publish(
    bootstrap: str, settings: Settings, n_events: int, scenarios: bool
) -> tuple[int, int, int]:
    """Publish synthetic calls, late feedback and malformed messages; return the counts."""
    from kafka import KafkaProducer

    from slowleak.streams.publisher import Publisher

    gen = TrafficGenerator(
        seed=7,
        start=datetime.now(UTC) - timedelta(minutes=30),
        provider_swap_at=int(n_events * PROVIDER_SWAP_SHARE),
    )
    n_feedback = 0
    incidents = (
        list(scenario_traffic(start=datetime.now(UTC) - timedelta(hours=1, minutes=10)))
        if scenarios
        else []
    )
    with Publisher(
        bootstrap_servers=bootstrap, max_buffer_events=(n_events + len(incidents)) * 2
    ) as publisher:
        sent = -1
        for call in incidents:
            publisher.publish(call)
        for i in range(n_events):
            event = gen.interaction()
            publisher.publish(event)
            if event["status"] == "ok" and i % int(1 / FEEDBACK_SHARE) == 0:
                publisher.publish_feedback(gen.feedback(event))
                n_feedback += 1
        # A busy machine may need minutes for 325,000 calls: wait while they keep being sent.
        while not publisher.flush(timeout_s=30) and publisher.stats().sent > sent:
            sent = publisher.stats().sent
    stats = publisher.stats()
    if stats.dropped:
        _say(f"  publisher dropped {stats.dropped}: the counts below will not match")
    bad = malformed_messages()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for _, raw in bad:
        producer.send(settings.events_topic, key=b"support-bot", value=raw)
    producer.flush(30)
    producer.close()
    return n_events + len(incidents), n_feedback, len(bad)


def run_demo(*, n_events: int, workdir: Path, scenarios: bool = True) -> int:
    """Run the demo; return the exit status."""
    from slowleak.streams.challenge.demo import demo_challenge
    from slowleak.streams.clickhouse import connect
    from slowleak.streams.sqlcli import run_sql

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ch_url = f"chdb://{workdir.resolve() / 'clickhouse'}"
    _say("slowleak demo: Kafka -> faust worker -> ClickHouse, on this machine\n")
    with TansuBroker(log_path=workdir / "broker.log") as broker:
        _say(f"1. broker (Tansu) listening on {broker.bootstrap_servers}")
        web_port = free_port()
        env = {
            **os.environ,
            "SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "SLOWLEAK_CLICKHOUSE_URL": ch_url,
            "SLOWLEAK_DATA_DIR": str(workdir),
            "SLOWLEAK_WEB_PORT": str(web_port),
            "SLOWLEAK_TOPIC_PARTITIONS": "2",
            "SLOWLEAK_APPS": json.dumps(DEMO_APPS),
        }
        settings = Settings.load(
            kafka_bootstrap_servers=broker.bootstrap_servers, clickhouse_url=ch_url, apps=DEMO_APPS
        )
        log_path = workdir / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "slowleak.streams.cli", "worker", "--apply-schema"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _say(f"2. worker started (pid {worker.pid}, log {log_path})")
        try:
            status, sent = _drive(
                broker.bootstrap_servers, settings, n_events, worker, web_port, scenarios
            )
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        if status != 0:
            _say(f"\nthe worker log's last lines ({log_path}):")
            _say("\n".join(log_path.read_text(errors="replace").splitlines()[-25:]))
            return status
    _say("5. worker stopped; checking ClickHouse against what was sent")
    client = connect(settings, database=settings.clickhouse_database)
    try:
        missing = _check_counts(client, sent)
        if scenarios:
            missing += _check_scenarios(client)
        if missing:
            for line in missing:
                _say(f"   MISMATCH {line}")
            return 1
        for title, query in DEMO_QUERIES:
            _say(f"-- {title}\n{query}\n")
            _say(run_sql(settings, query, client=client, max_cell=400))
        _say("6. champion-challenger: replaying a sample through a fake challenger")
        demo_challenge(client, say=_say)
    finally:
        client.close()
    _say("Ask your own questions of the same data:")
    command = sys.argv[0] if Path(sys.argv[0]).name == "slowleak" else "slowleak"
    _say(f'  SLOWLEAK_CLICKHOUSE_URL={ch_url} {command} sql "SELECT * FROM events LIMIT 5"')
    return 0


def _check_counts(client: Any, sent: dict[str, int]) -> list[str]:
    """Each table holds exactly what was sent to it; returns the mismatches."""
    problems = []
    for table, expected in sent.items():
        got = client.command(f"SELECT count(DISTINCT {_KEY[table]}) FROM {table}")
        mark = "ok" if got == expected else "MISSING"
        _say(f"   {table:<13} {got:>7,} rows for {expected:>7,} sent  {mark}")
        if got != expected:
            problems.append(f"{table}: {got} rows for {expected} messages sent")
    _say()
    return problems


_KEY = {
    "events": "event_id",
    "feedback": "event_id",
    "dead_letters": "(kafka_partition, kafka_offset)",
}


def _check_scenarios(client: Any) -> list[str]:
    """Each scenario app fired the kinds it should, and the steady one fired nothing."""
    fired: dict[str, set[str]] = {}
    for app, kind in client.query("SELECT DISTINCT app, kind FROM alerts").result_rows:
        fired.setdefault(app, set()).add(kind)
    problems = []
    _say("   scenario       expected alerts                  fired")
    for scenario in SCENARIOS:
        got = fired.get(scenario.app, set())
        ok = set(scenario.expect) <= got if scenario.expect else not got
        expected = ", ".join(scenario.expect) or "(none: steady)"
        _say(
            f"   {scenario.app:<14} {expected:<32} {', '.join(sorted(got)) or '-':<40} "
            f"{'ok' if ok else 'MISMATCH'}"
        )
        if not ok:
            problems.append(f"{scenario.app}: expected {expected}, fired {sorted(got)}")
    _say()
    return problems


def _drive(
    bootstrap: str,
    settings: Settings,
    n_events: int,
    worker: subprocess.Popen[bytes],
    port: int,
    scenarios: bool,
) -> tuple[int, dict[str, int]]:
    deadline = time.monotonic() + 60
    while fetch_stats(port) is None:
        if worker.poll() is not None:
            _say(f"   the worker exited with status {worker.returncode} before it was ready")
            return 1, {}
        if time.monotonic() > deadline:
            _say("   the worker did not become ready within 60 s")
            return 1, {}
        time.sleep(0.25)
    started = time.monotonic()
    if scenarios:
        _say(
            f"   publishing {n_events:,} calls plus {len(SCENARIOS)} incident scenarios "
            "(40,000 calls each; about half a minute)..."
        )
    n, n_feedback, n_bad = _publish(bootstrap, settings, n_events, scenarios)
    apps = 3 + (len(SCENARIOS) if scenarios else 0)
    _say(
        f"3. published {n:,} calls from {apps} apps, {n_feedback:,} late feedback events and "
        f"{n_bad} malformed messages"
    )
    expected = n + n_feedback + n_bad
    # Give up only when the worker stopped making progress for SETTLE_TIMEOUT_S (a busy machine
    # scanning every text for guardrails can take minutes for the scenarios' 320,000 calls).
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    stats: dict[str, Any] = {}
    last_seen = -1
    while time.monotonic() < deadline:
        stats = fetch_stats(port) or stats
        seen = stats.get("interactions", 0) + stats.get("feedback", 0) + stats.get("rejected", 0)
        if seen >= expected and stats.get("rows_buffered") == 0 and stats.get("settled"):
            break
        if seen > last_seen:
            last_seen, deadline = seen, time.monotonic() + SETTLE_TIMEOUT_S
        if worker.poll() is not None:
            _say(f"   the worker exited with status {worker.returncode}")
            return 1, {}
        time.sleep(0.2)
    else:
        _say(
            f"   not every message was accounted for: no progress for {SETTLE_TIMEOUT_S:.0f} s: "
            f"{stats}"
        )
        return 1, {}
    elapsed = time.monotonic() - started
    written = stats["rows_written"]
    _say(
        f"4. every message accounted for in {elapsed:.1f} s: "
        f"{written.get('events', 0):,} event rows, {written.get('feedback', 0):,} feedback rows, "
        f"{stats['rejected']} dead letters (with reasons, on slowleak.dlq and in dead_letters), "
        f"{stats['alerts']} alert(s)"
    )
    return 0, {"events": n, "feedback": n_feedback, "dead_letters": n_bad}
