"""Acks follow durable writes: the runtime with a fake ClickHouse client and fake sends."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.serializers import codecs

from slowleak.streams.core import Processor
from slowleak.streams.core import Record as Rec
from slowleak.streams.core.cost import CostWindows
from slowleak.streams.core.detectors import default_detectors
from slowleak.streams.core.lifecycle import AlertLifecycle
from slowleak.streams.recall import CallRecall
from slowleak.streams.runtime import IngestRuntime
from slowleak.streams.sink import ClickHouseSink
from slowleak.streams.state_codec import STATE_CODEC, read_state
from slowleak.streams.synthetic import TrafficGenerator

EVENT = {
    "event_id": "e", "ts": "2026-11-25T10:00:00Z", "app": "a", "model": "m",
    "input_tokens": 1, "output_tokens": 2, "latency_ms": 3.0, "status": "ok",
}  # fmt: skip


class FakeEvent:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


class FakeClient:
    def __init__(self, failures: int = 0, tokens: set[str] | None = None) -> None:
        self.failures = failures
        self.inserts: list[tuple[str, int]] = []
        #: Deduplication tokens of the blocks inserted (a block sent twice is one in ClickHouse).
        self.tokens = tokens if tokens is not None else set()

    def insert(
        self, table: str, rows: list[Any], column_names: list[str], settings: Any = None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ClickHouse is down")
        self.inserts.append((table, len(rows)))
        if settings:
            self.tokens.add(settings["insert_deduplication_token"])

    def close(self) -> None:
        pass


def _runtime(
    client: FakeClient,
    sent: list[bytes],
    batch_rows: int = 1000,
    *,
    processor: Processor | None = None,
    recall: CallRecall | None = None,
) -> IngestRuntime:
    async def send(key: bytes | None, value: bytes) -> Any:
        sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    return IngestRuntime(
        processor=processor if processor is not None else Processor(),
        sink=ClickHouseSink(
            client_factory=lambda: client, batch_rows=batch_rows, flush_interval_ms=10_000
        ),
        send_dead_letter=send,
        send_alert=send,
        retry_initial_s=0.01,
        recall=recall,
    )


def _chunk(n: int, start: int = 0, bad: int = 0) -> list[Rec]:
    records = [
        Rec("t", 0, start + i, b"a", orjson.dumps({**EVENT, "event_id": f"e{start + i}"}))
        for i in range(n)
    ]
    records += [Rec("t", 0, start + n + i, b"a", b"nope") for i in range(bad)]
    return records


def test_chunks_are_acked_only_after_their_rows_are_written() -> None:
    async def scenario() -> None:
        client, sent = FakeClient(), []
        runtime = _runtime(client, sent)
        first, second = FakeEvent(), FakeEvent()
        await runtime.on_chunk("events", _chunk(10), first)
        await runtime.on_chunk("events", _chunk(5, 10, bad=2), second)
        assert not first.acked and not second.acked and client.inserts == []
        await runtime.drain()
        assert first.acked and second.acked
        assert sorted(client.inserts) == [("dead_letters", 2), ("events", 15)]
        assert len(sent) == 2
        assert runtime.stats()["settled"] is True

    asyncio.run(scenario())


def test_size_bound_starts_a_write_without_waiting_for_the_timer() -> None:
    async def scenario() -> None:
        client = FakeClient()
        runtime = _runtime(client, [], batch_rows=10)
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(10), event)
        await runtime.drain()
        assert client.inserts == [("events", 10)] and event.acked

    asyncio.run(scenario())


def test_failed_writes_are_retried_and_nothing_is_acked_meanwhile() -> None:
    async def scenario() -> None:
        client = FakeClient(failures=3)
        runtime = _runtime(client, [])
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(4), event)
        await runtime.flush()
        await asyncio.sleep(0)
        assert not event.acked
        await runtime.drain()
        assert event.acked
        assert client.inserts == [("events", 4)]
        assert runtime.failed_writes == 3
        assert runtime.stats()["rows_written"] == {"events": 4}

    asyncio.run(scenario())


def test_concurrent_chunks_of_both_topics_keep_their_rows_apart() -> None:
    """The events and feedback agents interleave at every await (here: DLQ sends)."""

    async def scenario() -> None:
        client = FakeClient()
        sent: list[bytes] = []
        runtime = _runtime(client, sent)

        async def slow_send(key: bytes | None, value: bytes) -> Any:
            await asyncio.sleep(0.001)
            sent.append(value)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        runtime.send_dead_letter = slow_send
        feedback = [
            Rec(
                "f",
                0,
                i,
                b"a",
                orjson.dumps(
                    {
                        "type": "feedback",
                        "event_id": f"e{i}",
                        "ts": "2026-11-25T10:00:00Z",
                        "app": "a",
                        "outcome": True,
                    }
                ),
            )
            for i in range(7)
        ]
        await asyncio.gather(
            runtime.on_chunk("events", _chunk(20, bad=3), FakeEvent()),
            runtime.on_chunk("feedback", [*feedback, Rec("f", 0, 7, b"a", b"{")], FakeEvent()),
        )
        await runtime.drain()
        assert sorted(client.inserts) == [("dead_letters", 4), ("events", 20), ("feedback", 7)]

    asyncio.run(scenario())


def test_a_writer_that_cannot_connect_retries_and_acks_only_after_the_write() -> None:
    """A writer thread created while ClickHouse is down fails to create its client: its batch is
    kept and retried, not dropped with its chunks acknowledged later by others."""

    async def scenario() -> None:
        client = FakeClient()
        attempts = {"n": 0}

        def factory() -> FakeClient:
            attempts["n"] += 1
            if attempts["n"] <= 2:
                raise ConnectionError("Max retries exceeded: connection refused")
            return client

        runtime = IngestRuntime(
            processor=Processor(),
            sink=ClickHouseSink(client_factory=factory, batch_rows=1000, flush_interval_ms=10_000),
            send_dead_letter=lambda k, v: _done(),
            send_alert=lambda k, v: _done(),
            retry_initial_s=0.01,
        )
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(10), event)
        await runtime.drain()
        assert event.acked and client.inserts == [("events", 10)]
        assert runtime.failed_writes == 2

    asyncio.run(scenario())


async def _done() -> Any:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class ChangelogStore:
    """A state store like the worker's table: each state is the record put last (decoded
    afresh on every read, as a restart decodes the changelog), on the changelog when the test
    says so."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.puts: list[tuple[int, str]] = []
        self.unsent: list[asyncio.Future[None]] = []

    def stored(self, key: str) -> Any:
        raw = self.records.get(key)
        return None if raw is None else codecs.loads(STATE_CODEC, raw)

    def get(self, key: str) -> Any:
        return read_state(key, self.stored(key), self.stored)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.records[key] = self.dump(value)

    def dump(self, value: Any) -> bytes:
        return bytes(codecs.dumps(STATE_CODEC, value))

    def put(self, partition: int, key: str, raw: bytes) -> asyncio.Future[None]:
        self.records[key] = raw
        self.puts.append((partition, key))
        self.unsent.append(asyncio.get_running_loop().create_future())
        return self.unsent[-1]

    def send_all(self) -> None:
        for future in self.unsent:
            if not future.done():
                future.set_result(None)

    def states(self) -> dict[str, Any]:
        """The detectors' states; the partitions' positions and the windows' outboxes (blocks
        not yet known to be written, sent again after a restart) aside."""
        out = {}
        for key in self.records:
            if not key.startswith(("position/", "parts/")):
                out[key] = self.get(key)
                out[key].pop("outbox", None)
        return out


def _stateful(client: FakeClient, store: ChangelogStore) -> IngestRuntime:
    runtime = _runtime(client, [])
    runtime.state_store = store
    runtime.processor = Processor(detectors=[CostWindows(store=store)])
    return runtime


def test_states_are_stored_after_the_rows_and_acked_once_in_the_changelog() -> None:
    """Stored before its rows, a state would after a crash hold the effect of rows that were
    lost; acked before the changelog has it, the committed offset would pass it."""

    async def scenario() -> None:
        client, store = FakeClient(failures=2), ChangelogStore()
        runtime = _stateful(client, store)
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(10), event)
        assert store.records == {}  # nothing stored before the write
        writing = asyncio.create_task(runtime.drain())
        await asyncio.sleep(0.1)
        assert ("events", 10) in client.inserts and runtime.failed_writes == 2
        # The app's window state, then the partition's next offset, to the chunk's partition.
        assert store.puts == [(0, "cost_windows/a"), (0, "position/t/0")]
        assert store["position/t/0"] == 10
        assert not event.acked and not writing.done()
        store.send_all()
        await writing
        assert event.acked

    asyncio.run(scenario())


async def _stored(runtime: IngestRuntime, store: ChangelogStore) -> None:
    """Write what ``runtime`` holds, the changelog taking every record."""
    writing = asyncio.create_task(runtime.drain())
    while not writing.done():
        store.send_all()
        await asyncio.sleep(0.01)
    await writing


def test_a_state_larger_than_a_record_is_stored_in_parts_and_read_back_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record larger than the producer takes would be refused (and the chunk's ack, and every
    later one of the partition, would wait for it for good); not storing it would lose the
    state at the next restart. It is stored in parts, each within the limit."""

    async def scenario() -> None:
        store = ChangelogStore()
        runtime = _stateful(FakeClient(), store)
        runtime.max_state_bytes = 100  # the app's window state is larger
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(10), event)
        await _stored(runtime, store)
        assert event.acked
        n = runtime.stats()["states_in_parts"]["cost_windows/a"]
        assert n >= 3
        assert store.puts == [
            *((0, f"parts/1/{i}/cost_windows/a") for i in range(n)),
            (0, "cost_windows/a"),  # the manifest after its parts
            (0, "position/t/0"),
        ]
        assert all(len(k) + len(raw) <= 100 for k, raw in store.records.items())
        first = store.get("cost_windows/a")
        windows = runtime.processor.detectors[0]
        assert isinstance(windows, CostWindows)
        assert first == windows.dump(windows.obj("a")) | {"v": windows.version}
        # The next change writes the other generation: the parts of the manifest stored
        # last are never overwritten.
        await runtime.on_chunk("events", _chunk(10, start=10), FakeEvent())
        await _stored(runtime, store)
        assert (0, "parts/0/0/cost_windows/a") in store.puts
        # A restarted worker reads the state back whole, and resumes from it.
        restarted = _stateful(FakeClient(), store)
        restarted.max_state_bytes = 100
        await restarted.on_chunk("events", _chunk(10, start=20), FakeEvent())
        await _stored(restarted, store)
        unlimited = ChangelogStore()
        whole = _stateful(FakeClient(), unlimited)
        for start in (0, 10, 20):
            await whole.on_chunk("events", _chunk(10, start=start), FakeEvent())
        await _stored(whole, unlimited)
        assert store.states() == unlimited.states()
        # The restarted worker found generation 0 stored last, and wrote generation 1.
        last = {key: i for i, (_, key) in enumerate(store.puts)}
        assert last["parts/1/0/cost_windows/a"] > last["parts/0/0/cost_windows/a"]

    with caplog.at_level(logging.WARNING, logger="slowleak.streams.runtime"):
        asyncio.run(scenario())
    assert caplog.text.count("detector state key=cost_windows/a is ") == 2  # once per worker
    assert "stored in" in caplog.text and "producer_max_request_size" in caplog.text


def test_parts_without_their_manifest_leave_the_state_stored_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A crash between a state's parts and its manifest: the previous manifest still names
    parts of the other generation, whole. A part lost or damaged makes the state unknown (the
    detector starts afresh), never a wrong one."""

    async def scenario() -> None:
        store = ChangelogStore()
        runtime = _stateful(FakeClient(), store)
        runtime.max_state_bytes = 100
        await runtime.on_chunk("events", _chunk(10), FakeEvent())
        await _stored(runtime, store)
        before = store.get("cost_windows/a")
        # The next write's records, of which only the parts reach the changelog.
        records = runtime._records("cost_windows/a", store.dump(before | {"n": 1}))
        assert [k for k, _ in records][-1] == "cost_windows/a"
        for key, raw in records[:-1]:
            assert key.startswith("parts/0/")
            store.records[key] = raw
        assert store.get("cost_windows/a") == before
        # One part of the stored generation lost.
        del store.records["parts/1/1/cost_windows/a"]
        assert store.get("cost_windows/a") is None

    with caplog.at_level(logging.ERROR, logger="slowleak.streams.state_codec"):
        asyncio.run(scenario())
    assert "1 of them missing or not those of its manifest" in caplog.text


def test_max_state_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_state_bytes"):
        IngestRuntime(
            processor=Processor(),
            sink=ClickHouseSink(client_factory=FakeClient, batch_rows=10, flush_interval_ms=10),
            send_dead_letter=_never,
            send_alert=_never,
            max_state_bytes=0,
        )


async def _never(key: bytes | None, value: bytes) -> Any:
    raise AssertionError("nothing is sent")


def test_records_before_the_stored_position_are_written_but_not_fed_again() -> None:
    """After a crash the records since the last commit are read again: the stored states have
    seen those before the stored position. Replay reads are exact."""

    async def scenario() -> None:
        store = ChangelogStore()
        store["position/t/0"] = 45
        client = FakeClient()
        runtime = _stateful(client, store)
        await runtime.on_chunk("events", _chunk(10, start=40), FakeEvent())
        assert runtime.processor.stats.replayed == 5
        assert runtime.processor.detectors[0].obj("a").fence == [0, 49]
        await _stored(runtime, store)
        assert ("events", 10) in client.inserts  # every row written again
        assert store["position/t/0"] == 50
        # A chunk read again wholly below the stored position leaves the position where it is.
        await runtime.on_chunk("events", _chunk(10, start=20), FakeEvent())
        await _stored(runtime, store)
        assert store["position/t/0"] == 50 and runtime.processor.stats.replayed == 15
        # Records not read from Kafka (offset -1, as in a replay) have no position.
        replayed = [r._replace(offset=-1, topic="r") for r in _chunk(3)]
        await runtime.on_chunk("events", replayed, FakeEvent())
        assert "position/r/0" not in store.records and runtime.processor.stats.replayed == 15

    asyncio.run(scenario())


class DurableStore(ChangelogStore):
    """A changelog that has each record as soon as it is put."""

    def put(self, partition: int, key: str, raw: bytes) -> asyncio.Future[None]:
        future = super().put(partition, key, raw)
        future.set_result(None)
        return future


def _traffic(n: int, per_chunk: int) -> list[list[Rec]]:
    gen = TrafficGenerator(
        seed=3,
        start=datetime(2026, 11, 25, tzinfo=UTC),
        calls_per_second=5.0,
        provider_swap_at=n // 2,
    )
    records = [Rec("t", 0, i, None, orjson.dumps(gen.interaction())) for i in range(n)]
    return [records[i : i + per_chunk] for i in range(0, n, per_chunk)]


async def _run(
    chunks: list[list[Rec]], crashes: set[int], seed: int, max_state_bytes: int | None = None
) -> SimpleNamespace:
    """Every chunk through a worker over one store; at each chunk index in ``crashes`` the worker
    dies (its writes in flight cancelled after a random number of steps, as a SIGKILL leaves
    them) and the next one reads again from the last commit. As faust's, commits come on a
    timer (here before every fifth chunk), up to the chunks acked then in a row: the chunks
    read again include acked ones, whose states are stored, and unacked ones."""
    rng = random.Random(seed)
    store, alerts, blocks = DurableStore(), set(), set()
    start, pending, replayed = 0, sorted(crashes), 0
    acked = [FakeEvent() for _ in chunks]
    while start < len(chunks):

        async def send(key: bytes | None, value: bytes) -> Any:
            alerts.add(value)
            return await _done()

        runtime = IngestRuntime(
            processor=Processor(
                detectors=default_detectors(store), lifecycle=AlertLifecycle(store=store)
            ),
            sink=ClickHouseSink(
                client_factory=lambda: FakeClient(tokens=blocks),
                batch_rows=300,
                flush_interval_ms=10_000,
            ),
            send_dead_letter=send,
            send_alert=send,
            state_store=store,
            max_state_bytes=max_state_bytes,
        )
        acked[start:] = [FakeEvent() for _ in chunks[start:]]
        crash = pending.pop(0) if pending and pending[0] >= start else None
        committed = start
        for i in range(start, len(chunks) if crash is None else crash + 1):
            if i % 5 == 0:
                while committed < i and acked[committed].acked:
                    committed += 1
            await runtime.on_chunk("events", chunks[i], acked[i])
        if crash is None:
            await runtime.drain()
            runtime.close()
            break
        for _ in range(rng.randrange(12)):
            await asyncio.sleep(0)
        for task in list(runtime._inflight):
            task.cancel()
        await asyncio.sleep(0)
        runtime.close()
        replayed += sum(1 for i in range(committed, crash + 1) if acked[i].acked)
        start = committed
    #: ``replayed``: acked chunks read again (their states stored) after the crashes.
    return SimpleNamespace(
        store=store, alerts=alerts, blocks=blocks, replayed=replayed, runtime=runtime
    )


def test_every_detectors_state_after_crashes_equals_a_crash_free_runs() -> None:
    """The calls between the last commit and a crash are read again; before, every detector but
    the cost windows counted those it had stored twice (drift, availability, fallback,
    guardrail rates, lifecycle...)."""
    chunks = _traffic(3_000, per_chunk=40)
    clean = asyncio.run(_run(chunks, set(), seed=0))
    assert len(clean.store.states()) > 20 and clean.alerts and clean.blocks
    for seed in range(5):
        crashes = set(random.Random(seed).sample(range(len(chunks) - 1), 6))
        crashed = asyncio.run(_run(chunks, crashes, seed))
        assert crashed.replayed > 0, seed
        assert crashed.store.states() == clean.store.states(), seed
        assert crashed.alerts >= clean.alerts, seed  # an alert may go out twice, none is lost
        assert crashed.blocks == clean.blocks, seed  # the same windows (a block sent twice: one)


def _gated_alerts(store: ChangelogStore) -> tuple[IngestRuntime, asyncio.Event]:
    """A runtime over ``store`` whose alerts are acknowledged once the event is set."""
    runtime = _stateful(FakeClient(), store)
    gate = asyncio.Event()

    async def slow_alert(key: bytes | None, value: bytes) -> Any:
        await gate.wait()
        return await _done()

    runtime.send_alert = slow_alert
    return runtime, gate


def test_chunks_of_both_topics_hand_over_their_states_in_the_order_they_were_taken() -> None:
    """The feedback agent's chunk waits while the events agent's chunk publishes its alert: else
    it could take newer states of the same app and hand them over first (an older snapshot
    stored after a newer one), or a write could store a state before its own chunk's alert."""

    async def scenario() -> None:
        store = ChangelogStore()
        runtime, gate = _gated_alerts(store)
        feedback = orjson.dumps(
            {"type": "feedback", "event_id": "e0", "ts": "2026-11-25T10:00:00Z", "app": "a",
             "outcome": True}
        )  # fmt: skip
        events = asyncio.create_task(runtime.on_chunk("events", _chunk(5), FakeEvent()))
        await asyncio.sleep(0.01)  # processed; its unknown_price alert is being published
        judged = asyncio.create_task(
            runtime.on_chunk("feedback", [Rec("f", 0, 0, b"a", feedback)], FakeEvent())
        )
        await asyncio.sleep(0.01)
        assert runtime.processor.stats.feedback == 0 and runtime._states == []
        gate.set()
        await asyncio.gather(events, judged)
        handed = [[key for key, _ in states] for _, states in runtime._states]
        assert handed == [["cost_windows/a", "position/t/0"], ["position/f/0"]]

    asyncio.run(scenario())


def test_drain_waits_for_the_chunk_being_handed_over() -> None:
    """Before partitions are revoked: a chunk still publishing its alert is written with the
    rest, not after the revoke."""

    async def scenario() -> None:
        store = ChangelogStore()
        runtime, gate = _gated_alerts(store)
        chunk = asyncio.create_task(runtime.on_chunk("events", _chunk(5), FakeEvent()))
        await asyncio.sleep(0.01)
        draining = asyncio.create_task(_stored(runtime, store))
        await asyncio.sleep(0.05)
        assert not draining.done() and store.records == {}
        gate.set()
        await asyncio.gather(chunk, draining)
        assert store["position/t/0"] == 5

    asyncio.run(scenario())


def test_states_stored_in_parts_survive_crashes_as_whole_ones_do() -> None:
    """The same traffic and crashes with a record limit that puts most states in parts: every
    state, alert and window is that of a crash-free run storing them whole."""
    chunks = _traffic(3_000, per_chunk=40)
    clean = asyncio.run(_run(chunks, set(), seed=0))
    in_parts = asyncio.run(_run(chunks, set(), seed=0, max_state_bytes=600))
    assert len(in_parts.runtime.states_in_parts) > 10
    assert in_parts.store.states() == clean.store.states()
    for seed in range(3):
        crashes = set(random.Random(seed).sample(range(len(chunks) - 1), 6))
        crashed = asyncio.run(_run(chunks, crashes, seed, max_state_bytes=600))
        assert crashed.replayed > 0, seed
        assert crashed.store.states() == clean.store.states(), seed
        assert crashed.alerts >= clean.alerts, seed
        assert crashed.blocks == clean.blocks, seed
