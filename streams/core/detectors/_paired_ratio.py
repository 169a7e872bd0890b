"""A challenger's cost and latency against its champion's, on the same replayed calls.

Each pair (a challenger call and the champion call it replays) gives a score: the log-ratio of
the champion's value to the challenger's, in units of :data:`RATIO_SCALE` doublings, clipped to
``[-1, 1]`` (positive when the challenger is cheaper or faster; ratios from 1/4 to 4 are kept
as they are, further ones count as 1/4 or 4). The mean score is the log of the geometric-mean
ratio, and :class:`~slowleak.streams.core.stats.sequential.MeanConfidenceSequence` bounds it at
every pair at once. The verdict, read as for the success difference:

- ``better``: the challenger is surely cheaper (faster) per call than the champion;
- ``worse``: it surely costs (takes) more than ``1 + margin`` times as much per call;

each an alert that stops its measure. When challenger and champion are the same (any
distribution, as long as the pairs are exchangeable) a score is as likely positive as
negative, so a false verdict has probability at most ``alpha``; ``benchmarks/CHALLENGER.md``
measures it by simulation.

>>> round(ratio_score(2.0, 1.0), 3)  # the challenger costs twice as much: half a unit lower
-0.5
>>> ratio_of(-0.5)
2.0
>>> ratio_score(100.0, 0.0) is None  # a missing or zero value gives no pair
True
"""

from __future__ import annotations

import math
from typing import Any, Literal

from slowleak.streams.core.stats.sequential import MeanConfidenceSequence, Verdict, verdict

__all__ = [
    "MEASURES",
    "RATIO_SCALE",
    "Measure",
    "RatioMeasure",
    "describe_ratio",
    "format_ratio",
    "pair_scores",
    "ratio_of",
    "ratio_score",
    "ratio_verdict",
]

Measure = Literal["cost", "latency"]
MEASURES: tuple[Measure, ...] = ("cost", "latency")
#: Doublings that map to a score of 1: a ratio of 2 ** RATIO_SCALE (4) or more is clipped.
RATIO_SCALE = 2.0


def ratio_score(challenger: float | None, champion: float | None) -> float | None:
    """The pair's score: ``log2(champion / challenger) / RATIO_SCALE`` clipped to ``[-1, 1]``
    (None unless both values are positive)."""
    if not challenger or not champion or challenger < 0 or champion < 0:
        return None
    return max(-1.0, min(1.0, math.log2(champion / challenger) / RATIO_SCALE))


def pair_scores(
    cost: float | None, champion_cost: float | None, latency: float | None,
    champion_latency: float | None, *, ok: bool,
) -> dict[Measure, float | None]:  # fmt: skip
    """One pair's score of each measure (None: no score). A failed challenger call's latency
    is that of its failure, not of an answer: no latency score."""
    return {
        "cost": ratio_score(cost, champion_cost),
        "latency": ratio_score(latency, champion_latency) if ok else None,
    }


def ratio_of(score: float) -> float:
    """The challenger-to-champion ratio a (mean) score stands for."""
    return float(2.0 ** (-score * RATIO_SCALE))


def ratio_verdict(cs: MeanConfidenceSequence, *, margin: float) -> Verdict:
    """What the confidence sequence of the scores says, ``margin`` as a ratio (0.10: 10%)."""
    return verdict(cs.lower, cs.upper, margin=math.log2(1.0 + margin) / RATIO_SCALE)


def format_ratio(ratio: float) -> str:
    """A ratio as "1.31x"; at the clipping bounds (1/4, 4), "0.25x or less", "4x or more".

    >>> format_ratio(1.3125), format_ratio(0.25), format_ratio(4.0)
    ('1.31x', '0.25x or less', '4x or more')
    """
    low, high = ratio_of(1.0), ratio_of(-1.0)
    if ratio <= low * (1 + 1e-9):
        return f"{low:g}x or less"
    if ratio >= high * (1 - 1e-9):
        return f"{high:g}x or more"
    return f"{ratio:.2f}x"


def describe_ratio(measure: Measure, cs: MeanConfidenceSequence) -> str:
    """ "latency per call 1.31x the champion's (geometric mean, 95% CS 1.22x to 1.40x) on 412
    paired calls": what the scores of ``cs`` say of the ratio."""
    level = f"{100 * (1 - cs.alpha):g}%"
    return (
        f"{measure} per call {format_ratio(ratio_of(cs.mean))} the champion's (geometric mean, "
        f"{level} CS {format_ratio(ratio_of(cs.upper))} to {format_ratio(ratio_of(cs.lower))}) "
        f"on {cs.n:,} paired calls"
    )


class RatioMeasure:
    """The confidence sequence of one measure's scores and its verdict so far."""

    def __init__(self, *, alpha: float) -> None:
        self.cs = MeanConfidenceSequence(alpha=alpha, low=-1.0, high=1.0)
        self.last_verdict: Verdict = "undecided"
        self.decided = False

    def add(self, score: float, *, margin: float, min_pairs: int) -> Verdict | None:
        """Feed one pair's score; the verdict when it has just become ``better`` or ``worse``
        (the measure then stops), else None. ``margin``: a ratio above ``1 + margin`` is
        worse."""
        if self.decided:
            return None
        self.cs.update(score)
        if self.cs.n < min_pairs:
            return None
        found = verdict(self.cs.lower, self.cs.upper, margin=math.log2(1.0 + margin) / RATIO_SCALE)
        if found not in ("better", "worse"):
            return None
        self.last_verdict, self.decided = found, True
        return found

    def numbers(self, measure: Measure) -> dict[str, Any]:
        """The geometric-mean ratio and its bounds (challenger / champion), for the details."""
        cs = self.cs
        if not cs.n:
            return {f"{measure}_pairs": 0}
        return {
            f"{measure}_pairs": cs.n,
            f"{measure}_ratio": ratio_of(cs.mean),
            # The score's upper bound is the ratio's lower bound.
            f"{measure}_ratio_lower": ratio_of(cs.upper),
            f"{measure}_ratio_upper": ratio_of(cs.lower),
            f"{measure}_verdict": self.last_verdict,
        }

    def to_state(self) -> dict[str, Any]:
        return {"cs": self.cs.to_state(), "verdict": self.last_verdict, "decided": self.decided}

    @classmethod
    def from_state(cls, state: dict[str, Any], *, alpha: float) -> RatioMeasure:
        measure = cls(alpha=alpha)
        measure.cs = MeanConfidenceSequence.from_state(state["cs"], alpha=alpha)
        measure.last_verdict, measure.decided = state["verdict"], state["decided"]
        return measure
