"""The delivery runner against the real parts: Tansu, Alertmanager, ClickHouse, local webhooks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from clickhouse_connect.driver.client import Client

from slowleak.models import Alert, Settings
from slowleak.streams.clickhouse import apply_migrations
from slowleak.streams.delivery import DeliveryAudit, DeliveryRunner, verify_signature
from slowleak.streams.localstack import free_port

from .receivers import Recorder
from .test_delivery import SECRET

pytestmark = pytest.mark.integration

#: A first group join on Tansu takes about half the session timeout.
JOIN_TIMEOUT_S = 30.0


def _alert(i: int, *, run: str, status: str = "firing", sequence: int = 0) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=f"{run}-{i}",
        kind="error_rate",
        severity="critical",
        status=status,  # type: ignore[arg-type]
        ts=now,
        event_id=f"evt-{i}-{sequence}",
        app="support-bot",
        model="gpt-4o-mini",
        labels={"run": run, "n": str(i)},
        sequence=sequence,
        starts_at=now - timedelta(minutes=5),
        ends_at=now if status == "resolved" else None,
        summary=f"Alert {i} of run {run}.",
        details={"error_rate": 0.25},
    )


async def _publish(kafka: str, topic: str, alerts: list[Alert]) -> list[float]:
    """Publish one record per request (Tansu reports multi-record batch end offsets short);
    returns when each was acknowledged (time.monotonic())."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=False)
    await producer.start()
    sent = []
    try:
        for alert in alerts:
            await producer.send_and_wait(
                topic, key=alert.app.encode(), value=alert.model_dump_json().encode()
            )
            sent.append(time.monotonic())
    finally:
        await producer.stop()
    return sent


def _settings(kafka: str, topic: str, receivers: list[dict[str, Any]], app_id: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka,
        alerts_topic=topic,
        app_id=app_id,
        consumer_session_timeout_ms=6_000,
        receivers=receivers,
        runbook_base_url="https://rb.example/runbooks",
        delivery_audit=False,
    )


def _bodies(server: Recorder) -> list[str]:
    return [r.json()["alert_id"] for r in server.received]


def test_outage_of_one_receiver_queues_its_alerts_and_restart_does_not_repeat(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = new_topic("alerts")
    run = uuid.uuid4().hex[:8]
    app_id = f"t_{run}"
    down = Recorder(port=free_port())
    up = Recorder()
    receivers = [
        {
            "type": "webhook",
            "name": "down",
            "url": down.url,
            "secret": SECRET,
            "max_backoff_s": 0.5,
        },
        {"type": "webhook", "name": "up", "url": up.url},
    ]
    settings = _settings(kafka_bootstrap, topic, receivers, app_id)

    async def scenario() -> dict[str, Any]:
        await up.start()
        runner = DeliveryRunner(settings)
        await runner.start()
        try:
            # Warm up: both groups joined once "up" has the first alert.
            await _publish(kafka_bootstrap, topic, [_alert(0, run=run)])
            await up.wait_for(1, JOIN_TIMEOUT_S)

            sent = await _publish(kafka_bootstrap, topic, [_alert(i, run=run) for i in range(1, 6)])
            await up.wait_for(6, 10)
            latencies = [r.at - t for r, t in zip(up.received[1:], sent, strict=True)]
            assert down.received == []  # it is not even listening yet

            await asyncio.sleep(1.0)  # the down receiver's loop is retrying by now
            await down.start()
            await down.wait_for(6, 15)
            await asyncio.sleep(0.5)
        finally:
            await runner.stop()
        stats_first = runner.stats()

        # A new runner with the same groups resumes after the last acknowledged alert.
        runner = DeliveryRunner(settings)
        await runner.start()
        try:
            await _publish(kafka_bootstrap, topic, [_alert(i, run=run) for i in (6, 7)])
            await up.wait_for(8, JOIN_TIMEOUT_S)
            await down.wait_for(8, JOIN_TIMEOUT_S)
            await asyncio.sleep(1.0)  # room for any repeat to show up
        finally:
            await runner.stop()
            await up.stop()
            await down.stop()
        return {"latencies": latencies, "first": stats_first, "second": runner.stats()}

    result = asyncio.run(scenario())

    expected = [f"{run}-{i}" for i in range(8)]
    assert _bodies(up) == expected
    assert _bodies(down) == expected  # each exactly once, in order
    assert max(result["latencies"]) < 1.0, result["latencies"]
    keys = [r.headers["Idempotency-Key"] for r in down.received]
    assert keys == [f"{run}-{i}:0:firing" for i in range(8)]
    for request in down.received:
        assert verify_signature(
            SECRET,
            request.headers["X-Slowleak-Timestamp"],
            request.body,
            request.headers["X-Slowleak-Signature"],
        )
    assert result["first"]["down"]["delivered"] == 6
    assert result["first"]["up"]["delivered"] == 6
    assert result["second"]["down"]["delivered"] == 2
    assert result["second"]["up"]["delivered"] == 2
    print(
        f"\ndelivery latency (publish ack -> webhook received), ms: "
        f"{[round(x * 1000, 1) for x in result['latencies']]}"
    )


def test_permanent_rejection_does_not_block_the_queue(kafka_bootstrap: str, new_topic: Any) -> None:
    topic = new_topic("alerts")
    run = uuid.uuid4().hex[:8]
    server = Recorder(answers=deque([(400, {}, "bad"), (503, {}, ""), (200, {}, "")]))
    settings = _settings(
        kafka_bootstrap,
        topic,
        [{"type": "webhook", "name": "picky", "url": server.url, "max_backoff_s": 0.2}],
        f"t_{run}",
    )

    async def scenario() -> dict[str, Any]:
        await server.start()
        runner = DeliveryRunner(settings)
        await runner.start()
        try:
            await _publish(kafka_bootstrap, topic, [_alert(i, run=run) for i in range(3)])
            await server.wait_for(4, JOIN_TIMEOUT_S)
            await asyncio.sleep(0.3)
        finally:
            await runner.stop()
            await server.stop()
        return runner.stats()

    stats = asyncio.run(scenario())

    # 0 is rejected for good (400); 1 is retried after a 503; 2 goes straight through.
    assert _bodies(server) == [f"{run}-0", f"{run}-1", f"{run}-1", f"{run}-2"]
    assert (stats["picky"]["delivered"], stats["picky"]["failed"]) == (2, 1)


async def _alertmanager_alerts(url: str, run: str) -> list[dict[str, Any]]:
    params = {
        "active": "true",
        "silenced": "true",
        "inhibited": "true",
        "unprocessed": "true",
        "filter": f'run="{run}"',
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/v2/alerts", params=params) as response,
    ):
        response.raise_for_status()
        alerts: list[dict[str, Any]] = await response.json()
        return alerts


async def _poll(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_alertmanager_firing_then_resolved(
    kafka_bootstrap: str, new_topic: Any, alertmanager_url: str
) -> None:
    topic = new_topic("alerts")
    run = uuid.uuid4().hex[:8]
    settings = _settings(
        kafka_bootstrap,
        topic,
        [{"type": "alertmanager", "name": "am", "url": alertmanager_url}],
        f"t_{run}",
    )
    firing = _alert(1, run=run)
    resolved = _alert(1, run=run, status="resolved", sequence=1)

    async def scenario() -> tuple[list[dict[str, Any]], float, dict[str, Any]]:
        runner = DeliveryRunner(settings)
        await runner.start()
        try:
            await _publish(kafka_bootstrap, topic, [firing])

            async def listed() -> list[dict[str, Any]] | None:
                return await _alertmanager_alerts(alertmanager_url, run) or None

            active = await _poll(listed, JOIN_TIMEOUT_S)
            (sent,) = await _publish(kafka_bootstrap, topic, [resolved])

            async def gone() -> bool | None:
                return True if not await _alertmanager_alerts(alertmanager_url, run) else None

            await _poll(gone, 10)
            resolve_s = time.monotonic() - sent
        finally:
            await runner.stop()
        return active, resolve_s, runner.stats()

    active, resolve_s, stats = asyncio.run(scenario())

    (alert,) = active
    assert alert["labels"] == {
        "alertname": "error_rate",
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "n": "1",
        "run": run,
        "severity": "critical",
    }
    assert alert["annotations"] == {
        "summary": f"Alert 1 of run {run}.",
        "description": "error_rate=0.25",
        "runbook_url": "https://rb.example/runbooks/error_rate.md",
        "slowleak_alert_id": f"{run}-1",
    }
    assert alert["status"]["state"] == "active"
    assert firing.starts_at is not None
    starts_at_ms = firing.starts_at.replace(microsecond=firing.starts_at.microsecond // 1000 * 1000)
    assert datetime.fromisoformat(alert["startsAt"]) == starts_at_ms
    # The resolved alert (same labels, endsAt now) ended it: Alertmanager no longer lists it.
    assert resolve_s < 1.0
    assert stats["am"]["delivered"] == 2


def test_audit_rows_in_clickhouse(ch_client: Client, ch_database: str) -> None:
    from slowleak.streams.delivery import DeliveryRecord

    apply_migrations(ch_client, database=ch_database)
    audit = DeliveryAudit(client_factory=lambda: ch_client)
    delivered_at = datetime(2026, 11, 25, 10, 0, 1, 250_000, tzinfo=UTC)
    audit.record(
        DeliveryRecord(
            alert_id="a-1",
            sequence=2,
            status="firing",
            kind="cost_budget",
            app="bot",
            receiver="hook",
            delivered_at=delivered_at,
            attempts=3,
            outcome="delivered",
            error="",
            ts=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        )
    )

    assert asyncio.run(audit.flush()) == 1

    rows = ch_client.query(
        "SELECT alert_id, sequence, status, kind, app, receiver, delivered_at, attempts, "
        "outcome, error, ts FROM alert_deliveries"
    ).result_rows
    assert [tuple(r) for r in rows] == [
        (
            "a-1",
            2,
            "firing",
            "cost_budget",
            "bot",
            "hook",
            delivered_at.replace(tzinfo=None),
            3,
            "delivered",
            "",
            datetime(2026, 11, 25, 10, 0),
        )
    ]


def test_runner_writes_audit_rows_and_survives_clickhouse_down(
    kafka_bootstrap: str, new_topic: Any, clickhouse_url: str, ch_database: str, ch_client: Client
) -> None:
    apply_migrations(ch_client, database=ch_database)
    topic = new_topic("alerts")
    run = uuid.uuid4().hex[:8]
    server = Recorder()
    base = _settings(
        kafka_bootstrap,
        topic,
        [{"type": "webhook", "name": "hook", "url": server.url}],
        f"t_{run}",
    )
    settings = base.model_copy(
        update={
            "delivery_audit": True,
            "clickhouse_url": clickhouse_url,
            "clickhouse_database": ch_database,
        }
    )
    dead_clickhouse = DeliveryAudit(
        client_factory=lambda: (_ for _ in ()).throw(ConnectionError("refused"))
    )

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        await server.start()
        stats = []
        for audit in (None, dead_clickhouse):
            runner = DeliveryRunner(settings, audit=audit)
            await runner.start()
            try:
                await _publish(kafka_bootstrap, topic, [_alert(len(server.received), run=run)])
                await server.wait_for(len(stats) + 1, JOIN_TIMEOUT_S)
                await asyncio.sleep(0.5)
            finally:
                await runner.stop()
            stats.append(runner.stats())
        await server.stop()
        return stats[0], stats[1]

    with_ch, without_ch = asyncio.run(scenario())

    assert with_ch["audit"] == {"written": 1, "dropped": 0}
    assert without_ch["audit"] == {"written": 0, "dropped": 1}
    assert without_ch["hook"]["delivered"] == 1
    rows = ch_client.query(
        "SELECT alert_id, receiver, outcome, attempts FROM alert_deliveries"
    ).result_rows
    assert [tuple(r) for r in rows] == [(f"{run}-0", "hook", "delivered", 1)]


def test_slowleak_deliver_command(kafka_bootstrap: str, new_topic: Any, tmp_path: Any) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys

    topic = new_topic("alerts")
    run = uuid.uuid4().hex[:8]
    server = Recorder()
    receivers = [
        {"type": "webhook", "name": "hook", "url": server.url},
        {"type": "stdout", "name": "log"},
    ]
    env = {
        **os.environ,
        "SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SLOWLEAK_ALERTS_TOPIC": topic,
        "SLOWLEAK_EVENTS_TOPIC": f"{topic}-events",
        "SLOWLEAK_FEEDBACK_TOPIC": f"{topic}-feedback",
        "SLOWLEAK_DLQ_TOPIC": f"{topic}-dlq",
        "SLOWLEAK_TOPIC_PARTITIONS": "1",
        "SLOWLEAK_APP_ID": f"t_{run}",
        "SLOWLEAK_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "SLOWLEAK_DELIVERY_AUDIT": "false",
        "SLOWLEAK_RECEIVERS": json.dumps(receivers),
    }
    out = tmp_path / "deliver.out"

    async def scenario() -> None:
        await server.start()
        with open(out, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "slowleak.streams.cli", "deliver"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            await _publish(kafka_bootstrap, topic, [_alert(0, run=run)])
            await server.wait_for(1, JOIN_TIMEOUT_S)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0, out.read_text()
            await server.stop()

    asyncio.run(scenario())

    assert _bodies(server) == [f"{run}-0"]
    text = out.read_text()
    assert "ALERT firing critical error_rate app=support-bot model=gpt-4o-mini" in text
    assert f"alert_id={run}-0 sequence=0: Alert 0 of run {run}." in text
    assert "delivery stopped: " in text
