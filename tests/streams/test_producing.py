"""The producer flush faust awaits before every commit, on faust's own buffer (no broker).

faust's buffer flush gives up when no message was sent for 0.1 s; the commit that follows
then goes ahead of table changelog records still buffered. These tests pin that faust's flush
does return early with a slow hand-over, and that slowleak's waits for every message.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from slowleak.streams import producing
from slowleak.streams.producing import DurableFlushBuffer

HAND_OVER_S = 0.25


async def _buffer_with_slow_hand_over(cls: type[ProducerBuffer], sent: list[int]) -> Any:
    buffer = cls()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))

    async def publish_message(fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(HAND_OVER_S)  # e.g. the client waiting for room in its batch
        sent.append(fut.n)

    for n in range(3):
        fut = SimpleNamespace(n=n)
        fut.message = SimpleNamespace(channel=SimpleNamespace(publish_message=publish_message))
        buffer.put(fut)
    await buffer.start()
    return buffer


@pytest.mark.parametrize(("cls", "all_sent"), [(ProducerBuffer, False), (DurableFlushBuffer, True)])
def test_flush_returns_only_when_every_buffered_message_was_handed_over(
    cls: type[ProducerBuffer], all_sent: bool
) -> None:
    async def run() -> list[int]:
        sent: list[int] = []
        buffer = await _buffer_with_slow_hand_over(cls, sent)
        try:
            await buffer.flush()
            return list(sent)
        finally:
            # faust's buffer refuses to stop with messages left (the early return above).
            with contextlib.suppress(RuntimeError):
                await buffer.stop()

    sent = asyncio.run(run())
    assert (sent == [0, 1, 2]) is all_sent, sent


def test_a_buffer_with_nothing_pending_flushes_at_once() -> None:
    async def run() -> float:
        buffer = await _buffer_with_slow_hand_over(DurableFlushBuffer, [])
        await buffer.flush()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await buffer.flush()
        elapsed = loop.time() - started
        await buffer.stop()
        return elapsed

    assert asyncio.run(run()) < HAND_OVER_S


def test_a_flush_that_keeps_waiting_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(producing, "WARN_EVERY_S", HAND_OVER_S)

    async def run() -> None:
        buffer = await _buffer_with_slow_hand_over(DurableFlushBuffer, [])
        await buffer.flush()
        await buffer.stop()

    with caplog.at_level("WARNING", logger="slowleak.streams.producing"):
        asyncio.run(run())
    assert any("commit waiting" in r.getMessage() for r in caplog.records), caplog.text
