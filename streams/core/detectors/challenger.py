"""``challenger_verdict``: a challenger against its champion on replayed production calls.

``slowleak challenge`` replays recorded calls through a challenger and publishes each of its
calls as an ordinary event with ``env = "test"``, ``variant`` = the challenger's name and the
champion call it replays in the attributes (:data:`REPLAY_OF` and the ``champion_*`` keys, see
:func:`pair_attributes`). The champion call is in the past, so it travels with the event: pairs
are exact and the detector needs no lookup. Per app x challenger it keeps paired statistics and
an always-valid confidence sequence on the success difference
(:class:`~slowleak.streams.core.stats.sequential.MeanConfidenceSequence`), reads a verdict after
every pair, fires when one is reached, and stops at ``better`` or ``worse`` (a new version of a
challenger takes a new name). A challenger call without an outcome waits for its feedback event
(at most :data:`MAX_PENDING` per key, in the key's state). After a restart the key's state is
loaded when its next challenger call comes, or, for feedback that comes first, when the worker
finds the call it judges (:meth:`ChallengerComparison.recall`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from slowleak.models import Alert, FeedbackEvent, InteractionEvent
from slowleak.streams.core.detectors._paired_ratio import (
    MEASURES,
    Measure,
    RatioMeasure,
    describe_ratio,
    pair_scores,
)
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.detectors.join import JOIN_HORIZON, RecalledCall
from slowleak.streams.core.detectors.signals import is_refusal
from slowleak.streams.core.stats.sequential import MeanConfidenceSequence, Verdict, verdict

__all__ = ["REPLAY_OF", "ArmStats", "ChallengerComparison", "Comparison", "pair_attributes"]

KIND = "challenger_verdict"
TEST_ENV = "test"
#: Attribute keys on a challenger event: the champion event it replays and its measurements.
REPLAY_OF = "replay_of"
CHAMPION_NAME = "champion_name"
CHAMPION_OUTCOME = "champion_outcome"
CHAMPION_COST = "champion_cost_usd"
CHAMPION_LATENCY = "champion_latency_ms"
CHAMPION_REFUSAL = "champion_refusal"
CHAMPION_GUARDRAIL = "champion_guardrail_violation"
#: On either call: a guardrail found a violation (``"true"``).
GUARDRAIL = "guardrail_violation"
#: On a challenger call that declined (``"true"``), for SQL; the detector runs ``is_refusal``.
REFUSAL = "refusal"


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def pair_attributes(
    *, replay_of: str, champion_name: str, outcome: bool | None, cost_usd: float | None,
    latency_ms: float, refusal: bool, guardrail_violation: bool | None = None,
) -> dict[str, str]:  # fmt: skip
    """The attributes that join a challenger event to the champion call it replays."""
    out = {
        REPLAY_OF: replay_of, CHAMPION_NAME: champion_name, CHAMPION_OUTCOME: _flag(outcome),
        CHAMPION_LATENCY: repr(float(latency_ms)), CHAMPION_REFUSAL: _flag(refusal),
        CHAMPION_COST: "" if cost_usd is None else repr(float(cost_usd)),
        CHAMPION_GUARDRAIL: _flag(guardrail_violation),
    }  # fmt: skip
    return {k: v for k, v in out.items() if v}


def _bool(text: str | None) -> bool | None:
    return {"true": True, "false": False}.get(text or "")


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


MINUS = "\N{MINUS SIGN}"
#: Challenger event ids remembered per key, to count a redelivered event once.
MAX_RECENT = 1_024
#: Challenger calls waiting for their outcome as feedback, per key (the oldest is dropped).
MAX_PENDING = 4_096
#: Latency histogram: bucket ``floor(LATENCY_BUCKETS_PER_DOUBLING * log2(1 + ms))``, ~4% wide.
LATENCY_BUCKETS_PER_DOUBLING = 16


class ArmStats:
    """Per-call statistics of one side (champion or challenger) of a comparison."""

    def __init__(self) -> None:
        self.calls = 0
        self.cost_usd = 0.0
        self.costed = 0  # calls with a cost
        self.refusals = 0
        self.guardrail = 0
        self.latency: dict[str, int] = {}  # bucket -> calls

    def add_call(
        self, *, cost_usd: float | None, latency_ms: float | None, refusal: bool, guardrail: bool
    ) -> None:
        self.calls += 1
        if cost_usd is not None:
            self.cost_usd += cost_usd
            self.costed += 1
        self.refusals += refusal
        self.guardrail += guardrail
        if latency_ms is not None:
            bucket = str(math.floor(LATENCY_BUCKETS_PER_DOUBLING * math.log2(1.0 + latency_ms)))
            self.latency[bucket] = self.latency.get(bucket, 0) + 1

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of latency (ms), to the middle of its histogram bucket."""
        total = sum(self.latency.values())
        if not total:
            return None
        seen = 0
        for bucket in sorted(self.latency, key=int):
            seen += self.latency[bucket]
            if seen >= q * total:
                return float(2.0 ** ((int(bucket) + 0.5) / LATENCY_BUCKETS_PER_DOUBLING) - 1.0)
        raise AssertionError("unreachable")

    @property
    def cost_per_call(self) -> float | None:
        return self.cost_usd / self.costed if self.costed else None

    def to_state(self) -> State:
        return {"calls": self.calls, "cost_usd": self.cost_usd, "costed": self.costed,
                "refusals": self.refusals, "guardrail": self.guardrail,
                "latency": self.latency}  # fmt: skip

    @classmethod
    def from_state(cls, state: State) -> ArmStats:
        arm = cls()
        arm.calls, arm.cost_usd, arm.costed = state["calls"], state["cost_usd"], state["costed"]
        arm.refusals, arm.guardrail = state["refusals"], state["guardrail"]
        arm.latency = dict(state["latency"])
        return arm


class Comparison:
    """One challenger against its champion on one app: both arms, the pairs and the verdict."""

    def __init__(self, *, alpha: float) -> None:
        self.champion = ArmStats()
        self.challenger = ArmStats()
        self.cs = MeanConfidenceSequence(alpha=alpha, low=-1.0, high=1.0)
        #: Cost and latency per call, paired (``_paired_ratio``).
        self.ratios = {m: RatioMeasure(alpha=alpha) for m in MEASURES}
        self.wins = [0, 0]  # successes in the pairs with both outcomes: challenger, champion
        self.champion_name = "champion"
        self.last_verdict: Verdict = "undecided"
        self.decided = False
        self.recent: list[str] = []
        self._recent = set(self.recent)
        self.pending: dict[str, bool | None] = {}

    def first_time(self, event_id: str) -> bool:
        """Whether ``event_id`` is new here (and remember it)."""
        if event_id in self._recent:
            return False
        self.recent.append(event_id)
        self._recent.add(event_id)
        if len(self.recent) > MAX_RECENT:
            self._recent.discard(self.recent.pop(0))
        return True

    def wait_for(self, event_id: str, champion_outcome: bool | None) -> None:
        self.pending[event_id] = champion_outcome
        if len(self.pending) > MAX_PENDING:
            del self.pending[next(iter(self.pending))]

    def add_pair(self, challenger: bool, champion: bool) -> None:
        self.cs.update(float(challenger) - float(champion))
        self.wins[0] += challenger
        self.wins[1] += champion

    def verdict(self, margin: float) -> Verdict:
        return verdict(self.cs.lower, self.cs.upper, margin=margin)

    def success_rates(self) -> tuple[float, float]:
        n = max(self.cs.n, 1)
        return self.wins[0] / n, self.wins[1] / n

    def cost_per_success(self) -> tuple[float | None, float | None]:
        """Cost per call over success rate, challenger and champion (None when unknown)."""
        out: list[float | None] = []
        for arm, rate in zip((self.challenger, self.champion), self.success_rates(), strict=True):
            per_call = arm.cost_per_call
            out.append(None if per_call is None or rate == 0 else per_call / rate)
        return out[0], out[1]

    def summary_numbers(self) -> dict[str, Any]:
        """The comparison's figures (as in alert details and ``slowleak compare``)."""
        mine, theirs = self.success_rates()
        per_success = self.cost_per_success()
        out: dict[str, Any] = {
            "pairs": self.cs.n, "calls": self.challenger.calls,
            "success_challenger": mine, "success_champion": theirs,
            "success_diff": self.cs.mean if self.cs.n else None,
            "cs_lower": self.cs.lower, "cs_upper": self.cs.upper,
            "cost_per_success_challenger": per_success[0],
            "cost_per_success_champion": per_success[1],
        }  # fmt: skip
        for side, arm in (("challenger", self.challenger), ("champion", self.champion)):
            calls = max(arm.calls, 1)
            out |= {
                f"cost_per_call_{side}": arm.cost_per_call,
                f"latency_p50_ms_{side}": arm.latency_quantile(0.5),
                f"latency_p95_ms_{side}": arm.latency_quantile(0.95),
                f"refusal_rate_{side}": arm.refusals / calls,
                f"guardrail_rate_{side}": arm.guardrail / calls,
            }
        for measure, ratio in self.ratios.items():
            out |= ratio.numbers(measure)
        return out

    def sentence(
        self, *, app: str, challenger: str, found: Verdict, margin: float, alpha: float
    ) -> str:
        """The alert's sentence: "prompt-v15 vs v14 on support-bot: success 84.2% vs 83.0%
        (Δ +1.2 pts, 95% CS [+0.3, +2.1]) on 4,812 paired calls; cost per success -9%;
        verdict: better" (with a typographic minus)."""
        mine, theirs = self.success_rates()
        level = f"{100 * (1 - alpha):g}%"
        text = (
            f"{challenger} vs {self.champion_name} on {app}: success {100 * mine:.1f}% vs "
            f"{100 * theirs:.1f}% (Δ {_pts(self.cs.mean)} pts, {level} CS "
            f"[{_pts(self.cs.lower)}, {_pts(self.cs.upper)}]) on {self.cs.n:,} paired calls"
        )
        per_success = self.cost_per_success()
        if per_success[0] is not None and per_success[1]:
            change = per_success[0] / per_success[1] - 1.0
            text += f"; cost per success {_signed(100 * change, 0)}%"
        shown = {"non_inferior": f"non-inferior within {100 * margin:g} pts"}.get(found, found)
        return f"{text}; verdict: {shown}"

    def to_state(self) -> State:
        return {"champion": self.champion.to_state(), "challenger": self.challenger.to_state(),
                "cs": self.cs.to_state(), "wins": self.wins, "name": self.champion_name,
                "verdict": self.last_verdict, "decided": self.decided, "recent": self.recent,
                "pending": [[k, v] for k, v in self.pending.items()],
                "ratios": {m: r.to_state() for m, r in self.ratios.items()}}  # fmt: skip

    @classmethod
    def from_state(cls, state: State, *, alpha: float) -> Comparison:
        c = cls(alpha=alpha)
        c.champion = ArmStats.from_state(state["champion"])
        c.challenger = ArmStats.from_state(state["challenger"])
        c.cs = MeanConfidenceSequence.from_state(state["cs"], alpha=alpha)
        c.wins, c.champion_name = list(state["wins"]), state["name"]
        c.last_verdict, c.decided = state["verdict"], state["decided"]
        c.recent = list(state["recent"])
        c._recent = set(c.recent)
        c.pending = {k: v for k, v in state["pending"]}
        # States stored before the cost and latency verdicts start them afresh.
        for measure, ratio in state.get("ratios", {}).items():
            c.ratios[measure] = RatioMeasure.from_state(ratio, alpha=alpha)
        return c


def _signed(value: float, digits: int) -> str:
    """``+1.2`` or ``\N{MINUS SIGN}1.2`` (a typographic minus); zero is ``+0``."""
    text = f"{abs(value):.{digits}f}"
    return (MINUS if value < 0 and float(text) != 0 else "+") + text


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _pts(diff: float) -> str:
    if not math.isfinite(diff):
        return "n/a"
    # A bound just above or below 0 keeps a digit more, so the sign of a verdict shows.
    return _signed(100 * diff, 1 if diff == 0 or abs(diff) >= 0.0005 else 2)


class ChallengerComparison(ObjectDetector[Comparison]):
    """Paired comparison of each challenger with its champion, per app x challenger.

    Parameters
    ----------
    alpha
        Error probability of the confidence sequence (two-sided): a "95% CS" at 0.05.
    margin
        Non-inferiority margin on the success rate, as a difference (0.01 = one point).
    min_pairs
        No verdict before this many pairs with both outcomes (the interval is valid before; a
        verdict on a handful of calls reads badly); the same for cost and latency.
    ratio_margin
        Cost and latency per call (geometric mean over the pairs, challenger over champion)
        are ``worse`` when surely above ``1 + ratio_margin`` (0.10: 10% more), ``better`` when
        surely below 1. Each is an alert of its own (label ``measure``), and stops that
        measure; the success verdict goes on (``_paired_ratio``).

    A seeded replay in which the challenger succeeds 90% of the time and the champion 80%:

    >>> import random
    >>> from datetime import UTC, datetime
    >>> rng = random.Random(2)
    >>> detector = ChallengerComparison(margin=0.01)
    >>> def replay(i):
    ...     attributes = pair_attributes(replay_of=f"prod-{i}", champion_name="v14",
    ...         outcome=rng.random() < 0.80, cost_usd=0.002, latency_ms=900.0, refusal=False)
    ...     return InteractionEvent(event_id=f"replay-{i}", ts=datetime(2026, 11, 25, tzinfo=UTC),
    ...         app="support-bot", model="gpt-4o-mini", input_tokens=900, output_tokens=120,
    ...         latency_ms=700.0, status="ok", env="test", variant="prompt-v15",
    ...         outcome=rng.random() < 0.90, cost_usd=0.0015, attributes=attributes)
    >>> for i in range(3_000):  # doctest: +NORMALIZE_WHITESPACE
    ...     for alert in detector.on_interactions([replay(i)]):
    ...         print(i, alert.labels["measure"], alert.labels["verdict"])
    ...         print(alert.summary)
    99 cost better
    prompt-v15 vs v14 on support-bot: cost per call 0.75x the champion's (geometric mean, 95% CS
    0.61x to 0.92x) on 100 paired calls; $0.001500 vs $0.002000 a call; verdict: better (cheaper)
    99 latency better
    prompt-v15 vs v14 on support-bot: latency per call 0.78x the champion's (geometric mean, 95%
    CS 0.63x to 0.95x) on 100 paired calls; p50 708 vs 918 ms, p95 708 vs 918 ms; verdict:
    better (faster)
    327 success non_inferior
    prompt-v15 vs v14 on support-bot: success 89.6% vs 80.5% (Δ +9.1 pts, 95% CS [−0.9, +18.3])
    on 328 paired calls; cost per success −33%; verdict: non-inferior within 1 pts
    390 success better
    prompt-v15 vs v14 on support-bot: success 89.5% vs 80.1% (Δ +9.5 pts, 95% CS [+0.1, +17.2])
    on 391 paired calls; cost per success −33%; verdict: better
    """  # noqa: RUF002 - the sentence's typographic minus

    name: ClassVar[str] = "challenger"
    version: ClassVar[int] = 1

    def __init__(
        self, *, store: StateStore | None = None, alpha: float = 0.05, margin: float = 0.01,
        min_pairs: int = 100, ratio_margin: float = 0.10,
    ) -> None:  # fmt: skip
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if not 0.0 <= margin < 1.0:
            raise ValueError("margin must be in [0, 1)")
        if min_pairs < 1:
            raise ValueError("min_pairs must be at least 1")
        if not 0.0 <= ratio_margin < 3.0:
            raise ValueError("ratio_margin must be in [0, 3)")
        self.ratio_margin = ratio_margin
        self.alpha = alpha
        self.margin = margin
        self.min_pairs = min_pairs
        super().__init__(store=store)

    def new_object(self, key: str) -> Comparison:
        return Comparison(alpha=self.alpha)

    def load(self, key: str, state: State) -> Comparison:
        return Comparison.from_state(state, alpha=self.alpha)

    def dump(self, obj: Comparison) -> State:
        return obj.to_state()

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        alerts: list[Alert] = []
        for event in events:
            replay_of = event.attributes.get(REPLAY_OF)
            if event.env != TEST_ENV or not replay_of:
                continue
            key = f"{event.app}|{event.variant}"
            comparison = self.obj(key)
            if not comparison.first_time(event.event_id):
                continue
            self.touch(key)
            attrs = event.attributes
            comparison.champion_name = attrs.get(CHAMPION_NAME) or comparison.champion_name
            champion_outcome = _bool(attrs.get(CHAMPION_OUTCOME))
            champion_cost = _float(attrs.get(CHAMPION_COST))
            champion_latency = _float(attrs.get(CHAMPION_LATENCY))
            comparison.champion.add_call(
                cost_usd=champion_cost,
                latency_ms=champion_latency,
                refusal=_bool(attrs.get(CHAMPION_REFUSAL)) is True,
                guardrail=_bool(attrs.get(CHAMPION_GUARDRAIL)) is True,
            )
            comparison.challenger.add_call(
                cost_usd=event.cost_usd,
                latency_ms=event.latency_ms,
                refusal=event.status == "ok" and is_refusal(event),
                guardrail=_bool(attrs.get(GUARDRAIL)) is True,
            )
            paired = pair_scores(
                event.cost_usd, champion_cost, event.latency_ms, champion_latency,
                ok=event.status == "ok",
            )  # fmt: skip
            for measure, score in paired.items():
                if score is not None:
                    found = comparison.ratios[measure].add(
                        score, margin=self.ratio_margin, min_pairs=self.min_pairs
                    )
                    if found is not None:
                        alerts.append(self._ratio_alert(key, comparison, measure, found, event))
            if comparison.decided:  # the success verdict: better or worse, once
                continue
            if event.outcome is None:
                comparison.wait_for(event.event_id, champion_outcome)
            elif champion_outcome is not None:
                alerts += self._pair(key, comparison, event.outcome, champion_outcome, event)
        return alerts

    @property
    def recall_horizon(self) -> timedelta:
        """Feedback this long after a worker's first call may judge a challenger call read
        before the worker started (as the drift detectors' join)."""
        return JOIN_HORIZON

    def wants(self, feedback: FeedbackEvent) -> bool:
        """Whether ``feedback`` judges no challenger call of the comparisons in memory."""
        prefix = f"{feedback.app}|"
        return not any(
            feedback.event_id in c.pending for k, c in self._objects.items() if k.startswith(prefix)
        )

    def recall(self, calls: Sequence[RecalledCall]) -> None:
        """Calls read before the worker started, found for feedback about to be processed: the
        comparisons of the challenger calls among them are loaded from the store, with the
        calls waiting for their outcome."""
        for call in calls:
            if call.env == TEST_ENV:
                self.obj(f"{call.app}|{call.variant}")

    def on_feedback(self, feedback: FeedbackEvent) -> list[Alert]:
        # Feedback is keyed by app: the challenger's key is found among this app's comparisons.
        prefix = f"{feedback.app}|"
        for key, comparison in self._objects.items():
            if feedback.event_id not in comparison.pending or not key.startswith(prefix):
                continue
            champion_outcome = comparison.pending.pop(feedback.event_id)
            self.touch(key)
            if comparison.decided or champion_outcome is None:
                return []
            return self._pair(key, comparison, feedback.outcome, champion_outcome, feedback)
        return []

    def _pair(
        self, key: str, comparison: Comparison, challenger: bool, champion: bool,
        at: InteractionEvent | FeedbackEvent,
    ) -> list[Alert]:  # fmt: skip
        comparison.add_pair(challenger, champion)
        cs = comparison.cs
        if cs.n < self.min_pairs:
            return []
        found = comparison.verdict(self.margin)
        if found == "undecided" or found == comparison.last_verdict:
            return []
        comparison.last_verdict = found
        comparison.decided = found in ("better", "worse")
        return [self._alert(key, comparison, found, at)]

    def _alert(
        self, key: str, c: Comparison, found: Verdict, at: InteractionEvent | FeedbackEvent
    ) -> Alert:
        """A success verdict (its alert id is the one of the releases before cost and latency
        had verdicts: an alert of a comparison in progress keeps its identity)."""
        app, challenger = key.split("|", 1)
        summary = c.sentence(
            app=app, challenger=challenger, found=found, margin=self.margin, alpha=self.alpha
        )
        identity = alert_id(KIND, app, challenger, found)
        return self._verdict(key, c, "success", found, at, summary, identity, self.margin)

    def _ratio_alert(
        self, key: str, c: Comparison, measure: Measure, found: Verdict, at: InteractionEvent
    ) -> Alert:
        """A cost or latency verdict: "prompt-v15 vs v14 on support-bot: latency per call 1.31x
        the champion's (geometric mean, 95% CS 1.22x to 1.40x) on 412 paired calls; p50 1,180
        vs 900 ms, p95 2,290 vs 1,750 ms; verdict: worse (more than 10% slower)"."""
        app, challenger = key.split("|", 1)
        if measure == "cost":
            mine, theirs = c.challenger.cost_per_call, c.champion.cost_per_call
            arms = f"${mine or 0:.6f} vs ${theirs or 0:.6f} a call"
            how = ("costlier", "cheaper")
        else:
            arms = ", ".join(
                f"p{q} {_ms(c.challenger.latency_quantile(q / 100))} vs "
                f"{_ms(c.champion.latency_quantile(q / 100))} ms"
                for q in (50, 95)
            )
            how = ("slower", "faster")
        shown = (
            f"worse (more than {100 * self.ratio_margin:g}% {how[0]})"
            if found == "worse"
            else f"better ({how[1]})"
        )
        summary = (
            f"{challenger} vs {c.champion_name} on {app}: "
            f"{describe_ratio(measure, c.ratios[measure].cs)}; {arms}; verdict: {shown}"
        )
        identity = alert_id(KIND, app, challenger, measure, found)
        return self._verdict(key, c, measure, found, at, summary, identity, self.ratio_margin)

    def _verdict(
        self, key: str, c: Comparison, measure: str, found: Verdict,
        at: InteractionEvent | FeedbackEvent, summary: str, identity: str, margin: float,
    ) -> Alert:  # fmt: skip
        app, challenger = key.split("|", 1)
        return Alert(
            alert_id=identity,
            kind=KIND,
            severity="warning" if found == "worse" else "info",
            status="firing",
            ts=at.ts,
            event_id=at.event_id,
            app=app,
            labels={
                "env": TEST_ENV,
                "variant": challenger,
                "challenger": challenger,
                "measure": measure,
                "verdict": found,
            },
            summary=summary,
            details={
                "verdict": found,
                "measure": measure,
                "challenger": challenger,
                "champion": c.champion_name,
                "margin": margin,
                "alpha": self.alpha,
                "auto_resolve": True,
                **c.summary_numbers(),
            },
        )

    def comparisons(self) -> dict[str, Comparison]:
        """The comparisons in memory, by key ``app|challenger``."""
        return dict(self._objects)

    def counters(self) -> dict[str, Any]:
        return {"keys": len(self._objects)}
