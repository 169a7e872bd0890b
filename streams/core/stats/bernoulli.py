"""``BernoulliDrift``: a success rate moves away from the rate measured in a warm-up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from slowleak.streams.core.stats._bank import BankReadout, feed_each, numpy_pays
from slowleak.streams.core.stats.thresholds import (
    GAMMA,
    SHIFTS,
    TARGET_FALSE_ALARMS_PER_EVENT,
    is_active,
    member_threshold,
    penalty,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["BernoulliDrift", "bernoulli_bank"]

Direction = Literal["down", "up", "both"]
_DIRECTIONS = ("down", "up", "both")


def bernoulli_bank(
    p0: float,
    *,
    direction: Direction,
    warmup: int,
    gamma: float | None = None,
    false_alarm_rate: float = TARGET_FALSE_ALARMS_PER_EVENT,
) -> list[tuple[float, float, float, float]]:
    """The active members for reference ``p0``: (signed log-odds shift, threshold, increment
    when the event is False, increment when it is True). ``gamma`` defaults to the calibrated
    one; the vectorised simulations in ``benchmarks/`` build their banks here too.
    ``false_alarm_rate`` is this bank's share of the key's budget when a detector runs several
    (see :func:`~slowleak.streams.core.stats.thresholds.member_threshold`)."""
    signs = {"down": (-1.0,), "up": (1.0,), "both": (-1.0, 1.0)}[direction]
    if gamma is None:
        gamma = GAMMA["bernoulli", len(signs)]
    logit0 = math.log(p0 / (1.0 - p0))
    members = []
    for sign in signs:
        for shift in SHIFTS:
            p1 = 1.0 / (1.0 + math.exp(-(logit0 + sign * shift)))
            ratio0, ratio1 = math.log((1.0 - p1) / (1.0 - p0)), math.log(p1 / p0)
            kl = -(p0 * ratio1 + (1.0 - p0) * ratio0)
            h = member_threshold(kl, gamma, false_alarm_rate)
            if is_active(kl, h, warmup):
                charge = penalty(h, warmup)
                members.append((sign * shift, h, ratio0 - charge, ratio1 - charge))
    return members


class BernoulliDrift(BankReadout):
    """Detect a change in the rate of ``True`` in a stream of booleans, of unknown size.

    The first ``warmup`` events estimate the reference rate ``p0``, which is then frozen. From
    then on a bank of one-sided Bernoulli CUSUMs runs, one per log-odds shift in
    :data:`~slowleak.streams.core.stats.thresholds.SHIFTS` and per direction (``"down"``: the
    rate falls, ``"up"``, or ``"both"``), each with its calibrated threshold and charged for the
    warm-up's estimation error (see :mod:`~slowleak.streams.core.stats.thresholds`): about one
    false alarm per 1,000,000 stable events at any reference rate in 0.01..0.99 and warm-up in
    2,000..200,000 (what the calibration covered). How small a shift can be detected depends on
    ``warmup``: members whose shift the warm-up cannot tell from its own error are not run.
    With the default 30,000, 0.83 -> 0.81 (0.14 log-odds) is detected ~5,400 events after it
    starts (median; ~6,100 with 20,000, ~8,600 with 10,000); with 2,000 only shifts from ~0.4
    log-odds (0.83 -> 0.76) are run.

    :meth:`update` returns ``True`` on the event where a member crosses its threshold; the
    properties then describe that member. Policy after a detection: the next :meth:`update`
    starts over with a fresh warm-up (the new level becomes the reference), as river's detectors
    do; :meth:`reset` does the same at any time. Event indices count from the last (re)start.

    >>> import random
    >>> rng = random.Random(7)
    >>> detector = BernoulliDrift(warmup=2_000)
    >>> for i in range(20_000):
    ...     if detector.update(rng.random() < (0.83 if i < 10_000 else 0.70)):
    ...         print(i, detector.change_index, round(detector.reference, 3))
    ...         break
    10249 10012 0.829

    Rare events (errors, refusals, fallbacks) often have a reference near 0, where the bank has
    no member that could fire (0 in 10,000 gives ``p0`` 5e-5: even a 1.6 log-odds shift is
    still a tiny rate) and which the calibration does not cover. ``min_reference`` floors the
    ``p0`` the bank is built for (e.g. 0.01 for ``"up"``): a stream below the floor then drifts
    away from the threshold, and what is detected is the rate rising well above the floor
    (0 -> 5% within a few hundred events). :attr:`measured` keeps the warm-up's own rate.
    """

    def __init__(
        self, direction: Direction = "down", warmup: int = 30_000, min_reference: float = 0.0
    ) -> None:
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if warmup < 100:
            raise ValueError(f"warmup must be at least 100 events, got {warmup}")
        if not 0.0 <= min_reference < 0.5:
            raise ValueError(f"min_reference must be in [0, 0.5), got {min_reference}")
        self.direction = direction
        self.warmup = warmup
        self.min_reference = min_reference
        self._reset()

    def _reset(self) -> None:
        self._n = 0  # events since the last (re)start
        self._warm = 0  # True events in the warm-up
        self._ones = 0  # True events since the warm-up
        self._drift = False
        self._fired = -1  # the member that fired
        self._p0 = math.nan
        # Per member: shift (signed: + is up), threshold, increments for x False / x True.
        self._shift: list[float] = []
        self._h: list[float] = []
        self._inc: tuple[list[float], list[float]] = ([], [])
        self._s: list[float] = []  # statistic
        self._zero_n: list[int] = []  # n at the last event where the statistic was 0
        self._zero_ones: list[int] = []  # self._ones at that event

    def reset(self) -> None:
        """Start over: forget the reference and warm up again."""
        self._reset()

    def _freeze(self) -> None:
        self._p0 = max((self._warm + 0.5) / (self.warmup + 1.0), self.min_reference)
        for shift, h, inc0, inc1 in bernoulli_bank(
            self._p0, direction=self.direction, warmup=self.warmup
        ):
            self._shift.append(shift)
            self._h.append(h)
            self._inc[0].append(inc0)
            self._inc[1].append(inc1)
            self._s.append(0.0)
            self._zero_n.append(self.warmup)
            self._zero_ones.append(0)

    def update(self, x: bool) -> bool:
        """Feed one event; ``True`` if the drift is detected at this event."""
        if self._drift:
            self._reset()
        n = self._n = self._n + 1
        if n <= self.warmup:
            if x:
                self._warm += 1
            if n == self.warmup:
                self._freeze()
            return False
        ones = self._ones
        if x:
            self._ones += 1
            increments = self._inc[1]
        else:
            increments = self._inc[0]
        s, h = self._s, self._h
        best = 1.0
        for k, d in enumerate(increments):
            v = s[k]
            if d > 0.0:
                if v == 0.0:  # leaves 0 now: it was 0 after the previous event
                    self._zero_n[k] = n - 1
                    self._zero_ones[k] = ones
                v += d
                s[k] = v
                if v > h[k] and v / h[k] > best:
                    best, self._fired = v / h[k], k
            elif v > 0.0:
                v += d
                s[k] = v if v > 0.0 else 0.0
        self._drift = best > 1.0
        return self._drift

    def update_many(self, values: Sequence[bool] | NDArray[np.bool_]) -> int:
        """Feed events in order, as repeated :meth:`update` would, up to and including the
        first at which the drift is detected; how many were consumed (``len(values)`` if none
        fired). Callers loop on the rest::

            while values:
                k = detector.update_many(values)
                if detector.drift_detected:
                    ...  # the k-th value fired; the next call starts over
                values = values[k:]

        Afterwards every property and :meth:`to_state` are those :meth:`update` gives (floats
        to ~1e-9 relative). A chunk long enough to pay for it
        (:func:`~slowleak.streams.core.stats._bank.numpy_pays`) runs the bank with numpy
        (``_chunk``), all members over a block of events at once; a short one loops over
        :meth:`update`.
        """
        if not numpy_pays(len(values), len(self._s)):
            return feed_each(self.update, values)
        from slowleak.streams.core.stats import _chunk  # numpy, imported on first use

        if self._drift:
            self._reset()
        x = _chunk.as_bools(values)
        taken = 0
        if self._n < self.warmup:
            taken = min(self.warmup - self._n, len(x))
            self._warm += _chunk.count_true(x[:taken])
            self._n += taken
            if self._n == self.warmup:
                self._freeze()
        size = _chunk.block_size(len(self._s))
        while taken < len(x) and not self._drift:
            block = x[taken : taken + size]
            scan = _chunk.scan_rates(self._s, self._h, self._inc[0], self._inc[1], block)
            for k, j in enumerate(scan.left):
                if j >= 0:  # left 0 at block event j: what update() records then
                    self._zero_n[k] = self._n + j
                    self._zero_ones[k] = self._ones + round(scan.before[k])
            self._s = scan.s
            self._n += scan.consumed
            self._ones += round(scan.end[0])
            if scan.fired >= 0:
                self._drift, self._fired = True, scan.fired
            taken += scan.consumed
        return taken

    @property
    def shifts(self) -> tuple[float, ...]:
        """The signed log-odds shifts the bank runs (empty while warming up)."""
        return tuple(self._shift)

    @property
    def reference(self) -> float | None:
        """The reference rate ``(True events + 0.5) / (warmup + 1)`` of the warm-up, or
        ``min_reference`` if higher (``None`` while warming up)."""
        return None if math.isnan(self._p0) else self._p0

    @property
    def measured(self) -> float | None:
        """The warm-up's own rate, ``True events / warmup``, before any floor."""
        return None if math.isnan(self._p0) else self._warm / self.warmup

    @property
    def estimate(self) -> float | None:
        """The rate since :attr:`change_index`."""
        k = self._lead()
        if k < 0 or self._s[k] <= 0.0:
            return None
        return (self._ones - self._zero_ones[k]) / (self._n - self._zero_n[k])

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state; the bank itself is rebuilt from the warm-up count."""
        return {
            "v": 1, "direction": self.direction, "warmup": self.warmup,
            "min_reference": self.min_reference, "n": self._n,
            "warm": self._warm, "ones": self._ones, "drift": self._drift,
            "fired": self._fired, "s": list(self._s), "zero_n": list(self._zero_n),
            "zero_ones": list(self._zero_ones),
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BernoulliDrift:
        if state.get("v") != 1:
            raise ValueError(f"unknown BernoulliDrift state version {state.get('v')!r}")
        detector = cls(
            direction=state["direction"],
            warmup=state["warmup"],
            min_reference=state.get("min_reference", 0.0),
        )
        detector._n, detector._warm = state["n"], state["warm"]
        if detector._n >= detector.warmup:
            detector._freeze()
        detector._ones, detector._drift, detector._fired = (
            state["ones"],
            state["drift"],
            state["fired"],
        )
        detector._s = [float(v) for v in state["s"]]
        detector._zero_n, detector._zero_ones = list(state["zero_n"]), list(state["zero_ones"])
        return detector
