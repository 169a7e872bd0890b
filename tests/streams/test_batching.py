"""Commit bookkeeping of chunked delivery, on faust's own consumer code (no broker needed).

faust commits up to the highest contiguous acked offset of a partition. A chunk is acked once,
by its last offset; these tests pin that the rest of its range becomes committable exactly then,
never before (a commit taken mid-chunk stops at the previous chunk's end).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

from faust.types import TP
from intervaltree import IntervalTree

from slowleak.streams.batching import ChunkConsumer, ChunkMessage

TOPIC = "slowleak.events"
tp = TP(TOPIC, 0)


def _consumer(committed: int | None = None) -> Any:
    consumer: Any = object.__new__(ChunkConsumer)
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._committed_offset[tp] = committed
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._gap = defaultdict(IntervalTree)
    consumer._unacked_messages = WeakSet()
    consumer._n_acked = 0
    consumer._waiting_for_ack = None
    consumer._chunk_first = {}
    consumer.app = SimpleNamespace(
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
        batched_topics=frozenset({TOPIC}),
    )
    return consumer


def _chunk(first: int, last: int) -> ChunkMessage:
    records = [
        SimpleNamespace(
            offset=o, timestamp=1_700_000_000_000, timestamp_type=0, serialized_value_size=10
        )
        for o in range(first, last + 1)
    ]
    return ChunkMessage(tp, records, generation_id=1)


def _fetched(consumer: Any, chunk: ChunkMessage, previous_last: int | None) -> None:
    """What getmany and faust's fetch loop do when a chunk is handed out."""
    consumer._chunk_first[tp] = chunk.first_offset
    if previous_last and chunk.offset - previous_last > 1:
        asyncio.run(consumer._add_gap(tp, previous_last + 1, chunk.offset))


def test_chunk_message_carries_its_range_and_records() -> None:
    chunk = _chunk(10, 14)
    assert (chunk.first_offset, chunk.offset) == (10, 14)
    assert [r.offset for r in chunk.value] == [10, 11, 12, 13, 14]
    assert chunk.serialized_value_size == 50


def test_first_chunk_after_assignment_commits_its_whole_range() -> None:
    consumer = _consumer(committed=None)
    chunk = _chunk(0, 999)
    _fetched(consumer, chunk, previous_last=None)
    assert consumer.ack(chunk) is True
    assert consumer._new_offset(tp) == 1000


def test_first_chunk_after_restart_continues_from_the_committed_offset() -> None:
    consumer = _consumer(committed=5000)
    chunk = _chunk(5000, 5999)
    _fetched(consumer, chunk, previous_last=None)
    consumer.ack(chunk)
    assert consumer._new_offset(tp) == 6000


def test_commit_mid_chunk_stops_at_previous_chunk_end() -> None:
    consumer = _consumer(committed=None)
    first, second = _chunk(0, 999), _chunk(1000, 1999)
    _fetched(consumer, first, previous_last=None)
    _fetched(consumer, second, previous_last=999)
    consumer.ack(first)
    assert consumer._new_offset(tp) == 1000  # second is still being processed
    consumer._committed_offset[tp] = 1000
    assert consumer._new_offset(tp) is None  # nothing new until second is acked
    consumer.ack(second)
    assert consumer._new_offset(tp) == 2000


def test_chunks_acked_out_of_order_commit_only_when_contiguous() -> None:
    consumer = _consumer(committed=None)
    chunks = [_chunk(0, 99), _chunk(100, 199), _chunk(200, 299)]
    previous = None
    for chunk in chunks:
        _fetched(consumer, chunk, previous)
        previous = chunk.offset
    consumer.ack(chunks[0])
    consumer.ack(chunks[2])
    assert consumer._new_offset(tp) == 100
    consumer._committed_offset[tp] = 100
    consumer.ack(chunks[1])
    assert consumer._new_offset(tp) == 300


def test_second_ack_of_a_chunk_changes_nothing() -> None:
    consumer = _consumer(committed=None)
    chunk = _chunk(0, 9)
    assert consumer.ack(chunk) is True
    assert consumer.ack(chunk) is False
    assert consumer._new_offset(tp) == 10


def test_single_record_chunk() -> None:
    consumer = _consumer(committed=41)
    chunk = _chunk(41, 41)
    consumer.ack(chunk)
    assert consumer._new_offset(tp) == 42


def test_offsets_missing_between_chunks_are_a_real_gap() -> None:
    """A hole before a chunk (e.g. a transaction marker) must not stall commits."""
    consumer = _consumer(committed=None)
    first, second = _chunk(0, 99), _chunk(101, 199)  # offset 100 never arrives
    _fetched(consumer, first, previous_last=None)
    _fetched(consumer, second, previous_last=99)
    consumer.ack(first)
    assert consumer._new_offset(tp) == 100
    consumer._committed_offset[tp] = 100
    consumer.ack(second)
    assert consumer._new_offset(tp) == 200


class _Thread:
    """The consumer thread's seek, recorded."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TP, int]] = []
        self._consumer = SimpleNamespace(
            seek=lambda t, o: self.seeks.append((t, o)),
            beginning_offsets=lambda tps: dict.fromkeys(tps, 0),
        )

    def _ensure_consumer(self) -> Any:
        return self._consumer

    def assignment(self) -> set[TP]:
        return {tp}

    async def call_thread(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _delivering(committed: int | None) -> Any:
    """A consumer just past a seek to ``committed`` (as :meth:`perform_seek` leaves it)."""
    consumer = _consumer(committed)
    consumer._thread = _Thread()
    consumer._seeking = False
    consumer._seek_epoch = 1
    consumer._dropped = {}
    consumer._next = {} if committed is None else {tp: committed}
    consumer._gap_sought = {}
    consumer._starts = {} if committed is None else {tp: committed}
    consumer.rewound_records = 0
    consumer._read_offset = defaultdict(lambda: None)
    consumer.log = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
    return consumer


def _deliver(consumer: Any, first: int, last: int) -> list[int]:
    records = _chunk(first, last).value
    delivered = asyncio.run(consumer._since_seek(tp, records, consumer._seek_epoch))
    return [r.offset for r in delivered]


def test_a_chunk_starting_past_the_sought_offset_is_dropped_and_the_partition_sought_back() -> None:
    """A fetch that raced a seek can hand out records from further on; delivered first, the
    records it skipped would come after records with higher offsets (behind a window's fence)."""
    consumer = _delivering(committed=500)
    assert _deliver(consumer, 800, 899) == []
    assert consumer._thread.seeks == [(tp, 500)]
    assert _deliver(consumer, 500, 599) == list(range(500, 600))
    assert _deliver(consumer, 600, 650) == list(range(600, 651))


def test_a_chunk_past_the_last_one_handed_out_is_sought_back_too() -> None:
    consumer = _delivering(committed=None)
    assert _deliver(consumer, 0, 99) == list(range(100))
    assert _deliver(consumer, 300, 399) == []
    assert consumer._thread.seeks == [(tp, 100)]
    assert _deliver(consumer, 100, 199) == list(range(100, 200))


def test_offsets_still_missing_after_seeking_back_are_a_real_gap() -> None:
    """Compacted away, transaction markers, deleted by retention: seek back once, then go on."""
    consumer = _delivering(committed=500)
    assert _deliver(consumer, 510, 599) == []
    assert _deliver(consumer, 510, 599) == list(range(510, 600))
    assert consumer._thread.seeks == [(tp, 500)]
    assert _deliver(consumer, 600, 610) == list(range(600, 611))


def test_records_already_handed_out_are_trimmed() -> None:
    consumer = _delivering(committed=100)
    assert _deliver(consumer, 50, 149) == list(range(100, 150))
    assert _deliver(consumer, 120, 159) == list(range(150, 160))
    assert _deliver(consumer, 140, 155) == []
    assert consumer._thread.seeks == []


def test_a_chunk_fetched_before_the_last_seek_is_dropped() -> None:
    consumer = _delivering(committed=100)
    records = _chunk(100, 199).value
    stale_epoch = consumer._seek_epoch - 1
    assert asyncio.run(consumer._since_seek(tp, records, stale_epoch)) == ()
    assert consumer._thread.seeks == [(tp, 100)]


def _restored(committed: int | None, position: int | None) -> Any:
    """A consumer past the seek to ``committed`` whose app's restored states end at
    ``position``, after :meth:`ChunkConsumer._anchor_starts`."""
    consumer = _delivering(committed)
    consumer.assignment = lambda: {tp, TP("other", 0)}
    consumer.app.restored_position = lambda t: position if t == tp else 0
    asyncio.run(consumer._anchor_starts())
    consumer._next.update(consumer._starts)
    return consumer


def test_a_partition_whose_restored_states_end_before_the_commit_is_read_again_from_there() -> None:
    """States written before a commit but missing from the changelog: resuming at the committed
    offset would skip calls the restored states never counted."""
    consumer = _restored(committed=500, position=420)
    assert consumer._thread.seeks == [(tp, 420)] and consumer.rewound_records == 80
    assert _deliver(consumer, 420, 519) == list(range(420, 520))
    # A chunk fetched before that seek is dropped, and the partition sought back to 420 again.
    stale = _chunk(500, 599).value
    assert asyncio.run(consumer._since_seek(tp, stale, consumer._seek_epoch - 1)) == ()
    assert consumer._thread.seeks == [(tp, 420), (tp, 420)]


def test_restored_states_at_or_past_the_commit_change_nothing() -> None:
    for position in (500, 530, None):
        consumer = _restored(committed=500, position=position)
        assert consumer._thread.seeks == [] and consumer.rewound_records == 0
        assert _deliver(consumer, 500, 520) == list(range(500, 521))


def test_with_nothing_committed_reading_starts_where_the_states_end_and_is_held_there() -> None:
    """With no commit, the fetch position was the only anchor: a stale chunk's first offset
    (5,000) became the start, and 1,830-4,999 were never read (rows and windows lost)."""
    consumer = _restored(committed=None, position=1830)
    assert consumer._thread.seeks == [(tp, 1830)] and consumer.rewound_records == 0
    assert _deliver(consumer, 5000, 9999) == []  # past the start: sought back
    assert consumer._thread.seeks[-1] == (tp, 1830)
    stale = _chunk(5000, 9999).value
    assert asyncio.run(consumer._since_seek(tp, stale, consumer._seek_epoch - 1)) == ()
    assert consumer._thread.seeks[-1] == (tp, 1830)
    assert _deliver(consumer, 1830, 4999) == list(range(1830, 5000))


def test_with_nothing_committed_or_stored_reading_starts_at_the_log_start() -> None:
    consumer = _restored(committed=None, position=None)
    assert consumer._thread.seeks == [(tp, 0)]
    assert _deliver(consumer, 2256, 2300) == []
    assert consumer._thread.seeks[-1] == (tp, 0)
