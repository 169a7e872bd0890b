"""Text normalisation shared by the detectors and the training script."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["ASCII_LOWER", "LEET_LETTERS", "fold", "folded_words", "non_ascii", "words"]

#: Leetspeak: the digits and signs that stand for letters ("1gn0r3", "p@$$w0rd").
LEET_LETTERS = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_WORD_ASCII = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")  # the same on folded ASCII, and faster
# ``words`` without a pattern: the UTF-8 bytes of the text, a space for each ASCII character that
# is not part of a word (the apostrophe kept), then ``split``. ``_WORD`` takes upper-case ASCII
# letters, ``_WORD_ASCII`` does not (folded text has none); bytes of non-ASCII characters kept.
_ASCII_WORD_BYTES = bytes(
    c if 48 <= c <= 57 or 97 <= c <= 122 or c == 39 else 32 for c in range(256)
)
_WORD_BYTES = bytes(
    c if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in (39,) or c >= 128 else 32
    for c in range(256)
)
_ASCII_BYTES = bytes(range(128))
#: Bytes with the ASCII capitals lower-cased (UTF-8 text lowered in ASCII only, offsets kept).
ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_TWO_APOSTROPHES = re.compile(rb"'[^ ']*'")  # in one word


def non_ascii(raw: bytes) -> str:
    """The non-ASCII characters of UTF-8 ``raw``, in order (a lone surrogate passed through
    kept): a few kinds per text, each then handled with ``str.replace`` rather than a pattern
    or ``str.translate`` over the whole text. No byte of a non-ASCII character is below 128."""
    return raw.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


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
    text = folded
    if folded.isascii():
        raw = folded.encode().translate(_ASCII_WORD_BYTES)
    else:
        try:
            encoded = folded.encode()
        except UnicodeEncodeError:  # a lone surrogate
            return _WORD.findall(folded)
        # The non-ASCII characters that are not letters or digits (a few kinds per text:
        # quotes, dashes, combining marks) become spaces; the others are word characters.
        for c in set(non_ascii(encoded)):
            if not c.isalnum():
                folded = folded.replace(c, " ")
        raw = folded.encode().translate(_WORD_BYTES)
    if b"'" in raw:
        # An apostrophe belongs to a word only between two of its characters, and once: next
        # to a space it is none. Any other case (rare) is left to the pattern.
        raw = b" " + raw.replace(b" '", b"  ").replace(b"' ", b"  ") + b" "
        if b"' " in raw or b" '" in raw or b"''" in raw or _TWO_APOSTROPHES.search(raw):
            return (_WORD_ASCII if text.isascii() else _WORD).findall(text)
    return raw.decode().split()


@lru_cache(maxsize=8)
def folded_words(text: str) -> tuple[str, ...]:
    """``words(fold(text))``, kept for the last few texts: the detectors that read an answer's
    words share one split of it."""
    return tuple(words(fold(text)))
