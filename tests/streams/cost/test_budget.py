"""CostBudget: pages on a fast spike, tickets a slow creep, stays silent on one expensive call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.cost import Budget, CostBudget, PriceBook

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
#: $1,000 a month: the even rate is $1.39 an hour; the page rule allows $20 an hour (and
#: $1.67 per 5 min), the ticket rule $50 per 6 hours (and $4.17 per 30 min).
MONTHLY = Budget(scope="app", name="bot", period="month", amount_usd=1_000.0)


def call(second: float, usd: float, **fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": f"e{second:g}", "ts": T0 + timedelta(seconds=second), "app": "bot",
        "model": "m", "input_tokens": 1, "output_tokens": 1, "latency_ms": 1.0,
        "status": "ok", "cost_usd": usd,
    }  # fmt: skip
    return InteractionEvent(**(base | fields))


def steady(start_s: int, end_s: int, every_s: int, usd: float, **f: Any) -> list[InteractionEvent]:
    return [call(s, usd, **f) for s in range(start_s, end_s, every_s)]


def run(events: list[InteractionEvent], *budgets: Budget) -> list[Alert]:
    detector = CostBudget(budgets=budgets or (MONTHLY,), prices=PriceBook(table={}))
    return detector.on_interactions(events)


def brief(alerts: list[Alert]) -> list[tuple[str, str, str, str]]:
    return [(a.event_id, a.status, a.severity, a.labels["rule"]) for a in alerts]


def test_a_fast_spike_pages_within_minutes() -> None:
    # Two hours at $3.60 an hour (2.6x the even rate), then $180 an hour from 02:00.
    events = steady(0, 7_200, 10, 0.01) + steady(7_200, 9_000, 10, 0.5)
    alerts = run(events)

    assert brief(alerts) == [("e7530", "firing", "critical", "page")]
    assert alerts[0].summary == (
        "bot is burning its $1,000 monthly budget 15x too fast: $20.24 in the last hour, "
        "$14.00 in the last 5 min (the even rate is $1.39 an hour); $24.20 spent this month"
    )
    assert alerts[0].labels == {"scope": "app", "budget": "bot", "period": "month",
                                "rule": "page"}  # fmt: skip
    assert alerts[0].details["burn_rates"]["1h"] == pytest.approx(20.24 / (1000 / 720))


def test_a_slow_creep_opens_a_ticket_not_a_page() -> None:
    # $11.10 an hour (8x the even rate): 5% of the budget goes in 4.5 hours, which is 6x the
    # even rate over the 6-hour window.
    alerts = run(steady(0, 8 * 3_600, 60, 0.185))

    assert brief(alerts) == [("e16200", "firing", "warning", "ticket")]
    assert alerts[0].summary.startswith(
        "bot is burning its $1,000 monthly budget 6.0x too fast: $50.13 in the last 6 h, "
        "$5.55 in the last 30 min"
    )


@pytest.mark.parametrize("usd", [25.0, 60.0, 400.0])
def test_one_expensive_call_does_not_alert(usd: float) -> None:
    events = [*steady(0, 3_600, 10, 0.01), call(3_600, usd), *steady(3_610, 7_200, 10, 0.01)]

    assert run(events) == []


def test_the_alert_resolves_once_neither_rule_holds_for_the_hold_down() -> None:
    events = steady(0, 1_800, 10, 0.5) + steady(1_800, 7_200, 10, 0.01)
    alerts = run(events)

    # Page at 00:06:40; the ticket rule (6 h and 30 min) holds until the last 30 minutes spend
    # less than $4.17 (00:58:50), then 5 minutes of hold-down.
    assert brief(alerts) == [
        ("e400", "firing", "critical", "page"),
        ("e3830", "resolved", "critical", "page"),
    ]
    assert alerts[0].alert_id == alerts[1].alert_id
    assert alerts[1].summary.startswith("bot spends within its $1,000 monthly budget again")


def test_a_tenant_budget_counts_the_tenant_s_calls_only() -> None:
    daily = Budget(scope="tenant", name="acme", period="day", amount_usd=10.0)
    # acme: $0.20 a minute, 29x its $10 a day; globex spends 5x more, and counts for nothing.
    events = []
    for s in range(0, 3_600, 60):
        events += [call(s, 0.2, tenant="acme"), call(s + 1, 1.0, tenant="globex")]
    alerts = run(events, daily)

    assert brief(alerts) == [("e1800", "firing", "critical", "page")]
    assert alerts[0].summary == (
        "tenant acme in bot is burning its $10.00 daily budget 15x too fast: $6.20 in the last "
        "hour, $1.00 in the last 5 min (the even rate is $0.42 an hour); $6.20 spent today"
    )


def test_state_restored_from_the_store_gives_the_same_alerts() -> None:
    events = steady(0, 7_200, 10, 0.01) + steady(7_200, 9_000, 10, 0.5)
    expected = run(events)
    store: dict[str, Any] = {}
    alerts = []
    for start in range(0, len(events), 97):
        detector = CostBudget(budgets=[MONTHLY], store=store, prices=PriceBook(table={}))
        alerts += detector.on_interactions(events[start : start + 97])
        store.update(json.loads(json.dumps(detector.dirty_states())))

    assert alerts == expected


def test_no_budget_no_work() -> None:
    detector = CostBudget(budgets=[], prices=PriceBook(table={}))

    assert detector.on_interactions([call(0, 100.0)]) == []
    assert detector.dirty_states() == {}


def test_stored_trackers_follow_their_budget_when_the_configuration_changes() -> None:
    events = steady(0, 1_800, 10, 0.5)
    store: dict[str, Any] = {}
    first = CostBudget(budgets=[MONTHLY], store=store, prices=PriceBook(table={}))
    assert brief(first.on_interactions(events[:60])) == [("e400", "firing", "critical", "page")]
    store.update(json.loads(json.dumps(first.dirty_states())))

    daily = Budget(scope="tenant", name="acme", period="day", amount_usd=5.0)
    second = CostBudget(budgets=[daily, MONTHLY], store=store, prices=PriceBook(table={}))
    # The page stays open (no second firing); the new budget starts empty.
    assert second.on_interactions(events[60:]) == []
