"""``availability``: a model's success-rate SLO burns too fast, or the model stops answering.

Two conditions per app x env x model, both of kind ``availability``:

``burn_rate`` (label ``condition``)
    Multi-window, multi-burn-rate alerting as in the Google SRE workbook (chapter "Alerting on
    SLOs"). A call succeeds when ``status == "ok"``; the error budget is ``1 - target``; the burn
    rate of a window is its failed share divided by the budget (1 = the budget lasts exactly the
    SLO period, 30 days). Rule ``page`` (severity ``critical``): the 1 h and the 5 min burn rates
    both above 14.4 (2% of a 30-day budget in an hour); rule ``ticket`` (``warning``): the 6 h and
    the 30 min burn rates both above 6 (5% in 6 hours). The short window of a rule must hold at
    least ``min_calls`` calls and ``min_failures`` failed ones, so that one or two failed calls
    at 3 a.m. do not page (with little traffic, or little history, 1 failed call in 20 is 10x
    a 0.5% budget; 5 failed calls in 20 are worth a look). The condition
    fires once, at the event where a rule starts to hold; if it fired as a ticket and the page
    rule starts to hold, it fires again with the same ``alert_id`` and severity ``critical``
    (an escalation). It resolves, same ``alert_id``, once neither rule has held for
    ``hold_down_s`` seconds of event time: in practice once both short windows are below their
    thresholds (the long windows remember the incident for hours; that is what the short ones
    are for).

``outage``
    A hard outage: no successful call of the model for ``outage_after_s`` seconds of event time
    while the app still sends traffic, with at least ``outage_min_failures`` failed calls of, or
    fallbacks from, the model since its last success (if none was seen, since its first failure).
    Fires at once, at the first event of the app that meets it (whatever its model:
    once the app routes around a dead primary its events name the fallback); resolves at the
    first successful call of the model, or after ``outage_stale_s`` with neither a call to it nor
    a fallback from it (nobody is waiting on it any more).

A call with ``fallback_from=X`` also counts as a failed call of ``X`` (in addition to the call
itself, counted for its own model): a router that stops calling a dead primary and goes
straight to the fallback would otherwise hide the outage. Apps that log both the failed primary
call and the fallback count that failure twice, which makes the burn rate conservative (higher)
when only part of the primary's calls fail; a hard outage is 100% failed either way.

Everything is in event time (``ts`` of the events, the latest seen per app x env is "now"), so
replaying a day of traffic gives the same alerts. Windows are counted in 1-minute buckets; each
window keeps a running total of calls and failures, so an event costs O(1) and the windows roll
(one subtraction per window and minute) when the event-time minute of the app advances. Late
events still count in their minute while it is within 6 hours.

State: one per app x env (every model of an app lives on the app's partition; a fallback event
updates two models, and the outage check needs them all), bounded to ``max_models`` models
(the least recently seen is forgotten, closing its open alerts) and, per model, to the
non-empty minutes of the last 6 hours, stored as ``[minute, calls, failures]`` triples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from slowleak.models import Alert, InteractionEvent, Severity
from slowleak.streams.core.detectors._windows import HORIZON, WINDOWS_MIN, MinuteClock, Windows
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id

__all__ = ["BURN_RULES", "WINDOWS_MIN", "Availability", "BurnRule"]

#: A window's name in summaries and in the alerts' details.
_WINDOW_NAMES = {5: "5 min", 30: "30 min", 60: "hour", 360: "6 h"}
_WINDOW_KEYS = {5: "5m", 30: "30m", 60: "1h", 360: "6h"}
#: Days in the SLO period the budget is spread over.
_SLO_DAYS = 30
#: Models whose fallbacks are counted per failing model (the summary names the top two).
_MAX_SERVED = 4


@dataclass(frozen=True)
class BurnRule:
    """Fire when both windows burn the budget more than ``factor`` times too fast."""

    name: Literal["page", "ticket"]
    severity: Severity
    long_min: int
    short_min: int
    factor: float


#: The workbook's rules, the most severe first.
BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", "critical", 60, 5, 14.4),
    BurnRule("ticket", "warning", 360, 30, 6.0),
)


class _Model:
    """What one model of an app needs: its windows, its open alerts, and its outage evidence.

    ``quiet`` (not stored): a successful call of the head minute, with no fallback, changes
    nothing but its counts, ``last_seen`` and ``last_success`` and resets its failures (no
    alert open, a success seen, and no burn rule that more calls alone could make hold:
    ``recheck`` False). The chunk path counts such calls inline."""

    __slots__ = (
        "burn",
        "failures",
        "first_failure",
        "last_seen",
        "last_success",
        "outage",
        "quiet",
        "recheck",
        "served",
        "windows",
    )

    def __init__(self, now: float, head: int) -> None:
        self.windows = Windows(head)
        self.quiet = False
        self.recheck = True  # unknown until the burn rules are checked
        self.last_seen = now  # latest call to it or fallback from it (app time)
        # The open burn-rate alert: [alert_id, started, last held, severity].
        self.burn: list[Any] | None = None
        self.last_success: float | None = None
        self.failures = 0  # failed calls and fallbacks since the last success
        self.first_failure: float | None = None  # since the last success
        self.served: dict[str, int] = {}  # fallback model -> fallbacks since the last success
        self.outage: list[Any] | None = None  # the open outage alert: [alert_id, since]

    def to_state(self) -> State:
        return {
            "b": self.windows.to_state(), "seen": self.last_seen, "burn": self.burn,
            "ok": self.last_success, "n": self.failures, "first": self.first_failure,
            "served": self.served, "outage": self.outage,
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: State, head: int) -> _Model:
        model = cls(state["seen"], head)
        model.windows = Windows.from_state(state["b"], head)
        model.burn, model.outage = state["burn"], state["outage"]
        model.last_success, model.failures = state["ok"], state["n"]
        model.first_failure = state["first"]
        model.served = dict(state["served"])
        return model


class _App:
    """The state of one app x env: its event-time clock and its models; for the chunk path
    (not stored), a clock of the head minute and the event time before which no outage can
    fire (None: to be worked out)."""

    __slots__ = ("clock", "deadline", "head", "minute", "models")

    def __init__(self) -> None:
        self.head: int | None = None  # latest event-time minute
        self.clock = 0.0  # latest event time, epoch seconds
        self.models: dict[str, _Model] = {}
        self.minute: MinuteClock | None = None
        self.deadline: float | None = None


def _utc(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%H:%M:%S} UTC"


def _times(burn: float) -> str:
    return f"{burn:.0f}x" if burn >= 20 else f"{burn:.1f}x"


class Availability(ObjectDetector[_App]):
    """Per app x env x model: SLO burn-rate alerts and hard outages, in event time.

    See the module's docstring for the rules. ``target`` is the success-rate objective (0.995:
    one call in 200 may fail); the other arguments are in calls and seconds of event time.

    >>> from datetime import UTC, datetime, timedelta
    >>> from slowleak.models import InteractionEvent
    >>> detector = Availability()
    >>> t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    >>> def call(i, **fields):
    ...     return InteractionEvent(**{"event_id": f"e{i}", "ts": t0 + timedelta(seconds=i),
    ...         "app": "bot", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1,
    ...         "latency_ms": 1.0, "status": "ok"} | fields)
    >>> events = [call(i) for i in range(100)] + [
    ...     call(i, model="claude", fallback_from="gpt-4o") for i in range(100, 200)]
    >>> for alert in (a for e in events for a in detector.on_interaction(e)):
    ...     print(alert.event_id, alert.severity, alert.labels["condition"])
    e104 warning burn_rate
    e107 critical burn_rate
    e159 critical outage

    With no history, all windows hold the same calls and the ticket rule (3% failed, 5 failed
    calls) is met before the page rule (7.2%); the alert then escalates. The outage fires 60 s
    after the last success (e99).
    """

    name: ClassVar[str] = "availability"
    version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        target: float = 0.995,
        min_calls: int = 20,
        min_failures: int = 5,
        hold_down_s: float = 300.0,
        outage_after_s: float = 60.0,
        outage_min_failures: int = 5,
        outage_stale_s: float = 3600.0,
        max_models: int = 16,
    ) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {target}")
        if min(min_calls, min_failures, outage_min_failures) < 1 or max_models < 2:
            raise ValueError(
                "min_calls, min_failures and outage_min_failures must be at least 1, "
                "max_models at least 2 (a fallback event updates two models)"
            )
        self.target = target
        self.budget = 1.0 - target
        self.min_calls = min_calls
        self.min_failures = min_failures
        self.hold_down_s = hold_down_s
        self.outage_after_s = outage_after_s
        self.outage_min_failures = outage_min_failures
        self.outage_stale_s = outage_stale_s
        self.max_models = max_models
        # Per rule: (index of its long window, of its short window, failed share it must exceed).
        self._rules = [
            (rule, WINDOWS_MIN.index(rule.long_min), WINDOWS_MIN.index(rule.short_min),
             rule.factor * self.budget)
            for rule in BURN_RULES
        ]  # fmt: skip
        super().__init__(store=store)

    # -- state ----------------------------------------------------------------------------------

    def new_object(self, key: str) -> _App:
        return _App()

    def load(self, key: str, state: State) -> _App:
        app = _App()
        app.head, app.clock = state["head"], state["clock"]
        head = app.head if app.head is not None else 0
        app.models = {name: _Model.from_state(s, head) for name, s in state["models"].items()}
        return app

    def dump(self, obj: _App) -> State:
        return {
            "head": obj.head,
            "clock": obj.clock,
            "models": {name: model.to_state() for name, model in obj.models.items()},
        }

    # -- events ---------------------------------------------------------------------------------

    def on_interaction(self, event: InteractionEvent) -> list[Alert]:
        key = f"{event.app}|{event.env}"
        app = self.obj(key)
        self.touch(key)
        app.deadline = None  # the chunk path works it out afresh
        return self._step(app, event, event.ts.timestamp())

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        """The alerts :meth:`on_interaction` gives for each event in turn, in the same order.

        Per app x env, a successful call of the head minute to a :attr:`_Model.quiet` model,
        before the app's outage deadline, is counted inline (a handful of operations, and its
        time read off the minute's :class:`MinuteClock`); any other goes through the per-event
        path, after which the model flags and the deadline are worked out again."""
        groups: dict[tuple[str, str], list[InteractionEvent]] = {}
        for event in events:
            group = groups.get((event.app, event.env))
            if group is None:
                groups[event.app, event.env] = group = []
            group.append(event)
        fired: list[tuple[InteractionEvent, list[Alert]]] = []
        for (app_name, env), group in groups.items():
            key = f"{app_name}|{env}"
            self._run(self.obj(key), group, fired)
            self.touch(key)
        if len(groups) > 1 and len(fired) > 1:  # back in event order across apps
            order = {id(event): i for i, event in enumerate(events)}
            fired.sort(key=lambda pair: order[id(pair[0])])
        return [alert for _, alerts in fired for alert in alerts]

    def _run(
        self,
        app: _App,
        group: list[InteractionEvent],
        fired: list[tuple[InteractionEvent, list[Alert]]],
    ) -> None:
        clock = app.clock
        if app.deadline is None:  # first event through the per-event path
            deadline, quiet, mc = -math.inf, {}, None
        else:
            deadline, quiet, mc = app.deadline, self._quiet(app), app.minute
        tz, lo, hi, base = (None, None, None, 0) if mc is None else (mc.tz, mc.lo, mc.hi, mc.base)
        for event in group:
            ts = event.ts
            if ts.tzinfo is tz and lo <= ts < hi:  # type: ignore[operator]  # tz: lo, hi set
                t = (base + ts.second * 1_000_000 + ts.microsecond) / 1_000_000
                now = t if t > clock else clock
                if now < deadline and event.status == "ok" and event.fallback_from is None:
                    model = quiet.get(event.model)
                    if model is not None:
                        clock = model.last_seen = now
                        model.windows.top[0] += 1
                        if t > model.last_success:  # type: ignore[operator]  # quiet: not None
                            model.last_success = t
                        if model.failures:  # what _success does (no outage open)
                            model.failures, model.first_failure, model.served = 0, None, {}
                        continue
            else:
                t = ts.timestamp()
            app.clock = clock
            alerts = self._step(app, event, t)
            if alerts:
                fired.append((event, alerts))
            clock = app.clock
            deadline = self._refresh(app)
            quiet = self._quiet(app)
            mc = app.minute
            if mc is None or mc.minute != app.head or mc.tz is not ts.tzinfo:
                mc = app.minute = MinuteClock.of(app.head, ts.tzinfo)  # type: ignore[arg-type]
            tz, lo, hi, base = (
                (None, None, None, 0) if mc is None else (mc.tz, mc.lo, mc.hi, mc.base)
            )
        app.clock = clock
        app.deadline = deadline

    @staticmethod
    def _quiet(app: _App) -> dict[str, _Model]:
        return {name: model for name, model in app.models.items() if model.quiet}

    def _refresh(self, app: _App) -> float:
        """Works out the models' ``quiet`` flags; returns the app's outage deadline: the event
        time (less a millisecond, for rounding) from which an outage could fire."""
        deadline = math.inf
        for model in app.models.values():
            model.quiet = (
                model.burn is None
                and model.outage is None
                and model.last_success is not None
                and not model.recheck
            )
            if model.outage is None and model.failures >= self.outage_min_failures:
                since = model.last_success
                if since is None:
                    since = model.first_failure
                if since is not None:
                    deadline = min(deadline, since + self.outage_after_s - 1e-3)
        return deadline

    def _step(self, app: _App, event: InteractionEvent, t: float) -> list[Alert]:
        """One event, ``t`` its time in epoch seconds."""
        minute = int(t // 60)
        alerts: list[Alert] = []
        rolled = False
        if app.head is None:
            app.head = minute
        elif minute > app.head:
            for model in app.models.values():
                model.windows.roll(minute)
            app.head, rolled = minute, True
        now = app.clock = max(app.clock, t)

        failed = event.status != "ok"
        own = self._model(app, event, event.model, now, alerts)
        own.windows.add(minute, failed)
        touched = [(event.model, own)]
        if failed:
            self._failure(own, t)
        else:
            alerts.extend(self._success(event, own, t))
        if event.fallback_from is not None and event.fallback_from != event.model:
            primary = self._model(app, event, event.fallback_from, now, alerts)
            primary.windows.add(minute, True)
            self._failure(primary, t)
            served = primary.served
            if event.model in served or len(served) < _MAX_SERVED:
                served[event.model] = served.get(event.model, 0) + 1
            touched.append((event.fallback_from, primary))

        # On a new minute, every model's windows moved: re-check them all (to resolve).
        for name, model in app.models.items() if rolled else touched:
            alert = self._burn(event, name, model, now)
            if alert is not None:
                alerts.append(alert)
        alerts.extend(self._outages(event, app, now))
        if rolled:
            alerts.extend(self._housekeeping(event, app, now))
        return alerts

    def _model(
        self, app: _App, event: InteractionEvent, name: str, now: float, alerts: list[Alert]
    ) -> _Model:
        """The entry of model ``name``, created if new (forgetting the least recently seen one
        beyond ``max_models``, closing its alerts); marks it seen."""
        model = app.models.get(name)
        if model is None:
            if len(app.models) >= self.max_models:
                old = min(app.models, key=lambda m: app.models[m].last_seen)
                alerts.extend(self._close(event, old, app.models.pop(old), "forgotten"))
            model = app.models[name] = _Model(now, app.head)  # type: ignore[arg-type]
        model.last_seen = now
        return model

    @staticmethod
    def _failure(model: _Model, t: float) -> None:
        model.failures += 1
        if model.first_failure is None or t < model.first_failure:
            model.first_failure = t

    def _success(self, event: InteractionEvent, model: _Model, t: float) -> list[Alert]:
        out = []
        if model.outage is not None:
            out.append(self._outage_resolved(event, model, t))
            model.outage = None
        model.last_success = t if model.last_success is None else max(model.last_success, t)
        model.failures = 0
        model.first_failure = None
        model.served = {}
        return out

    # -- burn rate ------------------------------------------------------------------------------

    def _burn(self, event: InteractionEvent, name: str, model: _Model, now: float) -> Alert | None:
        w = model.windows
        all_calls, all_failures = w.calls, w.failures
        held: BurnRule | None = None
        recheck = False  # a rule short of calls only: more successful calls could make it hold
        for rule, long, short, share in self._rules:
            calls, failures = all_calls[short], all_failures[short]
            if (
                failures >= self.min_failures
                and failures > share * calls
                and all_failures[long] > share * all_calls[long]
            ):
                if calls >= self.min_calls:
                    held = rule
                    break
                recheck = True
        model.recheck = recheck or held is not None
        open_ = model.burn
        if held is None:
            if open_ is not None and now - open_[2] >= self.hold_down_s:
                model.burn = None
                return self._burn_alert(event, name, model, open_, None)
            return None
        if open_ is None:
            aid = alert_id(self.name, event.app, event.env, name, "burn_rate", repr(now))
            model.burn = [aid, now, now, held.severity]
            return self._burn_alert(event, name, model, model.burn, held)
        open_[2] = now
        if held.severity == "critical" and open_[3] != "critical":
            open_[3] = "critical"  # escalation: a ticket became a page
            return self._burn_alert(event, name, model, open_, held)
        return None

    def _burn_alert(
        self,
        event: InteractionEvent,
        name: str,
        model: _Model,
        open_: list[Any],
        rule: BurnRule | None,
    ) -> Alert:
        """Firing (``rule`` is the rule that holds) or resolved (``rule`` is None)."""
        w = model.windows
        shares = [f / c if c else 0.0 for c, f in zip(w.calls, w.failures, strict=True)]
        who = self._who(event, name)
        target = f"{self.target * 100:.6g}%"
        if rule is not None:
            i, j = WINDOWS_MIN.index(rule.long_min), WINDOWS_MIN.index(rule.short_min)
            burn = shares[i] / self.budget
            summary = (
                f"{who}: {name} is burning its {target} success budget {_times(burn)} too fast "
                f"({shares[i]:.1%} of {w.calls[i]:,} calls failed in the last "
                f"{_WINDOW_NAMES[rule.long_min]}, {shares[j]:.1%} in the last "
                f"{_WINDOW_NAMES[rule.short_min]}; {burn / _SLO_DAYS:.0%} of the "
                f"{_SLO_DAYS}-day budget gone per day at this rate)"
            )
        else:
            summary = (
                f"{who}: {name} is back within its {target} success budget "
                f"({shares[0]:.1%} of {w.calls[0]:,} calls failed in the last 5 min, "
                f"{shares[1]:.1%} of {w.calls[1]:,} in the last 30 min); "
                f"burning too fast from {_utc(open_[1])} to {_utc(open_[2])}"
            )
        windows = {_WINDOW_KEYS[m]: i for i, m in enumerate(WINDOWS_MIN)}
        return Alert(
            alert_id=open_[0],
            kind=self.name,
            severity=open_[3],
            status="firing" if rule is not None else "resolved",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=name,
            labels={
                "env": event.env,
                "condition": "burn_rate",
                "rule": "page" if open_[3] == "critical" else "ticket",
            },
            summary=summary,
            details={
                "env": event.env,
                "target": self.target,
                "burn_rates": {k: shares[i] / self.budget for k, i in windows.items()},
                "calls": {k: w.calls[i] for k, i in windows.items()},
                "failures": {k: w.failures[i] for k, i in windows.items()},
                "started": _iso(open_[1]),
                "last_held": _iso(open_[2]),
            },
        )

    # -- outage ---------------------------------------------------------------------------------

    def _outages(self, event: InteractionEvent, app: _App, now: float) -> list[Alert]:
        out = []
        for name, model in app.models.items():
            if model.outage is None and model.failures >= self.outage_min_failures:
                since = model.last_success
                if since is None:
                    since = model.first_failure
                if since is not None and now - since >= self.outage_after_s:
                    aid = alert_id(self.name, event.app, event.env, name, "outage", repr(since))
                    model.outage = [aid, since]
                    out.append(self._outage_alert(event, app, name, model, now))
        return out

    def _outage_alert(
        self, event: InteractionEvent, app: _App, name: str, model: _Model, now: float
    ) -> Alert:
        assert model.outage is not None
        since = model.outage[1]
        last = (
            f"last success {_utc(since)}"
            if model.last_success is not None
            else f"none seen since its first failure at {_utc(since)}"
        )
        top = sorted(model.served.items(), key=lambda kv: -kv[1])[:2]
        if top:
            goes_on = ", ".join(f"{m} serving {n:,} fallbacks" for m, n in top)
        else:
            others = sum(m.windows.calls[0] for n, m in app.models.items() if n != name)
            goes_on = f"{others:,} calls to other models in the last 5 min"
        return Alert(
            alert_id=model.outage[0],
            kind=self.name,
            severity="critical",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=name,
            labels={"env": event.env, "condition": "outage"},
            summary=(
                f"{self._who(event, name)}: {name} has had no successful call for "
                f"{now - since:,.0f} s ({last}); {model.failures:,} calls failed or fell back "
                f"since; the app's traffic goes on ({goes_on})"
            ),
            details={
                "env": event.env,
                "last_success": None if model.last_success is None else _iso(since),
                "since": _iso(since),
                "seconds_without_success": now - since,
                "failures_since": model.failures,
                "fallbacks_served_by": dict(model.served),
            },
        )

    def _outage_resolved(self, event: InteractionEvent, model: _Model, t: float) -> Alert:
        assert model.outage is not None
        since = model.outage[1]
        return self._resolved_outage(
            event,
            event.model,
            model,
            f"answers again (first successful call at {_utc(t)}, after {t - since:,.0f} s "
            f"without one; {model.failures:,} calls failed or fell back in between)",
            "success",
        )

    def _resolved_outage(
        self, event: InteractionEvent, name: str, model: _Model, what: str, reason: str
    ) -> Alert:
        assert model.outage is not None
        return Alert(
            alert_id=model.outage[0],
            kind=self.name,
            severity="critical",
            status="resolved",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=name,
            labels={"env": event.env, "condition": "outage"},
            summary=f"{self._who(event, name)}: {name} {what}",
            details={
                "env": event.env,
                "since": _iso(model.outage[1]),
                "failures_since": model.failures,
                "resolved_by": reason,
            },
        )

    def _housekeeping(self, event: InteractionEvent, app: _App, now: float) -> list[Alert]:
        """Close the outages of models nobody calls or falls back from any more, and forget
        models with nothing open and nothing seen within the longest window."""
        out = []
        for name, model in list(app.models.items()):
            if model.outage is not None and now - model.last_seen > self.outage_stale_s:
                out.extend(self._close(event, name, model, "no_traffic"))
            if model.outage is None and model.burn is None and now - model.last_seen > HORIZON * 60:
                del app.models[name]
        return out

    def _close(self, event: InteractionEvent, name: str, model: _Model, reason: str) -> list[Alert]:
        """Resolve the open alerts of a model that is no longer watched (``reason``)."""
        out = []
        if model.burn is not None:
            out.append(self._burn_alert(event, name, model, model.burn, None))
            model.burn = None
        if model.outage is not None:
            quiet = f"no call to it nor fallback from it since {_utc(model.last_seen)}"
            what = (
                f"outage alert closed: {quiet}"
                if reason == "no_traffic"
                else f"outage alert closed: no longer tracked ({quiet})"
            )
            out.append(self._resolved_outage(event, name, model, what, reason))
            model.outage = None
            model.failures, model.first_failure, model.served = 0, None, {}  # start afresh
        return out

    @staticmethod
    def _who(event: InteractionEvent, name: str) -> str:
        return event.app if event.env == "prod" else f"{event.app} ({event.env})"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
