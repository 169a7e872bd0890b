"""Drift detectors per key (accuracy, metrics, mixes, silent model change) and the feedback join,
on seeded streams at the shipped default settings."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slowleak.models import Alert, FeedbackEvent, InteractionEvent
from slowleak.streams.core.detectors.drift import MAX_INTENTS, BehaviourDrift, KeyMonitor
from slowleak.streams.core.detectors.join import OutcomeJoin
from slowleak.streams.core.detectors.signals import SIGNALS, is_refusal

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
KEY = "support-bot|prod|champion|gpt-4o"


@dataclass(frozen=True)
class Regime:
    """How one key's calls behave."""

    success: float = 0.83
    latency_median: float = 800.0
    latency_sigma: float = 0.6
    output_chars: float = 400.0
    output_tokens: float = 120.0
    error_rate: float = 0.01
    refund_share: float = 0.10
    fingerprint: str = "fp_a"
    refund_success: float | None = None  # the refunds' own success rate, when not ``success``


REFUNDS = Regime(refund_share=0.20)
REFUNDS_FAIL = Regime(refund_share=0.20, refund_success=0.65)


def calls(
    n: int,
    *,
    seed: int,
    before: Regime = Regime(),
    after: Regime | None = None,
    change_at: int | None = None,
    with_outcome: bool = True,
) -> list[InteractionEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = after if after is not None and change_at is not None and i >= change_at else before
        ok = rng.random() >= r.error_rate
        length = int(rng.lognormvariate(math.log(r.output_chars), 0.4))
        intent = "refund" if rng.random() < r.refund_share else rng.choice(["status", "other"])
        success = r.success
        if intent == "refund" and r.refund_success is not None:
            success = r.refund_success
        out.append(
            InteractionEvent(
                event_id=f"e{i}",
                ts=T0 + timedelta(seconds=i / 10),
                app="support-bot",
                model="gpt-4o",
                input_tokens=int(rng.lognormvariate(math.log(900), 0.3)),
                output_tokens=int(rng.lognormvariate(math.log(r.output_tokens), 0.4)) if ok else 0,
                latency_ms=rng.lognormvariate(math.log(r.latency_median), r.latency_sigma),
                status="ok" if ok else "error",
                intent=intent,
                finish_reason="stop" if ok else None,
                output_text=("x" * length) if ok else None,
                outcome=(rng.random() < success) if ok and with_outcome else None,
                system_fingerprint=r.fingerprint,
                cost_usd=0.001,
            )
        )
    return out


def run(detector: BehaviourDrift, events: list[InteractionEvent], chunk: int = 500) -> list[Alert]:
    alerts: list[Alert] = []
    for start in range(0, len(events), chunk):
        alerts.extend(detector.on_interactions(events[start : start + chunk]))
    return alerts


def fired(alerts: list[Alert]) -> list[tuple[str, str, int]]:
    return [(a.kind, a.labels["signal"], int(a.event_id[1:])) for a in alerts]


@pytest.fixture(scope="module")
def steady() -> list[InteractionEvent]:
    # Each of the 12 signals is calibrated to ~1 false alarm per 1,000,000 stable values, so
    # ~800k signal-values here alarm with a probability of roughly 0.3 per seed (seed 11 does,
    # on output tokens): the rate itself is measured by benchmarks/bench_drift.py, not here.
    return calls(80_000, seed=12)


def test_a_steady_key_fires_nothing(steady: list[InteractionEvent]) -> None:
    assert run(BehaviourDrift(), steady) == []


def test_accuracy_drop_is_dated_and_counted_in_the_summary() -> None:
    events = calls(45_000, seed=12, after=Regime(success=0.70), change_at=40_000)
    alerts = run(BehaviourDrift(), events)
    assert [(k, s) for k, s, _ in fired(alerts)] == [("accuracy_drift", "success_rate")]
    (alert,) = alerts
    at = int(alert.event_id[1:])
    assert 40_000 < at < 41_000
    assert alert.severity == "critical"  # 83% -> 70% is more than 5 points
    assert alert.summary.startswith("success rate of support-bot/gpt-4o fell from 8")
    assert "since the estimated change at about 01:0" in alert.summary  # event 40,000 is 01:06:40
    assert 0.65 < alert.details["estimate"] < 0.75
    assert 0.81 < alert.details["reference"] < 0.85


def test_silent_model_change_output_shorter_and_latency_higher_together() -> None:
    after = Regime(output_chars=320.0, output_tokens=96.0, latency_median=920.0)
    events = calls(45_000, seed=13, after=after, change_at=35_000)
    alerts = run(BehaviourDrift(), events)
    silent = [a for a in alerts if a.kind == "model_change"]
    assert len(silent) == 1, fired(alerts)
    assert 35_000 < int(silent[0].event_id[1:]) < 36_000
    assert silent[0].details["silent"] is True
    assert "likely changed" in silent[0].summary and "fp_a" in silent[0].summary
    assert {"latency_ms", "output_chars"} <= {a.labels["signal"] for a in alerts}


def test_a_declared_fingerprint_change_explains_the_shift() -> None:
    after = Regime(output_chars=320.0, output_tokens=96.0, latency_median=920.0, fingerprint="fp_b")
    events = calls(45_000, seed=13, after=after, change_at=35_000)
    alerts = run(BehaviourDrift(), events)
    assert [a for a in alerts if a.kind == "model_change"] == []
    assert any(a.labels["signal"] == "latency_ms" for a in alerts)


def test_p95_doubling_with_the_median_unchanged() -> None:
    wider = 0.6 + math.log(2.0) / 1.6448536269514722
    events = calls(30_000, seed=14, after=Regime(latency_sigma=wider), change_at=22_000)
    alerts = run(BehaviourDrift(), events)
    tail = [a for a in alerts if a.labels["signal"] == "latency_p95"]
    assert tail and 22_000 < int(tail[0].event_id[1:]) < 23_000
    assert "slower than the reference p95" in tail[0].summary


def test_intent_mix_moving_names_the_intent() -> None:
    events = calls(30_000, seed=15, after=Regime(refund_share=0.25), change_at=22_000)
    alerts = [a for a in run(BehaviourDrift(), events) if a.labels["signal"] == "intent_mix"]
    assert alerts and "'refund' rose from" in alerts[0].summary


def test_a_drop_in_one_small_intent_is_named_before_the_key_moves() -> None:
    # Refunds are 20% of the calls; their success falls 83% -> 65% at call 30,000, which moves
    # the key's own rate by under 4 points.
    events = calls(36_000, seed=19, before=REFUNDS, after=REFUNDS_FAIL, change_at=30_000)
    alerts = run(BehaviourDrift(), events)
    assert alerts, "no alert"
    first = alerts[0]
    assert first.labels == {
        "env": "prod", "variant": "champion", "signal": "success_rate:refund", "intent": "refund"
    }  # fmt: skip
    assert first.kind == "accuracy_drift" and first.details["intent"] == "refund"
    assert 30_000 < int(first.event_id[1:]) < 31_500
    assert first.summary.startswith("success rate of intent 'refund' of support-bot/gpt-4o fell")
    assert 0.55 < first.details["estimate"] < 0.72
    # The other intents stay quiet; the key's own rate may follow later, as its own alert.
    assert {a.labels["signal"] for a in alerts} <= {"success_rate:refund", "success_rate"}


def test_a_drop_of_every_intent_is_one_alert_of_the_key() -> None:
    events = calls(45_000, seed=12, after=Regime(success=0.70), change_at=40_000)
    alerts = run(BehaviourDrift(), events)
    signals = [s for _, s, _ in fired(alerts)]
    assert signals == ["success_rate"]  # the intents' detections are left out while it is open
    # It says how each intent did since the change: all of them fell.
    rows = alerts[0].details["by_intent"]
    assert {r["intent"] for r in rows} == {"refund", "status", "other"}
    assert all(r["rate"] < r["reference"] for r in rows if r["reference"] is not None)
    # The outcomes since the estimated change, split (the totals there are interpolated).
    since = alerts[0].details["values_since_change"]
    assert abs(sum(r["outcomes"] for r in rows) - since) <= 3
    assert "; by intent since then: " in alerts[0].summary


def test_the_keys_alert_names_the_intent_that_fell() -> None:
    """Half of the calls are refunds, and only their success falls (83% -> 70%): whichever
    alert comes first, the key's names refunds first, with their rate since the change."""
    before = Regime(refund_share=0.5)
    after = Regime(refund_share=0.5, refund_success=0.70)
    for seed in (21, 22, 23):
        events = calls(45_000, seed=seed, before=before, after=after, change_at=40_000)
        keys = [a for a in run(BehaviourDrift(), events) if a.labels["signal"] == "success_rate"]
        assert keys, seed
        first, *others = keys[0].details["by_intent"]
        assert first["intent"] == "refund" and 0.60 < first["rate"] < 0.78, (seed, first)
        assert all(abs(r["rate"] - 0.83) < 0.08 for r in others if r["outcomes"] >= 100), others
        shown = r"; by intent since then: refund (8\d\.\d% → )?[67]\d\.\d%"
        assert re.search(shown, keys[0].summary), keys[0].summary


def test_late_feedback_feeds_the_success_rate_of_its_intent() -> None:
    events = calls(
        36_000, seed=19, before=REFUNDS, after=REFUNDS_FAIL, change_at=30_000, with_outcome=False
    )

    def success(event: InteractionEvent) -> float:
        late = int(event.event_id[1:]) >= 30_000 and event.intent == "refund"
        return 0.65 if late else 0.83

    alerts = run_with_feedback(BehaviourDrift(), events, success, seed=19)
    accuracy = [a for a in alerts if a.kind == "accuracy_drift"]  # (this seed: one false
    # alarm of output tokens, ~1 in 1,000,000 values)
    assert accuracy and accuracy[0].labels["signal"] == "success_rate:refund"
    assert 30_000 < int(accuracy[0].event_id[1:]) < 31_500


def test_a_key_with_one_intent_has_no_intent_detector() -> None:
    events = [e.model_copy(update={"intent": "order"}) for e in calls(3_000, seed=20)]
    detector = BehaviourDrift()
    run(detector, events)
    monitor = detector.obj(KEY)
    assert monitor.intents == {} and monitor.lone_intent == "order"
    assert not [name for name in monitor.detectors if name.startswith("success_rate:")]
    # A second intent starts both, from the call it first appears at.
    second = events[0].model_copy(update={"event_id": "x", "intent": "refund"})
    detector.on_interactions([second])
    assert list(monitor.intents) == ["order", "refund"]
    assert monitor.base["success_rate:order"] == monitor.base["success_rate:refund"] == 3_000


def test_intents_watched_apart_are_capped() -> None:
    events = [
        e.model_copy(update={"intent": f"i{i % (MAX_INTENTS + 4)}"})
        for i, e in enumerate(calls(2_000, seed=21))
    ]
    detector = BehaviourDrift()
    run(detector, events)
    assert list(detector.obj(KEY).intents) == [f"i{i}" for i in range(MAX_INTENTS)]


def test_a_state_stored_before_intents_were_watched_still_loads() -> None:
    monitor = KeyMonitor(KEY)
    monitor.on_calls(calls(1_000, seed=22))
    state = monitor.to_state()
    for name in [n for n in state["detectors"] if n.startswith("success_rate:")]:
        del state["detectors"][name], state["base"][name]
    del state["intents"], state["lone_intent"]
    old = KeyMonitor.from_state(KEY, state)
    assert old.intents == {} and old.count == 1_000
    old.on_calls(calls(1_000, seed=23))  # its intents start now
    assert sorted(old.intents) == ["other", "refund", "status"]


def test_same_alerts_whatever_the_chunking() -> None:
    events = calls(45_000, seed=12, after=Regime(success=0.70, error_rate=0.05), change_at=40_000)
    assert fired(run(BehaviourDrift(), events, chunk=2_000)) == fired(
        run(BehaviourDrift(), events, chunk=37)
    )


@pytest.mark.parametrize(
    ("before", "after"), [(Regime(), Regime(success=0.70)), (REFUNDS, REFUNDS_FAIL)]
)
def test_state_survives_a_restart_through_the_store(before: Regime, after: Regime) -> None:
    events = calls(45_000, seed=12, before=before, after=after, change_at=40_000)
    whole = fired(run(BehaviourDrift(), events))
    assert whole
    store: dict[str, Any] = {}
    first = BehaviourDrift(store=store)
    before = run(first, events[:39_000])
    store.update(first.dirty_states())
    assert list(store) == [f"drift/{KEY}"]
    restarted = BehaviourDrift(store=store)
    assert fired(before + run(restarted, events[39_000:])) == whole


def test_late_feedback_feeds_the_success_rate_of_its_call() -> None:
    events = calls(
        45_000, seed=16, after=Regime(success=0.70), change_at=40_000, with_outcome=False
    )
    detector = BehaviourDrift()
    alerts = run_with_feedback(
        detector, events, lambda e: 0.83 if int(e.event_id[1:]) < 40_000 else 0.70, seed=16
    )
    assert [(k, s) for k, s, _ in fired(alerts)] == [("accuracy_drift", "success_rate")]
    assert detector.join.stats.joined > 44_000


def run_with_feedback(
    detector: BehaviourDrift,
    events: list[InteractionEvent],
    success: Callable[[InteractionEvent], float],
    *,
    seed: int,
) -> list[Alert]:
    """The calls in chunks of 1,000, each successful one judged a minute later by a user
    (with probability ``success(call)`` of a good outcome)."""
    rng = random.Random(seed)
    alerts: list[Alert] = []
    for start in range(0, len(events), 1_000):
        chunk = events[start : start + 1_000]
        alerts.extend(detector.on_interactions(chunk))
        for event in chunk:
            if event.status == "ok":
                outcome = rng.random() < success(event)
                alerts.extend(detector.on_feedback(feedback(event, outcome)))
    return alerts


def feedback(event: InteractionEvent, outcome: bool, delay_s: float = 60.0) -> FeedbackEvent:
    return FeedbackEvent(
        type="feedback", event_id=event.event_id, ts=event.ts + timedelta(seconds=delay_s),
        app=event.app, outcome=outcome,
    )  # fmt: skip


def test_join_early_duplicate_and_expired() -> None:
    join = OutcomeJoin(horizon=timedelta(minutes=10))
    early = FeedbackEvent(type="feedback", event_id="a", ts=T0, app="x", outcome=True)
    assert join.match(early) is None and join.stats.early == 1
    assert join.expect("a", "k", T0) == early  # the call comes after its feedback
    assert join.expect("b", "k", T0) is None
    assert join.match(replace_id(early, "b")) == ("k", None)
    assert join.match(replace_id(early, "b")) is None and join.stats.duplicate == 1
    join.expect("c", "k", T0)
    join.expect("d", "k", T0 + timedelta(minutes=11))  # c is now older than the horizon
    assert join.stats.expired_calls == 1
    assert join.stats.joined == 2


def replace_id(fb: FeedbackEvent, event_id: str) -> FeedbackEvent:
    return fb.model_copy(update={"event_id": event_id})


def test_stats_rows_once_a_minute_per_key(steady: list[InteractionEvent]) -> None:
    detector = BehaviourDrift()
    rows: list[Any] = []
    for start in range(0, 6_000, 500):  # 10 minutes of calls at 10/s
        detector.on_interactions(steady[start : start + 500])
        detector.stats_rows(rows)
    minutes = sorted({r[0] for r in rows})
    intents = ["success_rate:other", "success_rate:refund", "success_rate:status"]
    assert len(minutes) == 10 and len(rows) == 10 * (len(SIGNALS) + len(intents))
    assert sorted({r[5] for r in rows if r[5].startswith("success_rate:")}) == intents
    latency = [r for r in rows if r[5] == "latency_ms"]
    assert (
        latency[-1][7] == "warmup" and latency[-1][8] == 5_500
    )  # rows of the chunk that entered minute 9


@pytest.mark.parametrize(
    ("text", "finish", "expected"),
    [
        ("I'm sorry, but I can't help with that.", "stop", True),
        ("I cannot assist with this request.", "stop", True),
        ("Sure! Your order #123 ships today.", "stop", False),
        ("Sorry for the wait: your refund is on its way.", "stop", False),
        ("Here it is.", "content_filter", True),
    ],
)
def test_is_refusal(text: str, finish: str, expected: bool) -> None:
    event = calls(1, seed=1)[0].model_copy(update={"output_text": text, "finish_reason": finish})
    assert is_refusal(event) is expected


def test_adwin_backstop_reports_a_drop_the_bank_cannot_see_while_it_warms_up_again() -> None:
    # 83% -> 70% at call 40,000: the bank fires, then measures a new reference for 30,000
    # outcomes; 70% -> 50% at 50,000 happens inside that warm-up, where only ADWIN watches.
    # ADWIN's own detection of the first drop dates it before the bank's alert: not repeated.
    first = calls(50_000, seed=17, after=Regime(success=0.70), change_at=40_000)
    second = calls(60_000, seed=18, before=Regime(success=0.50))[50_000:]
    events = first + [
        e.model_copy(update={"event_id": f"e{50_000 + i}"}) for i, e in enumerate(second)
    ]
    alerts = run(BehaviourDrift(), events)
    assert [s for _, s, _ in fired(alerts)] == ["success_rate", "success_rate_adwin"]
    bank, backstop_at = (at for _, _, at in fired(alerts))
    assert 40_000 < bank < 41_000 and 50_000 < backstop_at < 51_500
    backstop = alerts[1]
    assert backstop.summary.startswith("success rate (ADWIN backstop) of support-bot/gpt-4o fell")
