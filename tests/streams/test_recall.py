"""Feedback for calls read before the worker started: which calls the processor asks for, how
the found ones are joined, and what the runtime does when the lookup fails (a fake client; the
query itself runs against ClickHouse in ``test_ingest.py``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from slowleak.streams.core import Output, Processor
from slowleak.streams.core import Record as Rec
from slowleak.streams.core.detectors.challenger import ChallengerComparison, pair_attributes
from slowleak.streams.core.detectors.drift import BehaviourDrift
from slowleak.streams.core.detectors.join import RecalledCall
from slowleak.streams.recall import CallRecall
from slowleak.streams.runtime import IngestRuntime

from .test_runtime import FakeClient, FakeEvent
from .test_runtime import _runtime as runtime_with

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
KEY = "support-bot|prod|champion|gpt-4o"


def _call(i: int, ts: datetime) -> dict[str, Any]:
    return {
        "event_id": f"c{i}", "ts": ts.isoformat(), "app": "support-bot", "model": "gpt-4o",
        "input_tokens": 10, "output_tokens": 20, "latency_ms": 300.0, "status": "ok",
        "intent": "refund" if i % 2 else "status",
    }  # fmt: skip


def _calls(n: int, start: int = 0, ts: datetime = T0) -> list[Rec]:
    return [
        Rec("events", 0, start + i, b"support-bot", orjson.dumps(_call(start + i, ts)))
        for i in range(n)
    ]


def _feedback(ids: range, ts: datetime, offset: int = 0) -> list[Rec]:
    return [
        Rec(
            "feedback",
            0,
            offset + k,
            b"support-bot",
            orjson.dumps(
                {
                    "type": "feedback",
                    "event_id": f"c{i}",
                    "ts": ts.isoformat(),
                    "app": "support-bot",
                    "outcome": i % 3 != 0,
                }
            ),
        )
        for k, i in enumerate(ids)
    ]


def _recalled(ids: range) -> list[RecalledCall]:
    return [
        RecalledCall(
            f"c{i}",
            "support-bot",
            "prod",
            "champion",
            "gpt-4o",
            "refund" if i % 2 else "status",
            T0,
        )
        for i in ids
    ]


def _drift(processor: Processor) -> BehaviourDrift:
    (drift,) = (d for d in processor.detectors if isinstance(d, BehaviourDrift))
    return drift


def test_feedback_for_calls_read_before_the_start_is_joined_once_they_are_recalled() -> None:
    store: dict[str, Any] = {}  # the detector-state table
    before = Processor(detectors=[BehaviourDrift(store=store)])
    before.interactions(_calls(100), Output())  # read, then the worker restarts
    store.update(before.dirty_states())
    after = Processor(detectors=[BehaviourDrift(store=store)])
    feedback = _feedback(range(60), T0 + timedelta(minutes=5))

    wanted = after.feedback_to_recall(feedback)
    assert [w[0] for w in wanted] == [f"c{i}" for i in range(60)]
    assert wanted[0][1:] == ("support-bot", T0 + timedelta(minutes=5))
    after.feedback(feedback, Output(), recalled=_recalled(range(60)))

    drift = _drift(after)
    stats = drift.join.stats
    assert (stats.recalled, stats.joined, stats.early) == (60, 60, 0)
    monitor = drift.obj(KEY)
    assert monitor.detectors["success_rate"].n == 60
    assert monitor.detectors["success_rate:refund"].n == 30  # the call's intent came along
    # Known now: the same feedback again is a duplicate, not a call to look up.
    assert after.feedback_to_recall(feedback) == []


def test_without_the_recall_that_feedback_waits_as_early() -> None:
    after = Processor(detectors=[BehaviourDrift()])
    after.feedback(_feedback(range(60), T0 + timedelta(minutes=5)), Output())
    stats = _drift(after).join.stats
    assert (stats.joined, stats.early) == (0, 60)


def test_only_feedback_within_an_hour_of_a_partitions_first_call_is_looked_up() -> None:
    processor = Processor(detectors=[BehaviourDrift()])
    processor.interactions(_calls(10, ts=T0), Output())  # its first call since the start: T0
    young = _feedback(range(100, 110), T0 + timedelta(minutes=59))
    old = _feedback(range(200, 210), T0 + timedelta(minutes=61))
    assert len(processor.feedback_to_recall(young)) == 10
    assert processor.feedback_to_recall(old) == []  # would judge a call after the start
    assert processor.feedback_to_recall(_feedback(range(10), T0)) == []  # calls it read
    # Records before the stored position are in the stored states already: not looked up.
    assert processor.feedback_to_recall(young, applied_before=5) == [
        (f"c{i}", "support-bot", T0 + timedelta(minutes=59)) for i in range(105, 110)
    ]
    processor.forget_states()  # a rebalance: partitions may have come from another worker
    assert len(processor.feedback_to_recall(old)) == 10


class FakeEvents:
    """A ClickHouse client whose ``events`` holds the calls given (without outcome)."""

    def __init__(self, stored: list[RecalledCall], fail: int = 0) -> None:
        self.stored = {c.event_id: c for c in stored}
        self.fail = fail
        self.asked: list[dict[str, Any]] = []

    def query(self, sql: str, parameters: dict[str, Any]) -> SimpleNamespace:
        self.asked.append(parameters)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("ClickHouse is down")
        found = [self.stored[i] for i in parameters["ids"] if i in self.stored]
        rows = [(c.event_id, c.app, c.env, c.variant, c.model, c.intent, c.ts) for c in found]
        return SimpleNamespace(result_rows=rows)


def _runtime(client: FakeEvents) -> IngestRuntime:
    return runtime_with(
        FakeClient(),
        [],
        processor=Processor(detectors=[BehaviourDrift()]),
        recall=CallRecall(lambda: client, horizon=timedelta(hours=1)),
    )


def test_the_runtime_looks_the_calls_up_before_the_feedback_chunk() -> None:
    client = FakeEvents(_recalled(range(40)))
    runtime = _runtime(client)

    async def scenario() -> None:
        await runtime.on_chunk(
            "feedback", _feedback(range(60), T0 + timedelta(minutes=5)), FakeEvent()
        )
        await runtime.drain()

    asyncio.run(scenario())
    (asked,) = client.asked
    assert asked["apps"] == ["support-bot"] and len(asked["ids"]) == 60
    assert asked["since"] == T0 + timedelta(minutes=5) - timedelta(hours=1)
    stats = runtime.stats()
    assert stats["recall"] == {"lookups": 1, "asked": 60, "found": 40, "failed": 0}
    join = stats["detectors"]["drift"]["feedback_join"]
    assert (join["recalled"], join["joined"], join["early"]) == (40, 40, 20)


def test_a_failed_lookup_is_said_and_the_feedback_still_processed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FakeEvents(_recalled(range(60)), fail=1)
    runtime = _runtime(client)

    async def scenario() -> None:
        with caplog.at_level(logging.WARNING):
            await runtime.on_chunk("feedback", _feedback(range(30), T0), FakeEvent())
            await runtime.on_chunk("feedback", _feedback(range(30, 60), T0, 30), FakeEvent())
        await runtime.drain()

    asyncio.run(scenario())
    stats = runtime.stats()
    assert stats["feedback"] == 60 and stats["settled"]
    assert stats["recall"] == {"lookups": 2, "asked": 60, "found": 30, "failed": 1}
    join = stats["detectors"]["drift"]["feedback_join"]
    assert (join["joined"], join["early"]) == (30, 30)
    (warning,) = [r for r in caplog.records if "could not look up" in r.getMessage()]
    assert "ClickHouse is down" in warning.getMessage()


def test_a_challenger_call_judged_after_a_restart_is_paired() -> None:
    replay = _call(7, T0) | {
        "event_id": "replay-7", "env": "test", "variant": "prompt-v15",
        "attributes": pair_attributes(
            replay_of="c7", champion_name="v14", outcome=True, cost_usd=0.002,
            latency_ms=900.0, refusal=False,
        ),
    }  # fmt: skip
    store: dict[str, Any] = {}
    before = Processor(detectors=[ChallengerComparison(store=store)])
    before.interactions([Rec("events", 0, 0, b"support-bot", orjson.dumps(replay))], Output())
    store.update(before.dirty_states())  # the call waits for its outcome, in the stored state
    challenger = ChallengerComparison(store=store)
    after = Processor(detectors=[challenger])
    feedback = [
        Rec(
            "feedback",
            0,
            0,
            b"support-bot",
            orjson.dumps(
                {
                    "type": "feedback",
                    "event_id": "replay-7",
                    "ts": T0.isoformat(),
                    "app": "support-bot",
                    "outcome": False,
                }
            ),
        )
    ]
    assert [w[0] for w in after.feedback_to_recall(feedback)] == ["replay-7"]
    recalled = RecalledCall("replay-7", "support-bot", "test", "prompt-v15", "gpt-4o", None, T0)
    after.feedback(feedback, Output(), recalled=[recalled])
    comparison = challenger.obj("support-bot|prompt-v15")
    assert comparison.cs.n == 1 and comparison.pending == {}
