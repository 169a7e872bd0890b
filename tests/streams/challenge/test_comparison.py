"""ChallengerComparison: exact pairing, feedback outcomes, the verdict and its sentence."""

from __future__ import annotations

import doctest
import random
import re
from datetime import UTC, datetime, timedelta

import orjson

from slowleak.models import FeedbackEvent, InteractionEvent
from slowleak.streams.core.detectors import _paired_ratio as paired_ratio_module
from slowleak.streams.core.detectors import challenger as challenger_module
from slowleak.streams.core.detectors.challenger import ChallengerComparison, pair_attributes

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def call(
    i: int, *, outcome: bool | None, champion: bool | None, app: str = "support-bot",
    challenger: str = "prompt-v15", env: str = "test", replay: bool = True,
    cost_usd: float = 0.0009, champion_cost_usd: float = 0.001, event_id: str | None = None,
) -> InteractionEvent:  # fmt: skip
    attributes = pair_attributes(
        replay_of=f"prod-{i}", champion_name="v14", outcome=champion,
        cost_usd=champion_cost_usd, latency_ms=800.0 + i % 7, refusal=i % 50 == 0,
    )  # fmt: skip
    return InteractionEvent(
        event_id=event_id or f"{challenger}-{i}", ts=T0 + timedelta(seconds=i), app=app,
        model="gpt-4o-mini", input_tokens=100, output_tokens=50, latency_ms=600.0 + i % 11,
        status="ok", env=env, variant=challenger, outcome=outcome, cost_usd=cost_usd,
        output_text="I'm sorry, I can't" if i % 25 == 0 else "Here you go",
        attributes=attributes if replay else {},
    )  # fmt: skip


def seeded_pairs(
    n: int, p_challenger: float, p_champion: float, seed: int = 1
) -> list[InteractionEvent]:
    rng = random.Random(seed)
    return [
        call(i, outcome=rng.random() < p_challenger, champion=rng.random() < p_champion)
        for i in range(n)
    ]


def test_doctest() -> None:
    assert doctest.testmod(challenger_module).failed == 0
    assert doctest.testmod(paired_ratio_module).failed == 0


def test_a_better_challenger_gets_one_better_verdict_with_the_sentence() -> None:
    detector = ChallengerComparison(margin=0.0)
    events = seeded_pairs(6_000, 0.93, 0.83)
    alerts = [a for start in range(0, len(events), 500)
              for a in detector.on_interactions(events[start : start + 500])
              if a.labels["measure"] == "success"]  # fmt: skip
    assert [(a.kind, a.labels["verdict"]) for a in alerts] == [("challenger_verdict", "better")]
    alert = alerts[0]
    d = alert.details
    assert alert.app == "support-bot" and alert.labels["challenger"] == "prompt-v15"
    assert d["cs_lower"] > 0 and d["pairs"] == int(alert.event_id.split("-")[-1]) + 1
    expected = (
        f"prompt-v15 vs v14 on support-bot: success {100 * d['success_challenger']:.1f}% vs "
        f"{100 * d['success_champion']:.1f}% (Δ +{100 * d['success_diff']:.1f} pts, 95% CS "
        f"[+{100 * d['cs_lower']:.1f}, +{100 * d['cs_upper']:.1f}]) on {d['pairs']:,} paired "
        "calls; cost per success \N{MINUS SIGN}"
    )
    assert alert.summary.startswith(expected)
    assert re.search(r"cost per success \N{MINUS SIGN}\d+%; verdict: better$", alert.summary)
    # It stopped at the verdict: later calls change nothing.
    state = detector.dirty_states()["challenger/support-bot|prompt-v15"]
    assert state["cs"]["n"] == d["pairs"] and state["decided"] is True


def test_only_test_replays_are_paired_and_each_once() -> None:
    detector = ChallengerComparison(min_pairs=1, margin=0.0)
    events = [
        call(0, outcome=True, champion=False),
        call(0, outcome=True, champion=False),  # redelivered: same event_id
        call(1, outcome=True, champion=False, env="prod"),
        call(2, outcome=True, champion=False, replay=False),
        call(3, outcome=True, champion=None),  # champion outcome unknown: a call, not a pair
        call(4, outcome=False, champion=True, challenger="other"),
    ]
    detector.on_interactions(events)
    states = detector.dirty_states()
    mine = states["challenger/support-bot|prompt-v15"]
    assert (mine["cs"]["n"], mine["challenger"]["calls"], mine["wins"]) == (1, 2, [1, 0])
    assert states["challenger/support-bot|other"]["wins"] == [0, 1]


def test_outcomes_from_feedback_complete_the_pair() -> None:
    detector = ChallengerComparison(min_pairs=1)
    detector.on_interactions([call(7, outcome=None, champion=True)])
    assert detector.dirty_states()["challenger/support-bot|prompt-v15"]["cs"]["n"] == 0
    feedback = FeedbackEvent(
        type="feedback", event_id="prompt-v15-7", ts=T0, app="support-bot", outcome=False
    )
    detector.on_feedback(feedback)
    state = detector.dirty_states()["challenger/support-bot|prompt-v15"]
    assert (state["cs"]["n"], state["wins"], state["pending"]) == (1, [0, 1], [])
    assert detector.on_feedback(feedback) == []  # a second judgement of it is not a pair


def test_state_survives_a_restart_through_the_store() -> None:
    events = seeded_pairs(3_000, 0.70, 0.83, seed=4)
    straight = ChallengerComparison()
    alerts = straight.on_interactions(events)
    expected = [a.summary for a in alerts]
    store: dict[str, object] = {}
    first = ChallengerComparison(store=store)
    got = [a.summary for a in first.on_interactions(events[:1_000])]
    store.update(orjson.loads(orjson.dumps(first.dirty_states())))
    second = ChallengerComparison(store=store)
    got += [a.summary for a in second.on_interactions(events[1_000:])]
    assert got == expected  # the cost and latency verdicts' states survive it too
    assert [(a.labels["measure"], a.labels["verdict"]) for a in alerts] == [
        ("latency", "better"),
        ("success", "worse"),
        ("cost", "better"),
    ]
    assert expected[1].endswith("verdict: worse")


def test_non_inferior_then_better() -> None:
    detector = ChallengerComparison(margin=0.05)
    verdicts = [
        a.labels["verdict"]
        for a in detector.on_interactions(seeded_pairs(20_000, 0.86, 0.83))
        if a.labels["measure"] == "success"
    ]
    assert verdicts == ["non_inferior", "better"]


def test_a_dearer_slower_challenger_gets_cost_and_latency_verdicts_and_goes_on() -> None:
    """A prompt that doubles the spend and is a third slower: two warnings, while the success
    comparison goes on to its own verdict."""
    rng = random.Random(9)
    detector = ChallengerComparison(margin=0.0)
    events = []
    for i in range(6_000):
        base = rng.lognormvariate(6.5, 0.4)  # what this input takes
        attributes = pair_attributes(
            replay_of=f"prod-{i}", champion_name="v14", outcome=rng.random() < 0.83,
            cost_usd=0.001, latency_ms=base * rng.lognormvariate(0, 0.3), refusal=False,
        )  # fmt: skip
        dearer = call(i, outcome=rng.random() < 0.93, champion=None, cost_usd=0.002)
        slower = 1.33 * base * rng.lognormvariate(0, 0.3)
        events.append(dearer.model_copy(update={"attributes": attributes, "latency_ms": slower}))
    alerts = detector.on_interactions(events)
    measures = [(a.labels["measure"], a.labels["verdict"], a.severity) for a in alerts]
    assert measures[:2] == [("cost", "worse", "warning"), ("latency", "worse", "warning")]
    assert measures[2:] == [("success", "better", "info")]
    cost, latency = alerts[0], alerts[1]
    assert cost.event_id == "prompt-v15-99"  # the first look, at 100 pairs
    assert cost.summary.startswith(
        "prompt-v15 vs v14 on support-bot: cost per call 2.00x the champion's (geometric mean, "
        "95% CS "
    )
    assert cost.summary.endswith(
        "; $0.002000 vs $0.001000 a call; verdict: worse (more than 10% costlier)"
    )
    assert (
        1.1 < latency.details["latency_ratio_lower"] < 1.33 < latency.details["latency_ratio_upper"]
    )
    assert "verdict: worse (more than 10% slower)" in latency.summary
    assert re.search(r"p50 [\d,]+ vs [\d,]+ ms, p95 [\d,]+ vs [\d,]+ ms", latency.summary)
    assert cost.labels == {
        "env": "test", "variant": "prompt-v15", "challenger": "prompt-v15", "measure": "cost",
        "verdict": "worse",
    }  # fmt: skip


def test_a_state_stored_before_cost_and_latency_verdicts_still_loads() -> None:
    detector = ChallengerComparison(min_pairs=1)
    detector.on_interactions([call(i, outcome=True, champion=False) for i in range(20)])
    state = detector.dirty_states()["challenger/support-bot|prompt-v15"]
    del state["ratios"]  # as stored before
    later = ChallengerComparison(min_pairs=1, store={"challenger/support-bot|prompt-v15": state})
    later.on_interactions([call(20, outcome=True, champion=False)])
    again = later.dirty_states()["challenger/support-bot|prompt-v15"]
    # The success comparison goes on from its stored state; cost and latency start afresh.
    assert again["cs"]["n"] >= state["cs"]["n"] > 0 and again["ratios"]["cost"]["cs"]["n"] == 1
