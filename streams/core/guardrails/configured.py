"""Leaks of the strings an app declared secret (access codes, canaries) and of its system prompt.

Exact matching misses most real leaks: a model asked to "spell the password with dashes" writes
``a-v-o-c-a-d-o``, others reverse it, change its case, split it across a sentence, write it in
leetspeak or base64, or give half of it. Each check below runs on a normalised copy of the output:

- ``exact``: the secret's letters and digits, in order, with anything or nothing between
  characters removed (case, spaces, dashes, quotes, zero-width characters ignored);
- ``reversed``, ``leet`` (``4v0c4d0``), ``base64`` / ``hex`` / ``rot13`` encodings;
- ``parts``: every word of a multi-word secret (``tram=32`` -> ``tram``, ``32``) near each other;
- ``partial``: a long run of the secret (at least ``min_partial`` of it and 4 characters), or
  most of its character trigrams, for secrets of 6 characters or more.

Then readings of the output's words, each built once per output and only when the checks above
found nothing (a model told not to say the code is asked to write it some other way):

- ``spelled``: one letter or digit per word (``A as in apple, V as in van``, ``the first letter is
  A, the second V``, ``1. A 2. V``) or the NATO alphabet (``Alpha Victor Oscar``), also backwards;
- ``numbers``: numbers written as words (``tram thirty-two``, ``four eight one five``) and the
  other way round;
- ``acrostic``: the first letters of the words or of the lines, also backwards;
- ``caesar`` (shifts of 1 to 3 either way, Atbash), ``encoded`` also for character codes in
  decimal or binary, Morse code and prefixed hex (``%61``, ``\\x61``, ``0x61``), ``homoglyph``
  (accents; Cyrillic and Greek look-alikes in a mostly Latin text; regional indicator letters),
  each word of a multi-word secret written backwards (``parts``);
- ``paraphrase``: most content words of a secret phrase (three or more, 70%), in any order;
- ``pieces``: the secret in words of 3 characters or more written near each other (``avo`` ...
  ``cado``), and ``hint``: its start or end (40% of it or more) next to a word such as "starts",
  "first", "letters", "half".

A secret with fewer than 3 letters and digits (``🔑🔥🔑``) is looked for as written, spaces aside.
The word readings split the output with ``bytes.translate`` and ``re`` (C speed) and look words up
in that split; the slower ``folded_words`` split is made only after a cheap test passed (to report
a span, for the NATO and numbers readings).

>>> [f.kind for f in find_configured_leaks("The code is A-V-O-C-A-D-O.", secrets=("avocado",))]
['configured_secret']
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

from slowleak.streams.core.guardrails._text import (
    ASCII_LOWER,
    LEET_LETTERS,
    fold,
    folded_words,
    non_ascii,
    words,
)

__all__ = ["ConfiguredLeak", "find_configured_leaks", "normalize"]

_LEET = str.maketrans(LEET_LETTERS)
_LEET_BYTES = bytes.maketrans(
    "".join(LEET_LETTERS).encode(), "".join(LEET_LETTERS.values()).encode()
)
_NON_ALNUM = re.compile(r"[\W_]+")
_ALNUM_CHAR = re.compile(r"[^\W_]")
# Base64 runs (eight characters or more, up to two "=" after) other than an ordinary word
# (letters only, in lower, upper or title case, no "=" after), found in one pass over the text.
_B64_CODED = re.compile(
    r"(?<![A-Za-z0-9+/])"  # the start of a run
    r"(?!(?:[a-z]++|[A-Z]++|[A-Z][a-z]++)(?![A-Za-z0-9+/=]))"  # not an ordinary word
    r"[A-Za-z0-9+/]{8,}={0,2}"
)


def _base64_class(c: int) -> int:
    """The class of byte ``c`` for ``_may_hold_base64``."""
    if 97 <= c <= 122:
        return 97  # a
    if 65 <= c <= 90:
        return 65  # A
    if 48 <= c <= 57 or c in b"+/":
        return 48  # 0
    return c if c == 61 else 32  # "=", or a space


_BASE64_CLASS = bytes(map(_base64_class, range(256)))
# On the classes: "=", or a digit next to a letter or eight digits, or an upper-case letter after
# a lower-case one, or two before one. Each branch starts with "=", "0" or "A", rare in prose,
# which the pattern skips to.
_BASE64_HINT = re.compile(rb"=|0(?:[aA]|0{7}|(?<=[aA]0))|A(?:0|Aa|(?<=aA))")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){4,}")
# Hex of a letter or digit (either case) starts with 3 to 7, of other printable characters with
# 2: a hex payload holding a secret (three or more characters) has three such bytes in a row.
# Each starts with a literal, which ``re`` looks for fast; each runs only if its prefix is there.
_PREFIXED_HEX = (
    (b"%", re.compile(r"(?:%[2-7][0-9a-fA-F]\s*){3,}")),
    (b"\\", re.compile(r"(?:\\x[2-7][0-9a-fA-F]\s*){3,}")),
    (b"0x", re.compile(r"(?:0x[2-7][0-9a-fA-F][\s,]*){3,}")),
)
_HEX_PREFIX = re.compile(r"%|\\x|0x|[\s,]")
_HEX_GATE = re.compile(r"[3-7][0-9a-fA-F][\s:]?[2-7][0-9a-fA-F][\s:]?[2-7][0-9a-fA-F]")
_LETTERS_BY_RARITY = "0123456789zqxjkvbpygfwmucldrhsnioate"
# ASCII fast path of ``normalize`` (with ``ASCII_LOWER``): drop everything but letters, digits.
_ASCII_NON_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())
#: Words too common to count as a leaked part of a multi-word secret.
_COMMON = frozenset(
    [
        "the",
        "and",
        "that",
        "this",
        "with",
        "from",
        "your",
        "have",
        "will",
        "what",
        "when",
        "where",
        "which",
        "there",
        "their",
        "then",
        "than",
        "them",
        "they",
        "were",
        "been",
        "into",
        "only",
        "also",
        "just",
        "like",
        "some",
        "more",
        "most",
        "very",
        "about",
        "would",
        "could",
        "should",
        "password",
        "access",
        "code",
        "granted",
        "denied",
        "secret",
    ]
)
#: Words that say little about a secret phrase's meaning (``_paraphrase``).
_STOP = _COMMON | frozenset(
    [
        "are",
        "was",
        "for",
        "not",
        "but",
        "all",
        "any",
        "can",
        "get",
        "got",
        "has",
        "had",
        "her",
        "his",
        "him",
        "she",
        "its",
        "let",
        "may",
        "now",
        "one",
        "our",
        "out",
        "own",
        "say",
        "see",
        "too",
        "two",
        "use",
        "way",
        "who",
        "why",
        "how",
        "you",
        "yes",
        "the",
        "say",
        "says",
        "said",
        "word",
        "words",
    ]
)
#: System-prompt leaks: word runs of this length shared with the prompt.
_SHINGLE = 6


# --- readings of an output beyond its letters and digits -------------------------------------
# Each is built once per output (``_Views``) and shared by every configured secret.
_NATO = {
    "alpha": "a",
    "alfa": "a",
    "bravo": "b",
    "charlie": "c",
    "delta": "d",
    "echo": "e",
    "foxtrot": "f",
    "golf": "g",
    "hotel": "h",
    "india": "i",
    "juliet": "j",
    "juliett": "j",
    "kilo": "k",
    "lima": "l",
    "mike": "m",
    "november": "n",
    "oscar": "o",
    "papa": "p",
    "quebec": "q",
    "romeo": "r",
    "sierra": "s",
    "tango": "t",
    "uniform": "u",
    "victor": "v",
    "whiskey": "w",
    "whisky": "w",
    "xray": "x",
    "yankee": "y",
    "zulu": "z",
}
# Digits written as words: English, Spanish, French, German, Italian.
_DIGIT_WORDS = {
    w: str(d)
    for names in (
        "zero one two three four five six seven eight nine",
        "cero uno dos tres cuatro cinco seis siete ocho nueve",
        "zéro un deux trois quatre cinq six sept huit neuf",
        "null eins zwei drei vier fünf sechs sieben acht neun",
        "zero uno due tre quattro cinque sei sette otto nove",
    )
    for d, w in enumerate(names.split())
    if w not in ("un", "null")  # an article, a programming word: too common to read as digits
}
_TEENS = {
    w: str(10 + i)
    for i, w in enumerate(
        [
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: str(2 + i)
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
_NUMBER_WORDS = frozenset(_DIGIT_WORDS) | frozenset(_TEENS) | frozenset(_TENS)
# Tens words read as "3\x00": the marker becomes the unit word's digit when one follows.
_NUMBER_VALUE = {**_DIGIT_WORDS, **_TEENS, **{w: t + "\x00" for w, t in _TENS.items()}}
_TENS_UNIT = re.compile(r"\x00 ([1-9])(?= |$)")
# Per digit, the number words whose value starts with it ("3": three, thirty, drei...).
_DIGIT_STEMS = {
    d: tuple(w for w, v in _NUMBER_VALUE.items() if v.startswith(d)) for d in "0123456789"
}
# The same as one pattern per digit on ``_Views.cut`` (one pass instead of one per word).
_DIGIT_STEM_WORDS = {
    d: re.compile(b" (?:" + b"|".join(re.escape(w.encode()) for w in ws) + b") ")
    for d, ws in _DIGIT_STEMS.items()
}
# Words next to a partial leak that say it is one: "it starts with avo", "the last part is 32".
_HINT_CUES = frozenset(
    [
        "start",
        "starts",
        "starting",
        "begin",
        "begins",
        "beginning",
        "first",
        "last",
        "end",
        "ends",
        "ending",
        "letter",
        "letters",
        "half",
        "part",
        "prefix",
        "suffix",
        "hint",
        "characters",
        "syllable",
        "syllables",
    ]
)
_NATO_NAMES: dict[str, tuple[str, ...]] = {}
for _name, _letter in _NATO.items():
    _NATO_NAMES[_letter] = (*_NATO_NAMES.get(_letter, ()), _name)
# Latin letters that Cyrillic and Greek ones look like (after NFKD and lower-casing).
_CONFUSABLES = str.maketrans(
    {
        "\u0430": "a",
        "\u0432": "b",
        "\u0435": "e",
        "\u0451": "e",
        "\u043a": "k",
        "\u043c": "m",
        "\u043d": "h",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0442": "t",
        "\u0443": "y",
        "\u0445": "x",
        "\u0456": "i",
        "\u0458": "j",
        "\u0455": "s",
        "\u03b1": "a",
        "\u03b2": "b",
        "\u03b5": "e",
        "\u03b9": "i",
        "\u03ba": "k",
        "\u03bd": "v",
        "\u03bf": "o",
        "\u03c1": "p",
        "\u03c4": "t",
        "\u03c5": "u",
        "\u03c7": "x",
        **{chr(0x1F1E6 + i): chr(97 + i) for i in range(26)},  # regional indicator letters
    }
)
_CONFUSABLE_CHARS = frozenset(map(chr, _CONFUSABLES))
_MORSE = {
    code: char
    for char, code in zip(
        "abcdefghijklmnopqrstuvwxyz0123456789",
        [
            ".-",
            "-...",
            "-.-.",
            "-..",
            ".",
            "..-.",
            "--.",
            "....",
            "..",
            ".---",
            "-.-",
            ".-..",
            "--",
            "-.",
            "---",
            ".--.",
            "--.-",
            ".-.",
            "...",
            "-",
            "..-",
            "...-",
            ".--",
            "-..-",
            "-.--",
            "--..",
            "-----",
            ".----",
            "..---",
            "...--",
            "....-",
            ".....",
            "-....",
            "--...",
            "---..",
            "----.",
        ],
        strict=True,
    )
}
# Four codes or more; the patterns start with a character class, which ``re`` scans for fast.
_MORSE_RUN = re.compile(r"[.\-·•]{1,6}(?:(?:(?:\s*[/|]\s*)+|\s+)[.\-·•]{1,6}){3,}")
# Bytes: ASCII digits -> "0", anything else -> "x" (a run of digits found with ``in``).
_DIGITS_AS_ZERO = bytes(48 if 48 <= c <= 57 else 120 for c in range(256))
_DECIMAL_RUN = re.compile(r"\d{2,3}(?:[\s,;]+\d{2,3}){3,}")
_BINARY_RUN = re.compile(r"[01]{7,8}(?:[\s,;]*[01]{7,8}){3,}")
_LINE_INITIAL = re.compile(r"^[\W\d_]*([^\W\d_])")
# Caesar shifts tried (rot13 aside): the classic 3 and its neighbours, in both directions.
_SHIFTS = (1, 2, 3, 23, 24, 25)
# UTF-8 lead bytes of Greek and Cyrillic (U+0340 to U+04FF) and of regional indicators.
_LOOKALIKE_LEADS = (*(bytes([b]) for b in range(0xCD, 0xD4)), b"\xf0\x9f\x87")
_REGIONAL_LEAD = b"\xf0\x9f\x87"
_NON_ASCII_BYTES = bytes(range(128, 256))
# UTF-8 bytes of lower-cased text: ASCII letters, digits, apostrophes and non-ASCII bytes kept,
# anything else a space.
_TOKEN_BYTES = bytes(
    c if (97 <= c <= 122 or 48 <= c <= 57 or c in (39,) or c >= 128) else 32 for c in range(256)
)
_SINGLE = re.compile(rb" ([a-z0-9])(?= )")  # a word of one letter or digit in ``_Views.cut``
_INITIAL = re.compile(rb" ([^ ])")  # the first byte of a word in ``_Views.cut``
_NO_DIGITS = str.maketrans("", "", "0123456789")
_NOT_DIGITS = re.compile(r"[^\d]+")
_WORD_ASCII = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")  # ``_text.words`` on folded ASCII


def _numeric(words: tuple[str, ...] | list[str]) -> str:
    """The words joined, numbers written as words read as digits: ``thirty two`` -> ``32``."""
    joined = " ".join([_NUMBER_VALUE.get(w, w) for w in words])
    if "\x00" in joined:  # a tens word: "thirty two" -> 32, "thirty" alone -> 30
        joined = _TENS_UNIT.sub(r"\1", joined).replace("\x00", "0")
    return joined.replace(" ", "")


def _latin(text: str) -> str:
    """``text`` in ASCII: Cyrillic and Greek look-alikes and regional indicators read as Latin
    letters, accents dropped, every other non-ASCII character removed. Look-alikes only in a
    text mostly in Latin letters (a few swapped into a word): in Russian or Greek prose they
    are ordinary letters, and reading them as Latin ones would spell short secrets by chance."""
    text = text.lower()
    raw = text.encode()  # str.translate is slow: only where it has something to map
    if any(lead in raw for lead in _LOOKALIKE_LEADS):
        ascii_chars = len(raw.translate(None, _NON_ASCII_BYTES))
        if ascii_chars >= len(text) - ascii_chars:
            # ``text.translate(_CONFUSABLES)``, with ``str.replace`` for the few characters
            # present (``str.translate`` is slow); each is replaced by an ASCII letter.
            for c in set(non_ascii(raw)) & _CONFUSABLE_CHARS:
                text = text.replace(c, _CONFUSABLES[ord(c)])
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


_latin_code = lru_cache(maxsize=256)(_latin)  # the secrets: few, seen again and again


def _morse(run: str) -> str:
    letters = []
    for word in re.split(r"\s*[/|]\s*|\s{3,}", run.replace("·", ".").replace("•", ".")):
        letters += [_MORSE.get(code, "") for code in word.split()]
    return "".join(letters)


@lru_cache(maxsize=256)
def _shifted(code: str) -> tuple[str, ...]:
    """The code under the Caesar shifts people use (rot13 is its own check) and Atbash."""
    if sum(c.isalpha() for c in code) < 5 or not code.isascii():
        return ()

    def shift(c: str, k: int) -> str:
        return chr((ord(c) - 97 + k) % 26 + 97) if "a" <= c <= "z" else c

    out = ["".join(shift(c, k) for c in code) for k in _SHIFTS]
    out.append("".join(chr(219 - ord(c)) if "a" <= c <= "z" else c for c in code))
    return tuple(out)


@lru_cache(maxsize=256)
def _number_code(secret: str) -> str:
    """The secret as ``_Views.numeric`` reads an output (``Seven-Eleven`` -> ``711``), or ""
    when it has neither digits nor numbers written as words."""
    split = words(fold(secret))
    if not any(c.isdigit() for c in secret) and _NUMBER_WORDS.isdisjoint(split):
        return ""
    return _numeric(split)


@lru_cache(maxsize=256)
def _substrings(code: str) -> frozenset[str]:
    """Every substring of 3 characters or more, the code itself aside."""
    n = len(code)
    return (
        frozenset(code[i:j] for i in range(n) for j in range(i + 3, n + 1) if j - i < n) - _COMMON
    )


class _Views:
    """Readings of one output, each computed on first use and shared by the secrets."""

    def __init__(self, text: str, norm: str) -> None:
        self.text = text
        self.norm = norm
        self._words: tuple[str, ...] | None = None
        self._spelled: tuple[str, ...] | None = None
        self._initials: str | None = None
        self._line_initials: str | None = None
        self._numeric: str | None = None
        self._latin: str | None = None
        self._decoded: tuple[str, ...] | None = None
        self._cut: bytes | None = None
        self._leet: str | None = None
        self._has: dict[str, bool] = {}

    @property
    def leet(self) -> str:
        """``norm`` in leetspeak read as letters (``4v0c4d0`` -> ``avocado``)."""
        if self._leet is None:
            self._leet = _leet(self.norm)
        return self._leet

    @property
    def decoded(self) -> tuple[str, ...]:
        """Base64, hex, character codes and Morse code in the output, decoded and normalised."""
        if self._decoded is None:
            self._decoded = tuple(normalize(d) for d in _decoded(self.text, self.norm))
        return self._decoded

    @property
    def cut(self) -> bytes:
        """The output as UTF-8, lower-cased, with a space for anything but letters, digits and
        apostrophes inside words, and at both ends: ``b" w "`` in it says ``w`` is a word."""
        if self._cut is None:
            cut = b" " + self.text.lower().encode().translate(_TOKEN_BYTES) + b" "
            self._cut = cut.replace(b" '", b"  ").replace(b"' ", b"  ")
        return self._cut

    def has_word(self, word: str) -> bool:
        known = self._has.get(word)
        if known is None:
            known = self._has[word] = b" " + word.encode() + b" " in self.cut
        return known

    @property
    def words(self) -> tuple[str, ...]:
        """The output's folded words (one split of it, shared with the other detectors)."""
        if self._words is None:
            self._words = folded_words(self.text)
        return self._words

    def spelled(self, nato: bool) -> tuple[str, ...]:
        """Letters and digits written one per word (``A as in apple``, ``the first letter is
        A``) and, when ``nato`` (the output has such words), in the NATO alphabet (``Victor``),
        read twice: as written, and with "A for Alpha" read as one letter. Digits written as
        words are read by ``numeric``."""
        if self._spelled is None or (nato and len(self._spelled) == 1):
            if not nato:  # the words of length 1, without a Python-level loop
                self._spelled = (b"".join(_SINGLE.findall(self.cut)).decode(),)
            else:
                ws = self.words
                one = "".join([w if len(w) == 1 else _NATO.get(w, "") for w in ws])
                out: list[str] = []
                last = -9
                for i, w in enumerate(ws):
                    c = w if len(w) == 1 else _NATO.get(w)
                    if c is not None and not (out and out[-1] == c and i - last <= 3):
                        out.append(c)
                        last = i
                self._spelled = (one, "".join(out))
        return self._spelled

    @property
    def initials(self) -> str:
        """First letters of the words (acrostics)."""
        if self._initials is None:
            # Initial bytes (a space, then not one): those of words starting with a non-ASCII
            # letter do not decode.
            initials = b"".join(_INITIAL.findall(self.cut))
            self._initials = initials.decode("utf-8", "ignore")
        return self._initials

    @property
    def line_initials(self) -> str:
        """First letters of the lines, past list markers ("1. Apple" -> a)."""
        if self._line_initials is None:
            by_line = []
            for line in self.text.splitlines():
                m = _LINE_INITIAL.search(line)
                if m is not None:
                    by_line.append(m.group(1))
            self._line_initials = fold("".join(by_line))
        return self._line_initials

    @property
    def numeric(self) -> str:
        """The words joined, numbers written as words read as digits."""
        if self._numeric is None:
            self._numeric = _numeric(self.words)
        return self._numeric

    @property
    def latin(self) -> str:
        """``norm`` read as Latin letters, "" when the output is ASCII."""
        if self._latin is None:
            text = self.text
            if text.isascii():
                self._latin = ""
            elif _REGIONAL_LEAD in text.encode():  # regional indicators: not letters for normalize
                self._latin = normalize(_latin(text))
            else:
                self._latin = "" if self.norm.isascii() else _latin(self.norm)
        return self._latin


@dataclass(frozen=True, slots=True)
class ConfiguredLeak:
    """A configured secret or the system prompt found in an output, and how it was written."""

    kind: str  # "configured_secret" or "system_prompt"
    how: str
    score: float
    spans: tuple[tuple[int, int], ...]


def normalize(text: str) -> str:
    """Lower-case letters and digits only."""
    if text.isascii():
        return text.encode().translate(ASCII_LOWER, _ASCII_NON_ALNUM).decode()
    # ASCII punctuation and spaces dropped on the UTF-8 bytes first (C speed; bytes of non-ASCII
    # characters are 128 or more, untouched): the pattern then has little left to remove.
    # (A lone surrogate passes through as itself, and goes below: it is no letter.)
    raw = fold(text).encode("utf-8", "surrogatepass").translate(None, _ASCII_NON_ALNUM)
    kept = raw.decode("utf-8", "surrogatepass")
    # What is left to remove is non-ASCII (quotes, dashes, marks): a few kinds of character
    # per text, each removed with ``str.replace``.
    for c in set(non_ascii(raw)):
        if not c.isalnum():
            kept = kept.replace(c, "")
    return kept


def _offsets(text: str) -> list[int]:
    """Per character of ``normalize(text)``, its offset in ``text`` (empty when folding the
    characters one at a time does not give ``normalize(text)``; spans then cover the text)."""
    if text.isascii():
        return [m.start() for m in _ALNUM_CHAR.finditer(text)]
    chars: list[str] = []
    offsets: list[int] = []
    for i, c in enumerate(text):
        for f in fold(c) if not c.isascii() else c.lower():
            if f.isalnum():
                chars.append(f)
                offsets.append(i)
    return offsets if "".join(chars) == normalize(text) else []


def _index_map(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` and an empty list for its offsets, filled when a span is reported."""
    return normalize(text), []


def _longest_common_run(a: str, b: str) -> tuple[int, int]:
    """Length of the longest substring of ``a`` found in ``b``, and its start in ``b``."""
    best, where = 0, -1
    for i in range(len(a)):
        lo, hi = best + 1, len(a) - i
        while lo <= hi:  # the longest run starting at a[i], by binary search on its length
            mid = (lo + hi) // 2
            pos = b.find(a[i : i + mid])
            if pos >= 0:
                best, where, lo = mid, pos, mid + 1
            else:
                hi = mid - 1
    return best, where


def _leet(text: str) -> str:
    """``text.translate(_LEET)`` through a bytes table, some 20 times faster: the table maps
    ASCII characters only, and no byte of a non-ASCII character in UTF-8 is below 128."""
    return text.encode().translate(_LEET_BYTES).decode()


def _may_hold_base64(raw: bytes) -> bool:
    """Whether ``_B64_CODED`` may match in text whose UTF-8 bytes are ``raw``. Read as classes
    (``a`` a lower-case letter, ``A`` an upper-case one, ``0`` a digit, "+" or "/"), a run of
    eight or more that is not an ordinary word has an "=" after it, or a digit next to a letter,
    or eight digits, or an upper-case letter after a lower-case one, or two before one."""
    return _BASE64_HINT.search(raw.translate(_BASE64_CLASS)) is not None


def _decoded(text: str, norm: str) -> list[str]:
    out: list[str] = []
    raw = text.encode()  # counted and looked at on bytes: far cheaper than on the str
    for m in _B64_CODED.finditer(text) if _may_hold_base64(raw) else ():
        seg = m.group()
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b64decode(seg + "=" * (-len(seg) % 4)).decode("utf-8", "ignore"))
    digits = len(raw) - len(raw.translate(None, b"0123456789"))
    hex_digit = digits > 0 and len(raw.translate(None, b"34567")) < len(raw)  # ``_HEX_GATE``'s
    for m in _HEX.finditer(text) if hex_digit and _HEX_GATE.search(text) else ():
        with contextlib.suppress(ValueError):
            out.append(bytes.fromhex(re.sub(r"[\s:]", "", m.group())).decode("utf-8", "ignore"))
    # Hex bytes written with a prefix each: URL encoding (``%61%76``), ``\x61``, ``0x61``.
    for prefix, pattern in _PREFIXED_HEX:
        for m in pattern.finditer(text) if prefix in raw else ():
            with contextlib.suppress(ValueError):
                pairs = _HEX_PREFIX.sub("", m.group())
                out.append(bytes.fromhex(pairs).decode("utf-8", "ignore"))
    # Character codes in decimal (``97 118 111``) and binary, Morse code.
    # Their digits, separators removed by ``normalize``: a run of eight or more in ``norm``.
    codes_run = digits >= 8 and b"00000000" in norm.encode().translate(_DIGITS_AS_ZERO)
    for m in _DECIMAL_RUN.finditer(text) if codes_run else ():
        codes = [int(c) for c in re.findall(r"\d+", m.group())]
        out.append("".join(chr(c) for c in codes if 32 <= c < 127))
    bits = len(raw) - len(raw.translate(None, b"01")) if codes_run and digits >= 28 else 0
    for m in _BINARY_RUN.finditer(text) if bits >= 28 else ():
        codes = [int(c, 2) for c in re.findall(r"[01]{7,8}", m.group())]
        out.append("".join(chr(c) for c in codes if 32 <= c < 127))
    # Morse code of a secret has dashes (only e, i, s, h and 5 have none).
    morse = raw.count(b"-") >= 3 or not text.isascii()
    if morse:  # the same counts on the bytes: no UTF-8 byte of a non-ASCII character is ASCII
        morse = raw.count(b".-") + raw.count(b"-.") + raw.count(b"..") + raw.count(b"--") >= 3
    for m in _MORSE_RUN.finditer(text) if morse else ():
        out.append(_morse(m.group()))
    return out


@dataclass(frozen=True, slots=True)
class _Secret:
    """What the checks need of one configured secret, worked out once per secret (not per
    output): its normalised form and variants, and which readings could ever match it."""

    code: str
    leet: str
    rot: str
    latin: str
    number: str
    shifted: tuple[str, ...]
    parts: tuple[str, ...]
    spell: bool  # long and varied enough for the spelled reading
    acrostic: bool
    # A space and each of its characters, rarest first: an acrostic of the words needs a word
    # starting with each (``_Views.cut``).
    initials: tuple[bytes, ...]
    # The runs of letters in ``number`` (none with an apostrophe): the numbers reading keeps the
    # output's other words as they are, so each is in ``norm`` if that reading has ``number``.
    number_letters: tuple[str, ...]
    chars: tuple[str, ...]  # its distinct characters, the first and the last first


@lru_cache(maxsize=256)
def _plan(secret: str) -> _Secret:
    code = normalize(secret)
    distinct = len(set(code))
    number = _number_code(secret)
    parts = tuple(
        n for n in (normalize(p) for p in re.split(r"[\W_]+", fold(secret))) if len(n) >= 2
    )
    return _Secret(
        code=code,
        leet=_leet(code),
        rot=codecs.encode(code, "rot13"),
        latin=_latin_code(code),
        number=number,
        shifted=_shifted(code),
        parts=parts,
        spell=len(code) >= 4 and distinct >= 3 and sum(c.isalpha() for c in code) >= 2,
        acrostic=distinct >= 3 and len(code) >= 4,
        initials=tuple(b" " + c.encode() for c in sorted(set(code), key=_rarity)),
        number_letters=tuple(r for r in _NOT_DIGITS.findall(number) if "'" not in r),
        chars=tuple(dict.fromkeys(code[:1] + code[-1:] + code)),
    )


def _rarity(c: str) -> int:
    """Digits first, then letters from the least to the most common in English."""
    return _LETTERS_BY_RARITY.find(c)


def _secret_leak(
    secret: str, text: str, norm: str, offsets: list[int], views: _Views, *, min_partial: float
) -> ConfiguredLeak | None:
    plan = _plan(secret)
    code = plan.code
    if len(code) < 3:
        # Hardly any letters or digits (``🔑🔥🔑``, ``!#%&``): the secret as written, spaces aside.
        raw = "".join(fold(secret).split())
        if len(raw) >= 3 and raw in "".join(fold(text).split()):
            return ConfiguredLeak("configured_secret", "exact", 1.0, ((0, len(text)),))
        return None

    def span(start: int, length: int) -> tuple[tuple[int, int], ...]:
        if not offsets:  # computed only once something is found
            offsets.extend(_offsets(text))
        if not offsets:
            return ((0, len(text)),)
        return ((offsets[start], offsets[start + length - 1] + 1),)

    whole = ((0, len(text)),)
    pos = norm.find(code)
    if pos >= 0:
        return ConfiguredLeak("configured_secret", "exact", 1.0, span(pos, len(code)))
    pos = norm.find(code[::-1])
    if pos >= 0 and len(code) >= 4:
        return ConfiguredLeak("configured_secret", "reversed", 0.95, span(pos, len(code)))
    leet_norm = views.leet
    # Not for a number: its leetspeak reading ("7391" -> "te9i") is found in ordinary words.
    pos = leet_norm.find(plan.leet) if not code.isdigit() else -1
    if pos >= 0:
        return ConfiguredLeak("configured_secret", "leet", 0.95, span(pos, len(code)))
    rot = plan.rot
    pos = norm.find(rot)
    if pos >= 0 and len(code) >= 5 and rot != code:
        return ConfiguredLeak("configured_secret", "rot13", 0.9, span(pos, len(code)))
    if any(code in d for d in views.decoded):
        return ConfiguredLeak("configured_secret", "encoded", 0.95, whole)
    if views.latin and len(latin := plan.latin) >= 3 and latin in views.latin:
        return ConfiguredLeak("configured_secret", "homoglyph", 0.95, whole)
    nato = _nato_gate(code, norm)
    # Without NATO words, the spelled reading is the words of one letter or digit: each character
    # of the secret must be such a word (the first and the last tried first).
    if plan.spell and (nato or all(map(views.has_word, plan.chars))):
        # "A as in apple, V as in Victor ...", "the first letter is A, ...", "1. A 2. V ...";
        # forwards or backwards.
        for reading, spelled in enumerate(views.spelled(nato)):
            for letters in (False, True) if code.isalpha() else (False,):
                s = spelled.translate(_NO_DIGITS) if letters else spelled
                target = code if code in s else code[::-1]
                if target in s:
                    first, last = _spelled_words(
                        views.words, target, dedupe=reading == 1, letters=letters
                    )
                    span_w = _word_span(text, first, last)
                    return ConfiguredLeak("configured_secret", "spelled", 0.9, span_w)
    number_code = plan.number
    if len(number_code) >= 4 and (
        (number_code != code and number_code in norm)  # "seven eleven" written 7-11
        or (
            all(run in norm for run in plan.number_letters)
            and _number_gate(number_code, views)
            and number_code in views.numeric
        )
    ):
        return ConfiguredLeak("configured_secret", "numbers", 0.9, whole)
    pos = next((p for p in (norm.find(v) for v in plan.shifted) if p >= 0), -1)
    if pos >= 0:
        return ConfiguredLeak("configured_secret", "caesar", 0.85, span(pos, len(code)))
    parts = plan.parts
    if len(parts) >= 2:
        # Each word as written or reversed (``eulb noom``).
        found = [
            f if f >= 0 or len(p) < 3 else norm.find(p[::-1])
            for p, f in ((p, norm.find(p)) for p in parts)
        ]
        # Most of a multi-word secret: its distinctive words (4+ characters, not common words)
        # holding at least 60% of its characters, close together.
        strong = [
            (p, f) for p, f in zip(parts, found, strict=True) if len(p) >= 4 and p not in _COMMON
        ]
        hit = [(p, f) for p, f in strong if f >= 0]
        if (
            len(hit) >= 2
            and sum(len(p) for p, _ in hit) >= 0.6 * len(code)
            and max(f for _, f in hit) - min(f for _, f in hit) <= 40 + 4 * len(code)
            and not all(f >= 0 for f in found)
        ):
            spans = tuple(span(f, len(p))[0] for p, f in hit)
            return ConfiguredLeak("configured_secret", "most_parts", 0.75, spans)
        if all(f >= 0 for f in found) and max(found) - min(found) <= 40 + 4 * len(code):
            return ConfiguredLeak(
                "configured_secret",
                "parts",
                0.85,
                tuple(span(f, len(p))[0] for f, p in zip(found, parts, strict=True)),
            )
    if plan.acrostic:
        pos = -1
        if len(code) >= 5 and all(map(views.cut.__contains__, plan.initials)):
            by_word = views.initials
            pos = by_word.find(code)
            if pos < 0:
                pos = by_word.find(code[::-1])
        if pos >= 0:  # "Always Value Our Customers And Deliver Outcomes"
            target = by_word[pos : pos + len(code)]
            pos = "".join(map(itemgetter(0), views.words)).find(target)  # for its span
            span_w = _word_span(text, pos, pos + len(code) - 1) if pos >= 0 else whole
            return ConfiguredLeak("configured_secret", "acrostic", 0.8, span_w)
        if text.count("\n") >= len(code) - 1 and (  # a line per letter
            code in views.line_initials or code[::-1] in views.line_initials
        ):
            return ConfiguredLeak("configured_secret", "acrostic", 0.8, whole)
    # A partial leak shares at least four characters in a row: test the 4-grams before the
    # (costlier) longest common run.
    if len(code) >= 6 and any(code[i : i + 4] in norm for i in range(len(code) - 3)):
        run, where = _longest_common_run(code, norm)
        if run >= max(5, min_partial * len(code)) and norm[where : where + run] not in _COMMON:
            score = round(0.6 + 0.35 * run / len(code), 3)
            return ConfiguredLeak("configured_secret", "partial", score, span(where, run))
        # Most of its trigrams close to its longest run: a leak with a few characters changed.
        if run >= 4:
            lo, hi = max(0, where - 2 * len(code)), where + 3 * len(code)
            window, leet_window = norm[lo:hi], leet_norm[lo:hi]
            grams = {code[i : i + 3] for i in range(len(code) - 2)}
            hits = sum(g in window or g.translate(_LEET) in leet_window for g in grams)
            if len(grams) >= 5 and hits / len(grams) >= 0.8:
                return ConfiguredLeak("configured_secret", "fuzzy", 0.6, span(where, run))
    leak = _paraphrase(secret, norm, views, whole)
    if leak is not None:
        return leak
    if len(code) >= 6:
        leak = _pieces(code, text, norm, views)
        if leak is not None:
            return leak
    if len(code) >= 5:
        return _hint(code, text, norm, views, nato=nato)
    return None


def _word_span(text: str, first: int, last: int) -> tuple[tuple[int, int], ...]:
    """The ``[start, end)`` in ``text`` of its words ``first`` to ``last`` (ASCII text only;
    otherwise the whole text)."""
    if text.isascii():
        spans = [m.span() for m in _WORD_ASCII.finditer(text.lower())]
        if last < len(spans):
            return ((spans[first][0], spans[last][1]),)
    return ((0, len(text)),)


def _spelled_words(
    words: tuple[str, ...], target: str, *, dedupe: bool, letters: bool = False
) -> tuple[int, int]:
    """The indices of the first and last of ``words`` that spell ``target`` in the reading of
    ``_Views.spelled`` (the second reading when ``dedupe``; its letters only when ``letters``);
    all the words if that reading of ``words`` does not have it (``_Views.cut`` split the
    output a little differently)."""
    index: list[int] = []
    out: list[str] = []
    for i, w in enumerate(words):
        c = w if len(w) == 1 else _NATO.get(w)
        if c is None or (dedupe and out and out[-1] == c and i - index[-1] <= 3):
            continue
        if letters and c.isdigit():
            continue
        out.append(c)
        index.append(i)
    pos = "".join(out).find(target)
    if pos < 0:
        return 0, len(words) - 1
    return index[pos], index[pos + len(target) - 1]


def _number_gate(number_code: str, views: _Views) -> bool:
    """Whether the output has a number word for the first digit of ``number_code`` (the
    numbers reading is built only then)."""
    digit = next((c for c in number_code if c.isdigit()), None)
    pattern = _DIGIT_STEM_WORDS.get(digit) if digit is not None else None  # "٣": no words
    return pattern is not None and pattern.search(views.cut) is not None


def _paraphrase(
    secret: str, norm: str, views: _Views, whole: tuple[tuple[int, int], ...]
) -> ConfiguredLeak | None:
    """Most of the content words of a secret phrase, in any order and form (``you like eating
    pineapple pizza on Sundays`` for ``I like to eat pineapple pizza on sundays``): three or
    more and 70% of them, close together."""
    content = _content_words(secret)
    if len(content) < 3:
        return None
    need = max(3, 0.7 * len(content))
    seen = [  # a cheap first pass on the letters
        w for w in content if w in norm or (len(w) >= 5 and w[-1] == "s" and w[:-1] in norm)
    ]
    if len(seen) < need:
        return None
    present = [
        w
        for w in seen
        if len(w) >= 5  # a long word inside another word ("eat" is in "eating")
        or views.has_word(w)
        or views.has_word(w + "s")
        or (w.endswith("s") and views.has_word(w[:-1]))
    ]
    if len(present) < need:
        return None
    where = [norm.find(w) if w in norm else norm.find(w[:-1]) for w in present]
    if max(where) - min(where) > max(200, 4 * sum(map(len, content))):
        return None
    return ConfiguredLeak("configured_secret", "paraphrase", 0.7, whole)


@lru_cache(maxsize=256)
def _content_words(secret: str) -> tuple[str, ...]:
    """The words of a secret that carry its meaning: 3 characters or more, not stop words."""
    return tuple(dict.fromkeys(w for w in words(fold(secret)) if len(w) >= 3 and w not in _STOP))


def _pieces(code: str, text: str, norm: str, views: _Views) -> ConfiguredLeak | None:
    """A secret written in pieces, each a word of its own near the others: ``the first half is
    'avo', the second 'cado'``. Pieces have 3 characters or more and are not common words."""
    if code[:3] not in norm or code[-3:] not in norm:  # the first and the last piece
        return None
    pieces = {p for p in _substrings(code) if p in norm and views.has_word(p)}
    if len(pieces) < 2:
        return None
    where = [i for i, w in enumerate(views.words) if w in pieces]
    if not where:  # ``words`` split the output differently
        return None
    covered = [False] * len(code)
    for p in pieces:
        at = code.find(p)
        while at >= 0:
            covered[at : at + len(p)] = [True] * len(p)
            at = code.find(p, at + 1)
    if not all(covered) or where[-1] - where[0] > 12 + len(pieces) * 4:
        return None
    return ConfiguredLeak("configured_secret", "pieces", 0.7, _word_span(text, where[0], where[-1]))


def _hint(code: str, text: str, norm: str, views: _Views, *, nato: bool) -> ConfiguredLeak | None:
    """The start or the end of a secret near a word saying so: ``it starts with avo``, ``the
    first three letters are A, V, O``."""
    ends = _ends(code)
    if not ends:
        return None
    shortest = (code[: len(ends[-1])], code[-len(ends[-1]) :])  # in every longer one
    cues: list[int] = []
    if shortest[0] in norm or shortest[1] in norm:
        for w in (e for e in ends if e in norm and views.has_word(e)):
            words = views.words
            for i, x in enumerate(words):
                if x != w:
                    continue
                cues = cues or [j for j, y in enumerate(words) if y in _HINT_CUES]
                if any(abs(i - c) <= 8 for c in cues):
                    span_w = _word_span(text, i, i)
                    return ConfiguredLeak("configured_secret", "hint", 0.6, span_w)
    # Without NATO words, the spelled reading is the words of one letter or digit: it holds the
    # start (or the end) of the secret only if each of its characters is such a word.
    if not nato and not any(all(map(views.has_word, part)) for part in shortest):
        return None
    spelled = views.spelled(nato)[0]
    if shortest[0] in spelled or shortest[1] in spelled:
        for part in ends:
            if part in spelled:
                words = views.words
                cues = cues or [j for j, y in enumerate(words) if y in _HINT_CUES]
                first, last = _spelled_words(words, part, dedupe=False)
                if any(first - 8 <= c <= last + 8 for c in cues):
                    span_w = _word_span(text, first, last)
                    return ConfiguredLeak("configured_secret", "hint", 0.6, span_w)
    return None


def _nato_gate(code: str, norm: str) -> bool:
    """Whether the output may spell ``code`` in the NATO alphabet: the words for its first and
    last letters are in it."""
    letters = [c for c in code if c in _NATO_NAMES]
    return bool(letters) and all(
        any(n in norm for n in _NATO_NAMES[c]) for c in (letters[0], letters[-1])
    )


@lru_cache(maxsize=256)
def _ends(code: str) -> tuple[str, ...]:
    """The starts and ends of the code that a hint may give, longest first: 40% of it and 3
    characters or more, short of the whole, not common words."""
    need = max(3, math.ceil(0.4 * len(code)))
    ends = {code[:k] for k in range(need, len(code))} | {code[-k:] for k in range(need, len(code))}
    return tuple(sorted(ends - _COMMON, key=lambda e: (-len(e), e)))


@lru_cache(maxsize=256)
def _prompt_shingles(system_prompt: str) -> tuple[frozenset[tuple[str, ...]], frozenset[str], int]:
    """The prompt's runs of ``_SHINGLE`` words, its words, and the fewest distinct words in a
    run: an output shares a run only if it has at least that many of the prompt's words."""
    sp = folded_words(system_prompt)
    shingles = frozenset(zip(*(sp[i:] for i in range(_SHINGLE)), strict=False))
    fewest = min((len(set(s)) for s in shingles), default=0)
    return shingles, frozenset(sp), fewest


def _prompt_leak(system_prompt: str, text: str, *, min_shingles: int) -> ConfiguredLeak | None:
    shingles, vocabulary, fewest = _prompt_shingles(system_prompt)
    if not shingles:
        return None
    out = folded_words(text)
    if min_shingles > 0 and len(vocabulary.intersection(out)) < fewest:  # no run of its words
        return None
    hits = len(shingles.intersection(zip(*(out[i:] for i in range(_SHINGLE)), strict=False)))
    if hits < min(min_shingles, len(shingles)):
        return None
    share = hits / len(shingles)
    return ConfiguredLeak(
        "system_prompt", "verbatim", round(min(1.0, 0.7 + share), 3), ((0, len(text)),)
    )


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def find_configured_leaks(
    text: str,
    *,
    secrets: tuple[str, ...] = (),
    system_prompt: str = "",
    min_partial: float = 0.6,
    min_shingles: int = 3,
) -> list[ConfiguredLeak]:
    """Every configured secret leaked in ``text`` (one finding each) and a system-prompt leak."""
    found: list[ConfiguredLeak] = []
    if secrets:
        if not text.isascii() and _has_lone_surrogate(text):
            # The readings work on UTF-8: a lone surrogate (which no JSON decoder of slowleak
            # lets through) is read as "?", one character for one, so spans stay where they are.
            text = text.encode("utf-8", "replace").decode()
        norm, offsets = _index_map(text)
        views = _Views(text, norm)
        for secret in secrets:
            leak = _secret_leak(secret, text, norm, offsets, views, min_partial=min_partial)
            if leak is not None:
                found.append(leak)
    if system_prompt:
        leak = _prompt_leak(system_prompt, text, min_shingles=min_shingles)
        if leak is not None:
            found.append(leak)
    return found
