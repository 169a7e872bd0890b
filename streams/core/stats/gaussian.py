"""``MeanShift``: the mean of a continuous value moves away from the mean measured in a warm-up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from slowleak.streams.core.stats._bank import BankReadout, feed_each, numpy_pays
from slowleak.streams.core.stats.thresholds import (
    GAMMA,
    SHIFTS,
    is_active,
    member_threshold,
    penalty,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["MeanShift", "gaussian_bank"]

Direction = Literal["down", "up", "both"]
_DIRECTIONS = ("down", "up", "both")


def gaussian_bank(
    *, direction: Direction, warmup: int, gamma: float | None = None
) -> list[tuple[float, float, float]]:
    """The active members: (signed shift in standard deviations, threshold, constant). A
    member's increment for a standardised value ``z`` is ``shift * z - constant``. ``gamma``
    defaults to the calibrated one; the simulations in ``benchmarks/`` build their banks here."""
    signs = {"down": (-1.0,), "up": (1.0,), "both": (-1.0, 1.0)}[direction]
    if gamma is None:
        gamma = GAMMA["gaussian", len(signs)]
    members = []
    for sign in signs:
        for shift in SHIFTS:
            kl = shift * shift / 2.0
            h = member_threshold(kl, gamma)
            if is_active(kl, h, warmup):
                members.append((sign * shift, h, kl + penalty(h, warmup)))
    return members


class MeanShift(BankReadout):
    """Detect a shift of unknown size in the mean of a value, e.g. ``log(latency_ms)``.

    The first ``warmup`` values estimate the mean and standard deviation (Welford), which are
    then frozen; each later value is standardised and clipped to ``[-clip, clip]`` (one timeout
    must not look like a shift), and a bank of one-sided Gaussian CUSUMs runs, one per shift in
    :data:`~slowleak.streams.core.stats.thresholds.SHIFTS` (standard deviations) and direction,
    charged for the warm-up's estimation error: about one false alarm per 1,000,000 stable
    events (calibrated on Gaussian values with the default ``clip`` of 3 and warm-ups of
    2,000..200,000). On a log-normal latency with ``sigma_log`` 0.6, a median +10% is 0.16 sd,
    detected ~770 events after it starts (median, default warm-up); p95 moving with the median
    unchanged is for :class:`~slowleak.streams.core.stats.tail.TailShift`.

    Same policy as :class:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift`: the update
    after a detection starts over with a fresh warm-up; :meth:`reset` does it at any time.

    >>> import random
    >>> rng = random.Random(3)
    >>> detector = MeanShift(warmup=2_000)
    >>> for i in range(20_000):
    ...     if detector.update(rng.gauss(0.0 if i < 5_000 else 0.5, 1.0)):
    ...         print(i, detector.change_index, round(detector.estimate, 2))
    ...         break
    5073 4996 0.64
    """

    def __init__(
        self, direction: Direction = "both", warmup: int = 10_000, clip: float = 3.0
    ) -> None:
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if warmup < 100:
            raise ValueError(f"warmup must be at least 100 events, got {warmup}")
        if not clip > 0.0:
            raise ValueError(f"clip must be positive (standard deviations), got {clip}")
        self.direction = direction
        self.warmup = warmup
        self.clip = clip
        self._reset()

    def _reset(self) -> None:
        self._n = 0  # events since the last (re)start
        self._mean = 0.0  # Welford's running mean and sum of squared deviations
        self._m2 = 0.0
        self._sd = math.nan
        self._total = 0.0  # sum of the values since the warm-up
        self._drift = False
        self._fired = -1
        self._a: list[float] = []  # per member: signed shift, constant, threshold
        self._c: list[float] = []
        self._h: list[float] = []
        self._s: list[float] = []
        self._zero_n: list[int] = []
        self._zero_total: list[float] = []

    def reset(self) -> None:
        """Start over: forget the reference and warm up again."""
        self._reset()

    def _freeze(self) -> None:
        self._sd = max(math.sqrt(self._m2 / (self.warmup - 1)), 1e-12 * abs(self._mean), 1e-300)
        for a, h, c in gaussian_bank(direction=self.direction, warmup=self.warmup):
            self._a.append(a)
            self._h.append(h)
            self._c.append(c)
            self._s.append(0.0)
            self._zero_n.append(self.warmup)
            self._zero_total.append(0.0)

    def _warm_up(self, x: float) -> None:
        """One warm-up value: Welford's update, and the freeze after the last."""
        n = self._n = self._n + 1
        delta = x - self._mean
        self._mean += delta / n
        self._m2 += delta * (x - self._mean)
        if n == self.warmup:
            self._freeze()

    def update(self, x: float) -> bool:
        """Feed one value; ``True`` if the shift is detected at this value."""
        if not math.isfinite(x):
            raise ValueError(f"MeanShift takes finite values, got {x}")
        if self._drift:
            self._reset()
        if self._n < self.warmup:
            self._warm_up(x)
            return False
        n = self._n = self._n + 1
        total = self._total
        self._total += x
        z = min(max((x - self._mean) / self._sd, -self.clip), self.clip)
        s, c, h = self._s, self._c, self._h
        best = 1.0
        for k, a in enumerate(self._a):
            v = s[k] + a * z - c[k]
            if v > 0.0:
                if s[k] == 0.0:  # leaves 0 now: it was 0 after the previous event
                    self._zero_n[k], self._zero_total[k] = n - 1, total
                s[k] = v
                if v > h[k] and v / h[k] > best:
                    best, self._fired = v / h[k], k
            else:
                s[k] = 0.0
        self._drift = best > 1.0
        return self._drift

    def update_many(self, values: Sequence[float] | NDArray[np.float64]) -> int:
        """Feed values in order, as repeated :meth:`update` would, up to and including the
        first at which the shift is detected; how many were consumed (``len(values)`` if none
        fired). A non-finite value raises ``ValueError`` (naming its index) before any is
        consumed. Afterwards every property and :meth:`to_state` are those :meth:`update`
        gives (floats to ~1e-9 relative); see
        :meth:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift.update_many` for the
        caller's loop. The warm-up runs Welford's update value by value (exact, and paid once);
        past it, chunks long enough to pay for it run the bank with numpy (``_chunk``).
        """
        if not numpy_pays(len(values), len(self._s)):
            for i, x in enumerate(values):
                if not math.isfinite(x):
                    raise ValueError(f"MeanShift takes finite values, got {x} at index {i}")
            return feed_each(self.update, values)
        from slowleak.streams.core.stats import _chunk  # numpy, imported on first use

        x = _chunk.finite_floats(values, "MeanShift")
        if self._drift:
            self._reset()
        taken = min(max(self.warmup - self._n, 0), len(x))
        for value in x[:taken].tolist():
            self._warm_up(value)
        size = _chunk.block_size(len(self._s))
        while taken < len(x) and not self._drift:
            block = x[taken : taken + size]
            scan = _chunk.scan_means(
                self._s, self._h, self._a, self._c, block, self._mean, self._sd, self.clip
            )
            for k, j in enumerate(scan.left):
                if j >= 0:  # left 0 at block event j: what update() records then
                    self._zero_n[k] = self._n + j
                    self._zero_total[k] = self._total + scan.before[k]
            self._s = scan.s
            self._n += scan.consumed
            self._total += scan.end[0]
            if scan.fired >= 0:
                self._drift, self._fired = True, scan.fired
            taken += scan.consumed
        return taken

    @property
    def shifts(self) -> tuple[float, ...]:
        """The signed shifts, in standard deviations, the bank runs (empty while warming up)."""
        return tuple(self._a)

    @property
    def reference(self) -> float | None:
        """The warm-up mean (``None`` while warming up)."""
        return None if math.isnan(self._sd) else self._mean

    @property
    def scale(self) -> float | None:
        """The warm-up standard deviation (``None`` while warming up)."""
        return None if math.isnan(self._sd) else self._sd

    @property
    def estimate(self) -> float | None:
        """The mean since :attr:`change_index`."""
        k = self._lead()
        if k < 0 or self._s[k] <= 0.0:
            return None
        return (self._total - self._zero_total[k]) / (self._n - self._zero_n[k])

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state; the bank itself is rebuilt from the hyperparameters."""
        return {
            "v": 1, "direction": self.direction, "warmup": self.warmup, "clip": self.clip,
            "n": self._n, "mean": self._mean, "m2": self._m2, "total": self._total,
            "drift": self._drift, "fired": self._fired, "s": list(self._s),
            "zero_n": list(self._zero_n), "zero_total": list(self._zero_total),
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MeanShift:
        if state.get("v") != 1:
            raise ValueError(f"unknown MeanShift state version {state.get('v')!r}")
        detector = cls(direction=state["direction"], warmup=state["warmup"], clip=state["clip"])
        detector._n, detector._mean, detector._m2 = state["n"], state["mean"], state["m2"]
        if detector._n >= detector.warmup:
            detector._freeze()
        detector._total, detector._drift, detector._fired = (
            state["total"],
            state["drift"],
            state["fired"],
        )
        detector._s = [float(v) for v in state["s"]]
        detector._zero_n = list(state["zero_n"])
        detector._zero_total = [float(v) for v in state["zero_total"]]
        return detector
