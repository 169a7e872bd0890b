"""What a bank of one-sided CUSUMs reports, and the short-chunk path of ``update_many``, shared
by the detectors built on one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["NUMPY_CELLS", "BankReadout", "feed_each", "numpy_pays"]


class BankReadout:
    """Read-only views of a bank. The class using it keeps, per member ``k``: the statistic
    ``_s[k]``, threshold ``_h[k]``, the event count at its last 0 ``_zero_n[k]``; and
    ``_drift`` / ``_fired`` for the member that crossed its threshold."""

    _s: list[float]
    _h: list[float]
    _zero_n: list[int]
    _drift: bool
    _fired: int
    _n: int

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def n(self) -> int:
        """Events since the last (re)start, warm-up included."""
        return self._n

    def _lead(self) -> int:
        """The member that fired, else the one closest to its threshold (-1 while warming up)."""
        if self._drift:
            return self._fired
        if not self._s:
            return -1
        return max(range(len(self._s)), key=lambda k: self._s[k] / self._h[k])

    @property
    def statistic(self) -> float:
        k = self._lead()
        return self._s[k] if k >= 0 else 0.0

    @property
    def threshold(self) -> float:
        """The threshold of the member :attr:`statistic` belongs to."""
        k = self._lead()
        return self._h[k] if k >= 0 else math.inf

    @property
    def change_index(self) -> int | None:
        """Index of the first event of the segment that moved: after the member's last 0."""
        k = self._lead()
        return self._zero_n[k] if k >= 0 and self._s[k] > 0.0 else None


#: ``update_many`` runs a chunk with numpy when ``events * (members + 4)`` reaches this, else
#: it loops over ``update``. numpy costs ~30 us per block whatever its size; ``update`` costs
#: ~0.2 us per event plus ~0.05 us per member: numpy pays from ~45 events for a 9-member bank,
#: ~25 for 18 members, ~10 for 60 (measured, see ``_chunk``).
NUMPY_CELLS = 600


def numpy_pays(events: int, members: int) -> bool:
    """Whether a chunk of ``events`` is cheaper with numpy than one ``update`` at a time, for a
    bank of ``members`` (0 while warming up: then only long chunks)."""
    return events * (members + 4) >= NUMPY_CELLS


def feed_each(update: Callable[[Any], bool], values: Sequence[Any] | NDArray[Any]) -> int:
    """Feed ``values`` to ``update`` one at a time, up to and including the first that returns
    ``True``; how many were fed."""
    if not isinstance(values, list | tuple | Sequence):  # a numpy array: Python scalars
        values = values.tolist()
    for i, value in enumerate(values):
        if update(value):
            return i + 1
    return len(values)
