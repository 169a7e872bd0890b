"""``slowleak worker``: check the configuration against the real systems, then run faust.

Misconfiguration fails here, before faust starts, with a message that says what to fix.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from typing import Any

from slowleak.models import Settings
from slowleak.streams.clickhouse import apply_migrations, connect

__all__ = [
    "REQUIRED_TABLES",
    "StartupError",
    "check_clickhouse",
    "delivery_service",
    "ensure_topics",
    "fetch_stats",
    "run_worker",
]

log = logging.getLogger(__name__)

REQUIRED_TABLES = ("events", "feedback", "alerts", "dead_letters")


class StartupError(RuntimeError):
    """The worker cannot start; the message says what to fix."""


def check_clickhouse(settings: Settings, *, apply_schema: bool = False) -> None:
    """ClickHouse is reachable and has slowleak's tables (creating them if ``apply_schema``)."""
    try:
        client = connect(settings)
    except Exception as exc:
        raise StartupError(
            f"cannot reach ClickHouse at {settings.clickhouse_url}: {exc}; check "
            "SLOWLEAK_CLICKHOUSE_URL / clickhouse_user / clickhouse_password"
        ) from exc
    try:
        if apply_schema:
            apply_migrations(client, database=settings.clickhouse_database)
        db = settings.clickhouse_database
        missing = [t for t in REQUIRED_TABLES if not client.command(f"EXISTS TABLE `{db}`.`{t}`")]
    finally:
        client.close()
    if missing:
        raise StartupError(
            f"ClickHouse database {db!r} lacks tables {', '.join(missing)}: "
            "run `slowleak schema apply` (or start the worker with --apply-schema)"
        )


def _check_reachable(bootstrap_servers: str, timeout_s: float = 5.0) -> None:
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
            return
        except OSError as exc:
            errors.append(f"{server.strip()}: {exc}")
    raise StartupError(
        f"cannot reach Kafka ({'; '.join(errors)}): check SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS"
    )


def ensure_topics(settings: Settings) -> None:
    """Create the topics that do not exist; events and feedback must have equal partitions."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    _check_reachable(settings.kafka_bootstrap_servers)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=10_000,
        **settings.kafka_client_options(),
    )
    try:
        names = [
            settings.events_topic,
            settings.feedback_topic,
            settings.alerts_topic,
            settings.dlq_topic,
        ]
        existing = set(admin.list_topics())
        new = {
            name: {
                "num_partitions": settings.topic_partitions,
                "replication_factor": settings.topic_replication_factor,
            }
            for name in names
            if name not in existing
        }
        if new:
            try:
                admin.create_topics(new, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another worker starting at the same moment created them first
            except KafkaError as exc:
                raise StartupError(f"cannot create topics {sorted(new)}: {exc}") from exc
            log.info("topics created names=%s", ",".join(sorted(new)))
        partitions = _partition_counts(admin, [settings.events_topic, settings.feedback_topic])
    finally:
        admin.close()
    if len(set(partitions.values())) > 1:
        raise StartupError(
            f"topics are not co-partitioned: {partitions}; events and feedback of one app must "
            "meet on one worker, so give both topics the same number of partitions"
        )


def _partition_counts(admin: Any, topics: list[str]) -> dict[str, int]:
    counts = {}
    for meta in admin.describe_topics(topics):
        counts[meta["name"]] = len(meta["partitions"])
    return counts


def fetch_stats(port: int, host: str = "127.0.0.1") -> dict[str, Any] | None:
    """A running worker's counters (``GET /slowleak/stats/``), or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/slowleak/stats/", timeout=2) as r:
            return dict(json.load(r))
    except OSError:
        return None


def run_worker(
    settings: Settings, *, apply_schema: bool = False, loglevel: str | None = None
) -> None:
    """Check ClickHouse and Kafka, then run the faust worker until it is stopped (blocks)."""
    from faust.worker import Worker

    from slowleak.streams.app import create_app

    check_clickhouse(settings, apply_schema=apply_schema)
    ensure_topics(settings)
    app = create_app(settings)
    services = [delivery_service(settings)] if settings.receivers else []
    worker = Worker(app, *services, loglevel=loglevel or settings.log_level, quiet=True)
    worker.execute_from_commandline()


def delivery_service(settings: Settings) -> Any:
    """A mode service that runs alert delivery beside the faust app, in the worker's loop.

    Delivery has its own consumers (one group per receiver) and shares nothing with the agents,
    so a slow receiver never holds up detection; it stops after the app when the worker stops.
    """
    from mode import Service

    from slowleak.streams.delivery import DeliveryRunner

    class DeliveryService(Service):
        def __init__(self) -> None:
            super().__init__()
            self.runner = DeliveryRunner(settings)

        async def on_start(self) -> None:
            await self.runner.start()

        async def on_stop(self) -> None:
            await self.runner.stop()

    return DeliveryService()
