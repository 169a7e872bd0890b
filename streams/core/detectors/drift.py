"""``accuracy_drift``, ``metric_drift`` and the silent ``model_change``, per app x env x variant
x model, and the success rate also per intent of each key.

One :class:`KeyMonitor` per key runs every :data:`~slowleak.streams.core.detectors.signals.SIGNALS`
detector over that key's calls, a chunk at a time (each detector's ``update_many``), and turns a
detection into an alert with the numbers a person on call needs. Outcomes that arrive later as
:class:`~slowleak.models.FeedbackEvent` are joined to their call by ``event_id``
(:class:`~slowleak.streams.core.detectors.join.OutcomeJoin`) and feed the success rate of the
call's key (and of the call's intent).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from slowleak.models import Alert, FeedbackEvent, InteractionEvent
from slowleak.models.alerts import Severity
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.detectors.join import OutcomeJoin, RecalledCall
from slowleak.streams.core.detectors.signals import SIGNALS, Signal, Stat, intent_signal
from slowleak.streams.core.rows import Row
from slowleak.streams.core.stats import BernoulliDrift

__all__ = ["BehaviourDrift", "KeyMonitor"]

#: A time mark every this many calls of a key, to date an estimated change point.
MARK_EVERY = 256
#: Marks kept: 128 x 256 calls back.
MAX_MARKS = 128
#: Two behaviour families shifting within this many calls of each other, with no declared
#: change of model or fingerprint in between, make a silent ``model_change``.
SILENT_WINDOW = 2_000
#: Declared ``response_model`` / ``system_fingerprint`` values remembered per key.
MAX_KNOWN = 16
#: Intents whose success rate is watched apart per key: the first ones seen. The calls of
#: later intents count in the key's own success rate only.
MAX_INTENTS = 8
#: Running statistics go to ``detector_stats`` once per key per this many seconds (event time).
STATS_EVERY_S = 60
#: Marks of the watched intents' outcome counts kept (one every MARK_EVERY calls): 64 x 256
#: calls back, to split the key's success rate by intent since an estimated change.
MAX_INTENT_MARKS = 64
#: An intent is named in the key's success-rate alert with at least this many outcomes since
#: the change, and at most this many intents are.
MIN_INTENT_OUTCOMES = 20
MAX_INTENTS_SHOWN = 3


def _warmup(detector: Stat) -> int:
    """Values a detector needs before it has a reference (both stages of a TailShift)."""
    return int(getattr(detector, "quantile_warmup", 0)) + int(getattr(detector, "warmup", 0))


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M UTC")


class KeyMonitor:
    """Every signal's detector for one key, with what dates and explains a detection."""

    def __init__(self, key: str, signals: Sequence[Signal] = SIGNALS) -> None:
        self.key = key
        self.app, self.env, self.variant, self.model = key.split("|", 3)
        self.signals = tuple(signals)
        self.detectors: dict[str, Stat] = {s.name: s.make() for s in self.signals}
        #: Calls of the key seen; per signal, the call count when its detector (re)started.
        self.count = 0
        self.base: dict[str, int] = {s.name: 0 for s in self.signals}
        #: Per signal, the call count of its last detection (a backstop's own are not kept).
        self.fired_at: dict[str, int] = {}
        #: Signals whose drift alert is open until their detector measures a new reference:
        #: signal -> the old reference as shown.
        self.open: dict[str, str] = {}
        #: [call count, event time in ms] every MARK_EVERY calls.
        self.marks: list[list[int]] = []
        #: Recent detections of behaviour families: [call count, family, signal name, summary].
        self.fires: list[list[Any]] = []
        #: Declared values seen (response_model, system_fingerprint) and the call count of the
        #: last one never seen before.
        self.known: dict[str, list[str]] = {"response_model": [], "system_fingerprint": []}
        self.declared_at = -SILENT_WINDOW - 1
        self.stats_at = 0  # event time (s) of the last detector_stats rows
        #: Intents whose success rate is watched apart (their signals are in ``detectors``),
        #: in the order they started. The first intent seen waits in ``lone_intent`` until a
        #: second one comes: the rate of a key's only intent is the key's own.
        self.intents: dict[str, Signal] = {}
        self.lone_intent: str | None = None
        #: Per watched intent, outcomes and successes so far; every MARK_EVERY calls, the call
        #: count and those totals in the order of ``intents`` ([count, n1, s1, n2, s2...]).
        self.intent_totals: dict[str, list[int]] = {}
        self.intent_marks: list[list[int]] = []
        #: While a run of calls is fed: its first call count and its calls.
        self._run: tuple[int, Sequence[InteractionEvent]] | None = None

    # --- state ---------------------------------------------------------------------------

    def to_state(self) -> State:
        return {
            "count": self.count, "base": self.base, "marks": self.marks, "fires": self.fires,
            "fired_at": self.fired_at, "open": self.open,
            "known": self.known, "declared_at": self.declared_at, "stats_at": self.stats_at,
            "intents": list(self.intents), "lone_intent": self.lone_intent,
            "intent_totals": self.intent_totals, "intent_marks": self.intent_marks,
            "detectors": {name: d.to_state() for name, d in self.detectors.items()},
        }  # fmt: skip

    @classmethod
    def from_state(cls, key: str, state: State) -> KeyMonitor:
        monitor = cls(key)
        for intent in state.get("intents", ()):  # states stored before intents were watched
            monitor._watch(intent, 0)
        monitor.lone_intent = state.get("lone_intent")
        monitor.intent_totals = state.get("intent_totals", {})  # states stored before: none
        monitor.intent_marks = state.get("intent_marks", [])
        monitor.count, monitor.marks, monitor.fires = state["count"], state["marks"], state["fires"]
        monitor.base = dict(state["base"])
        monitor.fired_at = dict(state["fired_at"])
        monitor.open = dict(state["open"])
        monitor.known, monitor.declared_at = state["known"], state["declared_at"]
        monitor.stats_at = state["stats_at"]
        for signal in (*monitor.signals, *monitor.intents.values()):
            saved = state["detectors"].get(signal.name)
            if saved is not None:
                monitor.detectors[signal.name] = signal.load(saved)
        return monitor

    # --- events --------------------------------------------------------------------------

    def on_calls(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        """Feed a run of this key's calls (in order); the alerts they decide."""
        first = self.count
        self._run = (first, events)
        for i, event in enumerate(events):
            self._declared(event, first + i + 1)
            if event.outcome is not None and event.intent in self.intents:
                self._tally(event.intent, event.outcome)
            if (first + i + 1) % MARK_EVERY == 0:
                self.marks.append([first + i + 1, _ms(event.ts)])
                if self.intents:
                    self._mark_intents(first + i + 1)
        del self.marks[:-MAX_MARKS]
        self.count = first + len(events)
        fired: list[tuple[int, Alert, Signal]] = []
        for signal in self.signals:
            extract = signal.value
            values: list[Any] = [extract(event) for event in events]
            positions: Sequence[int] = range(len(values))
            if None in values:  # the signal skips calls without its value
                positions = [i for i, v in enumerate(values) if v is not None]
                values = [values[i] for i in positions]
            if values:
                fired += self._feed(signal, values, positions, events, first)
        fired += self._feed_intents(events, first)
        self._run = None
        return self._decide(fired)

    def on_outcome(
        self, outcome: bool, feedback: FeedbackEvent, intent: str | None = None
    ) -> list[Alert]:
        """A success outcome that arrived later, as feedback on one of this key's calls (whose
        intent was ``intent``)."""
        watched = self.intents.get(intent) if intent is not None else None
        if watched is not None:
            assert intent is not None
            self._tally(intent, outcome)
        fired: list[tuple[int, Alert, Signal]] = []
        for signal in self.signals:
            if signal.outcome:
                fired += self._feed(signal, [outcome], [0], [feedback], self.count - 1)
        if watched is not None:
            fired += self._feed(watched, [outcome], [0], [feedback], self.count - 1)
        return self._decide(fired)

    # --- intents -------------------------------------------------------------------------

    def _feed_intents(
        self, events: Sequence[InteractionEvent], first: int
    ) -> list[tuple[int, Alert, Signal]]:
        """Each watched intent's outcomes in the run to its own success rate (one pass)."""
        by_intent: dict[str, list[tuple[int, bool]]] = {}
        watched = self.intents
        for i, event in enumerate(events):
            intent = event.intent
            if intent is None:
                continue
            found = by_intent.get(intent)
            if found is None:
                if intent not in watched and not self._start(intent, first + i):
                    continue
                found = by_intent[intent] = []
            if event.outcome is not None:
                found.append((i, event.outcome))
        fired: list[tuple[int, Alert, Signal]] = []
        for intent, pairs in by_intent.items():
            if pairs:
                positions, values = zip(*pairs, strict=True)
                fired += self._feed(watched[intent], list(values), positions, events, first)
        return fired

    def _start(self, intent: str, count: int) -> bool:
        """Whether ``intent`` (not watched yet) is watched from call ``count`` on: when it is
        the key's second intent (the first starts with it), or a later one within
        :data:`MAX_INTENTS`."""
        if self.intents:
            if len(self.intents) >= MAX_INTENTS:
                return False
        elif self.lone_intent is None or self.lone_intent == intent:
            self.lone_intent = intent
            return False
        else:
            self._watch(self.lone_intent, count)
        self._watch(intent, count)
        return True

    def _mark_intents(self, count: int) -> None:
        totals = self.intent_totals
        mark = [count]
        for intent in self.intents:
            mark += totals.get(intent, (0, 0))
        self.intent_marks.append(mark)
        del self.intent_marks[:-MAX_INTENT_MARKS]

    def _by_intent(self, change_at: int, at: int) -> list[dict[str, Any]]:
        """Each watched intent's success rate from the call count ``change_at`` to the
        detection at call ``at``, against its detector's reference: intents whose own alert is
        open first, then the largest drop first. The totals at ``change_at`` are interpolated
        between the marks around it (the oldest kept when it is older)."""
        totals = self._totals_at(at)
        now = [at, *(v for intent in self.intents for v in totals.get(intent, (0, 0)))]
        points = [*self.intent_marks, now]
        after = next((i for i, mark in enumerate(points) if mark[0] > change_at), len(points))
        if after == 0:
            base: list[float] = [float(v) for v in points[0][1:]]
        else:
            low, high = points[after - 1], points[min(after, len(points) - 1)]
            share = (change_at - low[0]) / max(high[0] - low[0], 1)
            base = [
                lo + share * ((high[1 + j] if 1 + j < len(high) else lo) - lo)
                for j, lo in enumerate(low[1:])
            ]
        rows: list[dict[str, Any]] = []
        order: list[tuple[int, float]] = []
        for k, (intent, signal) in enumerate(self.intents.items()):
            n_now, s_now = totals.get(intent, (0, 0))
            n0, s0 = (base[2 * k], base[2 * k + 1]) if 2 * k + 1 < len(base) else (0.0, 0.0)
            n = round(n_now - n0)
            if n < MIN_INTENT_OUTCOMES:
                continue
            detector = self.detectors[signal.name]
            reference = detector.measured if isinstance(detector, BernoulliDrift) else None
            rate = min(1.0, max(0.0, (s_now - s0) / (n_now - n0)))
            # An intent whose own alert is open restarted its detector: show the level it fell
            # from, as its alert did.
            shown = signal.show(reference) if reference is not None else self.open.get(signal.name)
            rows.append({"intent": intent, "reference": reference, "reference_shown": shown,
                         "rate": rate, "outcomes": n})  # fmt: skip
            drop = 0.0 if reference is None else reference - rate
            order.append((0 if signal.name in self.open else 1, -drop))
        return [rows[i] for i in sorted(range(len(rows)), key=order.__getitem__)]

    def _tally(self, intent: str, outcome: bool) -> None:
        tally = self.intent_totals.setdefault(intent, [0, 0])
        tally[0] += 1
        tally[1] += outcome

    def _totals_at(self, at: int) -> dict[str, list[int]]:
        """The intents' outcome totals up to call ``at``: within the run being fed, those of
        its calls after ``at`` taken out (the run's calls were tallied as ``on_calls`` began,
        with the intents watched then; only ``_feed_intents``, after the key's signals, adds
        one)."""
        run = self._run
        if run is None or not run[0] < at <= run[0] + len(run[1]):
            return self.intent_totals
        first, events = run
        totals = {intent: list(t) for intent, t in self.intent_totals.items()}
        for event in events[at - first :]:
            if event.outcome is not None and event.intent in totals:
                tally = totals[event.intent]
                tally[0] -= 1
                tally[1] -= event.outcome
        return totals

    def _watch(self, intent: str, count: int) -> None:
        signal = intent_signal(intent)
        self.intents[intent] = signal
        self.detectors[signal.name] = signal.make()
        self.base[signal.name] = count

    def _reported(self) -> bool:
        """Whether a success-rate alert of this key (its own or an intent's) is open."""
        return any(name == "success_rate" or name.startswith("success_rate:") for name in self.open)

    def _feed(
        self,
        signal: Signal,
        values: list[Any],
        positions: Sequence[int],
        events: Sequence[InteractionEvent | FeedbackEvent],
        first: int,
    ) -> list[tuple[int, Alert, Signal]]:
        """Run one signal's detector over its values; (call count, alert, signal) per firing."""
        fired = []
        start = 0
        detector = self.detectors[signal.name]
        watching = signal.backstop_of is None
        while start < len(values):
            restarts = detector.drift_detected
            if restarts and watching:
                self.base[signal.name] = first + positions[start]  # it restarts with this value
            n_before = 0 if restarts else detector.n
            taken = detector.update_many(values[start:])
            if watching and signal.name in self.open and detector.reference is not None:
                # The warm-up after the detection ended in this run: a new baseline.
                k = start + min(max(_warmup(detector) - n_before, 1), taken) - 1
                i = positions[k]
                fired.append((first + i + 1, self._rebaselined(signal, events[i]), signal))
            start += taken
            if detector.drift_detected:
                i = positions[start - 1]
                if signal.intent is not None and self._reported():
                    continue  # one success-rate incident of a key at a time
                if watching:
                    self.fired_at[signal.name] = first + i + 1
                elif not self._backstop_news(signal, detector, first + i + 1):
                    continue
                alert = self._alert(signal, events[i], first + i + 1)
                if watching:
                    self.open[signal.name] = alert.details["reference_shown"]
                fired.append((first + i + 1, alert, signal))
        return fired

    def _rebaselined(self, signal: Signal, event: InteractionEvent | FeedbackEvent) -> Alert:
        """The resolve decision of a signal's drift alert: its detector measured the level it
        moved to, which is now the reference it watches (the incident is over or accepted)."""
        was = self.open.pop(signal.name)
        detector = self.detectors[signal.name]
        reference = detector.reference
        now = (
            "new shares of calls" if isinstance(reference, dict)
            else signal.show(reference if reference is not None else float("nan"))
        )  # fmt: skip
        return Alert(
            alert_id=alert_id(signal.kind, self.key, signal.name),
            kind=signal.kind,
            severity="info",
            status="resolved",
            ts=event.ts,
            event_id=event.event_id,
            app=self.app,
            model=self.model,
            labels=self._labels(signal),
            summary=(
                f"{signal.label} of {self._where()}: measured a new reference of {now} over "
                f"{_warmup(detector):,} values since the alert (it was {was}); the detector "
                "watches from this level now"
            ),
            details={"signal": signal.name, "env": self.env, "variant": self.variant,
                     "reference_before": was, "new_baseline": True} | self._intent(signal),
        )  # fmt: skip

    def _labels(self, signal: Signal) -> dict[str, str]:
        return {"env": self.env, "variant": self.variant, "signal": signal.name} | self._intent(
            signal
        )

    @staticmethod
    def _intent(signal: Signal) -> dict[str, str]:
        return {"intent": signal.intent} if signal.intent is not None else {}

    def _where(self) -> str:
        variant = f" ({self.variant})" if self.variant != "champion" else ""
        return f"{self.app}/{self.model}{variant}"

    def _backstop_news(self, signal: Signal, detector: Stat, at: int) -> bool:
        """Whether a backstop's detection is a drop its main detector has not reported: the
        change it dates is after the main detector's last firing."""
        assert signal.backstop_of is not None
        reference, estimate = detector.reference, detector.estimate
        if not isinstance(reference, float) or not isinstance(estimate, float):
            return False
        if estimate >= reference:  # two-sided: a rise is not an accuracy incident
            return False
        change = self._change_count(signal, detector, at)
        return change is not None and change > self.fired_at.get(signal.backstop_of, -1)

    def _decide(self, fired: list[tuple[int, Alert, Signal]]) -> list[Alert]:
        fired.sort(key=lambda f: f[0])
        alerts = []
        for count, alert, signal in fired:
            alerts.append(alert)
            if alert.status != "firing":
                continue
            silent = self._silent(count, signal, alert)
            if silent is not None:
                alerts.append(silent)
        return alerts

    def _declared(self, event: InteractionEvent, count: int) -> None:
        for field in ("response_model", "system_fingerprint"):
            value = getattr(event, field)
            if value is None:
                continue
            known = self.known[field]
            if known and known[-1] == value:
                continue
            if value in known:
                known.remove(value)
            elif known:  # a value never seen before (the first one is not a change)
                self.declared_at = count
            known.append(value)
            del known[:-MAX_KNOWN]

    # --- alerts --------------------------------------------------------------------------

    def _change_count(self, signal: Signal, detector: Stat, at: int) -> int | None:
        """The call count of the estimated change, for a detection at call count ``at``. The
        signal may skip calls that lack its value: its index maps to calls in proportion."""
        index = detector.change_index
        if index is None:
            return None
        base = self.base[signal.name]
        return base + round((at - base) * index / max(detector.n, 1))

    def _time_of(self, count: int, at: int, now: datetime) -> int:
        """Event time (ms) of call ``count``, interpolated between the marks and the call ``at``
        (event time ``now``)."""
        points = [*self.marks, [at, _ms(now)]]
        position = bisect.bisect_left([p[0] for p in points], count)
        if position >= len(points):
            return points[-1][1]
        if position == 0:
            return points[0][1]
        (c0, t0), (c1, t1) = points[position - 1], points[position]
        return t0 + (t1 - t0) * (count - c0) // max(c1 - c0, 1)

    def _alert(self, signal: Signal, event: InteractionEvent | FeedbackEvent, at: int) -> Alert:
        """The firing decision of ``signal`` at the call ``event`` (call count ``at``)."""
        detector = self.detectors[signal.name]
        index = detector.change_index
        since = 0 if index is None else detector.n - index
        change_at = self._change_count(signal, detector, at)
        change_ms = None if change_at is None else self._time_of(change_at, at, event.ts)
        estimate = detector.estimate
        # A rare event's bank watches a floored reference; say what the warm-up measured.
        reference = (
            detector.measured if isinstance(detector, BernoulliDrift) else detector.reference
        )
        where = self._where()
        when = f" since the estimated change at about {_time(change_ms)}" if change_ms else ""
        details: dict[str, Any] = {
            "signal": signal.name, "env": self.env, "variant": self.variant,
            "values_since_change": since, "statistic": detector.statistic,
            "threshold": detector.threshold, "change_ts": (
                None if change_ms is None
                else datetime.fromtimestamp(change_ms / 1000, UTC).isoformat()
            ),
        } | self._intent(signal)  # fmt: skip
        category = getattr(detector, "category", None)
        if category is not None and isinstance(reference, dict):
            ref = reference.get(category, 0.0)
            moved = "rose" if (estimate or 0.0) > ref else "fell"
            summary = (
                f"{signal.label} of {where} moved: {category!r} {moved} from {signal.show(ref)} "
                f"to {signal.show(estimate or 0.0)} of calls (n = {since:,}{when})"
            )
            details |= {"category": category, "reference": ref, "estimate": estimate,
                        "reference_shown": f"{category!r} at {signal.show(ref)}"}  # fmt: skip
        else:
            assert not isinstance(reference, dict)
            ref = reference if reference is not None else float("nan")
            est = estimate if estimate is not None else float("nan")
            moved = "rose" if est > ref else "fell"
            change = ""
            if signal.log_scale and signal.natural(ref) > 0:
                change = f", {signal.natural(est) / signal.natural(ref) - 1.0:+.0%}"
            cutoff = getattr(detector, "cutoff", None)
            label = signal.label + (f" ({cutoff:,.0f} ms)" if cutoff is not None else "")
            summary = (
                f"{label} of {where} {moved} from {signal.show(ref)} to {signal.show(est)}"
                f"{change} (n = {since:,}{when})"
            )
            details |= {
                "reference": signal.natural(ref), "estimate": signal.natural(est),
                "cutoff": cutoff, "reference_shown": signal.show(ref),
            }  # fmt: skip
        if signal.outcome and signal.intent is None and len(self.intents) > 1 and change_at:
            # Which intents moved: the first question about a key's success rate falling.
            rows = self._by_intent(change_at, at)
            if rows:
                details["by_intent"] = rows
                summary += "; by intent since then: " + ", ".join(
                    f"{r['intent']} "
                    + ("" if r["reference_shown"] is None else f"{r['reference_shown']} → ")
                    + f"{signal.show(r['rate'])} (n = {r['outcomes']:,})"
                    for r in rows[:MAX_INTENTS_SHOWN]
                )
        if signal.backstop_of is not None:
            details["auto_resolve"] = True  # ADWIN has no warm-up to end the incident
        severity: Severity = "warning"
        if signal.outcome and reference is not None and estimate is not None:
            severity = "critical" if reference - estimate >= 0.05 else "warning"  # type: ignore[operator]
        return Alert(
            alert_id=alert_id(signal.kind, self.key, signal.name),
            kind=signal.kind,
            severity=severity,
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=self.app,
            model=self.model,
            labels=self._labels(signal),
            summary=summary,
            details=details,
        )

    def _silent(self, count: int, signal: Signal, alert: Alert) -> Alert | None:
        """Record a behaviour family's detection; a silent model change if another family
        moved within :data:`SILENT_WINDOW` calls and nothing declared a change meanwhile."""
        if signal.family is None:
            return None
        self.fires = [f for f in self.fires if count - f[0] <= SILENT_WINDOW]
        others = [f for f in self.fires if f[1] != signal.family]
        self.fires.append([count, signal.family, signal.name, alert.summary])
        if not others or count - self.declared_at <= SILENT_WINDOW:
            return None
        self.fires.clear()  # one alert per co-occurrence
        first = min(others, key=lambda f: f[0])
        served = ", ".join(f"{field} {vals[-1]}" for field, vals in self.known.items() if vals)
        return Alert(
            alert_id=alert_id("model_change", "silent", self.key),
            kind="model_change",
            severity="warning",
            status="firing",
            ts=alert.ts,
            event_id=alert.event_id,
            app=self.app,
            model=self.model,
            labels={"env": self.env, "variant": self.variant, "signal": "silent"},
            summary=(
                f"{self.app} asks for {self.model} and nothing declared a change, but its "
                f"behaviour shifted on {len(others) + 1} fronts within {count - first[0]:,} "
                f"calls: the model behind the name likely changed"
                + (f" ({served} unchanged)" if served else "")
                + f". {first[3]}; {alert.summary}"
            )[:2000],
            details={
                "silent": True,
                "env": self.env,
                "variant": self.variant,
                "signals": [f[2] for f in others] + [signal.name],
                "auto_resolve": True,
                "calls_between": count - first[0],
            },
        )

    # --- running statistics --------------------------------------------------------------

    def stats_rows(self, ts: datetime, rows: list[Row]) -> None:
        """One ``detector_stats`` row per signal, at most once per :data:`STATS_EVERY_S`."""
        second = int(ts.timestamp())
        if second - self.stats_at < STATS_EVERY_S:
            return
        self.stats_at = second - second % STATS_EVERY_S
        at = datetime.fromtimestamp(self.stats_at, UTC)
        for signal in (*self.signals, *self.intents.values()):
            d = self.detectors[signal.name]
            reference, estimate = d.reference, d.estimate
            category = getattr(d, "category", None)
            if isinstance(reference, dict):
                top = category or (max(reference, key=reference.__getitem__) if reference else None)
                reference = reference.get(top) if top is not None else None
            elif reference is not None:
                reference = signal.natural(reference)
                estimate = None if estimate is None else signal.natural(estimate)
            threshold = d.threshold
            rows.append((
                at, self.app, self.env, self.variant, self.model, signal.name, signal.kind,
                "monitoring" if d.reference is not None else "warmup", d.n,
                reference, estimate, d.statistic,
                threshold if threshold != float("inf") else None,
            ))  # fmt: skip


class BehaviourDrift(ObjectDetector[KeyMonitor]):
    """The drift detectors of every key, with the feedback join. See :class:`KeyMonitor`."""

    name: ClassVar[str] = "drift"
    version: ClassVar[int] = 1

    def __init__(self, *, store: StateStore | None = None, join: OutcomeJoin | None = None) -> None:
        super().__init__(store=store)
        self.join = join if join is not None else OutcomeJoin()
        self._stats_due: set[str] = set()
        self._last_ts: dict[str, datetime] = {}

    def new_object(self, key: str) -> KeyMonitor:
        return KeyMonitor(key)

    def load(self, key: str, state: State) -> KeyMonitor:
        return KeyMonitor.from_state(key, state)

    def dump(self, obj: KeyMonitor) -> State:
        return obj.to_state()

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        by_key: dict[str, list[InteractionEvent]] = {}
        for event in events:
            key = f"{event.app}|{event.env}|{event.variant}|{event.model}"
            group = by_key.get(key)
            if group is None:
                by_key[key] = group = []
            group.append(event)
        alerts: list[Alert] = []
        for key, group in by_key.items():
            monitor = self.obj(key)
            alerts.extend(monitor.on_calls(group))
            self.touch(key)
            self._stats_due.add(key)
            self._last_ts[key] = group[-1].ts
            for event in group:
                if event.outcome is None:
                    early = self.join.expect(event.event_id, key, event.ts, event.intent)
                    if early is not None:
                        alerts.extend(monitor.on_outcome(early.outcome, early, event.intent))
        return alerts

    @property
    def recall_horizon(self) -> timedelta:
        """How long after a call its feedback is joined (feedback later than this after the
        first call a worker read cannot judge a call read before)."""
        return self.join.horizon

    def wants(self, feedback: FeedbackEvent) -> bool:
        """Whether ``feedback`` judges a call the join does not know (maybe read before the
        worker started: :meth:`recall` takes it)."""
        return not self.join.knows(feedback.event_id)

    def recall(self, calls: Sequence[RecalledCall]) -> None:
        """Calls without an outcome read before the worker started, found again for feedback
        that is about to be processed: from now on the join expects their outcomes. (Calls it
        knows, feedback waiting as early included, are never looked up: see :meth:`wants`.)"""
        for call in calls:
            if not self.join.knows(call.event_id):
                self.join.stats.recalled += 1
                self.join.expect(call.event_id, call.key, call.ts, call.intent)

    def on_feedback(self, feedback: FeedbackEvent) -> list[Alert]:
        call = self.join.match(feedback)
        if call is None:
            return []
        key, intent = call
        self.touch(key)
        return self.obj(key).on_outcome(feedback.outcome, feedback, intent)

    def counters(self) -> dict[str, Any]:
        """Keys in memory and the feedback join's counters, for the worker's stats page."""
        return {"keys": len(self._objects), "feedback_join": asdict(self.join.stats)}

    def stats_rows(self, rows: list[Row]) -> None:
        for key in self._stats_due:
            self.obj(key).stats_rows(self._last_ts[key], rows)
        self._stats_due.clear()
