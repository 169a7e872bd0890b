"""Alert delivery without Kafka: payloads per receiver, signatures, backoff, HTTP outcomes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import time
from collections import deque
from datetime import UTC, datetime

import orjson
import pytest

from slowleak.models import (
    Alert,
    AlertmanagerReceiver,
    SlackReceiver,
    StdoutReceiver,
    WebhookReceiver,
)
from slowleak.streams.delivery import (
    AlertmanagerNotifier,
    Backoff,
    DeliveryAudit,
    DeliveryRecord,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SlackNotifier,
    StdoutNotifier,
    WebhookNotifier,
    alert_line,
    alertmanager_payload,
    build_notifier,
    deliver,
    make_test_alert,
    sign,
    slack_payload,
    verify_signature,
    webhook_payload,
)
from slowleak.streams.delivery.base import describe_details, parse_retry_after
from slowleak.streams.delivery.runner import DeliveryOutcome
from slowleak.streams.localstack import free_port

from .receivers import Recorder

RUNBOOKS = "https://rb.example/runbooks"
SECRET = "s3cret-shared"

ALERT = Alert(
    alert_id="a-1",
    kind="cost_budget",
    severity="critical",
    status="firing",
    ts=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    event_id="evt-9",
    app="support-bot",
    model="gpt-4o-mini",
    labels={"team": "support", "env": "prod"},
    sequence=2,
    starts_at=datetime(2026, 11, 25, 9, 55, tzinfo=UTC),
    summary="support-bot spent $412 in the last hour; the budget is $300.",
    details={"spent_usd": 412.0, "budget_usd": 300, "window": "1h", "variant": "b"},
)
RESOLVED = ALERT.model_copy(
    update={
        "status": "resolved",
        "severity": "critical",
        "sequence": 3,
        "event_id": "evt-77",
        "ts": datetime(2026, 11, 25, 11, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 25, 10, 58, 30, tzinfo=UTC),
        "summary": "support-bot is back under its budget.",
        "details": {"spent_usd": 120.5, "variant": "b"},
    }
)


# --- Alertmanager ---------------------------------------------------------------------------


def test_alertmanager_payload_firing() -> None:
    payload = alertmanager_payload(
        ALERT, runbook_base_url=RUNBOOKS, generator_url="https://slowleak.example/alerts"
    )

    assert payload == [
        {
            "labels": {
                "alertname": "cost_budget",
                "app": "support-bot",
                "env": "prod",
                "model": "gpt-4o-mini",
                "severity": "critical",
                "team": "support",
                "variant": "b",
            },
            "annotations": {
                "summary": "support-bot spent $412 in the last hour; the budget is $300.",
                "runbook_url": "https://rb.example/runbooks/cost_budget.md",
                "slowleak_alert_id": "a-1",
                "description": "spent_usd=412 budget_usd=300 window=1h variant=b",
            },
            "startsAt": "2026-11-25T09:55:00.000Z",
            "generatorURL": "https://slowleak.example/alerts",
        }
    ]


def test_alertmanager_payload_firing_stays_active_until_past_the_next_repeat() -> None:
    until = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    (item,) = alertmanager_payload(ALERT, runbook_base_url=RUNBOOKS, firing_until=until)
    assert item["endsAt"] == "2026-11-25T16:00:00.000Z"


def test_alertmanager_payload_resolved_ends_the_same_label_set() -> None:
    payload = alertmanager_payload(RESOLVED, runbook_base_url=RUNBOOKS)

    assert payload == [
        {
            "labels": alertmanager_payload(ALERT, runbook_base_url=RUNBOOKS)[0]["labels"],
            "annotations": {
                "summary": "support-bot is back under its budget.",
                "runbook_url": "https://rb.example/runbooks/cost_budget.md",
                "slowleak_alert_id": "a-1",
                "description": "spent_usd=120.5 variant=b",
            },
            "startsAt": "2026-11-25T09:55:00.000Z",
            "endsAt": "2026-11-25T10:58:30.000Z",
        }
    ]


def test_alertmanager_payload_minimal_alert() -> None:
    alert = Alert(
        alert_id="a-2",
        kind="error_rate",
        severity="warning",
        status="resolved",
        ts=datetime(2026, 11, 25, 10, 0, 0, 250_000, tzinfo=UTC),
        event_id="e",
        app="bot",
        labels={"team.name": "x", "9lives": "y", "empty": ""},
        summary="Errors are back to normal.",
    )

    assert alertmanager_payload(alert, runbook_base_url=RUNBOOKS + "/") == [
        {
            "labels": {
                "_9lives": "y",
                "alertname": "error_rate",
                "app": "bot",
                "severity": "warning",
                "team_name": "x",
            },
            "annotations": {
                "summary": "Errors are back to normal.",
                "runbook_url": "https://rb.example/runbooks/error_rate.md",
                "slowleak_alert_id": "a-2",
            },
            "startsAt": "2026-11-25T10:00:00.250Z",
            "endsAt": "2026-11-25T10:00:00.250Z",
        }
    ]


def test_details_description_is_kv_or_json() -> None:
    assert describe_details({}) == ""
    assert describe_details({"a": 1, "b": "two words", "c": None, "d": True, "e": 0.25}) == (
        'a=1 b="two words" c=null d=true e=0.25'
    )
    assert describe_details({"z": [1, 2], "a": {"b": 1}}) == '{"a":{"b":1},"z":[1,2]}'


# --- webhook --------------------------------------------------------------------------------


def test_webhook_payload() -> None:
    assert webhook_payload(ALERT, runbook_base_url=RUNBOOKS) == {
        "alert_id": "a-1",
        "kind": "cost_budget",
        "severity": "critical",
        "status": "firing",
        "ts": "2026-11-25T10:00:00Z",
        "event_id": "evt-9",
        "app": "support-bot",
        "model": "gpt-4o-mini",
        "labels": {"team": "support", "env": "prod"},
        "sequence": 2,
        "starts_at": "2026-11-25T09:55:00Z",
        "ends_at": None,
        "summary": "support-bot spent $412 in the last hour; the budget is $300.",
        "details": {"spent_usd": 412.0, "budget_usd": 300, "window": "1h", "variant": "b"},
        "transition": "firing",
        "idempotency_key": "a-1:2:firing",
        "runbook_url": "https://rb.example/runbooks/cost_budget.md",
    }


def _webhook(secret: str | None = SECRET, url: str = "http://127.0.0.1:9/hook") -> WebhookNotifier:
    config = WebhookReceiver(type="webhook", name="hook", url=url, secret=secret)
    return WebhookNotifier(config, runbook_base_url=RUNBOOKS, clock=lambda: 1_790_000_000.7)


def test_webhook_request_is_signed() -> None:
    body, headers = _webhook().request(ALERT)

    expected = hmac.new(SECRET.encode(), b"1790000000." + body, hashlib.sha256).hexdigest()
    assert headers == {
        "X-Slowleak-Timestamp": "1790000000",
        "Idempotency-Key": "a-1:2:firing",
        "X-Slowleak-Signature": f"sha256={expected}",
    }
    assert body == orjson.dumps(webhook_payload(ALERT, runbook_base_url=RUNBOOKS))


def test_webhook_without_secret_is_not_signed() -> None:
    _, headers = _webhook(secret=None).request(RESOLVED)

    assert headers == {"X-Slowleak-Timestamp": "1790000000", "Idempotency-Key": "a-1:3:resolved"}


def test_webhook_secret_is_not_in_repr() -> None:
    config = WebhookReceiver(type="webhook", name="hook", url="http://h/", secret=SECRET)

    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())


def test_verify_signature_accepts_the_signed_body() -> None:
    body, headers = _webhook().request(ALERT)
    ts, signature = headers["X-Slowleak-Timestamp"], headers["X-Slowleak-Signature"]

    assert verify_signature(SECRET, ts, body, signature, now=1_790_000_100)
    assert verify_signature(SECRET.encode(), int(ts), body, signature, now=1_790_000_000)


def test_verify_signature_refuses_tampering_and_stale_requests() -> None:
    body, headers = _webhook().request(ALERT)
    ts, signature = headers["X-Slowleak-Timestamp"], headers["X-Slowleak-Signature"]
    now = 1_790_000_000

    assert not verify_signature(SECRET, ts, body.replace(b"412", b"413"), signature, now=now)
    assert not verify_signature("other-secret", ts, body, signature, now=now)
    assert not verify_signature(SECRET, "1790000001", body, signature, now=now)
    assert not verify_signature(SECRET, ts, body, signature.upper(), now=now)
    assert not verify_signature(SECRET, ts, body, "", now=now)
    assert not verify_signature(SECRET, "soon", body, signature, now=now)
    # Stale (or from the future) by more than the tolerance.
    assert not verify_signature(SECRET, ts, body, signature, now=now + 301)
    assert not verify_signature(SECRET, ts, body, signature, now=now - 301)
    assert verify_signature(SECRET, ts, body, signature, tolerance_s=600, now=now + 301)
    # A fresh signature over the same body with a new timestamp verifies again.
    assert verify_signature(SECRET, now + 301, body, sign(SECRET, now + 301, body), now=now + 301)


# --- Slack and stdout -----------------------------------------------------------------------


def test_slack_payload() -> None:
    assert slack_payload(ALERT, runbook_base_url=RUNBOOKS) == {
        "text": ":rotating_light: [FIRING] cost_budget: support-bot: support-bot spent $412 in "
        "the last hour; the budget is $300.",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":rotating_light: [FIRING] cost_budget: support-bot",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "support-bot spent $412 in the last hour; the budget is $300.",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*App*\nsupport-bot"},
                    {"type": "mrkdwn", "text": "*Model*\ngpt-4o-mini"},
                    {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                    {"type": "mrkdwn", "text": "*Env*\nprod"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "<https://rb.example/runbooks/cost_budget.md|Runbook> · "
                        "alert `a-1` #2",
                    }
                ],
            },
        ],
    }


@pytest.mark.parametrize(
    ("severity", "status", "emoji"),
    [
        ("critical", "firing", ":rotating_light:"),
        ("warning", "firing", ":warning:"),
        ("info", "firing", ":information_source:"),
        ("critical", "resolved", ":white_check_mark:"),
    ],
)
def test_slack_header_emoji(severity: str, status: str, emoji: str) -> None:
    alert = ALERT.model_copy(update={"severity": severity, "status": status, "model": None})
    payload = slack_payload(alert, runbook_base_url=RUNBOOKS)

    header = payload["blocks"][0]["text"]["text"]
    assert header == f"{emoji} [{status.upper()}] cost_budget: support-bot"
    assert payload["blocks"][2]["fields"][1] == {"type": "mrkdwn", "text": "*Model*\n-"}


def test_stdout_line() -> None:
    out = io.StringIO()
    notifier = StdoutNotifier(StdoutReceiver(type="stdout", name="log"), out=out)

    asyncio.run(notifier.send(ALERT))

    assert out.getvalue() == (
        "ALERT firing critical cost_budget app=support-bot model=gpt-4o-mini "
        "ts=2026-11-25T10:00:00.000Z alert_id=a-1 sequence=2: support-bot spent $412 in the "
        "last hour; the budget is $300. (spent_usd=412 budget_usd=300 window=1h variant=b)\n"
    )
    assert alert_line(ALERT) + "\n" == out.getvalue()


def test_build_notifier_per_type() -> None:
    configs = [
        AlertmanagerReceiver(type="alertmanager", name="am", url="http://am:9093/"),
        WebhookReceiver(type="webhook", name="wh", url="https://hooks.example/x"),
        SlackReceiver(type="slack", name="sl", url="https://hooks.slack.com/services/T/B/C"),
        StdoutReceiver(type="stdout", name="log"),
    ]
    notifiers = [build_notifier(c, runbook_base_url=RUNBOOKS) for c in configs]

    assert [type(n) for n in notifiers] == [
        AlertmanagerNotifier,
        WebhookNotifier,
        SlackNotifier,
        StdoutNotifier,
    ]
    assert [n.name for n in notifiers] == ["am", "wh", "sl", "log"]
    assert isinstance(notifiers[0], AlertmanagerNotifier)
    assert notifiers[0].url == "http://am:9093/api/v2/alerts"


def test_test_alert_says_it_is_a_test() -> None:
    alert = make_test_alert(now=datetime(2026, 11, 25, tzinfo=UTC))

    assert (alert.kind, alert.severity, alert.status, alert.app) == (
        "slowleak_test",
        "info",
        "firing",
        "slowleak",
    )
    assert alert.alert_id.startswith("slowleak_test-")
    assert alert.summary.startswith("TEST ALERT")
    assert "No action needed" in alert.summary


# --- backoff --------------------------------------------------------------------------------


def test_backoff_schedule_is_seeded_full_jitter() -> None:
    backoff = Backoff(base_s=0.5, max_s=4.0, seed=7)

    delays = [round(backoff.delay(n), 3) for n in range(8)]

    assert delays == [0.162, 0.151, 1.302, 0.29, 2.144, 1.463, 0.232, 2.03]
    assert [backoff.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(base_s=0.5, max_s=4.0, seed=7).delay(0) == pytest.approx(0.162, abs=1e-3)


def test_backoff_stays_within_its_ceiling() -> None:
    backoff = Backoff(base_s=0.1, max_s=2.0, seed=1)

    for attempt in range(200):
        assert 0.0 <= backoff.delay(attempt) <= min(2.0, 0.1 * 2**attempt)


def test_backoff_respects_retry_after_up_to_a_cap() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, seed=3)

    assert backoff.delay(0, retry_after_s=5.0) == 5.0
    assert backoff.delay(9, retry_after_s=0.0) <= 1.0
    assert backoff.delay(0, retry_after_s=86_400) == 600.0


def test_backoff_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="base_s must be positive"):
        Backoff(base_s=0)
    with pytest.raises(ValueError, match="max_s must be at least base_s"):
        Backoff(base_s=2, max_s=1)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1_795_600_800.0) == 30.0
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1_795_700_000.0) == 0.0
    assert parse_retry_after("later") is None


# --- HTTP outcomes against a local server ---------------------------------------------------


def _run_against(answers: list[tuple[int, dict[str, str], str]]) -> tuple[object, Recorder]:
    async def scenario() -> tuple[object, Recorder]:
        server = await Recorder(answers=deque(answers)).start()
        notifier = _webhook(url=server.url)
        try:
            outcome = await deliver(
                notifier,
                ALERT,
                backoff=Backoff(base_s=0.001, max_s=0.01, seed=0),
                stop=asyncio.Event(),
            )
        finally:
            await notifier.close()
            await server.stop()
        return outcome, server

    return asyncio.run(scenario())


def test_retryable_statuses_are_retried_until_accepted() -> None:
    outcome, server = _run_against(
        [(500, {}, "boom"), (429, {"Retry-After": "0"}, "slow down"), (408, {}, ""), (503, {}, "")]
    )

    assert outcome == DeliveryOutcome(delivered=True, attempts=5)
    assert len(server.received) == 5
    keys = {r.headers["Idempotency-Key"] for r in server.received}
    assert keys == {"a-1:2:firing"}
    for request in server.received:
        assert verify_signature(
            SECRET,
            request.headers["X-Slowleak-Timestamp"],
            request.body,
            request.headers["X-Slowleak-Signature"],
            now=1_790_000_000,
        )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_is_a_permanent_failure(status: int) -> None:
    outcome, server = _run_against([(status, {}, "bad payload")])

    assert outcome == DeliveryOutcome(
        delivered=False,
        attempts=1,
        error=f"HTTP {status} from {server.url}: 'bad payload'",
    )
    assert len(server.received) == 1


def test_error_status_classification_and_retry_after() -> None:
    async def scenario() -> list[BaseException]:
        server = await Recorder(
            answers=deque(
                [(503, {"Retry-After": "12"}, "maintenance"), (404, {}, "nope"), (200, {}, "")]
            )
        ).start()
        notifier = _webhook(url=server.url)
        errors: list[BaseException] = []
        try:
            for _ in range(3):
                try:
                    await notifier.send(ALERT)
                except (RetryableDeliveryError, PermanentDeliveryError) as exc:
                    errors.append(exc)
        finally:
            await notifier.close()
            await server.stop()
        return errors

    retryable, permanent = asyncio.run(scenario())

    assert isinstance(retryable, RetryableDeliveryError)
    assert retryable.retry_after_s == 12.0
    assert "HTTP 503" in str(retryable)
    assert isinstance(permanent, PermanentDeliveryError)


def test_connection_refused_is_retryable() -> None:
    async def scenario() -> RetryableDeliveryError:
        notifier = _webhook(url=f"http://127.0.0.1:{free_port()}/hook")
        try:
            with pytest.raises(RetryableDeliveryError) as exc_info:
                await notifier.send(ALERT)
        finally:
            await notifier.close()
        return exc_info.value

    error = asyncio.run(scenario())

    assert error.retry_after_s is None
    assert "failed" in str(error)


def test_a_slow_receiver_times_out_as_retryable() -> None:
    async def scenario() -> float:
        writers: list[asyncio.StreamWriter] = []

        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)  # never answers

        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = WebhookReceiver(
            type="webhook", name="slow", url=f"http://127.0.0.1:{port}/", timeout_s=0.2
        )
        notifier = WebhookNotifier(config, runbook_base_url=RUNBOOKS)
        started = time.monotonic()
        try:
            with pytest.raises(RetryableDeliveryError):
                await notifier.send(ALERT)
        finally:
            await notifier.close()
            for writer in writers:
                writer.close()
            server.close()
            await server.wait_closed()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2.0


def test_deliver_gives_back_when_stopped_while_retrying() -> None:
    async def scenario() -> object:
        notifier = _webhook(url=f"http://127.0.0.1:{free_port()}/hook")
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        try:
            return await deliver(
                notifier, ALERT, backoff=Backoff(base_s=0.05, max_s=0.1, seed=1), stop=stop
            )
        finally:
            await notifier.close()

    assert asyncio.run(scenario()) is None


def test_deliver_logs_each_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="slowleak.streams.delivery.runner")
    outcome, _ = _run_against([(502, {}, ""), (502, {}, "")])

    assert outcome == DeliveryOutcome(delivered=True, attempts=3)
    retries = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert len(retries) == 2
    assert all("receiver=hook alert_id=a-1 sequence=2" in m for m in retries)
    assert [m.split("attempt=")[1].split()[0] for m in retries] == ["1", "2"]
    assert not any(SECRET in r.getMessage() for r in caplog.records)


# --- audit ----------------------------------------------------------------------------------


def _record(i: int) -> DeliveryRecord:
    return DeliveryRecord(
        alert_id=f"a-{i}",
        sequence=0,
        status="firing",
        kind="cost_budget",
        app="bot",
        receiver="hook",
        delivered_at=datetime(2026, 11, 25, 10, 0, i, tzinfo=UTC),
        attempts=1,
        outcome="delivered",
        error="",
        ts=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    )


class _FakeClient:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.inserts: list[tuple[str, list[tuple[object, ...]], list[str]]] = []

    def insert(self, table: str, rows: list[tuple[object, ...]], column_names: list[str]) -> None:
        if self.fail:
            raise ConnectionError("Connection refused")
        self.inserts.append((table, rows, column_names))

    def close(self) -> None:
        pass


def test_audit_writes_small_batches() -> None:
    client = _FakeClient()
    audit = DeliveryAudit(client_factory=lambda: client, batch_rows=2)
    for i in range(3):
        audit.record(_record(i))

    assert asyncio.run(audit.flush()) == 3

    assert [(t, len(rows)) for t, rows, _ in client.inserts] == [
        ("alert_deliveries", 2),
        ("alert_deliveries", 1),
    ]
    assert client.inserts[0][2] == [
        "alert_id",
        "sequence",
        "status",
        "kind",
        "app",
        "receiver",
        "delivered_at",
        "attempts",
        "outcome",
        "error",
        "ts",
    ]
    assert (audit.written, audit.dropped, audit.buffered) == (3, 0, 0)


def test_audit_drops_and_counts_when_clickhouse_is_down(caplog: pytest.LogCaptureFixture) -> None:
    audit = DeliveryAudit(client_factory=lambda: _FakeClient(fail=True), batch_rows=10)
    for i in range(4):
        audit.record(_record(i))

    assert asyncio.run(audit.flush()) == 0

    assert (audit.written, audit.dropped, audit.buffered) == (0, 4, 0)
    assert "delivery audit rows dropped rows=4 dropped_total=4" in caplog.text


def test_audit_buffer_is_bounded() -> None:
    audit = DeliveryAudit(client_factory=_FakeClient, batch_rows=2, max_buffered=3)
    for i in range(5):
        audit.record(_record(i))

    assert (audit.buffered, audit.dropped) == (3, 2)


def test_audit_run_writes_soon_and_at_stop() -> None:
    client = _FakeClient()
    audit = DeliveryAudit(client_factory=lambda: client, flush_interval_ms=20)

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(audit.run(stop))
        audit.record(_record(1))
        await asyncio.sleep(0.2)
        written_before_stop = audit.written
        audit.record(_record(2))
        stop.set()
        await task
        return written_before_stop

    assert asyncio.run(scenario()) == 1
    assert audit.written == 2


def test_worker_runs_delivery_as_a_service_beside_the_app() -> None:
    from mode import Service

    from slowleak.models import Settings
    from slowleak.streams.worker import delivery_service

    settings = Settings(
        receivers=[
            {"type": "stdout", "name": "log"},
            {"type": "slack", "name": "s", "url": "http://x/"},
        ],
        delivery_audit=False,
    )
    service = delivery_service(settings)

    assert isinstance(service, Service)
    assert [loop.notifier.name for loop in service.runner.loops] == ["log", "s"]
