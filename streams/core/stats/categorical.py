"""``CategoricalShift``: the mix of a categorical value moves away from the mix of a warm-up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from slowleak.streams.core.stats._bank import BankReadout, feed_each, numpy_pays
from slowleak.streams.core.stats.bernoulli import Direction, bernoulli_bank
from slowleak.streams.core.stats.thresholds import TARGET_FALSE_ALARMS_PER_EVENT

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["NONE", "OTHER", "CategoricalShift"]

#: The category ``None`` is counted as (a value spelled so is the same category).
NONE = "(none)"
#: The pooled category: values below ``min_share`` or past ``max_categories`` in the warm-up,
#: and values never seen in it. A value spelled so is pooled too.
OTHER = "(other)"
#: The reference rates the Bernoulli calibration covers; a bank's reference is clamped into it.
LOWEST, HIGHEST = 0.01, 0.99
#: Distinct values the warm-up counts; values first seen after that many are pooled in
#: :data:`OTHER` (a value with a 1% share is nearly always among the first few hundred).
MAX_DISTINCT = 1_000


class CategoricalShift(BankReadout):
    """Detect that the share of one category of a value moves, e.g. the ``intent`` of calls.

    The first ``warmup`` values measure the categories' shares. The (at most
    ``max_categories``) most frequent ones with a share of ``min_share`` or more are watched
    one by one; every other value, a rare one or one never seen in the warm-up, is pooled as
    :data:`OTHER` (``None`` is the category :data:`NONE`). Each watched category, and
    :data:`OTHER`, gets a two-sided bank of Bernoulli CUSUMs on "the value is this category",
    as :class:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift` runs, with the reference
    rate ``p0 = (count + 0.5) / (warmup + 1)`` from the shared warm-up. The calibration covers
    ``p0`` in 0.01..0.99: a bank whose ``p0`` is outside is run at the nearer end, one-sided
    away from it (``up`` from 0.01: a pooled 0.3% is watched for a new category reaching a few
    percent; ``down`` from 0.99), which errs on the quiet side. With ``m`` banks each is
    calibrated for ``TARGET_FALSE_ALARMS_PER_EVENT / m`` (Bonferroni): about one false alarm
    per 1,000,000 stable events per key in all, and fewer, as the banks' indicators are
    dependent (simulated with the defaults: 0.02..0.32 per 1,000,000 over 50M stable events
    per mix). With the defaults an intent going from 10% to 15% of calls is detected ~1,060
    events after it starts (median; p90 ~1,750), and a new intent at 5% ~240 (p90 ~410).

    :meth:`update` returns ``True`` on the event a member crosses its threshold; then
    :attr:`category` is the category that moved, :attr:`direction` which way, and
    :attr:`estimate` its share since :attr:`change_index`. The next update starts over with a
    fresh warm-up; :meth:`reset` does it at any time. The warm-up keeps one counter per
    distinct value (at most :data:`MAX_DISTINCT`); after it, one per watched category.

    >>> import random
    >>> rng = random.Random(11)
    >>> intents = ["search", "chat", "code", "math"]
    >>> before, after = [0.5, 0.3, 0.15, 0.05], [0.4, 0.3, 0.15, 0.15]
    >>> detector = CategoricalShift(warmup=5_000)
    >>> for i in range(20_000):
    ...     intent = rng.choices(intents, before if i < 8_000 else after)[0]
    ...     if detector.update(intent):
    ...         print(i, detector.category, detector.direction, round(detector.estimate, 2))
    ...         break
    8223 math up 0.17
    """

    def __init__(
        self, warmup: int = 20_000, min_share: float = 0.01, max_categories: int = 8
    ) -> None:
        if warmup < 100:
            raise ValueError(f"warmup must be at least 100 events, got {warmup}")
        if not LOWEST <= min_share < 1.0:
            raise ValueError(f"min_share must be in [{LOWEST}, 1), got {min_share}")
        if max_categories < 1:
            raise ValueError(f"max_categories must be at least 1, got {max_categories}")
        self.warmup = warmup
        self.min_share = min_share
        self.max_categories = max_categories
        self._reset()

    def _reset(self) -> None:
        self._n = 0  # events since the last (re)start
        self._counts: dict[str, int] = {}  # warm-up: events per distinct value
        self._categories: list[str] = []  # after it: the watched categories, OTHER last
        self._warm: list[int] = []  # their warm-up counts
        self._index: dict[str | None, int] = {}  # value -> its category's position
        self._ones: list[int] = []  # per category: its events since the warm-up
        self._drift = False
        self._fired = -1
        # Per member: its category's position, signed log-odds shift, threshold, increments
        # when the value is not / is that category, statistic, and n and its category's count
        # at the member's last 0.
        self._of: list[int] = []
        self._shift: list[float] = []
        self._h: list[float] = []
        self._inc: tuple[list[float], list[float]] = ([], [])
        self._s: list[float] = []
        self._zero_n: list[int] = []
        self._zero_ones: list[int] = []

    def reset(self) -> None:
        """Start over: forget the reference mix and warm up again."""
        self._reset()

    def _count(self, key: str, events: int = 1) -> None:
        if key not in self._counts and len(self._counts) >= MAX_DISTINCT:
            key = OTHER
        self._counts[key] = self._counts.get(key, 0) + events

    def _freeze(self) -> None:
        """Choose the watched categories from the warm-up counts, then build the banks."""
        counts = self._counts
        ranked = sorted((c for c in counts if c != OTHER), key=lambda c: (-counts[c], c))
        watched = [
            c for c in ranked[: self.max_categories] if counts[c] >= self.min_share * self.warmup
        ]
        self._categories = [*watched, OTHER]
        self._warm = [counts[c] for c in watched]
        self._warm.append(self.warmup - sum(self._warm))
        self._counts = {}
        self._build()

    def _build(self) -> None:
        """The banks, from the watched categories and their warm-up counts."""
        self._index = {c: i for i, c in enumerate(self._categories[:-1])}
        if NONE in self._index:
            self._index[None] = self._index[NONE]
        self._ones = [0] * len(self._categories)
        rate = TARGET_FALSE_ALARMS_PER_EVENT / len(self._categories)
        for i, count in enumerate(self._warm):
            p0 = (count + 0.5) / (self.warmup + 1.0)
            direction: Direction = "up" if p0 < LOWEST else "down" if p0 > HIGHEST else "both"
            p0 = min(max(p0, LOWEST), HIGHEST)
            for shift, h, inc0, inc1 in bernoulli_bank(
                p0, direction=direction, warmup=self.warmup, false_alarm_rate=rate
            ):
                self._of.append(i)
                self._shift.append(shift)
                self._h.append(h)
                self._inc[0].append(inc0)
                self._inc[1].append(inc1)
                self._s.append(0.0)
                self._zero_n.append(self.warmup)
                self._zero_ones.append(0)

    def update(self, value: str | None) -> bool:
        """Feed one value; ``True`` if a category's share is detected to have moved."""
        if self._drift:
            self._reset()
        n = self._n = self._n + 1
        if n <= self.warmup:
            self._count(NONE if value is None else value)
            if n == self.warmup:
                self._freeze()
            return False
        code = self._index.get(value, len(self._categories) - 1)
        s, h, ones = self._s, self._h, self._ones
        misses, hits = self._inc
        best = 1.0
        for k, i in enumerate(self._of):  # member k watches category i
            d = hits[k] if i == code else misses[k]
            v = s[k]
            if d > 0.0:
                if v == 0.0:  # leaves 0 now: it was 0 after the previous event
                    self._zero_n[k], self._zero_ones[k] = n - 1, ones[i]
                v += d
                s[k] = v
                if v > h[k] and v / h[k] > best:
                    best, self._fired = v / h[k], k
            elif v > 0.0:
                v += d
                s[k] = v if v > 0.0 else 0.0
        ones[code] += 1
        self._drift = best > 1.0
        return self._drift

    def update_many(self, values: Sequence[str | None] | NDArray[np.str_]) -> int:
        """Feed values in order, as repeated :meth:`update` would, up to and including the
        first at which a move is detected; how many were consumed (``len(values)`` if none
        fired). Afterwards every property and :meth:`to_state` are those :meth:`update` gives
        (floats to ~1e-9 relative); see
        :meth:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift.update_many` for the
        caller's loop. Values are mapped to categories in Python; chunks long enough to pay
        for it run the banks with numpy (``_chunk``).
        """
        if not numpy_pays(len(values), len(self._s)):
            return feed_each(self.update, values)
        from slowleak.streams.core.stats import _chunk  # numpy, imported on first use

        if self._drift:
            self._reset()
        taken = min(max(self.warmup - self._n, 0), len(values))
        for key, events in Counter(NONE if v is None else v for v in values[:taken]).items():
            self._count(key, events)  # in order of first appearance, as update() meets them
        self._n += taken
        if taken and self._n == self.warmup:
            self._freeze()
        other = len(self._categories) - 1
        size = _chunk.block_size(len(self._s))
        while taken < len(values) and not self._drift:
            block = values[taken : taken + size]
            codes = [self._index.get(v, other) for v in block]
            scan = _chunk.scan_shares(
                self._s, self._h, *self._inc, self._of, codes, len(self._categories)
            )
            for k, j in enumerate(scan.left):
                if j >= 0:  # left 0 at block event j: what update() records then
                    self._zero_n[k] = self._n + j
                    self._zero_ones[k] = self._ones[self._of[k]] + round(scan.before[k])
            self._s = scan.s
            self._n += scan.consumed
            self._ones = [a + round(b) for a, b in zip(self._ones, scan.end, strict=True)]
            if scan.fired >= 0:
                self._drift, self._fired = True, scan.fired
            taken += scan.consumed
        return taken

    @property
    def categories(self) -> tuple[str, ...]:
        """The watched categories, :data:`OTHER` last (empty while warming up)."""
        return tuple(self._categories)

    @property
    def reference(self) -> dict[str, float] | None:
        """Each watched category's warm-up share ``(count + 0.5) / (warmup + 1)``, before any
        clamping into 0.01..0.99 (``None`` while warming up)."""
        if not self._categories:
            return None
        return {
            c: (count + 0.5) / (self.warmup + 1.0)
            for c, count in zip(self._categories, self._warm, strict=True)
        }

    def _moving(self) -> int:
        """The member :attr:`change_index` belongs to, else -1."""
        k = self._lead()
        return k if k >= 0 and self._s[k] > 0.0 else -1

    @property
    def category(self) -> str | None:
        """The category whose share moved (after a detection; before, the one closest to
        moving), ``None`` if none is off its reference."""
        k = self._moving()
        return self._categories[self._of[k]] if k >= 0 else None

    @property
    def direction(self) -> Literal["up", "down"] | None:
        """Which way :attr:`category`'s share moved."""
        k = self._moving()
        if k < 0:
            return None
        return "up" if self._shift[k] > 0.0 else "down"

    @property
    def estimate(self) -> float | None:
        """:attr:`category`'s share since :attr:`change_index`."""
        k = self._moving()
        if k < 0:
            return None
        return (self._ones[self._of[k]] - self._zero_ones[k]) / (self._n - self._zero_n[k])

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state; the banks are rebuilt from the watched categories' counts."""
        return {
            "v": 1, "warmup": self.warmup, "min_share": self.min_share,
            "max_categories": self.max_categories, "n": self._n, "counts": dict(self._counts),
            "categories": list(self._categories), "warm": list(self._warm),
            "ones": list(self._ones), "drift": self._drift, "fired": self._fired,
            "s": list(self._s), "zero_n": list(self._zero_n),
            "zero_ones": list(self._zero_ones),
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CategoricalShift:
        if state.get("v") != 1:
            raise ValueError(f"unknown CategoricalShift state version {state.get('v')!r}")
        detector = cls(
            warmup=state["warmup"], min_share=state["min_share"],
            max_categories=state["max_categories"],
        )  # fmt: skip
        detector._n, detector._counts = state["n"], dict(state["counts"])
        detector._categories, detector._warm = list(state["categories"]), list(state["warm"])
        if detector._categories:
            detector._build()
        detector._ones = list(state["ones"])
        detector._drift, detector._fired = state["drift"], state["fired"]
        detector._s = [float(v) for v in state["s"]]
        detector._zero_n, detector._zero_ones = list(state["zero_n"]), list(state["zero_ones"])
        return detector
