"""Chunked delivery: one faust event per fetched chunk of records of a partition.

faust delivers every Kafka record as its own event, through several asyncio tasks and futures
per message; measured here that path tops out near 8,000 events/s whatever the settings, a
tenth of what the aiokafka client underneath reads. slowleak's agents do not need per-record
stream operators: they validate, compute and write rows in batches. So for the topics named in
``app.batched_topics`` this consumer hands the conductor one :class:`ChunkMessage` per partition
per fetch, whose ``value`` is the tuple of aiokafka ``ConsumerRecord`` s. Everything else (tables,
changelogs, other topics) keeps faust's per-record path unchanged.

Commit bookkeeping. faust commits, per partition, up to the highest *contiguous* acked offset.
A chunk is one message carrying the offset of its last record, so when it is acked the offsets of
the rest of the chunk are registered as a gap (faust's own mechanism for offsets that never
arrive, e.g. in compacted topics). They are registered only at ack time (faust's fetch loop would
register them as a gap at fetch time; :meth:`ChunkConsumer._add_gap` narrows that to the offsets
before the chunk), so a commit taken while a chunk is still being processed stops at the end of
the previous chunk, whatever order chunks are acked in.

This touches faust-streaming 0.15.3 internals (``Consumer.getmany``, ``ack``, ``_gap``), which is
why that version is pinned exactly; tests/streams/test_batching.py pins the behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar

from faust import Schema
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, ensure_aiokafka_TP
from faust.types import TP, AppT, Message
from faust.types.tuples import ConsumerMessage, ack_lock

from slowleak.streams.producing import DurableFlushProducer

__all__ = ["ChunkConsumer", "ChunkMessage", "ChunkSchema", "ChunkTransport"]

#: Rounds of seeking again for chunks fetched while a seek was in flight.
MAX_RESEEKS = 5


class ChunkMessage(ConsumerMessage):
    """A chunk of consecutive records of one partition, delivered as one message.

    ``offset`` is the last record's offset, ``first_offset`` the first's; ``value`` is the tuple of
    records (each with ``offset``, ``key``, ``value``, ``timestamp``, ``headers``).
    """

    __slots__ = ("first_offset",)

    def __init__(self, tp: TP, records: Sequence[Any], generation_id: int | None) -> None:
        last = records[-1]
        super().__init__(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else 0.0,
            last.timestamp_type,
            None,
            None,
            tuple(records),  # type: ignore[arg-type]
            None,
            0,
            sum(r.serialized_value_size for r in records),
            tp,
            generation_id=generation_id,
        )
        self.first_offset: int = records[0].offset


class ChunkSchema(Schema):  # type: ignore[type-arg]
    """Topic schema that passes a chunk's records through undecoded: the pure core decodes."""

    def compile(self, app: AppT, **_: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Message, *, propagate: bool = False) -> Any:
            return create_event(None, message.value, None, message)

        return decode


class _ChunkConsumerThread(AIOKafkaConsumerThread):
    """faust's consumer thread with a configurable fetch wait (faust hard-codes 1,500 ms)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = int(wait_ms)
        return consumer


class ChunkConsumer(faust_aiokafka.Consumer):
    """aiokafka consumer that delivers ``app.batched_topics`` as :class:`ChunkMessage` s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: First offset of the chunk last handed out, per partition.
        self._chunk_first: dict[TP, int] = {}
        #: Partitions were assigned or a seek is in flight: chunks fetched now are dropped
        #: until the seek to the committed offsets is done (see :meth:`perform_seek`).
        self._seeking = False
        #: Seeks done; chunks fetched under an earlier count predate the last seek.
        self._seek_epoch = 0
        #: Lowest first offset of the chunks dropped during the seek in flight, per partition.
        self._dropped: dict[TP, int] = {}
        #: Offset each partition's next chunk should start at: after the last record handed
        #: out, or where the last seek put it. Unknown until a seek or a first chunk.
        self._next: dict[TP, int] = {}
        #: Expected offset a partition was sought back to when a chunk started past it; a
        #: chunk starting past it again means the offsets in between are really missing.
        self._gap_sought: dict[TP, int] = {}
        #: Where each assigned partition starts reading since the last seek: its committed
        #: offset, or where the restored states end, or the log's start (:meth:`_anchor_starts`).
        self._starts: dict[TP, int] = {}
        #: Records read again since start because restored states ended before the committed
        #: offset (for the stats page and tests).
        self.rewound_records = 0

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ChunkConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        epoch = self._seek_epoch
        records, active_partitions = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            await self.perform_seek()
            return
        batched = self._batched
        generation_id = self.app.consumer_generation_id
        to_message = self._to_message
        for tp, tp_records in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if not tp_records or not (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batched:
                delivered = await self._since_seek(tp, tp_records, epoch)
                if not delivered:
                    continue
                chunk = ChunkMessage(tp, delivered, generation_id)
                self._chunk_first[tp] = chunk.first_offset
                yield tp, chunk
            else:
                for record in tp_records:
                    yield tp, to_message(tp, record)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # Until the recovery that follows seeks to the committed offsets, positions are not
        # where this generation starts reading.
        self._seeking = True
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset, dropping what is fetched meanwhile.

        faust's recovery resumes the flow to read the changelogs and leaves it running while it
        seeks the stream partitions to their committed offsets, so chunks can be fetched during
        the seek. Delivered, a chunk fetched from the old position was processed twice; one
        fetched after the seek moved the position past records that were then never
        delivered, once faust's read-offset check (moved forward by a callback that finished
        after the seek) skipped the chunk the position was set back for. So chunks of batched
        topics fetched before or during a seek are dropped, and their partitions sought again.
        """
        self._seeking = True
        self._next = {}
        self._gap_sought = {}
        self._starts = {}
        try:
            await super().perform_seek()
            await self._anchor_starts()
            # A fetch that ended after the seek above moved the position past what it dropped.
            for _ in range(MAX_RESEEKS):
                dropped, self._dropped = self._dropped, {}
                if not dropped:
                    break
                for tp, first in dropped.items():
                    await self._reseek(tp, first)
        finally:
            self._seeking = False
            self._seek_epoch += 1
        self._next.update(self._starts)

    async def _anchor_starts(self) -> None:
        """Give every batched partition a known start, for :meth:`_since_seek` to hold it to.

        The app records, with each chunk's states, the offset its partition's next chunk starts
        at (``app.restored_position``), stored once the chunk's rows are written. Where nothing
        is committed yet, reading starts there, or at the log's start without a stored
        position: the fetch position alone is no anchor (a stale chunk's first offset taken
        for one skipped 3,170 calls in a test, rows and windows). Where the restored states end
        before the committed offset (a changelog that lacks states written before the commit),
        resuming at the commit would skip calls the states never counted: reading starts where
        they end, with a warning.
        """
        restored = getattr(self.app, "restored_position", None)
        for tp in self.assignment():
            if tp.topic not in self._batched:
                continue
            committed = self._committed_offset.get(tp)
            position = restored(tp) if restored is not None else None
            if committed is None:
                start = position if position is not None else await self._log_start(tp)
            elif position is not None and position < committed:
                self.log.warning(
                    "restored state of %s ends at offset %s, before the committed offset %s: "
                    "reading %s records again (its changelog lacked states written before "
                    "the commit)", tp, position, committed, committed - position,
                )  # fmt: skip
                self.rewound_records += committed - position
                start = position
            else:
                self._starts[tp] = committed  # where faust's seek put it
                continue
            self._starts[tp] = start
            await self._seek_to(tp, start)

    async def _log_start(self, tp: TP) -> int:
        thread = self._thread
        consumer = thread._ensure_consumer()
        found = await thread.call_thread(consumer.beginning_offsets, [ensure_aiokafka_TP(tp)])
        return int(next(iter(found.values())))

    async def _reseek(self, tp: TP, first: int) -> None:
        if tp not in self.assignment():
            return
        # Where this generation starts reading (:meth:`_anchor_starts`). Should it not be known
        # (assigned since), back to the lowest of the offset dropped and where the last seek
        # put the partition.
        start = self._starts.get(tp)
        offset = start if start is not None else min(first, self._next.get(tp, first))
        self.log.info(
            "chunk fetched during a seek dropped tp=%s first=%s reseek=%s", tp, first, offset
        )
        await self._seek_to(tp, offset)

    async def _seek_to(self, tp: TP, offset: int) -> None:
        # In the consumer's thread, as faust's own seek to the committed offsets: aiokafka's
        # fetcher is not thread-safe (a seek from this thread while the consumer thread hands
        # out records crashed the fetcher with a KeyError).
        thread = self._thread
        await thread.call_thread(thread._ensure_consumer().seek, tp, offset)
        self._read_offset[tp] = offset if offset else None
        self._next[tp] = offset
        # Records fetched before this seek and handed out after it are stale too.
        self._seek_epoch += 1

    async def _since_seek(self, tp: TP, records: Sequence[Any], epoch: int) -> Sequence[Any]:
        """``records`` of ``tp`` to deliver, in offset order with nothing skipped.

        None if fetched before or during the last seek. Records before the offset expected next
        (already handed out, or before where the last seek put the partition) are trimmed. A
        chunk that starts past that offset is dropped and the partition sought back to it once:
        a fetch that raced a seek can hand out records from further on, and those handed out
        before the ones skipped would move the windows' fences past them. If the chunk after
        that seek starts past it again, the offsets in between are really missing (compacted,
        transaction markers, deleted by retention) and it is delivered.
        """
        first = records[0].offset
        if self._seeking:
            self._dropped[tp] = min(first, self._dropped.get(tp, first))
            return ()
        if epoch != self._seek_epoch:
            await self._reseek(tp, first)
            return ()
        expected = self._next.get(tp)
        if expected is not None and first < expected:
            records = [r for r in records if r.offset >= expected]
            if not records:
                return ()
            first = records[0].offset
        if expected is not None and first > expected:
            if self._gap_sought.get(tp) != expected:
                self._gap_sought[tp] = expected
                self.log.info(
                    "chunk started past the expected offset dropped tp=%s first=%s seek=%s",
                    tp, first, expected,
                )  # fmt: skip
                await self._seek_to(tp, expected)
                return ()
            self.log.warning(
                "offsets %s-%s of %s never arrived (compacted, transaction markers or deleted "
                "by retention)", expected, first - 1, tp,
            )  # fmt: skip
        self._gap_sought.pop(tp, None)
        self._next[tp] = records[-1].offset + 1
        if (read := self._read_offset.get(tp)) is not None and read > records[-1].offset:
            # A callback that finished after the seek moved faust's read offset past this
            # chunk, which faust would skip as already read.
            self._read_offset[tp] = first - 1 if first > 0 else None
        return records

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """faust's fetch loop calls this when a message's offset jumps past the last one read.

        For a chunk the jump is its own range, which must become committable only when the
        chunk is acked (see :meth:`ack`): only offsets before the chunk's first record are a
        real gap (records that never arrive, e.g. transaction markers or compacted away).
        """
        first = self._chunk_first.get(tp) if tp.topic in self._batched else None
        if first is not None:
            offset_to = min(offset_to, first - 1)
        if offset_from <= offset_to:
            await super()._add_gap(tp, offset_from, offset_to)

    @property
    def _batched(self) -> frozenset[str]:
        return getattr(self.app, "batched_topics", frozenset())

    def ack(self, message: Message) -> bool:
        if isinstance(message, ChunkMessage):
            with ack_lock:
                if not message.acked:
                    self._register_chunk(message)
        return bool(super().ack(message))

    def _register_chunk(self, message: ChunkMessage) -> None:
        """Mark the chunk's offsets before its last as done (committable once contiguous)."""
        tp = message.tp
        start = message.first_offset
        committed = self._committed_offset[tp]
        if committed is not None:
            start = max(start, committed)
        if start < message.offset:
            gap = self._gap[tp]
            gap.addi(start, message.offset)
            gap.merge_overlaps()


class ChunkTransport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`ChunkConsumer`, and a producer whose flush before
    each commit waits for every changelog record (:mod:`slowleak.streams.producing`)."""

    Consumer: ClassVar[type] = ChunkConsumer
    Producer: ClassVar[type] = DurableFlushProducer


def batched_topic_names(topics: Iterable[Any]) -> frozenset[str]:
    """Names of faust topics, for ``app.batched_topics``."""
    return frozenset(name for t in topics for name in t.topics)
