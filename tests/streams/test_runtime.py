"""Acks follow durable writes: the runtime with a fake ClickHouse client and fake sends."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from slowleak.streams.core import Processor
from slowleak.streams.core import Record as Rec
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
