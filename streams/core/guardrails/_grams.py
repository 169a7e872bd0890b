"""Weights of character 4-grams, looked up as integers.

Building a Python string for each of the ~380 4-grams of a text and hashing it cost the injection
model about a third of its time. Here a 4-gram of characters below U+10000 is one 64-bit integer,
its four code points side by side (16 bits each, so the integer is the 4-gram and nothing else):
the integers of a text come from one ``encode`` and a few array operations, and the weights are
found by a binary search in a sorted array. A text with a character beyond U+FFFF (an emoji) is
read the string way; the result is the same either way.

>>> table = GramTable({"igno": 1.5, "gnor": 0.5, "😀 hi": 2.0})
>>> table.total("ignore ignore")
(2.0, 7)
>>> table.total("😀 hi")
(2.0, 1)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

__all__ = ["GramTable", "four_grams", "gram_codes"]

_SHIFTS = (np.uint64(48), np.uint64(32), np.uint64(16))
_WIDEST = 0xFFFF
_ABOVE = (1 << 64) - 1  # no 4-gram is above it (four U+FFFF at most)


def four_grams(text: str) -> set[str]:
    """The distinct 4-grams of ``text`` as strings (what :func:`gram_codes` codes)."""
    return {text[i : i + 4] for i in range(len(text) - 3)}


def gram_codes(text: str) -> npt.NDArray[np.uint64] | None:
    """The distinct 4-grams of ``text`` as sorted integers, or ``None`` when a character of it
    lies beyond U+FFFF."""
    # UTF-32 gives one unsigned 32-bit code point per character (lone surrogates included).
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(points) < 4:
        return np.empty(0, dtype=np.uint64)
    if int(points.max()) > _WIDEST:
        return None
    p = points.astype(np.uint64)
    codes = (p[:-3] << _SHIFTS[0]) | (p[1:-2] << _SHIFTS[1]) | (p[2:-1] << _SHIFTS[2]) | p[3:]
    codes.sort()
    keep = np.empty(len(codes), dtype=bool)
    keep[0] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    distinct: npt.NDArray[np.uint64] = codes[keep]
    return distinct


def _code(gram: str) -> int | None:
    if len(gram) != 4 or max(map(ord, gram)) > _WIDEST:
        return None
    a, b, c, d = map(ord, gram)
    return (a << 48) | (b << 32) | (c << 16) | d


class GramTable:
    """The weights of 4-grams; :meth:`total` sums those of a text's distinct 4-grams."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = weights
        self._reset()

    def _reset(self) -> None:
        coded = {}
        for gram, weight in self.weights.items():
            code = _code(gram)
            if code is not None:
                coded[code] = weight
        order = sorted(coded)
        # A last key above every 4-gram (its weight 0): the search never runs off the end.
        self._codes = np.array([*order, _ABOVE], dtype=np.uint64)
        self._values = np.array([*(coded[c] for c in order), 0.0], dtype=np.float64)
        self._keys = frozenset(self.weights)

    def total(self, text: str) -> tuple[float, int]:
        """The sum of the weights of the distinct 4-grams of ``text``, and how many it has."""
        codes = gram_codes(text)
        if codes is None:
            grams = four_grams(text)
            return sum(map(self.weights.__getitem__, self._keys.intersection(grams))), len(grams)
        at = self._codes.searchsorted(codes)
        return float(self._values[at[self._codes[at] == codes]].sum()), len(codes)
