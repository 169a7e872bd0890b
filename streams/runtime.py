"""Glue between the stream and the pure core: chunks in, rows to ClickHouse, acks after writes.

Offsets are acknowledged only after everything a chunk produced is durable: its rows inserted
into ClickHouse, its dead letters and alerts delivered to Kafka, and the detector states it
changed written to their changelog. At most ``max_inflight`` writes are in flight; meanwhile
the stream goes on filling the next batch, and when it is due before a writer is free, the agent
waits (backpressure: faust's bounded buffers then stop fetching). Nothing here imports faust:
events are anything with ``ack()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from slowleak.models import Alert, DeadLetter
from slowleak.streams.core import Output, Processor, SourceRecord
from slowleak.streams.core.rows import (
    ALERT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DETECTOR_STATS_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    alert_row,
    dead_letter_row,
)
from slowleak.streams.sink import ClickHouseSink, PendingBatch, SinkUnavailable

__all__ = ["Ackable", "IngestRuntime", "StateStore", "position_key"]

log = logging.getLogger(__name__)

Kind = Literal["events", "feedback"]
#: Sends one message and returns an awaitable that completes when the broker has it.
Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]


class Ackable(Protocol):
    def ack(self) -> bool: ...


class StateStore(Protocol):
    """Where detector states go once per chunk (the worker's changelogged faust table)."""

    def __setitem__(self, key: str, value: Any) -> None: ...

    def take_sent(self) -> Sequence[Awaitable[Any]]:
        """The writes made since the last call, each done once the store has it durably."""
        ...


def position_key(topic: str, partition: int) -> str:
    """Store key of the offset where a partition's next chunk starts, as the states know it."""
    return f"position/{topic}/{partition}"


class IngestRuntime:
    """Per-worker ingest state: the processor, the sink, and what waits for a write."""

    def __init__(
        self,
        *,
        processor: Processor,
        sink: ClickHouseSink,
        send_dead_letter: Send,
        send_alert: Send,
        state_store: StateStore | None = None,
        max_inflight: int = 2,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.processor = processor
        self.sink = sink
        self.send_dead_letter = send_dead_letter
        self.send_alert = send_alert
        self.state_store = state_store
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._acks: list[Ackable] = []
        self._deliveries: list[Awaitable[Any]] = []
        self.max_inflight = max_inflight
        self._inflight: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_inflight, thread_name_prefix="slowleak-sink")
        self.failed_writes = 0
        self.rows_written: dict[str, int] = {}

    async def on_chunk(self, kind: Kind, records: Sequence[SourceRecord], event: Ackable) -> None:
        """Process one chunk of records; ``event`` is acked once its output is durable."""
        # A fresh Output per chunk: agents of both topics interleave at every await below.
        out = Output()
        if kind == "events":
            self.processor.interactions(records, out)
        else:
            self.processor.feedback(records, out)
        if self.state_store is not None:
            # One write per changed key per chunk, inside the chunk's event: the changelog
            # record goes to the chunk's partition, so the state moves with its partition.
            for key, state in self.processor.dirty_states().items():
                self.state_store[key] = state
            if records and (last := records[-1]).offset >= 0:
                # After the states, to the same changelog partition: a restored table that
                # holds this position holds every state written before it. A worker whose
                # table comes back ending before the committed offset reads from here again
                # (``ChunkConsumer``), instead of resuming after calls its states lack.
                key = position_key(last.topic, last.partition)
                self.state_store[key] = last.offset + 1
            # The chunk is acked only once its states are durable too: an offset committed
            # past a state the changelog never got would, after a crash, restore an older
            # state and resume after the calls it lacks (lost, not counted again).
            self._deliveries.extend(self.state_store.take_sent())
        await self._publish(out.dead_letters, out.alerts)
        sink = self.sink
        if out.events:
            sink.add("events", EVENT_COLUMNS, out.events)
        if out.feedback:
            sink.add("feedback", FEEDBACK_COLUMNS, out.feedback)
        if out.stats:
            sink.add("detector_stats", DETECTOR_STATS_COLUMNS, out.stats)
        for table, (columns, rows) in out.tables.items():
            sink.add(table, columns, rows)
        for block in out.blocks:
            sink.add_block(block)
        self._acks.append(event)
        if sink.due:
            await self.flush()

    async def _publish(
        self, dead_letters: Iterable[tuple[DeadLetter, bytes | None]], alerts: Iterable[Alert]
    ) -> None:
        dl_rows = []
        for letter, raw in dead_letters:
            key = letter.key.encode() if letter.key is not None else None
            self._deliveries.append(
                await self.send_dead_letter(key, letter.model_dump_json().encode())
            )
            dl_rows.append(dead_letter_row(letter, raw))
        self.sink.add("dead_letters", DEAD_LETTER_COLUMNS, dl_rows)
        alert_rows = []
        for alert in alerts:
            self._deliveries.append(
                await self.send_alert(alert.app.encode(), alert.model_dump_json().encode())
            )
            alert_rows.append(alert_row(alert))
        self.sink.add("alerts", ALERT_COLUMNS, alert_rows)

    async def flush(self) -> None:
        """Start writing what is buffered, first waiting for a free writer if all are busy."""
        async with self._lock:
            while len(self._inflight) >= self.max_inflight:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            if not self._acks and self.sink.buffered == 0:
                return
            batch = self.sink.take()
            acks, self._acks = self._acks, []
            deliveries, self._deliveries = self._deliveries, []
            task = asyncio.create_task(self._write(batch, acks, deliveries))
            self._inflight.add(task)
            task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sink write crashed error=%r", task.exception())

    async def flush_if_due(self) -> None:
        """For a timer: flush when the age bound is reached and a writer is free."""
        if self.sink.due and len(self._inflight) < self.max_inflight:
            await self.flush()

    async def drain(self) -> None:
        """Write everything and wait for it (at shutdown and before partitions are revoked)."""
        await self.flush()
        async with self._lock:
            if self._inflight:
                await asyncio.wait(set(self._inflight))

    async def _write(
        self, batch: PendingBatch, acks: list[Ackable], deliveries: list[Awaitable[Any]]
    ) -> None:
        if deliveries:
            await asyncio.gather(*deliveries)
        loop = asyncio.get_running_loop()
        delay = self.retry_initial_s
        while not batch.done:
            try:
                result = await loop.run_in_executor(self._executor, self.sink.write, batch)
            except Exception as exc:
                # Never give up on rows whose input is not acknowledged yet: an unexpected error
                # is retried like an unavailable server (and logged as such), so the batch is
                # neither dropped nor acknowledged unwritten.
                self.failed_writes += 1
                level = logging.WARNING if isinstance(exc, SinkUnavailable) else logging.ERROR
                log.log(
                    level, "sink write failed rows=%d retry_in_s=%.1f error=%s",
                    batch.rows, delay, exc,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
            else:
                for table, n in result.rows.items():
                    self.rows_written[table] = self.rows_written.get(table, 0) + n
        for event in acks:
            event.ack()

    def stats(self) -> dict[str, Any]:
        """Counters for the worker's ``/slowleak/stats/`` page."""
        p = self.processor.stats
        return {
            "interactions": p.interactions,
            "feedback": p.feedback,
            "rejected": p.rejected,
            "alerts": p.alerts,
            "rows_written": dict(self.rows_written),
            "rows_buffered": self.sink.buffered,
            "chunks_unacked": len(self._acks),
            "writes_in_flight": len(self._inflight),
            "settled": not self._acks and self.sink.buffered == 0 and not self._inflight,
            "failed_writes": self.failed_writes,
            "detectors": self.processor.detector_stats(),
        }

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.sink.close()
