"""The client an application uses to publish its events: never blocks or raises into the caller.

:meth:`Publisher.publish` serialises one event and puts it in a bounded local buffer; a daemon
thread moves the buffer into a ``kafka.KafkaProducer``, which batches by ``linger_ms`` and
``batch_bytes``. Nothing the broker does reaches the caller: when it is slow or away, events
wait in the buffer (which also counts records the producer holds until the broker acknowledges
them), and once the buffer holds ``max_buffer_events`` new events are dropped. Every drop is
counted by reason in :meth:`Publisher.stats`, passed to ``on_drop`` and logged (at most one
warning per reason per minute, never the event's text). Reasons:

- ``invalid: <field>: <message>``: the event breaks the contract (:mod:`slowleak.models.events`);
- ``too_large``: over ``max_message_bytes`` once serialised with its key and Kafka's framing;
- ``buffer_full``: ``max_buffer_events`` events are waiting already;
- ``send_failed``: the producer gave up on it (its error is in the log);
- ``undelivered_at_close``: still waiting when :meth:`Publisher.close` ran out of time;
- ``closed``: published after :meth:`Publisher.close`;
- ``error``: anything unforeseen, rather than an exception in the caller's request.

Usage::

    with Publisher(bootstrap_servers="kafka:9092") as publisher:
        publisher.publish(event)  # InteractionEvent or a mapping; True when buffered

Delivery is at least once (a retried batch can arrive twice); ``event_id`` is the idempotency
key downstream.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self

import orjson
from kafka import KafkaProducer
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError

from slowleak.models import FeedbackEvent, InteractionEvent

__all__ = ["Publisher", "PublisherStats"]

log = logging.getLogger(__name__)

EVENTS_TOPIC = "slowleak.events"
FEEDBACK_TOPIC = "slowleak.feedback"
#: At most one warning per drop reason (or connection problem) in this many seconds.
WARN_INTERVAL_S = 60.0
#: A Kafka v2 record batch header (61 bytes) plus one record's own framing, rounded up.
RECORD_OVERHEAD_BYTES = 128
#: The background thread moves at most this many events per lock hold.
_DRAIN_CHUNK = 512
_CONNECT_BACKOFF_MIN_S = 0.2
_CONNECT_BACKOFF_MAX_S = 5.0
_PROBE_TIMEOUT_S = 1.0
_METADATA_RETRY_S = 0.5
_COMPRESSION = {"gzip": has_gzip, "snappy": has_snappy, "lz4": has_lz4, "zstd": has_zstd}
#: Settings the Publisher owns; ``producer_config`` may not set them.
_OWNED_SETTINGS = frozenset(
    {
        "bootstrap_servers",
        "linger_ms",
        "batch_size",
        "max_request_size",
        "compression_type",
        "key_serializer",
        "value_serializer",
        "transactional_id",
    }
)
#: Defaults ``producer_config`` may override. No idempotence: some brokers lack it (see INFRA);
#: a short ``max_block_ms`` so a send waiting on metadata gives the thread back within a second.
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": False,
    "max_block_ms": 1_000,
    "bootstrap_timeout_ms": 5_000,
    "client_id": "slowleak-publisher",
}


class _Item(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    event_id: str


class _Invalid(Exception):
    def __init__(self, reason: str, event_id: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counts since the publisher started.

    ``enqueued`` = ``sent`` (acknowledged by the broker) + ``buffered`` (waiting here or in the
    producer) + the drops after enqueueing (``send_failed``, ``undelivered_at_close``).
    """

    enqueued: int
    sent: int
    dropped: dict[str, int]
    buffered: int


class Publisher:
    """Publishes :class:`InteractionEvent` and :class:`FeedbackEvent` to Kafka, keyed by ``app``.

    Thread-safe. ``producer_config`` holds extra kafka-python producer settings (security, SASL,
    ``enable_idempotence=True`` on Apache Kafka, ...). ``on_drop(reason, event_id)`` runs in the
    thread that saw the drop (the caller's, or the producer's for ``send_failed``); it must be
    quick, and what it raises is logged, not propagated. Call :meth:`close` (or use ``with``);
    a publisher still open when the interpreter exits is closed then, with the default timeout.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        events_topic: str = EVENTS_TOPIC,
        feedback_topic: str = FEEDBACK_TOPIC,
        max_buffer_events: int = 10_000,
        linger_ms: int = 50,
        batch_bytes: int = 256 * 1024,
        max_message_bytes: int = 1_048_576,
        compression_type: str | None = None,
        producer_config: Mapping[str, Any] | None = None,
        validate: bool = True,
        on_drop: Callable[[str, str], None] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.events_topic = events_topic
        self.feedback_topic = feedback_topic
        self.max_buffer_events = max_buffer_events
        self.linger_ms = linger_ms
        self.batch_bytes = batch_bytes
        self.max_message_bytes = max_message_bytes
        self.compression_type = compression_type
        self.producer_config = dict(producer_config or {})
        self.validate = validate
        self.on_drop = on_drop
        self._check_settings()
        self._reset()
        self._thread.start()
        self._close_at_exit()

    def _check_settings(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap_servers must name at least one host:port")
        if self.max_buffer_events < 1:
            raise ValueError("max_buffer_events must be at least 1")
        if self.linger_ms < 0:
            raise ValueError("linger_ms must be 0 or more")
        if self.batch_bytes < 1:
            raise ValueError("batch_bytes must be at least 1")
        if self.max_message_bytes <= RECORD_OVERHEAD_BYTES:
            raise ValueError(f"max_message_bytes must be more than {RECORD_OVERHEAD_BYTES}")
        if self.compression_type is not None:
            available = _COMPRESSION.get(self.compression_type)
            if available is None:
                raise ValueError(f"compression_type must be one of {sorted(_COMPRESSION)}")
            if not available():
                raise ValueError(
                    f"compression_type={self.compression_type!r} needs its codec library "
                    "installed (see kafka-python's docs), or use 'gzip'"
                )
        owned = sorted(_OWNED_SETTINGS & self.producer_config.keys())
        unknown = sorted(self.producer_config.keys() - KafkaProducer.DEFAULT_CONFIG.keys())
        if owned:
            raise ValueError(f"producer_config may not set {owned}: use the Publisher arguments")
        if unknown:
            raise ValueError(f"producer_config has settings kafka-python does not know: {unknown}")

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)  # items, a flush or a stop for the thread
        self._idle = threading.Condition(self._lock)  # nothing left buffered
        self._stop = threading.Event()  # cuts the connect backoff short
        self._queue: deque[_Item] = deque()
        self._inflight: dict[int, str] = {}  # handed to the producer, not yet acknowledged
        self._enqueued = 0
        self._sent = 0
        self._dropped: Counter[str] = Counter()
        self._unwarned: Counter[str] = Counter()
        self._warned_at: dict[str, float] = {}
        self._flush_requested = False
        self._flush_deadline = 0.0
        self._closing = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="slowleak-publisher", daemon=True)

    # --- the caller's side --------------------------------------------------------------------

    def publish(self, event: InteractionEvent | Mapping[str, Any]) -> bool:
        """Buffer one interaction event for ``events_topic``; False (and counted) when dropped."""
        return self._publish(event, InteractionEvent, self.events_topic)

    def publish_feedback(self, event: FeedbackEvent | Mapping[str, Any]) -> bool:
        """Buffer one feedback event for ``feedback_topic``; False (and counted) when dropped."""
        return self._publish(event, FeedbackEvent, self.feedback_topic)

    def _publish(self, event: object, model: type[BaseModel], topic: str) -> bool:
        event_id = ""
        try:
            item = self._encode(event, model, topic)
            event_id = item.event_id
            if len(item.key) + len(item.value) + RECORD_OVERHEAD_BYTES > self.max_message_bytes:
                reason = "too_large"
            else:
                with self._lock:
                    if self._closing:
                        reason = "closed"
                    elif len(self._queue) + len(self._inflight) >= self.max_buffer_events:
                        reason = "buffer_full"
                    else:
                        if not self._queue:
                            self._wakeup.notify()
                        self._queue.append(item)
                        self._enqueued += 1
                        return True
            self._drop(reason, [event_id])
        except _Invalid as exc:
            self._drop(exc.reason, [exc.event_id])
        except Exception as exc:
            self._drop("error", [event_id], detail=type(exc).__name__)
        return False

    def _encode(self, event: object, model: type[BaseModel], topic: str) -> _Item:
        if isinstance(event, model):
            valid = event
        elif isinstance(event, Mapping):
            event_id = event.get("event_id")
            event_id = event_id if isinstance(event_id, str) else ""
            try:
                raw = orjson.dumps(event if isinstance(event, dict) else dict(event))
            except orjson.JSONEncodeError as exc:
                raise _Invalid(f"invalid: event: {exc}", event_id) from None
            if not self.validate:
                app = event.get("app")
                if not isinstance(app, str) or not app:
                    raise _Invalid("invalid: app: must be a non-empty string", event_id)
                return _Item(topic, app.encode(), raw, event_id)
            try:
                # JSON mode, as the stream validates: strict, yet ``ts`` may be an RFC 3339 string.
                valid = model.model_validate_json(raw)
            except ValidationError as exc:
                error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
                loc = ".".join(str(part) for part in error["loc"]) or "event"
                raise _Invalid(f"invalid: {loc}: {error['msg']}", event_id) from None
        else:
            reason = f"invalid: event: expected {model.__name__} or a mapping, not "
            raise _Invalid(reason + type(event).__name__, "")
        data = valid.model_dump(mode="json", exclude_none=True)
        return _Item(topic, data["app"].encode(), orjson.dumps(data), data["event_id"])

    def stats(self) -> PublisherStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return PublisherStats(
                enqueued=self._enqueued,
                sent=self._sent,
                dropped=dict(self._dropped),
                buffered=len(self._queue) + len(self._inflight),
            )

    def flush(self, timeout_s: float) -> bool:
        """Wait until every buffered event is acknowledged or dropped; False on timeout.

        Events published meanwhile are waited for too.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._lock:
            self._flush_requested = True
            self._flush_deadline = max(self._flush_deadline, deadline)
            self._wakeup.notify()
            while self._queue or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to ``timeout_s``, stop; what is left counts as ``undelivered_at_close``.

        Returns within ``timeout_s`` (give or take a scheduling tick). Idempotent.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._lock:
            if self._closing:
                return
            self._closing = True
        atexit.unregister(self.close)
        self.flush(timeout_s)
        with self._lock:
            self._stopping = True
            self._wakeup.notify()
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = [item.event_id for item in self._queue] + list(self._inflight.values())
            self._queue.clear()
            self._inflight.clear()  # late producer callbacks for these find nothing to count
            self._idle.notify_all()
        if left:
            self._drop("undelivered_at_close", left)

    def _close_at_exit(self) -> None:
        # atexit runs handlers last-registered first: registering again once the KafkaProducer
        # exists (it registers its own close) lets this close still use it at exit.
        with self._lock:
            if not self._closing:
                atexit.unregister(self.close)
                atexit.register(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- drops and warnings ---------------------------------------------------------------------

    def _drop(self, reason: str, event_ids: list[str], detail: str = "") -> None:
        with self._lock:
            self._dropped[reason] += len(event_ids)
            total = self._dropped[reason]
            buffered = len(self._queue) + len(self._inflight)
        count = self._due_warning(reason, len(event_ids))
        if count:
            log.warning(
                "publisher dropped events reason=%s count=%d total=%d buffered=%d event_id=%s%s",
                reason,
                count,
                total,
                buffered,
                event_ids[0],
                f" error={detail}" if detail else "",
            )
        if self.on_drop is not None:
            for event_id in event_ids:
                try:
                    self.on_drop(reason, event_id)
                except Exception as exc:
                    if self._due_warning("on_drop", 1):
                        log.warning("publisher on_drop raised error=%s", type(exc).__name__)

    def _due_warning(self, key: str, count: int) -> int:
        """How many ``key`` occurrences to report now: 0 within WARN_INTERVAL_S of the last."""
        now = time.monotonic()
        with self._lock:
            self._unwarned[key] += count
            last = self._warned_at.get(key)
            if last is not None and now - last < WARN_INTERVAL_S:
                return 0
            self._warned_at[key] = now
            return self._unwarned.pop(key)

    # --- the background thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            producer = self._connect()
            if producer is None:
                return
            try:
                self._pump(producer)
            finally:
                self._close_producer(producer)
        except Exception:
            log.exception("publisher thread failed; events stay buffered until close")

    def _connect(self) -> Any:
        """A KafkaProducer, retrying with backoff; None when asked to stop first."""
        backoff = _CONNECT_BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                producer = self._create_producer()
                if producer is not None:
                    self._close_at_exit()
                    log.info("publisher connected bootstrap_servers=%s", self.bootstrap_servers)
                    return producer
                error = "no bootstrap server accepts connections"
            except Exception as exc:
                error = _describe(exc)
            if self._due_warning("connect", 1):
                log.warning(
                    "publisher cannot reach kafka bootstrap_servers=%s retry_in_s=%.1f "
                    "buffered=%d error=%s",
                    self.bootstrap_servers,
                    backoff,
                    self.stats().buffered,
                    error,
                )
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _CONNECT_BACKOFF_MAX_S)
        return None

    def _create_producer(self) -> Any:
        # kafka-python 3.0.12 leaks a socket per refused connection while bootstrapping, and a
        # constructor that fails leaves its client open: probe first, close what it made on error.
        proxied = {"proxy_url", "socks5_proxy"} & self.producer_config.keys()
        if not proxied and not _any_accepts(self.bootstrap_servers):
            return None
        clients: list[Any] = []
        make_client = self.producer_config.get(
            "kafka_client", KafkaProducer.DEFAULT_CONFIG["kafka_client"]
        )

        def kafka_client(**kwargs: Any) -> Any:
            clients.append(make_client(**kwargs))
            return clients[-1]

        config = {
            **_PRODUCER_DEFAULTS,
            **self.producer_config,
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",")],
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_bytes,
            "max_request_size": self.max_message_bytes,
            "compression_type": self.compression_type,
            "kafka_client": kafka_client,
        }
        try:
            return KafkaProducer(**config)
        except Exception:
            for client in clients:
                client.close()
            raise

    def _pump(self, producer: Any) -> None:
        seq = itertools.count()
        while True:
            with self._lock:
                while not (self._queue or self._flush_requested or self._stopping):
                    self._wakeup.wait()
                if self._stopping:
                    return
                chunk = []
                for _ in range(min(len(self._queue), _DRAIN_CHUNK)):
                    item = self._queue.popleft()
                    number = next(seq)
                    self._inflight[number] = item.event_id
                    chunk.append((number, item))
                flush_timeout_s = None
                if self._flush_requested and not self._queue:
                    self._flush_requested = False
                    flush_timeout_s = max(0.0, self._flush_deadline - time.monotonic())
            self._send(producer, chunk)
            if flush_timeout_s is not None:
                # Sends now, without the linger; a timeout is for flush() to report.
                with contextlib.suppress(Exception):
                    producer.flush(timeout=flush_timeout_s)

    def _send(self, producer: Any, chunk: list[tuple[int, _Item]]) -> None:
        for index, (number, item) in enumerate(chunk):
            try:
                future = producer.send(item.topic, value=item.value, key=item.key)
            except KafkaTimeoutError as exc:  # no metadata for the topic within max_block_ms
                with self._lock:
                    for later_number, later in reversed(chunk[index:]):
                        del self._inflight[later_number]
                        self._queue.appendleft(later)
                if self._due_warning("metadata", 1):
                    log.warning("publisher waiting for topic=%s error=%s", item.topic, exc)
                self._stop.wait(_METADATA_RETRY_S)
                return
            except MessageSizeTooLargeError:
                self._settle(number, "too_large", None)
            except Exception as exc:
                self._settle(number, "send_failed", exc)
            else:
                future.add_callback(self._on_sent, number)
                future.add_errback(self._on_failed, number)

    def _on_sent(self, number: int, _metadata: object) -> None:
        self._settle(number, None, None)

    def _on_failed(self, number: int, exc: BaseException) -> None:
        self._settle(number, "send_failed", exc)

    def _settle(self, number: int, reason: str | None, exc: BaseException | None) -> None:
        """Count one handed-over event once: sent (reason None) or dropped for ``reason``."""
        try:
            with self._lock:
                event_id = self._inflight.pop(number, None)
                if event_id is not None and reason is None:
                    self._sent += 1
                if not (self._queue or self._inflight):
                    self._idle.notify_all()
            if event_id is not None and reason is not None:
                detail = "" if exc is None else _describe(exc)
                self._drop(reason, [event_id], detail=detail)
        except Exception:
            log.exception("publisher could not count a delivery report")

    def _close_producer(self, producer: Any) -> None:
        try:
            producer.close(timeout=max(0.0, self._flush_deadline - time.monotonic()))
        except Exception as exc:
            # close() raises when its flush times out, before it stops the I/O thread; force it.
            log.info("publisher forcing producer close error=%s", type(exc).__name__)
            sender = getattr(producer, "_sender", None)
            if sender is not None:
                sender.force_close()
                sender.join(1.0)
            try:
                producer.close(timeout=0)
            except Exception as late:
                log.warning("publisher producer close failed error=%s", type(late).__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def _any_accepts(bootstrap_servers: str) -> bool:
    """True when a TCP connection to one of ``host:port[,host:port...]`` succeeds."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection(
                (host.strip("[]") or "localhost", int(port or 9092)), timeout=_PROBE_TIMEOUT_S
            ):
                return True
        except (OSError, ValueError):
            continue
    return False
