"""``MeanConfidenceSequence``: an always-valid confidence interval for the mean of bounded values.

A confidence sequence (CS) is a sequence of intervals that contains the true mean at *every*
step at once with probability at least ``1 - alpha``: it can be read after each value, and a
decision taken the first time it excludes a value, without inflating the error rate (unlike a
fixed-n interval checked repeatedly). This one is the predictable plug-in empirical-Bernstein CS
of Waudby-Smith & Ramdas ("Estimating means of bounded random variables by betting", JRSS-B
2024, Theorem 2), valid for any distribution on ``[low, high]`` and any number of values (not an
asymptotic approximation), with the running intersection of the intervals.

Used by :mod:`slowleak.streams.core.detectors.challenger` on paired differences of success
outcomes (challenger minus champion, in ``[-1, 1]``). Calibration by simulation:
``benchmarks/bench_challenger.py`` and ``benchmarks/CHALLENGER.md``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = ["MeanConfidenceSequence", "Verdict", "verdict"]

Verdict = Literal["better", "non_inferior", "worse", "undecided"]


def verdict(lower: float, upper: float, *, margin: float) -> Verdict:
    """What an interval ``[lower, upper]`` for a difference (challenger minus champion, higher is
    better) says: ``better`` when it excludes 0 from above, ``worse`` when it lies wholly below
    ``-margin``, ``non_inferior`` when it lies above ``-margin`` (no worse than the margin, maybe
    no better), else ``undecided``."""
    if lower > 0.0:
        return "better"
    if upper < -margin:
        return "worse"
    if margin > 0.0 and lower > -margin:
        return "non_inferior"
    return "undecided"


class MeanConfidenceSequence:
    """Always-valid ``1 - alpha`` confidence interval for the mean of values in ``[low, high]``.

    Parameters
    ----------
    alpha
        Probability that the interval misses the mean at any step (two-sided).
    low, high
        Bounds every value lies in; a value outside them is a ``ValueError``.
    max_bet
        Cap on each step's bet (``c`` in the paper, below 1): 1/2 is the paper's default.

    :meth:`update` feeds one value; :attr:`lower` and :attr:`upper` are the interval so far (the
    intersection of every interval since the start, so it only narrows); :attr:`mean` is the
    plain average. A seeded stream of paired outcomes whose true difference is +0.1:

    >>> import random
    >>> rng = random.Random(3)
    >>> cs = MeanConfidenceSequence(alpha=0.05, low=-1.0, high=1.0)
    >>> for i in range(5_000):
    ...     a, b = rng.random() < 0.60, rng.random() < 0.50
    ...     cs.update(float(a) - float(b))
    ...     if cs.lower > 0:
    ...         break
    >>> print(i, f"{cs.lower:+.3f} {cs.upper:+.3f}")
    1432 +0.000 +0.141
    """

    def __init__(
        self, *, alpha: float = 0.05, low: float = -1.0, high: float = 1.0, max_bet: float = 0.5
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if not high > low:
            raise ValueError("high must be greater than low")
        if not 0.0 < max_bet < 1.0:
            raise ValueError("max_bet must be in (0, 1)")
        self.alpha = alpha
        self.low = low
        self.high = high
        self.max_bet = max_bet
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._sum = 0.0  # of the values scaled to [0, 1]
        self._squares = 0.0  # sum of (y_i - running mean after y_i)^2
        self._bets = 0.0  # sum of lambda_i
        self._bet_sum = 0.0  # sum of lambda_i * y_i
        self._penalty = 0.0  # sum of v_i * psi_E(lambda_i)
        self._lower = 0.0
        self._upper = 1.0

    def reset(self) -> None:
        self._reset()

    def update(self, x: float) -> None:
        """Feed one value."""
        if not self.low <= x <= self.high:
            raise ValueError(f"value {x!r} is outside [{self.low}, {self.high}]")
        y = (x - self.low) / (self.high - self.low)
        t = self.n + 1
        log_term = math.log(2.0 / self.alpha)
        mean_before = (0.5 + self._sum) / t
        var_before = (0.25 + self._squares) / t
        bet = min(math.sqrt(2.0 * log_term / (var_before * t * math.log1p(t))), self.max_bet)
        self._bets += bet
        self._bet_sum += bet * y
        self._penalty += (y - mean_before) ** 2 * (-math.log1p(-bet) - bet)  # v * psi_E
        self.n = t
        self._sum += y
        self._squares += (y - (0.5 + self._sum) / (t + 1)) ** 2
        center = self._bet_sum / self._bets
        half = (log_term + self._penalty) / self._bets
        self._lower = max(self._lower, center - half)
        self._upper = min(self._upper, center + half)

    def _scale(self, y: float) -> float:
        return self.low + (self.high - self.low) * y

    @property
    def lower(self) -> float:
        return self._scale(min(self._lower, self._upper))

    @property
    def upper(self) -> float:
        return self._scale(max(self._upper, self._lower))

    @property
    def mean(self) -> float:
        """The plain average of the values (``nan`` before the first)."""
        return self._scale(self._sum / self.n) if self.n else math.nan

    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "sum": self._sum,
            "squares": self._squares,
            "bets": self._bets,
            "bet_sum": self._bet_sum,
            "penalty": self._penalty,
            "lower": self._lower,
            "upper": self._upper,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], *, alpha: float = 0.05, low: float = -1.0, high: float = 1.0,
        max_bet: float = 0.5,
    ) -> MeanConfidenceSequence:  # fmt: skip
        cs = cls(alpha=alpha, low=low, high=high, max_bet=max_bet)
        cs.n = int(state["n"])
        cs._sum, cs._squares = float(state["sum"]), float(state["squares"])
        cs._bets, cs._bet_sum = float(state["bets"]), float(state["bet_sum"])
        cs._penalty = float(state["penalty"])
        cs._lower, cs._upper = float(state["lower"]), float(state["upper"])
        return cs
