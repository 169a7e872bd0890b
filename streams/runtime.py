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
from dataclasses import asdict
from typing import Any, Literal, Protocol

from slowleak.models import Alert, DeadLetter
from slowleak.streams.core import Output, Processor, SourceRecord
from slowleak.streams.core.detectors.join import RecalledCall
from slowleak.streams.core.rows import (
    ALERT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DETECTOR_STATS_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    alert_row,
    dead_letter_row,
)
from slowleak.streams.recall import CallRecall
from slowleak.streams.sink import ClickHouseSink, PendingBatch, SinkUnavailable
from slowleak.streams.state_codec import manifest_gen, split_record

__all__ = ["Ackable", "IngestRuntime", "StateStore", "position_key", "stored_position"]

log = logging.getLogger(__name__)

Kind = Literal["events", "feedback"]
#: Sends one message and returns an awaitable that completes when the broker has it.
Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]


class Ackable(Protocol):
    def ack(self) -> bool: ...


class StateStore(Protocol):
    """Where detector states persist (the worker's changelogged faust table)."""

    def get(self, key: str) -> Any: ...

    def stored(self, key: str) -> Any:
        """The value stored under ``key`` as it is: for a state in parts, its manifest."""
        ...

    def dump(self, value: Any) -> bytes:
        """``value`` encoded as the store keeps it (a snapshot: later changes do not reach it)."""
        ...

    def put(self, partition: int, key: str, raw: bytes) -> Awaitable[Any]:
        """Store ``raw`` (from :meth:`dump`) under ``key``, logged to ``partition``; the result
        is done once the store has it durably."""
        ...


def position_key(topic: str, partition: int) -> str:
    """Store key of the offset where a partition's next chunk starts, as the states know it."""
    return f"position/{topic}/{partition}"


def stored_position(store: StateStore, topic: str, partition: int) -> int | None:
    """The offset where the partition's next chunk starts as ``store``'s states know it (None:
    no chunk of it was stored)."""
    position = store.get(position_key(topic, partition))
    return position if isinstance(position, int) else None


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
        max_state_bytes: int | None = None,
        recall: CallRecall | None = None,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        if max_state_bytes is not None and max_state_bytes < 1:
            raise ValueError("max_state_bytes must be at least 1")
        self.processor = processor
        self.sink = sink
        self.send_dead_letter = send_dead_letter
        self.send_alert = send_alert
        self.state_store = state_store
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._acks: list[Ackable] = []
        self._deliveries: list[Awaitable[Any]] = []
        #: States of the chunks not yet written, per chunk: (partition, [(key, snapshot)]).
        self._states: list[tuple[int, list[tuple[str, bytes]]]] = []
        #: Done once the last write task started has put its states (they go in write order).
        self._states_put: asyncio.Future[None] | None = None
        self.max_inflight = max_inflight
        self._inflight: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._chunk_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_inflight, thread_name_prefix="slowleak-sink")
        self.failed_writes = 0
        self.rows_written: dict[str, int] = {}
        #: Largest state record (key and value) the store takes: the producer refuses larger.
        #: A larger state is stored in parts (``state_codec.split_record``).
        self.max_state_bytes = max_state_bytes
        #: States of the partitions here last stored in parts: how many, by store key.
        self.states_in_parts: dict[str, int] = {}
        #: The largest snapshot seen (store key, bytes), for the stats page.
        self.largest_state: tuple[str, int] = ("", 0)
        #: The generation of the parts last written of each state in parts, while its
        #: partition is here (the next write takes the other one).
        self._part_gens: dict[str, int] = {}
        self._warned_parts: set[str] = set()
        #: Looks up the calls read before the start that feedback judges (None: not done).
        self.recall = recall

    async def on_chunk(self, kind: Kind, records: Sequence[SourceRecord], event: Ackable) -> None:
        """Process one chunk of records; ``event`` is acked once its output is durable."""
        # One chunk at a time from processing to handing its output over: the agents of both
        # topics (and their chunks of one app) then hand states over in the order they were
        # taken, and never a state before its own chunk's rows, alerts and dead letters.
        async with self._chunk_lock:
            # Records before the stored position are in the stored states already (read again
            # after a crash): their rows are written again, the detectors do not see them twice.
            applied = self._applied(records)
            recalled = await self._recall(records, applied) if kind == "feedback" else []
            out, states = self._process(kind, records, applied, recalled)
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
            if states:
                self._states.append((records[-1].partition, states))
            self._acks.append(event)
        if sink.due:
            await self.flush()

    def _applied(self, records: Sequence[SourceRecord]) -> int | None:
        """The stored position of the chunk's partition (None: no states, or none stored)."""
        store = self.state_store
        if store is None or not records or records[-1].offset < 0:
            return None
        return stored_position(store, records[-1].topic, records[-1].partition)

    async def _recall(
        self, records: Sequence[SourceRecord], applied: int | None
    ) -> list[RecalledCall]:
        """The calls read before this worker started (or before their partition came to it)
        that the feedback in ``records`` judges, found in ClickHouse. On a failure, none: that
        feedback waits as early, and expires unless its call is read again."""
        recall = self.recall
        if recall is None or not records:
            return []
        wanted = self.processor.feedback_to_recall(records, applied_before=applied)
        if not wanted:
            return []
        try:
            return await asyncio.to_thread(recall.lookup, wanted)
        except Exception as exc:  # the worker goes on: these outcomes are counted as expired
            if recall.stats.failed % 100 == 1:
                log.warning(
                    "could not look up the calls of %d feedback in ClickHouse (failures=%d, "
                    "error=%r): their outcomes wait for calls read before the worker started, "
                    "and expire after an hour (feedback_join.expired_early on the stats page)",
                    len(wanted), recall.stats.failed, exc,
                )  # fmt: skip
            return []

    def _process(
        self,
        kind: Kind,
        records: Sequence[SourceRecord],
        applied: int | None,
        recalled: Sequence[RecalledCall] = (),
    ) -> tuple[Output, list[tuple[str, bytes]]]:
        """The chunk's output, and snapshots of the states it changed (stored by ``_write``
        once that output is durable: stored states then never hold the effect of an output a
        crash lost). One per changed key, then the partition's next offset, all to the chunk's
        partition: a restored table holding a position holds the states written before it, so
        it knows which records its states have seen (``applied``)."""
        out = Output()
        store = self.state_store
        last = records[-1] if records else None
        position = None
        if store is not None and last is not None and last.offset >= 0:
            position = position_key(last.topic, last.partition)
        if kind == "events":
            self.processor.interactions(records, out, applied_before=applied)
        else:
            self.processor.feedback(records, out, applied_before=applied, recalled=recalled)
        if store is None or last is None:
            return out, []
        states = []
        for key, st in self.processor.dirty_states().items():
            states += self._records(key, store.dump(st))
        if position is not None:
            # Never back: a chunk read again below the stored position leaves it where it is
            # (the states it stores are those restored, past this chunk).
            after = last.offset + 1 if applied is None else max(applied, last.offset + 1)
            states.append((position, store.dump(after)))
        return out, states

    def _records(self, key: str, raw: bytes) -> list[tuple[str, bytes]]:
        """The records that store the snapshot ``raw`` of ``key``: itself, or, when it is
        larger than a record may be, its parts and their manifest (logged the first time)."""
        size = len(key) + len(raw)
        if size > self.largest_state[1]:
            self.largest_state = (key, size)
        limit = self.max_state_bytes
        if limit is None or size <= limit:
            self.states_in_parts.pop(key, None)
            return [(key, raw)]
        gen = self._part_gens.get(key)
        if gen is None:
            assert self.state_store is not None  # states are kept only with a store
            gen = manifest_gen(self.state_store.stored(key))
        gen = self._part_gens[key] = 0 if gen == 1 else 1
        records = split_record(key, raw, limit=limit, gen=gen)
        if key not in self._warned_parts:
            self._warned_parts.add(key)
            log.warning(
                "detector state key=%s is %d bytes, more than the largest record the producer "
                "takes (%d): it is stored in %d parts, each time it changes. To store it whole, "
                "raise the faust option producer_max_request_size and the broker's "
                "max.message.bytes for the state changelog topic.",
                key, size, limit, len(records) - 1,
            )  # fmt: skip
        self.states_in_parts[key] = len(records) - 1
        return records

    def forget_states(self) -> None:
        """Partitions moved: drop what is kept of their states (the detectors' and the
        generations of states in parts); they are read from the store again when used."""
        self.processor.forget_states()
        self._part_gens.clear()
        self.states_in_parts.clear()

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
            if not self._acks and self.sink.buffered == 0:  # states go with their chunk's ack
                return
            batch = self.sink.take()
            acks, self._acks = self._acks, []
            deliveries, self._deliveries = self._deliveries, []
            states, self._states = self._states, []
            after, self._states_put = self._states_put, asyncio.get_running_loop().create_future()
            task = asyncio.create_task(
                self._write(batch, acks, deliveries, states, after, self._states_put)
            )
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
        """Write everything and wait for it (at shutdown and before partitions are revoked),
        the chunk being handed over included: its states, stored after the revoke, would reach
        the changelog of a partition another worker may already own."""
        async with self._chunk_lock:
            await self.flush()
        async with self._lock:
            if self._inflight:
                await asyncio.wait(set(self._inflight))

    async def _write(
        self,
        batch: PendingBatch,
        acks: list[Ackable],
        deliveries: list[Awaitable[Any]],
        states: list[tuple[int, list[tuple[str, bytes]]]],
        after: asyncio.Future[None] | None,
        put: asyncio.Future[None],
    ) -> None:
        try:
            await self._write_rows(batch, deliveries)
            # States in the order their chunks were read, whatever order the writes end in.
            if after is not None:
                await after
            stored = [self._put(p, key, raw) for p, items in states for key, raw in items]
        finally:
            if not put.done():
                put.set_result(None)
        # Acked once the states are durable too: an offset committed past states the store
        # never got would, after a crash, restore older states and resume after calls they lack.
        if stored:
            await asyncio.gather(*stored)
        for event in acks:
            event.ack()

    def _put(self, partition: int, key: str, raw: bytes) -> Awaitable[Any]:
        assert self.state_store is not None  # states are kept only with a store
        return self.state_store.put(partition, key, raw)

    async def _write_rows(self, batch: PendingBatch, deliveries: list[Awaitable[Any]]) -> None:
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
            "replayed": p.replayed,
            "writes_in_flight": len(self._inflight),
            "settled": not self._acks and self.sink.buffered == 0 and not self._inflight,
            "failed_writes": self.failed_writes,
            "states_in_parts": dict(self.states_in_parts),
            "largest_state": {"key": self.largest_state[0], "bytes": self.largest_state[1]},
            "detectors": self.processor.detector_stats(),
            "recall": asdict(self.recall.stats) if self.recall is not None else None,
        }

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.sink.close()
