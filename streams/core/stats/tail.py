"""``TailShift``: more (or fewer) values beyond the warm-up's high quantile, e.g. p95 latency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from slowleak.streams.core.stats.bernoulli import BernoulliDrift

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["TailShift"]

Direction = Literal["down", "up", "both"]


class TailShift:
    """Detect a change in a tail of a value (p95 latency doubling with the median unchanged).

    The first ``quantile_warmup`` values fix a cutoff, their ``quantile`` (nearest rank); from
    then on each value becomes ``value > cutoff`` and feeds a
    :class:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift` with ``direction`` and
    ``warmup``, which measures the rate the cutoff is really exceeded at (about
    ``1 - quantile``) and then watches it: its calibration holds whatever that rate is. A p95
    doubling with the median unchanged takes a log-normal's exceedance rate from 5% to ~17%.
    The update after a detection starts over from a new cutoff; :meth:`reset` does it at any
    time. Only the first stage stores values (``quantile_warmup`` floats).

    >>> import random
    >>> rng = random.Random(5)
    >>> detector = TailShift(warmup=2_000)
    >>> for i in range(20_000):
    ...     sigma = 0.6 if i < 5_000 else 1.02
    ...     if detector.update(rng.lognormvariate(6.0, sigma)):
    ...         print(i, detector.change_index, round(detector.estimate, 2))
    ...         break
    5084 4995 0.19
    """

    def __init__(
        self,
        quantile: float = 0.95,
        direction: Direction = "up",
        warmup: int = 10_000,
        quantile_warmup: int = 1_000,
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be strictly between 0 and 1, got {quantile}")
        if quantile_warmup * min(quantile, 1.0 - quantile) < 10:
            raise ValueError(
                "quantile_warmup must leave at least 10 values on each side of the quantile, "
                f"got {quantile_warmup} for quantile {quantile}"
            )
        self.quantile = quantile
        self.direction = direction
        self.warmup = warmup
        self.quantile_warmup = quantile_warmup
        self._reset()

    def _reset(self) -> None:
        self._values: list[float] = []
        self._cutoff = math.nan
        self._rate = BernoulliDrift(direction=self.direction, warmup=self.warmup)

    def reset(self) -> None:
        """Start over: forget the cutoff and the reference rate and warm up again."""
        self._reset()

    def update(self, x: float) -> bool:
        """Feed one value; ``True`` if the tail change is detected at this value."""
        if self._rate.drift_detected:
            self._reset()
        if math.isnan(self._cutoff):
            if math.isnan(x):
                raise ValueError("TailShift takes values that are not NaN")
            self._values.append(x)
            if len(self._values) == self.quantile_warmup:
                self._cut()
            return False
        return self._rate.update(x > self._cutoff)

    def _cut(self) -> None:
        """Fix the cutoff from the first stage's values, and drop them."""
        rank = math.ceil(self.quantile * self.quantile_warmup)
        self._cutoff = sorted(self._values)[rank - 1]
        self._values = []

    def update_many(self, values: Sequence[float] | NDArray[np.float64]) -> int:
        """Feed values in order, as repeated :meth:`update` would, up to and including the
        first at which the change is detected; how many were consumed (``len(values)`` if none
        fired). A NaN among the values the cutoff is measured on raises ``ValueError`` (naming
        its index) before any is consumed. Afterwards every property and :meth:`to_state` are
        those :meth:`update` gives (floats to ~1e-9 relative); see
        :meth:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift.update_many` for the
        caller's loop. Past the first stage the exceedances go to the rate detector's own
        ``update_many``.
        """
        if self._rate.drift_detected and len(values):
            self._reset()
        taken = 0
        if math.isnan(self._cutoff):
            taken = min(self.quantile_warmup - len(self._values), len(values))
            head = [float(x) for x in values[:taken]]
            for i, x in enumerate(head):
                if math.isnan(x):
                    raise ValueError(f"TailShift takes values that are not NaN, got one at {i}")
            self._values.extend(head)
            if len(self._values) == self.quantile_warmup:
                self._cut()
        if taken < len(values):
            cutoff = self._cutoff
            taken += self._rate.update_many([x > cutoff for x in values[taken:]])
        return taken

    @property
    def drift_detected(self) -> bool:
        return self._rate.drift_detected

    @property
    def n(self) -> int:
        """Events since the last (re)start, both warm-ups included."""
        return (
            len(self._values) if math.isnan(self._cutoff) else self.quantile_warmup + self._rate.n
        )

    @property
    def cutoff(self) -> float | None:
        """The warm-up's quantile (``None`` while it is being measured)."""
        return None if math.isnan(self._cutoff) else self._cutoff

    @property
    def reference(self) -> float | None:
        """The rate the cutoff is exceeded at in the second warm-up."""
        return self._rate.reference

    @property
    def estimate(self) -> float | None:
        """The exceedance rate since :attr:`change_index`."""
        return self._rate.estimate

    @property
    def change_index(self) -> int | None:
        index = self._rate.change_index
        return None if index is None else self.quantile_warmup + index

    @property
    def statistic(self) -> float:
        return self._rate.statistic

    @property
    def threshold(self) -> float:
        return self._rate.threshold

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state, the rate detector's nested."""
        return {
            "v": 1, "quantile": self.quantile, "direction": self.direction,
            "warmup": self.warmup, "quantile_warmup": self.quantile_warmup,
            "values": list(self._values), "cutoff": self.cutoff, "rate": self._rate.to_state(),
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TailShift:
        if state.get("v") != 1:
            raise ValueError(f"unknown TailShift state version {state.get('v')!r}")
        detector = cls(
            quantile=state["quantile"], direction=state["direction"],
            warmup=state["warmup"], quantile_warmup=state["quantile_warmup"],
        )  # fmt: skip
        detector._values = [float(v) for v in state["values"]]
        detector._cutoff = math.nan if state["cutoff"] is None else float(state["cutoff"])
        detector._rate = BernoulliDrift.from_state(state["rate"])
        return detector
