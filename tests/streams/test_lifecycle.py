"""Alert lifecycle: one notification per condition, repeats, hold-down, flaps, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from slowleak.models import Alert
from slowleak.models.alerts import AlertStatus, Severity
from slowleak.streams.core.lifecycle import AlertLifecycle, LifecyclePolicy

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
POLICY = LifecyclePolicy(repeat_interval_s=3600, hold_down_s=300, flap_memory_s=3600)


def decision(
    minute: float,
    status: AlertStatus = "firing",
    *,
    severity: Severity = "warning",
    alert_id: str = "cond-1",
    **details: Any,
) -> Alert:
    return Alert(
        alert_id=alert_id, kind="metric_drift", severity=severity, status=status,
        ts=T0 + timedelta(minutes=minute), event_id=f"e{minute}", app="support-bot",
        model="gpt-4o", labels={"signal": "latency_ms"}, summary=f"{status} at {minute}",
        details=details,
    )  # fmt: skip


def tick(book: AlertLifecycle, minute: float) -> list[Alert]:
    return book.process([], {"support-bot": T0 + timedelta(minutes=minute)})


def seen(alerts: list[Alert]) -> list[tuple[str, int, str]]:
    return [(a.status, a.sequence, a.details.get("repeat", "")) for a in alerts]


def test_first_firing_notifies_then_folds_then_repeats_on_the_event_clock() -> None:
    book = AlertLifecycle(policy=POLICY)
    first = book.process([decision(0)], {})
    assert seen(first) == [("firing", 0, "")]
    assert first[0].starts_at == T0
    assert book.process([decision(5), decision(30)], {}) == []  # the same condition: folded
    assert tick(book, 59) == []
    repeat = tick(book, 60)
    assert seen(repeat) == [("firing", 1, "still firing")]
    assert repeat[0].starts_at == T0 and repeat[0].ts == T0 + timedelta(minutes=60)
    assert tick(book, 100) == [] and seen(tick(book, 120)) == [("firing", 2, "still firing")]


def test_resolve_waits_for_the_hold_down() -> None:
    book = AlertLifecycle(policy=POLICY)
    book.process([decision(0)], {})
    assert book.process([decision(10, "resolved")], {}) == []
    assert tick(book, 14.9) == []
    resolved = tick(book, 15)
    assert seen(resolved) == [("resolved", 1, "")]
    assert resolved[0].ends_at == T0 + timedelta(minutes=15)
    assert resolved[0].summary == "resolved at 10"
    # It fires again later: a new notification with the next number.
    assert seen(book.process([decision(40)], {})) == [("firing", 2, "")]


def test_a_condition_back_within_the_hold_down_is_a_flap_and_waits_longer() -> None:
    book = AlertLifecycle(policy=POLICY)
    book.process([decision(0)], {})
    book.process([decision(10, "resolved")], {})
    assert book.process([decision(12)], {}) == []  # back before anyone was told
    book.process([decision(20, "resolved")], {})
    assert tick(book, 29) == []  # 5 min doubled after one flap
    assert seen(tick(book, 30)) == [("resolved", 1, "")]


def test_a_higher_severity_notifies_again() -> None:
    book = AlertLifecycle(policy=POLICY)
    book.process([decision(0)], {})
    escalated = book.process([decision(3, severity="critical")], {})
    assert seen(escalated) == [("firing", 1, "escalated")]
    assert escalated[0].severity == "critical"
    assert book.process([decision(4, severity="warning")], {}) == []


def test_a_one_off_resolves_itself() -> None:
    book = AlertLifecycle(policy=LifecyclePolicy(auto_resolve_s=1800))
    book.process([decision(0, auto_resolve=True)], {})
    assert tick(book, 29) == []
    (closed,) = tick(book, 30)
    assert (closed.status, closed.sequence) == ("resolved", 1)
    assert closed.summary == "closed 30 min after it fired (a one-off): firing at 0"


def test_resolving_what_never_fired_says_nothing() -> None:
    book = AlertLifecycle(policy=POLICY)
    assert book.process([decision(0, "resolved")], {}) == []
    assert tick(book, 60) == []


def test_a_restart_neither_repages_nor_forgets() -> None:
    store: dict[str, Any] = {}
    book = AlertLifecycle(store=store, policy=POLICY)
    book.process([decision(0)], {})
    store.update(orjson.loads(orjson.dumps(book.dirty_states())))
    assert list(store) == ["lifecycle/support-bot"]

    restarted = AlertLifecycle(store=store, policy=POLICY)
    assert restarted.process([decision(5)], {}) == []  # still open: no new page
    assert seen(tick(restarted, 60)) == [("firing", 1, "still firing")]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="hold_down_s must be positive"):
        LifecyclePolicy(hold_down_s=0)
