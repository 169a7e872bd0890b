"""``cost_budget``: an app or a tenant spends its budget too fast (multi-window burn rates).

Each :class:`~slowleak.models.settings.Budget` (an amount per day or month, for an app or a
tenant) is spent at an even rate when ``amount / period`` goes per minute (a month is 30 days,
as in the SRE workbook); a window's burn rate is what it spent over what the even rate allows
in it. The rules are the ``availability`` detector's (:data:`BURN_RULES`): ``page`` (critical)
when the last hour and the last 5 minutes both burn more than 14.4x (2% of a monthly budget in
an hour), ``ticket`` (warning) when the last 6 hours and the last 30 minutes both burn more than
6x (5% of it in 6 hours). Both windows of a rule must agree: the long one says it is real, the
short one that it is still going on. One expensive call does not page: the short window must
burn too fast even without its most expensive call.

The alert fires at the event where a rule starts to hold, escalates (same ``alert_id``) from
ticket to page, and resolves once neither rule has held for ``hold_down_s`` of event time.
Everything is in event time, per app (its partition): a tenant budget counts the tenant's
calls of each app apart (or of its ``app`` only), as a tenant's calls of two apps may be on two
partitions. Every env of an app counts (money is money). Costs are summed in integer
nano-dollars, so restored state gives the same sums.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from slowleak.models import Alert, InteractionEvent
from slowleak.models.settings import Budget
from slowleak.streams.core.cost.prices import PriceBook
from slowleak.streams.core.detectors._windows import WINDOWS_MIN, Windows
from slowleak.streams.core.detectors.availability import BURN_RULES, BurnRule
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id

__all__ = ["BURN_RULES", "CostBudget"]

PERIOD_MIN = {"day": 1_440, "month": 43_200}
_ADJECTIVE = {"day": "daily", "month": "monthly"}
_NANO = 1e9
_WINDOW_NAMES = {5: "5 min", 30: "30 min", 60: "hour", 360: "6 h"}


def _usd(nano: float) -> str:
    usd = nano / _NANO
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:,.2f}"


def _budget_id(budget: Budget) -> str:
    return f"{budget.scope}:{budget.name}:{budget.period}:{budget.app or ''}"


@functools.lru_cache(maxsize=64)
def _period(day: int, period: str) -> str:
    """The UTC day (``2026-11-25``) or month (``2026-11``) of a day number since the epoch."""
    date = datetime.fromtimestamp(day * 86_400, UTC)
    return f"{date:%Y-%m}" if period == "month" else f"{date:%Y-%m-%d}"


class _Tracker:
    """One budget's spend in one app: minute windows of [calls, nano-dollars], the largest call
    per minute (of the last 30), the spend of the current period, and the open alert
    ``[alert_id, started, last held, severity]``."""

    __slots__ = ("largest", "open", "period", "spent", "windows")

    def __init__(self, head: int) -> None:
        self.windows = Windows(head)
        self.largest: dict[int, int] = {}
        self.period = ""
        self.spent = 0
        self.open: list[Any] | None = None


class _App:
    __slots__ = ("clock", "head", "trackers")

    def __init__(self) -> None:
        self.head: int | None = None
        self.clock = 0.0
        self.trackers: dict[int, _Tracker] = {}  # index into CostBudget.budgets


class CostBudget(ObjectDetector[_App]):
    """Per app: burn-rate alerts (kind ``cost_budget``) on the budgets that apply to it.

    >>> from datetime import UTC, datetime, timedelta
    >>> budget = Budget(scope="app", name="bot", period="month", amount_usd=1_000.0)
    >>> detector = CostBudget(budgets=[budget], prices=PriceBook(table={}))
    >>> t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    >>> def call(s, usd):
    ...     return InteractionEvent(event_id=f"e{s}", ts=t0 + timedelta(seconds=s), app="bot",
    ...         model="m", input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
    ...         cost_usd=usd)
    >>> calls = [call(s, 0.01) for s in range(0, 3600, 10)] + [call(3600, 25.0)]
    >>> calls += [call(s, 0.2) for s in range(3601, 7200, 10)]
    >>> for alert in detector.on_interactions(calls):
    ...     print(alert.event_id, alert.severity, alert.summary)
    e3671 critical bot is burning its $1,000 monthly budget 22x too fast: $30.08 in the last \
hour, $26.78 in the last 5 min (the even rate is $1.39 an hour); $30.20 spent this month

    The $25 call alone makes the last hour burn 18x, but without it the last 5 minutes spend
    $0.20, not the $1.67 the page rule allows them: no page. Twenty cents every ten seconds
    (52x the even rate) pages 70 s later.
    """

    name: ClassVar[str] = "cost_budget"
    version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        budgets: Sequence[Budget],
        store: StateStore | None = None,
        prices: PriceBook | None = None,
        hold_down_s: float = 300.0,
    ) -> None:
        if hold_down_s < 0:
            raise ValueError(f"hold_down_s must be 0 or more, got {hold_down_s}")
        self.budgets = tuple(budgets)
        self.prices = PriceBook() if prices is None else prices
        self.hold_down_s = hold_down_s
        # Per budget and rule: (rule, long window index, short window index, nano-dollars
        # the long and the short window may spend).
        self._rules = [
            [
                (rule, WINDOWS_MIN.index(rule.long_min), WINDOWS_MIN.index(rule.short_min),
                 self._allowed(b, rule.long_min, rule), self._allowed(b, rule.short_min, rule))
                for rule in BURN_RULES
            ]
            for b in self.budgets
        ]  # fmt: skip
        # Stored states name budgets, not positions: the configuration may change.
        self._index = {_budget_id(b): i for i, b in enumerate(self.budgets)}
        self._by_app: dict[str, tuple[int, ...]] = {}
        self._by_tenant: dict[str, tuple[int, ...]] = {}
        for i, b in enumerate(self.budgets):
            index = self._by_app if b.scope == "app" else self._by_tenant
            index[b.name] = (*index.get(b.name, ()), i)
        super().__init__(store=store)

    @staticmethod
    def _allowed(budget: Budget, minutes: int, rule: BurnRule) -> float:
        return rule.factor * budget.amount_usd * _NANO * minutes / PERIOD_MIN[budget.period]

    # -- state ----------------------------------------------------------------------------------

    def new_object(self, key: str) -> _App:
        return _App()

    def load(self, key: str, state: State) -> _App:
        app = _App()
        app.head, app.clock = state["head"], state["clock"]
        for budget_id, saved in state["trackers"]:
            index = self._index.get(budget_id)
            if index is None:
                continue  # a budget no longer configured
            tracker = _Tracker(app.head or 0)
            tracker.windows = Windows.from_state(saved["b"], app.head or 0)
            tracker.largest = {int(m): n for m, n in saved["largest"]}
            tracker.period, tracker.spent = saved["period"], saved["spent"]
            tracker.open = saved["open"]
            app.trackers[index] = tracker
        return app

    def dump(self, obj: _App) -> State:
        return {
            "head": obj.head,
            "clock": obj.clock,
            "trackers": [
                [_budget_id(self.budgets[i]),
                 {"b": t.windows.to_state(), "largest": sorted(t.largest.items()),
                  "period": t.period, "spent": t.spent, "open": t.open}]
                for i, t in sorted(obj.trackers.items())
            ],
        }  # fmt: skip

    # -- events ---------------------------------------------------------------------------------

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        alerts: list[Alert] = []
        by_app, by_tenant = self._by_app, self._by_tenant
        for event in events:
            applies = by_app.get(event.app, ())
            tenant = event.tenant
            if tenant is not None and tenant in by_tenant:
                applies += tuple(
                    i for i in by_tenant[tenant] if self.budgets[i].app in (None, event.app)
                )
            if applies:
                app = self.obj(event.app)
                self.touch(event.app)
                alerts += self._step(app, event, applies)
        return alerts

    def _step(self, app: _App, event: InteractionEvent, applies: tuple[int, ...]) -> list[Alert]:
        """One event, counted for the budgets ``applies``; the app's other budgets are checked
        when the minute rolls (to resolve)."""
        t = event.ts.timestamp()
        minute = int(t // 60)
        rolled = False
        if app.head is None:
            app.head = minute
        elif minute > app.head:
            for tracker in app.trackers.values():
                tracker.windows.roll(minute)
                for m in [m for m in tracker.largest if m <= minute - 30]:
                    del tracker.largest[m]
            app.head, rolled = minute, True
        app.clock = max(app.clock, t)
        nano = round(self.prices.price(event).cost_usd * _NANO)
        alerts = []
        for index in sorted({*applies, *(app.trackers if rolled else ())}):
            found = app.trackers.get(index)
            if index in applies:
                budget = self.budgets[index]
                tracker = found if found is not None else _Tracker(app.head)
                app.trackers[index] = tracker
                tracker.windows.put(minute, 1, nano)
                if minute > app.head - 30 and nano > tracker.largest.get(minute, 0):
                    tracker.largest[minute] = nano
                period = _period(minute // 1_440, budget.period)
                if period > tracker.period:
                    tracker.period, tracker.spent = period, 0
                if period == tracker.period:
                    tracker.spent += nano
            else:
                assert found is not None  # a tracker of the app's, checked on a new minute
                tracker = found
            alert = self._check(event, app, index, tracker)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _check(
        self, event: InteractionEvent, app: _App, index: int, tracker: _Tracker
    ) -> Alert | None:
        w = tracker.windows
        spent = w.failures
        held: tuple[BurnRule, int, int] | None = None
        for rule, long, short, long_ok, short_ok in self._rules[index]:
            if spent[long] > long_ok and spent[short] > short_ok:
                head = app.head or 0
                largest = max(
                    (n for m, n in tracker.largest.items() if m > head - rule.short_min), default=0
                )
                if spent[short] - largest > short_ok:
                    held = (rule, long, short)
                    break
        now = app.clock
        open_ = tracker.open
        if held is None:
            if open_ is not None and now - open_[2] >= self.hold_down_s:
                tracker.open = None
                return self._alert(event, index, tracker, open_, None)
            return None
        rule = held[0]
        if open_ is None:
            budget = self.budgets[index]
            aid = alert_id(self.name, event.app, budget.scope, budget.name, budget.period,
                           repr(now))  # fmt: skip
            tracker.open = [aid, now, now, rule.severity]
            return self._alert(event, index, tracker, tracker.open, held)
        open_[2] = now
        if rule.severity == "critical" and open_[3] != "critical":
            open_[3] = "critical"
            return self._alert(event, index, tracker, open_, held)
        return None

    def _alert(
        self,
        event: InteractionEvent,
        index: int,
        tracker: _Tracker,
        open_: list[Any],
        held: tuple[BurnRule, int, int] | None,
    ) -> Alert:
        budget = self.budgets[index]
        spent = tracker.windows.failures
        per_min = budget.amount_usd * _NANO / PERIOD_MIN[budget.period]
        burns = {m: spent[i] / (per_min * m) for i, m in enumerate(WINDOWS_MIN)}
        who = budget.name if budget.scope == "app" else f"tenant {budget.name} in {event.app}"
        amount = _usd(budget.amount_usd * _NANO)
        this = "today" if budget.period == "day" else "this month"
        if held is not None:
            rule, long, short = held
            burn = burns[rule.long_min]
            times = f"{burn:.0f}x" if burn >= 10 else f"{burn:.1f}x"
            summary = (
                f"{who} is burning its {amount} {_ADJECTIVE[budget.period]} budget {times} too "
                "fast: "
                f"{_usd(spent[long])} in the last {_WINDOW_NAMES[rule.long_min]}, "
                f"{_usd(spent[short])} in the last {_WINDOW_NAMES[rule.short_min]} (the even "
                f"rate is {_usd(per_min * 60)} an hour); {_usd(tracker.spent)} spent {this}"
            )
        else:
            summary = (
                f"{who} spends within its {amount} {_ADJECTIVE[budget.period]} budget again "
                f"({_usd(spent[0])} in the last 5 min, {_usd(spent[1])} in the last 30 min); "
                f"burning too fast from {_hhmm(open_[1])} to {_hhmm(open_[2])}; "
                f"{_usd(tracker.spent)} spent {this}"
            )
        keys = {5: "5m", 30: "30m", 60: "1h", 360: "6h"}
        return Alert(
            alert_id=open_[0],
            kind=self.name,
            severity=open_[3],
            status="firing" if held is not None else "resolved",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            labels={
                "scope": budget.scope,
                "budget": budget.name,
                "period": budget.period,
                "rule": "page" if open_[3] == "critical" else "ticket",
            },
            summary=summary,
            details={
                "amount_usd": budget.amount_usd,
                "burn_rates": {keys[m]: b for m, b in burns.items()},
                "spent_usd": {keys[m]: spent[i] / _NANO for i, m in enumerate(WINDOWS_MIN)},
                "period_spent_usd": tracker.spent / _NANO,
                "period": tracker.period,
                "started": datetime.fromtimestamp(open_[1], UTC).isoformat(),
                "last_held": datetime.fromtimestamp(open_[2], UTC).isoformat(),
            },
        )


def _hhmm(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%H:%M} UTC"
