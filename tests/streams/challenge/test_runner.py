"""run_challenge with the fake model: spend cap, concurrency, rate limit, events, stopping."""

from __future__ import annotations

import asyncio
import io
import itertools
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from slowleak.models import InteractionEvent
from slowleak.streams.challenge import (
    ChallengeReport,
    ChallengerResult,
    ChampionCall,
    FakeModel,
    Progress,
    resolve_evaluator,
    run_challenge,
)
from slowleak.streams.challenge.runner import TokenBucket

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CORRECT = resolve_evaluator("regex:^ANSWER: correct")


def champion_calls(n: int, *, seed: int = 0, success: float = 0.83) -> list[ChampionCall]:
    rng = random.Random(seed)
    return [
        ChampionCall(
            event_id=f"prod-{i}",
            ts=T0 + timedelta(seconds=i),
            app="support-bot",
            model="gpt-4o",
            input_text=f"question {i}: where is my order?",
            intent=rng.choice(["question", "refund", "other"]),
            output_text="Here it is.",
            latency_ms=900.0 + i,
            cost_usd=0.002,
            prompt_version="v14",
            outcome=rng.random() < success,
        )
        for i in range(n)
    ]


def run(
    calls: list[ChampionCall], challenger: object, **kwargs: object
) -> tuple[ChallengeReport, list[InteractionEvent]]:
    published: list[InteractionEvent] = []
    report = asyncio.run(
        run_challenge(calls, challenger, name="prompt-v15", publish=published.append, **kwargs)  # type: ignore[arg-type]
    )
    return report, published


@pytest.mark.parametrize("concurrency", [1, 8])
def test_spend_cap_holds_exactly(concurrency: int) -> None:
    fake = FakeModel(cost_usd=0.001, delay_s=0.001)
    report, events = run(
        champion_calls(100), fake, evaluator=CORRECT, spend_cap_usd=0.0105,
        concurrency=concurrency,
    )  # fmt: skip
    assert report.stopped == "spend_cap"
    assert fake.calls == len(events) == report.calls == 10
    assert report.spend_usd == pytest.approx(0.010) and report.spend_usd <= 0.0105


def test_spend_cap_holds_with_varying_costs_and_a_declared_maximum() -> None:
    fake = FakeModel(usd_per_1k_input=0.4, usd_per_1k_output=0.4)  # cost from the text length
    report, events = run(
        champion_calls(200), fake, spend_cap_usd=0.05, max_call_cost_usd=0.01, concurrency=6
    )
    assert report.stopped == "spend_cap"
    spent = sum(e.cost_usd or 0.0 for e in events)
    assert spent <= 0.05 and spent == pytest.approx(report.spend_usd)


def test_concurrency_is_bounded() -> None:
    fake = FakeModel(delay_s=0.01)
    _, events = run(champion_calls(40), fake, concurrency=3)
    assert fake.max_in_flight == 3 and len(events) == 40


def test_token_bucket_spaces_calls_at_the_rate() -> None:
    now = [0.0]
    starts: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def main() -> None:
        bucket = TokenBucket(rate_per_s=5.0, burst=2, clock=lambda: now[0], sleep=sleep)
        for _ in range(12):
            await bucket.acquire()
            starts.append(now[0])

    asyncio.run(main())
    assert starts[:2] == [0.0, 0.0]  # the burst
    assert starts[-1] == pytest.approx(2.0)  # then one per 0.2 s
    gaps = [b - a for a, b in itertools.pairwise(starts[2:])]
    assert gaps == pytest.approx([0.2] * 9)


def test_rate_limit_bounds_a_real_run() -> None:
    started = time.monotonic()
    run(champion_calls(6), FakeModel(), rate_per_s=20.0, concurrency=4)
    assert time.monotonic() - started >= 5 / 20.0 * 0.9  # one at once, then one per 50 ms


def test_events_are_exact_replays() -> None:
    calls = champion_calls(50)
    _, events = run(calls, FakeModel(seed=3), evaluator=CORRECT, concurrency=5)
    by_source = {e.attributes["replay_of"]: e for e in events}
    assert sorted(by_source) == sorted(c.event_id for c in calls)
    assert len({e.event_id for e in events}) == 50
    for call in calls:
        event = by_source[call.event_id]
        assert (event.env, event.variant, event.app, event.intent) == (
            "test", "prompt-v15", "support-bot", call.intent,
        )  # fmt: skip
        assert event.attributes["champion_outcome"] == str(call.outcome).lower()
        assert event.attributes["champion_name"] == "v14"
        assert float(event.attributes["champion_cost_usd"]) == call.cost_usd
        assert event.outcome == (event.output_text == "ANSWER: correct")
    # The same challenger replaying the same call makes the same event.
    _, again = run(calls[:3], FakeModel(seed=3), evaluator=CORRECT)
    assert {e.event_id for e in again} <= {e.event_id for e in events}


def test_stops_when_decided() -> None:
    calls = champion_calls(5_000, success=0.6)
    report, events = run(
        calls, FakeModel(keep=1.0, fix=0.8, refusal=0.0), evaluator=CORRECT,
        stop_when_decided=True, concurrency=4,
    )  # fmt: skip
    assert report.stopped == "decided" and len(events) < 2_000
    assert report.verdicts[-1].labels["verdict"] == "better"
    assert report.verdicts[-1].summary.startswith("prompt-v15 vs v14 on support-bot: success")
    # The fake challenger is far cheaper: its cost verdict came first, and did not stop it.
    assert next(a.labels["measure"] for a in report.verdicts) == "cost"
    assert "cost per call 0.25x or less the champion's" in report.describe()


def test_a_plain_function_and_its_failures() -> None:
    def flaky(call: ChampionCall) -> tuple[str, int, int, float, float]:
        if call.event_id.endswith("3"):
            raise ConnectionError("provider down")
        return ("ANSWER: correct", 10, 2, 120.0, 0.0001)

    report, events = run(champion_calls(20), flaky, evaluator=CORRECT)
    failed = [e for e in events if e.status != "ok"]
    assert report.failed == len(failed) == 2
    assert all(e.error_type == "ConnectionError" and e.outcome is False for e in failed)
    assert all(e.latency_ms == 120.0 for e in events if e.status == "ok")


def test_a_slow_call_times_out() -> None:
    _, events = run(champion_calls(2), FakeModel(delay_s=1.0), timeout_s=0.05)
    assert {e.status for e in events} == {"timeout"}


def test_progress_shows_an_eta() -> None:
    out = io.StringIO()
    clock = iter(float(i) for i in range(1000))
    progress = Progress(total=100, label="prompt-v15", stream=out, clock=lambda: next(clock))
    for done in (5, 10, 50, 100):
        progress.update(done, "$0.10")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("prompt-v15 [#---") and "5/100" in lines[0]
    assert "ETA" in lines[1] and lines[-1].startswith("prompt-v15 [########################]")


def test_challenger_result_forms() -> None:
    assert ChallengerResult.coerce({"output_text": "x", "cost_usd": 0.1}).cost_usd == 0.1
    with pytest.raises(TypeError, match=r"unknown fields \['costs'\]"):
        ChallengerResult.coerce({"output_text": "x", "costs": 0.1})
    with pytest.raises(TypeError, match="a challenger returns a ChallengerResult"):
        ChallengerResult.coerce("text")


def test_a_zero_cap_calls_nothing() -> None:
    fake = FakeModel()
    report, events = run(champion_calls(5), fake, spend_cap_usd=0.0)
    assert (fake.calls, events, report.stopped) == (0, [], "spend_cap")


def test_a_raising_evaluator_leaves_calls_unjudged() -> None:
    def scorer(call: ChampionCall, result: ChallengerResult) -> bool:
        raise KeyError("label")

    report, events = run(champion_calls(4), FakeModel(), evaluator=scorer)
    assert report.judge_errors == 4 and {e.outcome for e in events} == {None}
    assert "4 not judged (the evaluator raised)" in report.describe()


def test_an_invalid_result_is_a_failed_call() -> None:
    def broken(call: ChampionCall) -> ChallengerResult:
        return ChallengerResult(output_text="x", input_tokens=-1, cost_usd=0.001)

    report, events = run(champion_calls(3), broken)
    assert report.failed == 3
    assert {(e.status, e.error_type, e.outcome, e.cost_usd) for e in events} == {
        ("error", "InvalidResult", False, 0.001)
    }
