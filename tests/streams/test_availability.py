"""Availability: SLO burn-rate pages and tickets, hard outages, state round trips, chunking."""

from __future__ import annotations

import doctest
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.detectors import availability as availability_module
from slowleak.streams.core.detectors.availability import Availability

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
APP = "support-bot"


def call(t: float, model: str = "gpt-4o", **fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": f"{model}-{t:.3f}", "ts": T0 + timedelta(seconds=t), "app": APP,
        "model": model, "input_tokens": 10, "output_tokens": 5, "latency_ms": 100.0,
        "status": "ok",
    }  # fmt: skip
    return InteractionEvent(**(base | fields))


def traffic(
    seed: int, start_s: float, end_s: float, every_s: float, error_rate: float, **fields: Any
) -> list[InteractionEvent]:
    """One call every ``every_s`` seconds in ``[start_s, end_s)``, failing at ``error_rate``."""
    rng = random.Random(seed)
    n = round((end_s - start_s) / every_s)
    return [
        call(
            start_s + i * every_s,
            status="error" if rng.random() < error_rate else "ok",
            **fields,
        )
        for i in range(n)
    ]


def run(detector: Availability, events: Iterable[InteractionEvent]) -> list[Alert]:
    return [alert for event in events for alert in detector.on_interaction(event)]


def seconds(alert: Alert) -> float:
    return (alert.ts - T0).total_seconds()


def test_docstring_example() -> None:
    assert doctest.testmod(availability_module).failed == 0


def test_quiet_on_a_stable_low_error_rate_over_hours() -> None:
    # 12 h at 30 calls/min with 0.1% failed calls: burn rate 0.2, and sparse bad minutes.
    events = traffic(1, 0, 12 * 3600, 2.0, 0.001)
    assert run(Availability(), events) == []


def test_a_few_failed_calls_in_a_quiet_night_do_not_page() -> None:
    # One call every 2 min; 4 of the 10 fail: 40% of the 5-min window, but 3 calls in it.
    statuses = ["ok", "error", "ok", "error", "error", "ok", "error", "ok", "ok", "ok"]
    events = [call(120.0 * i, status=s) for i, s in enumerate(statuses)]
    assert run(Availability(), events) == []


def test_pages_when_the_primary_starts_failing_20_percent() -> None:
    onset = 3 * 3600
    events = traffic(2, 0, onset, 2.0, 0.001) + traffic(3, onset, onset + 3600, 2.0, 0.20)
    alerts = run(Availability(), events)
    assert [(a.status, a.severity, a.labels["rule"]) for a in alerts] == [
        ("firing", "critical", "page")
    ]
    page = alerts[0]
    # The workbook's detection time for 20% failed with a 0.5% budget: 1 h * 14.4 * 0.5% / 20%
    # = 21.6 min (when the 1 h window crosses 7.2%; the 5 min window is already there).
    assert 19 * 60 < seconds(page) - onset < 24 * 60
    assert page.kind == "availability" and page.model == "gpt-4o"
    assert page.labels == {"env": "prod", "condition": "burn_rate", "rule": "page"}
    d = page.details
    assert 1790 < d["calls"]["1h"] <= 1800 and d["burn_rates"]["1h"] > 14.4
    assert d["burn_rates"]["5m"] > 14.4
    share_1h = d["failures"]["1h"] / d["calls"]["1h"]
    share_5m = d["failures"]["5m"] / d["calls"]["5m"]
    burn = share_1h / 0.005
    assert page.summary == (
        f"support-bot: gpt-4o is burning its 99.5% success budget {burn:.1f}x too fast "
        f"({share_1h:.1%} of {d['calls']['1h']:,} calls failed in the last hour, "
        f"{share_5m:.1%} in the last "
        f"5 min; {burn / 30:.0%} of the 30-day budget gone per day at this rate)"
    )


def test_a_slow_burn_opens_a_ticket_not_a_page() -> None:
    # 5% failed: burn rate 10, above the ticket's 6 and below the page's 14.4. After 1 h at
    # 0.1%, the 6 h window reaches 3% after ~87 min.
    onset = 3600
    events = traffic(4, 0, onset, 2.0, 0.001) + traffic(5, onset, onset + 4 * 3600, 2.0, 0.05)
    alerts = run(Availability(), events)
    assert [(a.status, a.severity) for a in alerts] == [("firing", "warning")]
    ticket = alerts[0]
    assert 80 * 60 < seconds(ticket) - onset < 95 * 60
    assert ticket.labels["rule"] == "ticket"
    assert "in the last 6 h" in ticket.summary and "in the last 30 min" in ticket.summary


def test_resolves_after_recovery_with_the_same_alert_id() -> None:
    onset, recovery = 3 * 3600, 4 * 3600
    events = (
        traffic(6, 0, onset, 2.0, 0.001)
        + traffic(7, onset, recovery, 2.0, 0.20)
        + traffic(8, recovery, recovery + 2 * 3600, 2.0, 0.001)
    )
    alerts = run(Availability(), events)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    fired, resolved = alerts
    assert resolved.alert_id == fired.alert_id and resolved.severity == "critical"
    # The page rule stops holding ~5 min after the recovery, the ticket's (30 min at > 3%)
    # ~26 min after it; then the 5 min hold-down.
    assert 26 * 60 < seconds(resolved) - recovery < 36 * 60
    assert resolved.summary.startswith("support-bot: gpt-4o is back within its 99.5% success")
    assert resolved.details["burn_rates"]["30m"] <= 6.0


def test_hard_outage_fires_at_the_right_event_and_resolves_on_the_first_success() -> None:
    # One call per second; from t=600 gpt-4o fails and every call falls back to claude.
    healthy = [call(t) for t in range(600)]
    fallbacks = [
        call(t, model="claude-3-5-sonnet", fallback_from="gpt-4o") for t in range(600, 900)
    ]
    recovered = [call(t) for t in range(900, 960)]
    alerts = [
        a
        for a in run(Availability(), healthy + fallbacks + recovered)
        if a.labels["condition"] == "outage"
    ]
    assert [(a.status, a.event_id) for a in alerts] == [
        ("firing", "claude-3-5-sonnet-659.000"),  # 60 s after the last success (t=599)
        ("resolved", "gpt-4o-900.000"),
    ]
    fired, resolved = alerts
    assert fired.severity == "critical" and fired.model == "gpt-4o"
    assert fired.alert_id == resolved.alert_id
    assert fired.summary == (
        "support-bot: gpt-4o has had no successful call for 60 s (last success 00:09:59 UTC); "
        "60 calls failed or fell back since; the app's traffic goes on "
        "(claude-3-5-sonnet serving 60 fallbacks)"
    )
    assert fired.details["fallbacks_served_by"] == {"claude-3-5-sonnet": 60}
    assert resolved.summary == (
        "support-bot: gpt-4o answers again (first successful call at 00:15:00 UTC, after 301 s "
        "without one; 300 calls failed or fell back in between)"
    )


def test_outage_needs_enough_failures() -> None:
    # Three failures then a switch to another model: too few, and they stop.
    events = [call(t) for t in range(100)]
    events += [call(t, status="error") for t in range(100, 103)]
    events += [call(t, model="other") for t in range(103, 400)]
    assert [a for a in run(Availability(), events) if a.labels["condition"] == "outage"] == []
    # Five failures, then the app calls another model: an outage 60 s after the last success.
    events = [call(t) for t in range(100)]
    events += [call(t, status="timeout") for t in range(100, 105)]
    events += [call(t, model="other") for t in range(105, 400)]
    alerts = [a for a in run(Availability(), events) if a.labels["condition"] == "outage"]
    assert [a.event_id for a in alerts] == ["other-159.000"]
    assert alerts[0].summary.endswith(
        "5 calls failed or fell back since; the app's traffic goes on "
        "(55 calls to other models in the last 5 min)"
    )


def test_an_outage_nobody_waits_on_is_closed_after_the_stale_time() -> None:
    events = [call(t, status="error") for t in range(0, 120)]
    events += [call(t, model="other") for t in range(120, 120 + 3700, 10)]
    alerts = [a for a in run(Availability(), events) if a.labels["condition"] == "outage"]
    assert [(a.status, a.details.get("resolved_by")) for a in alerts] == [
        ("firing", None),
        ("resolved", "no_traffic"),
    ]
    assert "none seen since its first failure at 00:00:00 UTC" in alerts[0].summary


def scenario() -> list[InteractionEvent]:
    """Healthy, a hard outage with fallbacks, a 20% burn, recovery; two models and a staging
    env."""
    events = traffic(10, 0, 3600, 2.0, 0.001)
    events += traffic(11, 0, 3600, 5.0, 0.0, model="claude-3-5-sonnet", env="staging")
    events += [
        call(3600 + t, model="claude-3-5-sonnet", fallback_from="gpt-4o") for t in range(0, 600, 2)
    ]
    events += traffic(12, 4200, 6000, 2.0, 0.25)
    events += traffic(13, 6000, 9000, 2.0, 0.001)
    events.sort(key=lambda e: e.ts)
    return events


def test_scenario_alerts() -> None:
    alerts = run(Availability(), scenario())
    assert [(a.labels["condition"], a.status, a.severity) for a in alerts] == [
        ("outage", "firing", "critical"),
        ("burn_rate", "firing", "warning"),  # 6 h of history is 1 h here: the ticket is first
        ("burn_rate", "firing", "critical"),  # escalated, same alert id
        ("outage", "resolved", "critical"),
        ("burn_rate", "resolved", "critical"),  # after the 25% burn too
    ]
    assert len({a.alert_id for a in alerts}) == 2
    assert all(a.labels["env"] == "prod" for a in alerts)


def json_round_trip(states: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(states))
    return loaded


@pytest.mark.parametrize("split", [1000, 2500, 3200, 4000])
def test_state_survives_a_round_trip_through_the_store(split: int) -> None:
    events = scenario()
    expected = run(Availability(), events)
    store: dict[str, Any] = {}
    first = Availability(store=store)
    got = run(first, events[:split])
    store.update(json_round_trip(first.dirty_states()))
    assert set(store) == {"availability/support-bot|prod", "availability/support-bot|staging"}
    got += run(Availability(store=store), events[split:])
    assert got == expected


def test_alerts_do_not_depend_on_how_events_are_chunked() -> None:
    events = scenario()
    expected = run(Availability(), events)
    rng = random.Random(14)
    store: dict[str, Any] = {}
    detector = Availability(store=store)
    got: list[Alert] = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 700)
        got += run(detector, events[i : i + size])
        store.update(json_round_trip(detector.dirty_states()))
        if rng.random() < 0.3:
            detector.forget()  # e.g. a rebalance: states reload from the store
        i += size
    assert got == expected


def test_state_is_bounded() -> None:
    detector = Availability(max_models=3)
    events = traffic(15, 0, 8 * 3600, 1.0, 0.001)
    events += [call(8 * 3600 + i, model=f"m{i}") for i in range(10)]
    run(detector, events)
    state = detector.dirty_states()["availability/support-bot|prod"]
    assert list(state["models"]) == ["m7", "m8", "m9"]
    detector = Availability()
    run(detector, events[: 8 * 3600])
    state = detector.dirty_states()["availability/support-bot|prod"]
    assert len(state["models"]["gpt-4o"]["b"]) == 360  # the minutes of the longest window
    assert len(orjson.dumps(state)) < 8_000


def test_late_events_count_in_their_minute() -> None:
    detector = Availability()
    run(detector, [call(t) for t in range(0, 600)])
    run(detector, [call(t + 0.5, status="error") for t in range(240, 300)])  # late, minute 4
    state = detector.obj("support-bot|prod").models["gpt-4o"].windows
    assert state.buckets[int(T0.timestamp()) // 60 + 4] == [120, 60]
    assert (state.calls[0], state.failures[0]) == (300 + 0, 0)  # minutes 5..9 only
    assert (state.calls[1], state.failures[1]) == (660, 60)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="target"):
        Availability(target=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        Availability(min_calls=0)


def test_the_chunk_path_gives_the_per_event_alerts_on_scenario_traffic() -> None:
    from slowleak.streams.scenarios import SCENARIOS, scenario_traffic

    apps = tuple(s for s in SCENARIOS if s.app in ("order-bot", "steady-bot"))
    events = [
        InteractionEvent.model_validate_json(orjson.dumps(e))
        for e in scenario_traffic(start=T0, calls_per_app=6_000, change_at=4_000, scenarios=apps)
    ]
    expected = run(Availability(), events)
    assert sorted(a.labels["condition"] for a in expected) == ["burn_rate", "burn_rate", "outage"]
    store: dict[str, Any] = {}
    detector = Availability(store=store)
    got: list[Alert] = []
    for start in range(0, len(events), 1_500):
        got += detector.on_interactions(events[start : start + 1_500])
        store.update(json_round_trip(detector.dirty_states()))
        detector.forget()
    assert got == expected


def test_the_chunk_path_gives_the_per_event_alerts_through_a_page_and_its_resolve() -> None:
    events = scenario()
    expected = run(Availability(), events)
    detector = Availability()
    got: list[Alert] = []
    for start in range(0, len(events), 777):
        got += detector.on_interactions(events[start : start + 777])
    assert got == expected
    assert [a.status for a in got if a.labels["condition"] == "burn_rate"] == [
        "firing", "firing", "resolved",
    ]  # fmt: skip
