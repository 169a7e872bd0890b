"""What the drift detector watches per key: one :class:`Signal` per behaviour of a model.

A signal turns an event into one value (or ``None`` when the event says nothing about it), feeds
it to a sequential change detector from :mod:`slowleak.streams.core.stats`, and knows how to say
its reference and estimate in a person's units (milliseconds, percent, tokens). Continuous values
are watched on a log scale, where latency and token counts are close to normal and a shift is a
ratio ("+15%").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slowleak.models import InteractionEvent
from slowleak.streams.core.stats import BernoulliDrift, CategoricalShift, MeanShift, TailShift
from slowleak.streams.core.stats.adwin import AdwinBackstop

__all__ = ["INTENT_WARMUP", "SIGNALS", "Signal", "intent_signal", "is_refusal"]

Stat = BernoulliDrift | MeanShift | TailShift | CategoricalShift | AdwinBackstop
Value = bool | float | str | None

#: Errors and refusals are rare: their rate detectors watch for a rise above at least 1%
#: (see ``BernoulliDrift(min_reference=...)``).
RARE_FLOOR = 0.01
#: ``finish_reason`` values providers use when the model declined or was stopped by a filter.
REFUSAL_FINISH_REASONS = frozenset({"content_filter", "refusal", "safety", "recitation"})
#: Openings of answers that decline; matched on the first 200 characters, case-insensitively.
_DECLINES = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,|i apologi[sz]e|unfortunately,? i|as an ai"
    r"|i (?:can(?:no|')t|am (?:not able|unable)|'m (?:not able|unable)|won'?t|must decline"
    r"|do not feel comfortable))",
    re.IGNORECASE,
)


def is_refusal(event: InteractionEvent) -> bool:
    """Whether the model declined: a refusal ``finish_reason``, or an answer that opens with
    an apology or "I can't ..."."""
    if event.finish_reason is not None and event.finish_reason in REFUSAL_FINISH_REASONS:
        return True
    text = event.output_text
    return text is not None and _DECLINES.match(text[:200]) is not None


def _log1p_ms(event: InteractionEvent) -> float:
    return math.log1p(event.latency_ms)


def _ok(event: InteractionEvent) -> bool:
    return event.status == "ok"


def _percent(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _from_log(unit: str, digits: int = 0) -> Callable[[float], str]:
    def show(x: float) -> str:
        return f"{math.expm1(x):,.{digits}f}{unit}"

    return show


@dataclass(frozen=True, slots=True)
class Signal:
    """One watched behaviour of a model, per key.

    Attributes
    ----------
    name
        Stable name, in alert labels and the ``detector_stats`` table.
    label
        What it is, for a sentence: "median latency".
    kind
        The alert kind it fires.
    make
        A fresh detector at the default settings.
    value
        The event's value, ``None`` when it has none (then the signal skips the event).
    show
        Formats a reference or estimate (on the detector's scale) in a person's units.
    family
        Behaviour families count towards a silent model change: two different families shifting
        within a short span is the signature of a new model behind the same name. Correlated
        signals (output tokens, output characters, their ratio to input) share one family.
    log_scale
        The detector sees ``log1p`` of the value: estimates are geometric means, changes ratios.
    outcome
        Fed by outcomes, also those that arrive later as feedback.
    to_unit
        From the detector's scale to the unit reported (dollars, a ratio), when not ``expm1``.
    backstop_of
        The signal this one backs up: its detection alerts only for a drop the other has not
        already reported (a change it dates after the other's last detection).
    """

    name: str
    label: str
    kind: str
    make: Callable[[], Stat]
    value: Callable[[InteractionEvent], Value]
    show: Callable[[float], str]
    family: str | None = None
    log_scale: bool = False
    outcome: bool = False
    backstop_of: str | None = None
    to_unit: Callable[[float], float] | None = None
    intent: str | None = None

    def natural(self, x: float) -> float:
        """A reference or estimate in the value's own units (``expm1`` of a log-scale one,
        unless ``to_unit`` says otherwise), as in alert details and ``detector_stats``."""
        if self.to_unit is not None:
            return self.to_unit(x)
        return math.expm1(x) if self.log_scale else x

    def load(self, state: dict[str, Any]) -> Stat:
        return type(self.make()).from_state(state)


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "success_rate", "success rate", "accuracy_drift",
        lambda: BernoulliDrift("down", warmup=30_000),
        lambda e: e.outcome, _percent, outcome=True,
    ),
    Signal(
        "success_rate_adwin", "success rate (ADWIN backstop)", "accuracy_drift",
        AdwinBackstop, lambda e: e.outcome, _percent, outcome=True, backstop_of="success_rate",
    ),
    Signal(
        "latency_ms", "median latency", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        _log1p_ms, _from_log(" ms"), family="latency", log_scale=True,
    ),
    Signal(
        "latency_p95", "share of calls slower than the reference p95", "metric_drift",
        lambda: TailShift(0.95, "up", warmup=10_000),
        lambda e: e.latency_ms, _percent, family="latency",
    ),
    Signal(
        "output_tokens", "median output tokens", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        lambda e: math.log1p(e.output_tokens) if e.status == "ok" else None,
        _from_log(" tokens"), family="length", log_scale=True,
    ),
    Signal(
        "input_tokens", "median input tokens", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        lambda e: math.log1p(e.input_tokens), _from_log(" tokens"), log_scale=True,
    ),
    Signal(
        "cost_per_call", "median cost per call", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        lambda e: None if e.cost_usd is None else math.log1p(e.cost_usd * 1e6),
        lambda x: f"${math.expm1(x) / 1e6:,.6f}", log_scale=True,
        to_unit=lambda x: math.expm1(x) / 1e6,
    ),
    Signal(
        "output_chars", "median output length", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        lambda e: None if e.output_text is None else math.log1p(len(e.output_text)),
        _from_log(" chars"), family="length", log_scale=True,
    ),
    Signal(
        "tokens_ratio", "output/input token ratio", "metric_drift",
        lambda: MeanShift("both", warmup=10_000),
        lambda e: (
            math.log((e.output_tokens + 1) / (e.input_tokens + 1)) if e.status == "ok" else None
        ),
        lambda x: f"{math.exp(x):.3f}", family="length", to_unit=math.exp,
    ),
    Signal(
        "error_rate", "error and timeout rate", "metric_drift",
        lambda: BernoulliDrift("up", warmup=10_000, min_reference=RARE_FLOOR),
        lambda e: not _ok(e), _percent,
    ),
    Signal(
        "refusal_rate", "refusal rate", "metric_drift",
        lambda: BernoulliDrift("up", warmup=10_000, min_reference=RARE_FLOOR),
        lambda e: is_refusal(e) if e.status == "ok" else None, _percent, family="refusal",
    ),
    Signal(
        "intent_mix", "intent mix", "metric_drift",
        lambda: CategoricalShift(warmup=20_000),
        lambda e: e.intent or "(none)", _percent,
    ),
    Signal(
        "finish_reason_mix", "finish reason mix", "metric_drift",
        lambda: CategoricalShift(warmup=20_000),
        lambda e: (e.finish_reason or "(none)") if e.status == "ok" else None, _percent,
    ),
)  # fmt: skip

#: Outcomes an intent's own success rate measures its reference on: fewer than the key's
#: 30,000, as an intent has a share of the calls. It watches for the large drops of one intent
#: that the key's rate dilutes: 0.83 -> 0.70 is detected ~210 of the intent's outcomes after it
#: starts and 0.83 -> 0.76 ~680 (medians, ``benchmarks/bench_drift.py``); a two-point slide of
#: every intent is the key's own rate's to catch (0.83 -> 0.81 takes a median of ~18,000).
INTENT_WARMUP = 5_000


def intent_signal(intent: str) -> Signal:
    """The success rate of one intent's calls: a drop in a small intent (refunds at 10% of the
    calls falling from 83% to 70%) moves the key's own rate by a point, which takes that
    detector far longer to tell from noise. Fed by :class:`~slowleak.streams.core.detectors.
    drift.KeyMonitor` with the outcomes of that intent's calls only, also late feedback."""
    return Signal(
        f"success_rate:{intent}", f"success rate of intent {intent!r}", "accuracy_drift",
        lambda: BernoulliDrift("down", warmup=INTENT_WARMUP),
        lambda e: e.outcome if e.intent == intent else None, _percent,
        outcome=True, intent=intent,
    )  # fmt: skip
