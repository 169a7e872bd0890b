"""Text normalisation shared by the detectors and the training script."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["fold", "folded_words", "words"]

_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_WORD_ASCII = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")  # the same on folded ASCII, and faster


def fold(text: str) -> str:
    """NFKC, lower case, invisible characters removed: full-width ``Ignore`` reads as ``ignore``."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text)
    for c in _INVISIBLE:  # str.replace per character: far cheaper than str.translate here
        if c in text:
            text = text.replace(c, "")
    return text.lower()


def words(folded: str) -> list[str]:
    """The words of an already folded text."""
    return (_WORD_ASCII if folded.isascii() else _WORD).findall(folded)


@lru_cache(maxsize=8)
def folded_words(text: str) -> tuple[str, ...]:
    """``words(fold(text))``, kept for the last few texts: the detectors that read an answer's
    words share one split of it."""
    return tuple(words(fold(text)))
