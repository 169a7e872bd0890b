"""The delivery runner: one asyncio task per receiver, each reading the alerts topic itself.

Each receiver has its own Kafka consumer group, ``{app_id}.deliver.{receiver}``, so Kafka is
the queue: a receiver that is down stops advancing its own group while the others (and the
detectors, which only publish) go on; its alerts wait on the topic (bounded by retention) and
are delivered in order when it returns. An offset is committed only after the receiver
acknowledged the alert (or rejected it for good), one alert at a time, so a restart resumes
exactly after the last acknowledged alert. A crash between delivery and commit can repeat that
one alert: the webhook carries an idempotency key for it, and Alertmanager dedupes by labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from pydantic import ValidationError

from slowleak.models import (
    Alert,
    AlertmanagerReceiver,
    Receiver,
    Settings,
    SlackReceiver,
    StdoutReceiver,
    WebhookReceiver,
)
from slowleak.streams.delivery.alertmanager import AlertmanagerNotifier
from slowleak.streams.delivery.audit import DeliveryAudit, DeliveryRecord
from slowleak.streams.delivery.base import (
    Backoff,
    DeliveryError,
    Notifier,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from slowleak.streams.delivery.slack import SlackNotifier
from slowleak.streams.delivery.stdout import StdoutNotifier
from slowleak.streams.delivery.webhook import WebhookNotifier

__all__ = [
    "TEST_ALERT_KIND",
    "DeliveryOutcome",
    "DeliveryRunner",
    "ReceiverLoop",
    "build_notifier",
    "consumer_group",
    "deliver",
    "make_test_alert",
    "run_delivery",
    "send_test_alert",
]

log = logging.getLogger(__name__)

TEST_ALERT_KIND = "slowleak_test"
#: First retry waits up to this long; then it doubles up to the receiver's ``max_backoff_s``.
BACKOFF_BASE_S = 0.2
#: How long one fetch waits when there is nothing to deliver (bounds how fast a stop is seen).
POLL_TIMEOUT_MS = 200
#: A receiver may be down for hours while its loop retries one alert without polling Kafka;
#: it must not be dropped from its group meanwhile (its partition would move and repeat it).
MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000
STOP_TIMEOUT_S = 10.0


def consumer_group(settings: Settings, receiver: str) -> str:
    return f"{settings.app_id}.deliver.{receiver}"


#: A firing alert stays active in Alertmanager this many repeat intervals past its last send.
FIRING_TTL_REPEATS = 1.5


def build_notifier(
    config: Receiver, *, runbook_base_url: str, repeat_interval_s: float = 14_400.0
) -> Notifier:
    if isinstance(config, AlertmanagerReceiver):
        return AlertmanagerNotifier(
            config,
            runbook_base_url=runbook_base_url,
            firing_ttl_s=FIRING_TTL_REPEATS * repeat_interval_s,
        )
    if isinstance(config, WebhookReceiver):
        return WebhookNotifier(config, runbook_base_url=runbook_base_url)
    if isinstance(config, SlackReceiver):
        return SlackNotifier(config, runbook_base_url=runbook_base_url)
    if isinstance(config, StdoutReceiver):
        return StdoutNotifier(config)
    raise TypeError(f"unknown receiver type {type(config).__name__}")


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    delivered: bool
    attempts: int
    error: str = ""


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def deliver(
    notifier: Notifier, alert: Alert, *, backoff: Backoff, stop: asyncio.Event
) -> DeliveryOutcome | None:
    """Send ``alert`` until the receiver acknowledges or rejects it for good.

    Retryable failures wait per ``backoff`` and try again, without limit, logging each failure
    once. Returns None when ``stop`` was set before the alert was delivered.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            await notifier.send(alert)
        except RetryableDeliveryError as exc:
            wait_s = backoff.delay(attempt - 1, retry_after_s=exc.retry_after_s)
            log.warning(
                "delivery failed, will retry receiver=%s alert_id=%s sequence=%d attempt=%d "
                "retry_in_s=%.2f error=%s",
                notifier.name,
                alert.alert_id,
                alert.sequence,
                attempt,
                wait_s,
                exc,
            )
            if await _stopped_within(stop, wait_s):
                return None
        except DeliveryError as exc:
            return DeliveryOutcome(False, attempt, str(exc))
        except Exception as exc:  # a bug formatting this alert must not block the queue
            log.exception("delivery raised receiver=%s alert_id=%s", notifier.name, alert.alert_id)
            return DeliveryOutcome(False, attempt, f"{type(exc).__name__}: {exc}")
        else:
            return DeliveryOutcome(True, attempt)


@dataclass(slots=True)
class ReceiverStats:
    delivered: int = 0
    failed: int = 0
    undecodable: int = 0
    commit_errors: int = 0
    latency_ms_last: float | None = None
    latency_ms_max: float | None = None


class ReceiverLoop:
    """Reads the alerts topic in one consumer group and delivers to one receiver, in order."""

    def __init__(
        self,
        *,
        notifier: Notifier,
        consumer_factory: Callable[[], AIOKafkaConsumer],
        backoff: Backoff,
        audit: DeliveryAudit | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.notifier = notifier
        self.consumer_factory = consumer_factory
        self.backoff = backoff
        self.audit = audit
        self.clock = clock
        self.stats = ReceiverStats()

    async def run(self, stop: asyncio.Event) -> None:
        await self.notifier.setup()
        consumer: AIOKafkaConsumer | None = None
        try:
            consumer = await self._start_consumer(stop)
            while consumer is not None and not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                for tp, records in batches.items():
                    for record in records:
                        if stop.is_set() or tp not in consumer.assignment():
                            break  # not committed: read again by whoever owns it next
                        if not await self._handle(record, stop):
                            break
                        await self._commit(consumer, tp, record.offset + 1)
        finally:
            if consumer is not None:
                await consumer.stop()
            await self.notifier.close()

    async def _start_consumer(self, stop: asyncio.Event) -> AIOKafkaConsumer | None:
        attempt = 0
        while not stop.is_set():
            consumer = self.consumer_factory()
            try:
                await consumer.start()
                return consumer
            except KafkaError as exc:
                await consumer.stop()
                wait_s = self.backoff.delay(attempt)
                attempt += 1
                log.warning(
                    "delivery consumer cannot start receiver=%s retry_in_s=%.2f error=%s",
                    self.notifier.name,
                    wait_s,
                    exc,
                )
                await _stopped_within(stop, wait_s)
        return None

    async def _handle(self, record: Any, stop: asyncio.Event) -> bool:
        """Deliver one record; False when stopped before it was (then it is not committed)."""
        try:
            alert = Alert.model_validate_json(record.value or b"")
        except ValidationError as exc:
            self.stats.undecodable += 1
            log.error(
                "undecodable alert skipped receiver=%s partition=%d offset=%d error=%s",
                self.notifier.name,
                record.partition,
                record.offset,
                str(exc).splitlines()[0],
            )
            return True
        outcome = await deliver(self.notifier, alert, backoff=self.backoff, stop=stop)
        if outcome is None:
            return False
        now = self.clock()
        latency_ms = max(0.0, now * 1000.0 - record.timestamp)
        if outcome.delivered:
            self.stats.delivered += 1
            self.stats.latency_ms_last = latency_ms
            self.stats.latency_ms_max = max(self.stats.latency_ms_max or 0.0, latency_ms)
            log.info(
                "alert delivered receiver=%s alert_id=%s sequence=%d status=%s attempts=%d "
                "latency_ms=%.0f",
                self.notifier.name,
                alert.alert_id,
                alert.sequence,
                alert.status,
                outcome.attempts,
                latency_ms,
            )
        else:
            self.stats.failed += 1
            log.error(
                "alert rejected, not retried receiver=%s alert_id=%s sequence=%d status=%s "
                "attempts=%d error=%s",
                self.notifier.name,
                alert.alert_id,
                alert.sequence,
                alert.status,
                outcome.attempts,
                outcome.error,
            )
        if self.audit is not None:
            self.audit.record(
                DeliveryRecord(
                    alert_id=alert.alert_id,
                    sequence=alert.sequence,
                    status=alert.status,
                    kind=alert.kind,
                    app=alert.app,
                    receiver=self.notifier.name,
                    delivered_at=datetime.fromtimestamp(now, UTC),
                    attempts=outcome.attempts,
                    outcome="delivered" if outcome.delivered else "failed",
                    error=outcome.error,
                    ts=alert.ts,
                )
            )
        return True

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:
            # The partition moved to another member (or the group is rebuilding): it resumes
            # from the last commit, so this one alert may be delivered again.
            self.stats.commit_errors += 1
            log.warning(
                "delivery commit failed receiver=%s partition=%d offset=%d error=%s",
                self.notifier.name,
                tp.partition,
                offset,
                exc,
            )


class DeliveryRunner:
    """Runs a :class:`ReceiverLoop` per configured receiver, plus the audit writer."""

    def __init__(
        self,
        settings: Settings,
        *,
        notifiers: Sequence[Notifier] | None = None,
        audit: DeliveryAudit | None = None,
        consumer_options: dict[str, Any] | None = None,
        backoff_seed: int | None = None,
    ) -> None:
        self.settings = settings
        configs = {r.name: r for r in settings.receivers}
        if notifiers is None:
            notifiers = [
                build_notifier(
                    r,
                    runbook_base_url=settings.runbook_base_url,
                    repeat_interval_s=settings.alert_repeat_interval_s,
                )
                for r in settings.receivers
            ]
        if audit is None and settings.delivery_audit:
            audit = _clickhouse_audit(settings)
        self.audit = audit
        self.consumer_options = consumer_options or {}
        self.loops = [
            ReceiverLoop(
                notifier=n,
                consumer_factory=self._consumer_factory(n.name),
                backoff=Backoff(
                    base_s=BACKOFF_BASE_S,
                    max_s=max(BACKOFF_BASE_S, _max_backoff(configs.get(n.name))),
                    seed=backoff_seed,
                ),
                audit=audit,
            )
            for n in notifiers
        ]
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _consumer_factory(self, receiver: str) -> Callable[[], AIOKafkaConsumer]:
        settings = self.settings

        def create() -> AIOKafkaConsumer:
            options: dict[str, Any] = {
                "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
                "group_id": consumer_group(settings, receiver),
                "client_id": f"{settings.app_id}-deliver-{receiver}",
                "enable_auto_commit": False,
                "auto_offset_reset": "earliest",
                "fetch_max_wait_ms": settings.delivery_fetch_max_wait_ms,
                "session_timeout_ms": settings.consumer_session_timeout_ms,
                "heartbeat_interval_ms": settings.consumer_session_timeout_ms // 4,
                "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
                **settings.kafka_client_options(),
                **self.consumer_options,
            }
            return AIOKafkaConsumer(settings.alerts_topic, **options)

        return create

    async def start(self) -> None:
        """Start every receiver's task (returns at once; consumers join their groups after)."""
        if self._tasks:
            return
        self._stop = asyncio.Event()
        for loop in self.loops:
            task = asyncio.create_task(loop.run(self._stop), name=f"deliver-{loop.notifier.name}")
            task.add_done_callback(_log_crash)
            self._tasks.append(task)
        if self.audit is not None:
            audit_task = asyncio.create_task(self.audit.run(self._stop), name="delivery-audit")
            audit_task.add_done_callback(_log_crash)
            self._tasks.append(audit_task)
        log.info(
            "delivery started receivers=%s topic=%s",
            ",".join(loop.notifier.name for loop in self.loops),
            self.settings.alerts_topic,
        )

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop taking alerts, let in-flight requests end (or cancel them), write the audit."""
        if self._stop is None:
            return
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.audit is not None:
            await asyncio.to_thread(self.audit.close)
        log.info("delivery stopped %s", self.describe())

    async def wait(self) -> None:
        """Until every receiver's task ended (they end when stopped, or on a bug)."""
        if self._tasks:
            await asyncio.wait(self._tasks)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            loop.notifier.name: {
                "delivered": loop.stats.delivered,
                "failed": loop.stats.failed,
                "undecodable": loop.stats.undecodable,
                "commit_errors": loop.stats.commit_errors,
                "latency_ms_last": loop.stats.latency_ms_last,
                "latency_ms_max": loop.stats.latency_ms_max,
            }
            for loop in self.loops
        }
        if self.audit is not None:
            out["audit"] = {"written": self.audit.written, "dropped": self.audit.dropped}
        return out

    def describe(self) -> str:
        return " ".join(
            f"{name}.{key}={value}"
            for name, values in self.stats().items()
            for key, value in values.items()
            if key in {"delivered", "failed", "undecodable", "written", "dropped"}
        )


def _max_backoff(config: Receiver | None) -> float:
    return config.max_backoff_s if config is not None else 60.0


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("delivery task %s crashed", task.get_name(), exc_info=task.exception())


def _clickhouse_audit(settings: Settings) -> DeliveryAudit:
    from slowleak.streams.clickhouse import connect

    return DeliveryAudit(
        client_factory=lambda: connect(settings, database=settings.clickhouse_database)
    )


async def run_delivery(settings: Settings) -> dict[str, Any]:
    """``slowleak deliver``: run every receiver until SIGINT/SIGTERM; returns the counters."""
    runner = DeliveryRunner(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await runner.start()
    waiting = asyncio.ensure_future(runner.wait())
    stop_waiter = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([waiting, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
    stop_waiter.cancel()
    await runner.stop()
    waiting.cancel()
    return runner.stats()


def make_test_alert(*, now: datetime | None = None) -> Alert:
    """A clearly labelled test alert (kind ``slowleak_test``) for ``slowleak alerts test``."""
    ts = now or datetime.now(UTC)
    return Alert(
        alert_id=f"slowleak_test-{uuid.uuid4().hex[:12]}",
        kind=TEST_ALERT_KIND,
        severity="info",
        status="firing",
        ts=ts,
        event_id="slowleak_test",
        app="slowleak",
        labels={"test": "true"},
        summary="TEST ALERT from `slowleak alerts test`: checks that alerts reach this "
        "receiver. No action needed.",
        details={"sent_by": "slowleak alerts test"},
    )


async def send_test_alert(
    settings: Settings, name: str, *, notifier: Notifier | None = None
) -> tuple[Alert, float, str]:
    """Send one test alert to receiver ``name``, once; (alert, seconds, error or "")."""
    if notifier is None:
        notifier = build_notifier(
            settings.receiver(name),
            runbook_base_url=settings.runbook_base_url,
            repeat_interval_s=settings.alert_repeat_interval_s,
        )
    alert = make_test_alert()
    await notifier.setup()
    started = time.perf_counter()
    try:
        await notifier.send(alert)
        error = ""
    except PermanentDeliveryError as exc:
        error = f"rejected: {exc}"
    except DeliveryError as exc:
        error = f"failed (retryable): {exc}"
    finally:
        await notifier.close()
    return alert, time.perf_counter() - started, error
