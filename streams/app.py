"""The faust app: topics, agents and the sink timer, wired to the pure core.

An agent reads as: chunk of records -> pure core -> rows, dead letters, alerts -> ack after the
write. Events and feedback are both keyed by ``app`` and created with the same partition count,
so everything about one app lands on one worker (co-partitioned) as workers are added.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP, FutureMessage, ProducerT, TransportT

from slowleak.models import Settings
from slowleak.streams.batching import ChunkSchema, ChunkTransport, batched_topic_names
from slowleak.streams.clickhouse import connect
from slowleak.streams.core import Processor
from slowleak.streams.core.detectors import settings_detectors
from slowleak.streams.core.lifecycle import AlertLifecycle, lifecycle_policy
from slowleak.streams.publisher import RECORD_OVERHEAD_BYTES
from slowleak.streams.recall import CallRecall
from slowleak.streams.runtime import IngestRuntime, stored_position
from slowleak.streams.sink import ClickHouseSink
from slowleak.streams.state_codec import STATE_CODEC, read_state

__all__ = ["SlowleakApp", "create_app", "faust_credentials"]

log = logging.getLogger(__name__)

DETECTOR_STATE_TABLE = "detector_state"
#: How often the timer checks whether buffered rows are old enough to write.
FLUSH_CHECK_DIVISOR = 4
#: Python's default GC thresholds (700, 10, 10) collect every few thousand allocations; the
#: ingest path allocates a model and a row per event. Measured: 113k -> 133k events/s core.
GC_THRESHOLDS = (50_000, 20, 100)
#: Records the producer may hold before faust's stream waits for it to drain, logging
#: "producer buffer full". faust's 100 is made for a table changed one record per stream event;
#: the detector states of a chunk are written together, one record per changed key (hundreds
#: with many apps), and the runtime bounds them itself (they are acked with their chunk).
PRODUCER_BUFFER_RECORDS = 10_000
#: Seconds a lookup of calls read before the start may take (connect, and send and receive).
RECALL_TIMEOUT_S = 10


class StateTable(faust.Table[str, Any]):
    """The detector-state table, written by the runtime once a chunk's output is durable
    (:class:`~slowleak.streams.runtime.StateStore`): a state is stored after the rows, alerts
    and dead letters of the chunk that changed it, never before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # faust takes a table's serializers from its types, not from its schema: JSON,
        # compressed when large (its changelog topic is made later, with this one).
        self.value_serializer = STATE_CODEC

    def get(self, key: str, default: Any = None) -> Any:
        """The state stored under ``key``, put back together when it is stored in parts."""
        return read_state(key, super().get(key, default), self.data.get)

    def stored(self, key: str) -> Any:
        """The value stored under ``key`` as it is (a manifest, for a state in parts)."""
        return self.data.get(key)

    def dump(self, value: Any) -> bytes:
        return bytes(codecs.dumps(self.value_serializer, value))

    def put(self, partition: int, key: str, raw: bytes) -> FutureMessage:
        """Store ``raw`` under ``key`` outside a stream event, its changelog record to
        ``partition`` (the partition of the chunk that changed it). The future is done once
        the broker has the record."""
        self.data[key] = codecs.loads(self.value_serializer, raw)
        return self.send_changelog(partition, key, raw, value_serializer="raw")


class SlowleakApp(faust.App):
    """faust app whose consumer delivers batched topics as chunks (see ``batching``)."""

    batched_topics: frozenset[str] = frozenset()
    fetch_max_wait_ms: int | None = None
    runtime: IngestRuntime
    states: StateTable

    def restored_position(self, tp: TP) -> int | None:
        """Where ``tp``'s next chunk starts as the restored states know it (None: no chunk of
        it was processed since the table exists). Read by ``ChunkConsumer`` after recovery."""
        return stored_position(self.states, tp.topic, tp.partition)

    def _new_producer(self) -> ProducerT:
        producer = super()._new_producer()
        producer.buffer.max_messages = PRODUCER_BUFFER_RECORDS
        return producer

    def _new_transport(self) -> TransportT:
        return ChunkTransport(self.conf.broker_consumer, self)

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """faust waits here for every message in progress to be acked, before a rebalance and at
        shutdown, then commits. Chunks are acked only after their rows are written, so write
        them now instead of leaving them to the timer (which may already be stopped)."""
        await self.runtime.drain()
        # faust's own commit in wait_empty did not reach the broker at shutdown (seen with
        # a restart right after a burst: the next worker re-read it); commit explicitly.
        committed = await consumer.commit()
        logger.info("sink drained before rebalance or stop committed=%s", committed)
        await super()._consumer_wait_empty(consumer, logger)


def create_app(settings: Settings, **faust_options: Any) -> SlowleakApp:
    """The worker's faust app for ``settings``; ``faust_options`` override faust settings."""
    options: dict[str, Any] = {
        "broker": settings.kafka_broker_url,
        "store": "memory://",
        "datadir": str(settings.data_dir / "faust"),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "consumer_auto_offset_reset": "earliest",
        "broker_max_poll_records": settings.consumer_max_poll_records,
        "stream_buffer_maxsize": 64,
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_host": settings.web_host,
        "producer_acks": -1,
        "broker_session_timeout": settings.consumer_session_timeout_ms / 1000.0,
        "broker_heartbeat_interval": settings.consumer_session_timeout_ms / 1000.0 / 4,
        "broker_credentials": faust_credentials(settings),
    }
    options.update(settings.faust_options)
    options.update(faust_options)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = SlowleakApp(settings.app_id, **options)
    app.fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms

    def topic(name: str, **kwargs: Any) -> Any:
        return app.topic(name, partitions=settings.topic_partitions, **kwargs)

    events = topic(settings.events_topic, schema=ChunkSchema())
    feedback = topic(settings.feedback_topic, schema=ChunkSchema())
    dlq = topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")
    alerts = topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    app.batched_topics = batched_topic_names([events, feedback])

    async def send_dead_letter(key: bytes | None, value: bytes) -> Any:
        return await dlq.send(key=key, value=value)

    async def send_alert(key: bytes | None, value: bytes) -> Any:
        return await alerts.send(key=key, value=value)

    states = StateTable(
        app,
        name=DETECTOR_STATE_TABLE,
        default=None,
        beacon=app.tables.beacon,
        partitions=settings.topic_partitions,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer=STATE_CODEC),
        help="Per-key detector state; its changelog restores it after a restart or rebalance.",
    )
    app.tables.add(states)
    app.states = states
    sink = ClickHouseSink(
        client_factory=lambda: connect(settings, database=settings.clickhouse_database),
        batch_rows=settings.sink_batch_rows,
        flush_interval_ms=settings.sink_flush_interval_ms,
        idle_flush_ms=settings.sink_idle_flush_ms,
    )
    processor = Processor(
        max_message_bytes=settings.max_message_bytes,
        dlq_max_raw_bytes=settings.dlq_max_raw_bytes,
        future_tolerance_s=settings.future_tolerance_s,
        text_policies={app: policy.text for app, policy in settings.apps.items()},
        default_text=settings.default_text,
        secrets={
            app: [s.get_secret_value() for s in policy.secrets]
            for app, policy in settings.apps.items()
        },
        detectors=settings_detectors(settings, states),
        lifecycle=AlertLifecycle(store=states, policy=lifecycle_policy(settings)),
    )
    recall = None
    if processor.recall_horizon is not None and not settings.clickhouse.embedded:
        # Feedback for calls read before the start: found in ``events`` (one embedded engine
        # per process is the sink's).
        recall = CallRecall(
            lambda: connect(
                settings, database=settings.clickhouse_database,
                connect_timeout=RECALL_TIMEOUT_S, send_receive_timeout=RECALL_TIMEOUT_S,
            ),
            horizon=processor.recall_horizon,
        )  # fmt: skip
    runtime = app.runtime = IngestRuntime(
        processor=processor,
        recall=recall,
        state_store=states,
        max_state_bytes=app.conf.producer_max_request_size - RECORD_OVERHEAD_BYTES,
        max_inflight=1 if settings.clickhouse.embedded else settings.sink_max_inflight,
        sink=sink,
        send_dead_letter=send_dead_letter,
        send_alert=send_alert,
    )

    @app.agent(events, name="ingest_events")
    async def ingest_events(stream: Any) -> None:
        async for event in stream.noack().events():
            await runtime.on_chunk("events", event.value, event)

    @app.agent(feedback, name="ingest_feedback")
    async def ingest_feedback(stream: Any) -> None:
        async for event in stream.noack().events():
            await runtime.on_chunk("feedback", event.value, event)

    check_s = min(settings.sink_flush_interval_ms, settings.sink_idle_flush_ms) / 1000.0

    @app.timer(interval=check_s / FLUSH_CHECK_DIVISOR)  # type: ignore[untyped-decorator]
    async def flush_sink() -> None:
        await runtime.flush_if_due()

    @app.page("/slowleak/stats/")
    async def stats(web: Any, request: Any) -> Any:
        rewound = getattr(app.consumer, "rewound_records", 0)
        return web.json(runtime.stats() | {"rewound_records": rewound})

    app.on_partitions_revoked.connect(_drain_on_revoke)  # type: ignore[arg-type]
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """faust's ``broker_credentials`` for the Kafka security settings (None: PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = settings.kafka_ssl_context()
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    assert settings.kafka_sasl_password is not None  # Settings checks SASL has both
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,  # SASL_SSL when set, SASL_PLAINTEXT when None
        mechanism=settings.kafka_sasl_mechanism,
    )


async def _drain_on_revoke(app: SlowleakApp, revoked: Any, **kwargs: Any) -> None:
    """Before partitions move to another worker, write what was read from them, and let
    detectors reload their states from the table (which now holds only assigned partitions)."""
    await app.runtime.drain()
    app.runtime.forget_states()
