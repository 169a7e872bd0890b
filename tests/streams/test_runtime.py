"""Acks follow durable writes: the runtime with a fake ClickHouse client and fake sends."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from slowleak.streams.core import Processor
from slowleak.streams.core import Record as Rec
from slowleak.streams.core.cost import CostWindows
from slowleak.streams.runtime import IngestRuntime
from slowleak.streams.sink import ClickHouseSink

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
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.inserts: list[tuple[str, int]] = []

    def insert(self, table: str, rows: list[Any], column_names: list[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ClickHouse is down")
        self.inserts.append((table, len(rows)))

    def close(self) -> None:
        pass


def _runtime(client: FakeClient, sent: list[bytes], batch_rows: int = 1000) -> IngestRuntime:
    async def send(key: bytes | None, value: bytes) -> Any:
        sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    return IngestRuntime(
        processor=Processor(),
        sink=ClickHouseSink(
            client_factory=lambda: client, batch_rows=batch_rows, flush_interval_ms=10_000
        ),
        send_dead_letter=send,
        send_alert=send,
        retry_initial_s=0.01,
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


class ChangelogStore(dict[str, Any]):
    """A state store whose writes reach the changelog when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.unsent: list[asyncio.Future[None]] = []
        self._new: list[asyncio.Future[None]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._new.append(asyncio.get_running_loop().create_future())

    def take_sent(self) -> list[asyncio.Future[None]]:
        new, self._new = self._new, []
        self.unsent += new
        return new


def test_a_chunk_is_acked_only_once_the_states_it_changed_are_in_the_changelog() -> None:
    """An offset committed past a state the changelog lacks would, after a crash, restore the
    older state and resume after the calls it lacks: they would be lost from the windows."""

    async def scenario() -> None:
        client, store = FakeClient(), ChangelogStore()
        runtime = _runtime(client, [])
        runtime.state_store = store
        runtime.processor = Processor(detectors=[CostWindows(store=store)])
        event = FakeEvent()
        await runtime.on_chunk("events", _chunk(10), event)
        assert list(store) == ["cost_windows/a", "position/t/0"] and len(store.unsent) == 2
        writing = asyncio.create_task(runtime.drain())
        await asyncio.sleep(0.05)
        assert not event.acked and not writing.done()  # rows wait too: the write comes after
        for future in store.unsent:
            future.set_result(None)
        await writing
        assert event.acked and ("events", 10) in client.inserts

    asyncio.run(scenario())


def test_each_chunk_records_its_partitions_next_offset_after_the_states() -> None:
    """Written last, to the chunk's partition: a restored table that holds the position holds
    the states written with it (what the consumer's rewind after a recovery relies on)."""

    async def scenario() -> None:
        store = ChangelogStore()
        runtime = _runtime(FakeClient(), [])
        runtime.state_store = store
        runtime.processor = Processor(detectors=[CostWindows(store=store)])
        await runtime.on_chunk("events", _chunk(10, start=40), FakeEvent())
        assert list(store)[-1] == "position/t/0" and store["position/t/0"] == 50
        # Records not read from Kafka (offset -1, as in a replay) have no position.
        replayed = [r._replace(offset=-1, topic="r") for r in _chunk(3)]
        await runtime.on_chunk("events", replayed, FakeEvent())
        assert "position/r/0" not in store

    asyncio.run(scenario())
