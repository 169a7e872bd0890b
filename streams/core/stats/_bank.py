"""What a bank of one-sided CUSUMs reports, shared by the detectors built on one."""

from __future__ import annotations

import math

__all__ = ["BankReadout"]


class BankReadout:
    """Read-only views of a bank. The class using it keeps, per member ``k``: the statistic
    ``_s[k]``, threshold ``_h[k]``, the event count at its last 0 ``_zero_n[k]``; and
    ``_drift`` / ``_fired`` for the member that crossed its threshold."""

    _s: list[float]
    _h: list[float]
    _zero_n: list[int]
    _drift: bool
    _fired: int

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
