"""``cost_spike``: an app's spend, cost per call or tokens per call rises against its own
history, with the driver named; the same for each model of the app.

Fed by :class:`~slowleak.streams.core.cost.windows.CostWindows` with each closed minute of an
app (on time, all models and tenants summed): three
:class:`~slowleak.streams.core.stats.MeanShift` detectors (direction ``up``, as the drift
signals, on log values) watch the minute's spend, its cost per call and its tokens per call;
each warms up on ``warmup`` minutes with calls, then keeps that reference. When one fires, the
alert compares the last hour with the warm-up (the app's usual) and names the factor that rose
the most: call volume, input tokens per call, output tokens per call, or price (cost per
token), and the prompt version most of the last hour's calls used when it is new. Then all
three warm up afresh (a new normal is measured, never the incident): one alert per change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.cost.windows import MinuteTotals
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.stats import MeanShift

__all__ = ["MODEL_SIGNALS", "SIGNALS", "CostSpike"]

#: Signal -> what it watches, per minute with calls.
SIGNALS = {
    "spend": "spend per minute",
    "cost_per_call": "cost per call",
    "tokens_per_call": "tokens per call",
}
#: What a model of an app is watched on: its spend per minute also moves with routing (a
#: fallback, a challenger's share), which the app's total and the fallback alert speak of.
MODEL_SIGNALS = ("cost_per_call", "tokens_per_call")
#: Fields of a minute's totals, in the recent list and the baseline.
_MINUTE, _CALLS, _COST, _IN, _OUT = range(5)
_HOUR = 60
_MAX_PROMPTS = 8


def _values(m: MinuteTotals) -> dict[str, float | None]:
    tokens = m.input_tokens + m.output_tokens
    return {
        "spend": math.log1p(m.cost_usd * 1e6) if m.cost_usd > 0 else None,
        "cost_per_call": math.log1p(m.cost_usd * 1e6 / m.calls) if m.cost_usd > 0 else None,
        "tokens_per_call": math.log1p(tokens / m.calls),
    }


class _App:
    """The detectors, the usual (totals of the warm-up: first minute, last minute, calls, cost,
    input and output tokens; calls per prompt version), the last hour's minutes and the minute
    its last alert fired at, of an app or of one model of an app; of an app, whether it has
    had calls of two models in a minute (from then on its models are watched apart)."""

    __slots__ = ("base", "base_prompts", "detectors", "fired", "models", "recent")

    def __init__(self, warmup: int, signals: Iterable[str] = SIGNALS) -> None:
        self.detectors = {name: MeanShift("up", warmup=warmup) for name in signals}
        self.base: list[Any] = [None, None, 0, 0.0, 0, 0]
        self.base_prompts: dict[str, int] = {}
        self.recent: list[list[Any]] = []  # [minute, calls, cost, in, out, {prompt: calls}]
        self.fired: int | None = None
        self.models = False


class CostSpike(ObjectDetector[_App]):
    """Per app: ``cost_spike`` alerts when spend, cost per call or tokens per call rises.

    Not a detector of its own: give it to :class:`CostWindows` as its ``watcher``, which feeds
    it closed minutes and hands over its changed states with its own.

    >>> from slowleak.streams.core.cost.windows import MinuteTotals
    >>> def minute(m, calls, input_tokens):
    ...     t = MinuteTotals(m)
    ...     t.calls, t.input_tokens, t.output_tokens = calls, calls * input_tokens, calls * 200
    ...     t.cost_usd = (t.input_tokens * 2.5 + t.output_tokens * 10) / 1e6
    ...     t.prompts = {"v13" if input_tokens < 5_000 else "v14": calls}
    ...     return t
    >>> spike = CostSpike(warmup=120)
    >>> event = InteractionEvent(event_id="e", ts=datetime(2026, 1, 1, tzinfo=UTC), app="bot",
    ...     model="m", input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok")
    >>> for m in range(300):
    ...     tokens = 1_850 + 40 * (m % 5) if m < 200 else 11_300
    ...     for alert in spike.on_minutes("bot", [minute(m, 500, tokens)], event):
    ...         print(m, alert.labels["driver"], alert.summary)
    204 input_tokens bot spent $79.14 in the last 6 min, 3.9x its usual rate, driven by \
input tokens per call (1,930 -> 9,752) on prompt v14

    The change is dated a minute early (minute 199): the six minutes average one old minute
    with five new ones.
    """

    name: ClassVar[str] = "cost_spike"
    version: ClassVar[int] = 1

    def __init__(self, *, store: StateStore | None = None, warmup: int = 120) -> None:
        if warmup < 100:
            raise ValueError(f"warmup must be at least 100 minutes (MeanShift's), got {warmup}")
        self.warmup = warmup
        super().__init__(store=store)

    def new_object(self, key: str) -> _App:
        return _App(self.warmup, MODEL_SIGNALS if "|" in key else SIGNALS)

    def load(self, key: str, state: State) -> _App:
        app = _App(self.warmup)
        app.detectors = {n: MeanShift.from_state(s) for n, s in state["detectors"].items()}
        app.base, app.base_prompts = list(state["base"]), dict(state["base_prompts"])
        app.recent = [list(m) for m in state["recent"]]
        app.fired = state.get("fired")
        # Stored before an app with one model stopped watching it apart: it did, so go on.
        app.models = state.get("models", True)
        return app

    def dump(self, obj: _App) -> State:
        return {
            "detectors": {n: d.to_state() for n, d in obj.detectors.items()},
            "base": obj.base, "base_prompts": obj.base_prompts, "recent": obj.recent,
            "fired": obj.fired, "models": obj.models,
        }  # fmt: skip

    def on_minutes(
        self, app: str, minutes: list[MinuteTotals], event: InteractionEvent
    ) -> list[Alert]:
        """Closed minutes of ``app`` in order; ``event`` (which closed them) dates the alerts.

        Each model of the app (``MinuteTotals.models``) is watched as well, on its cost and
        tokens per call (:data:`MODEL_SIGNALS`), under the key ``app|model``: a model with a
        small share of the spend can double its cost per call and move the app's total by
        less than its noise. A model's alert is left out when the app's own fired within the
        last hour (the same change, said once). The models are watched from the first minute
        with calls of two of them on: an app of one model has only its own series."""
        alerts = []
        for m in minutes:
            alert = self._step(app, None, m, event)
            if alert is not None:
                alerts.append(alert)
            state = self.obj(app)
            if not state.models:
                if len(m.models) < 2:
                    continue
                state.models = True
            fired = state.fired
            for model in sorted(m.models):
                alert = self._step(app, model, m.models[model], event)
                if alert is not None and (fired is None or fired <= m.minute - _HOUR):
                    alerts.append(alert)
        return alerts

    def _step(
        self, app: str, model: str | None, m: MinuteTotals, event: InteractionEvent
    ) -> Alert | None:
        """One closed minute of ``app`` (or of its ``model``, key ``app|model``): the alert, if
        it fires."""
        key = app if model is None else f"{app}|{model}"
        state = self.obj(key)
        self.touch(key)
        state.recent.append([m.minute, m.calls, m.cost_usd, m.input_tokens, m.output_tokens,
                             dict(m.prompts)])  # fmt: skip
        del state.recent[:-_HOUR]
        state.recent = [r for r in state.recent if r[_MINUTE] > m.minute - _HOUR]
        fired = None
        warming = any(d.reference is None for d in state.detectors.values())
        for name, value in _values(m).items():
            detector = state.detectors.get(name)
            if detector is not None and value is not None and detector.update(value):
                fired = fired or name
        if warming:
            self._baseline(state, m)
        if fired is None:
            return None
        detector = state.detectors[fired]
        index = detector.change_index
        since = min(max(detector.n - index if index is not None else 1, 1), _HOUR)
        alert = self._alert(app, model, state, fired, m, event, since)
        fresh = self._objects[key] = self.new_object(key)  # a new warm-up
        fresh.recent, fresh.fired, fresh.models = state.recent, m.minute, state.models
        return alert

    @staticmethod
    def _baseline(state: _App, m: MinuteTotals) -> None:
        base = state.base
        if base[0] is None:
            base[0] = m.minute
        base[1] = m.minute
        base[2] += m.calls
        base[3] += m.cost_usd
        base[4] += m.input_tokens
        base[5] += m.output_tokens
        for prompt, calls in m.prompts.items():
            if prompt in state.base_prompts or len(state.base_prompts) < _MAX_PROMPTS:
                state.base_prompts[prompt] = state.base_prompts.get(prompt, 0) + calls

    def _alert(
        self,
        app: str,
        model: str | None,
        state: _App,
        signal: str,
        m: MinuteTotals,
        event: InteractionEvent,
        since: int,
    ) -> Alert:
        """The alert at minute ``m``, comparing the ``since`` minutes since the estimated
        change with the warm-up."""
        first, last, calls, cost, inp, out = state.base
        span = max((last or 0) - (first or 0) + 1, 1)
        changed = [r for r in state.recent if r[_MINUTE] > m.minute - since]
        h_calls, h_cost, h_in, h_out = (
            sum(r[i] for r in changed) for i in (_CALLS, _COST, _IN, _OUT)
        )
        usual = cost / span * since
        ratio = h_cost / usual if usual > 0 else math.inf
        factors = {  # (before, after, label, how to show a value)
            "call_volume": (calls / span * _HOUR, h_calls / since * _HOUR, "call volume",
                            "{:,.0f} calls an hour"),
            "input_tokens": (inp / max(calls, 1), h_in / max(h_calls, 1),
                             "input tokens per call", "{:,.0f}"),
            "output_tokens": (out / max(calls, 1), h_out / max(h_calls, 1),
                              "output tokens per call", "{:,.0f}"),
            "price": (cost / max(inp + out, 1) * 1000, h_cost / max(h_in + h_out, 1) * 1000,
                      "price per 1k tokens", "${:,.4f}"),
        }  # fmt: skip
        if model is not None:  # a model's share of the calls is routing's (see MODEL_SIGNALS)
            del factors["call_volume"]
        driver = max(factors, key=lambda k: _rise(factors[k][0], factors[k][1]))
        before, after, label, fmt = factors[driver]
        prompts: dict[str, int] = {}
        for r in changed:
            for prompt, n in r[5].items():
                prompts[prompt] = prompts.get(prompt, 0) + n
        top = max(sorted(prompts), key=lambda p: prompts[p]) if prompts else ""
        usual_top = (
            max(sorted(state.base_prompts), key=lambda p: state.base_prompts[p])
            if state.base_prompts
            else ""
        )
        on = f" on prompt {top}" if top and top != usual_top else ""
        when = "hour" if since == _HOUR else f"{since} min" if since > 1 else "minute"
        times = _times(ratio)
        ids = (self.name, app, signal, str(m.minute)) + ((model,) if model is not None else ())
        return Alert(
            alert_id=alert_id(*ids),
            kind=self.name,
            severity="warning",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=app,
            model=model,
            labels={"signal": signal, "driver": driver} | ({"model": model} if model else {}),
            summary=(
                f"{app} spent {_usd(h_cost)}{f' on {model}' if model else ''} in the last "
                f"{when}, {times}, driven by {label} ({fmt.format(before)} -> "
                f"{fmt.format(after)}){on}"
            ),
            details={
                "signal": signal, "watches": SIGNALS[signal], "driver": driver,
                "minutes_since_change": since, "cost_usd": h_cost, "usual_cost_usd": usual,
                "factors": {k: {"usual": v[0], "now": v[1]} for k, v in factors.items()},
                "prompt_version": top or None,
                "auto_resolve": True,  # one alert per change; the detectors warm up afresh
                "minute": datetime.fromtimestamp(m.minute * 60, UTC).isoformat(),
            },
        )  # fmt: skip


def _rise(before: float, after: float) -> float:
    if before <= 0:
        return math.inf if after > 0 else 0.0
    return after / before


def _times(ratio: float) -> str:
    """Spend against its usual rate, as a person reads it: "3.9x" from 1.5x on, else a
    percentage ("1.0x" would hide a 4% rise that a cost-per-call alert is about).

    >>> for ratio in (3.94, 1.5, 1.04, 0.88, math.inf):
    ...     print(_times(ratio))
    3.9x its usual rate
    1.5x its usual rate
    4% above its usual rate
    12% below its usual rate
    its usual rate
    """
    if math.isinf(ratio):
        return "its usual rate"
    if ratio >= 1.5:
        return f"{ratio:.1f}x its usual rate"
    percent = round((ratio - 1.0) * 100)
    return f"{abs(percent)}% {'above' if percent >= 0 else 'below'} its usual rate"


def _usd(usd: float) -> str:
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:,.2f}"
