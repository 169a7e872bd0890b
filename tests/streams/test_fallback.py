"""FallbackRate: the share of calls served by a fallback rises; tiny reference shares."""

from __future__ import annotations

import doctest
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.detectors import fallback as fallback_module
from slowleak.streams.core.detectors.fallback import FallbackRate
from slowleak.streams.core.stats import BernoulliDrift

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
PRIMARY, FALLBACK = "gpt-4o", "claude-3-5-sonnet"


def calls(
    seed: int, n: int, share: float, *, start: int = 0, after: float | None = None, at: int = 0
) -> list[InteractionEvent]:
    """``n`` calls, one every 0.5 s from call ``start``; each falls back with probability
    ``share`` (``after`` from call ``at`` on). The primary succeeds 83% of the time at $0.0052,
    the fallback 71% at $0.0031."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        p = share if after is None or i < at else after
        fields: dict[str, Any] = (
            {
                "model": FALLBACK,
                "fallback_from": PRIMARY,
                "cost_usd": 0.0031,
                "outcome": rng.random() < 0.71,
            }
            if rng.random() < p
            else {"model": PRIMARY, "cost_usd": 0.0052, "outcome": rng.random() < 0.83}
        )
        # model_construct: these are valid by construction, and 300,000 of them validate slowly.
        out.append(
            InteractionEvent.model_construct(
                event_id=f"e{i}",
                ts=T0 + timedelta(seconds=i / 2),
                app="support-bot",
                input_tokens=10,
                output_tokens=5,
                latency_ms=100.0,
                status="ok",
                **fields,
            )
        )
    return out


def run(detector: FallbackRate, events: Iterable[InteractionEvent]) -> list[Alert]:
    return [alert for event in events for alert in detector.on_interaction(event)]


def index(alert: Alert) -> int:
    return int(alert.event_id[1:])


def test_docstring_example() -> None:
    assert doctest.testmod(fallback_module).failed == 0


def test_no_fallbacks_never_alarm() -> None:
    assert run(FallbackRate(), calls(1, 100_000, 0.0)) == []


def test_a_stable_half_percent_share_does_not_alarm() -> None:
    assert run(FallbackRate(), calls(2, 300_000, 0.005)) == []


@pytest.mark.parametrize(("seed", "before"), [(4, 0.0), (5, 0.0), (6, 0.005), (7, 0.005)])
def test_falling_back_5_percent_is_detected_quickly(seed: int, before: float) -> None:
    alerts = run(FallbackRate(), calls(seed, 30_000, before, after=0.05, at=20_000))
    assert [a.status for a in alerts] == ["firing"]
    assert 20_000 < index(alerts[0]) < 20_600  # ~300 calls: 2.5 min at 2 calls/s


def test_the_alert_names_both_models_with_numbers() -> None:
    alerts = run(FallbackRate(), calls(8, 30_000, 0.004, after=0.31, at=20_000))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.kind == "fallback_rate" and alert.severity == "warning"
    assert alert.model == PRIMARY
    assert alert.labels == {"env": "prod", "primary": PRIMARY, "fallback": FALLBACK}
    d = alert.details
    assert d["reference"] == pytest.approx(0.004, abs=0.002)
    assert d["bank_reference"] == pytest.approx(0.01, abs=1e-4)  # floored
    assert d["primary"]["success_rate"] == pytest.approx(0.83, abs=0.02)
    assert d["primary"]["cost_per_call"] == pytest.approx(0.0052)
    assert d["fallback"]["cost_per_call"] == pytest.approx(0.0031)
    # Call 20,000 is at 02:46:40; the change is dated by its minute.
    assert d["since"] == "2026-11-25T02:46:00+00:00"
    pattern = (
        r"support-bot: (\d+\.\d)% of the (\d+) calls since about 02:46 UTC served by a fallback "
        r"\(reference 0\.\d%\); fallback claude-3-5-sonnet: success \d+\.\d% \(n=\d+\), "
        r"\$0\.0031/call vs primary gpt-4o: success 8\d\.\d% \(n=[\d,]+\), \$0\.0052/call"
    )
    match = re.fullmatch(pattern, alert.summary)
    assert match is not None, alert.summary
    assert float(match[1]) == pytest.approx(100 * d["share"], abs=0.05)
    assert int(match[2]) == d["calls_since_change"] > 0
    assert 0.15 < d["share"] < 0.6


def test_resolves_after_recovery_and_detects_the_next_incident() -> None:
    events = calls(9, 20_000, 0.0)
    events += calls(10, 5_000, 0.2, start=20_000)
    events += calls(11, 30_000, 0.0, start=25_000)
    events += calls(12, 5_000, 0.2, start=55_000)
    alerts = run(FallbackRate(), events)
    assert [a.status for a in alerts] == ["firing", "resolved", "firing"]  # not during the 20%
    fired, resolved, again = alerts
    assert resolved.alert_id == fired.alert_id != again.alert_id
    # Blocks of 1,000 calls from the detection: the first one wholly after the recovery.
    assert 25_000 < index(resolved) <= 27_000
    assert "fallbacks are down to 0.0% of the last 1,000 calls" in resolved.summary
    # A new warm-up of 10,000 calls on normal traffic, then the second incident is caught.
    assert 55_000 < index(again) < 55_300
    assert again.details["reference"] == 0.0


def test_without_the_floor_a_zero_reference_is_blind() -> None:
    # Why the floor: at a reference of 0.5 / 10,001 the bank has no member at all.
    events = calls(13, 30_000, 0.0, after=0.5, at=10_000)
    assert run(FallbackRate(floor=0.0), events) == []
    assert [a.status for a in run(FallbackRate(), events)] == ["firing"]


def test_the_floor_builds_the_bank_for_a_rare_event() -> None:
    drift = BernoulliDrift(direction="up", warmup=10_000, min_reference=0.01)
    assert drift.update_many([False] * 10_000) == 10_000
    assert drift.reference == pytest.approx(0.01) and drift.measured == 0.0
    assert len(drift.shifts) == 4 and drift.statistic == 0.0
    unfloored = BernoulliDrift(direction="up", warmup=10_000)
    unfloored.update_many([False] * 10_000)
    assert unfloored.shifts == ()


def json_round_trip(states: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(states))
    return loaded


def scenario() -> list[InteractionEvent]:
    return calls(14, 20_000, 0.0) + calls(15, 8_000, 0.1, start=20_000) + calls(16, 4_000, 0.0)


@pytest.mark.parametrize("split", [5_000, 10_000, 20_100, 21_000])
def test_state_survives_a_round_trip_through_the_store(split: int) -> None:
    events = scenario()
    expected = run(FallbackRate(), events)
    assert [a.status for a in expected] == ["firing", "resolved"]
    store: dict[str, Any] = {}
    first = FallbackRate(store=store)
    got = run(first, events[:split])
    store.update(json_round_trip(first.dirty_states()))
    assert list(store) == ["fallback_rate/support-bot|prod"]
    got += run(FallbackRate(store=store), events[split:])
    assert got == expected


def test_alerts_do_not_depend_on_how_events_are_chunked() -> None:
    events = scenario()
    expected = run(FallbackRate(), events)
    rng = random.Random(17)
    store: dict[str, Any] = {}
    detector = FallbackRate(store=store)
    got: list[Alert] = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 3_000)
        got += run(detector, events[i : i + size])
        store.update(json_round_trip(detector.dirty_states()))
        if rng.random() < 0.3:
            detector.forget()
        i += size
    assert got == expected


def test_state_is_bounded() -> None:
    detector = FallbackRate(max_models=3)
    events = calls(18, 20_000, 0.01)
    events += [
        InteractionEvent(
            event_id=f"m{i}",
            ts=T0 + timedelta(hours=3, seconds=i),
            app="support-bot",
            model=f"m{i}",
            input_tokens=1,
            output_tokens=1,
            latency_ms=1.0,
            status="ok",
        )
        for i in range(5)
    ]
    run(detector, events)
    state = detector.dirty_states()["fallback_rate/support-bot|prod"]
    assert list(state["models"]) == ["m2", "m3", "m4"]
    assert len(state["checkpoints"]) <= 240
    assert len(orjson.dumps(state)) < 8_000


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="floor"):
        FallbackRate(floor=1.0)
    with pytest.raises(ValueError, match="warmup"):
        FallbackRate(warmup=10)


def test_the_chunk_path_gives_the_per_event_alerts() -> None:
    events = calls(19, 20_000, 0.0) + calls(20, 3_000, 0.2, start=20_000)
    events += calls(21, 3_000, 0.0, start=23_000)
    expected = run(FallbackRate(), events)
    assert [a.status for a in expected] == ["firing", "resolved"]
    detector = FallbackRate()
    got: list[Alert] = []
    for start in range(0, len(events), 2_500):
        got += detector.on_interactions(events[start : start + 2_500])
    assert [(a.alert_id, a.event_id, a.status, a.summary) for a in got] == [
        (a.alert_id, a.event_id, a.status, a.summary) for a in expected
    ]
