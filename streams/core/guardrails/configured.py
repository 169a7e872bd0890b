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

>>> [f.kind for f in find_configured_leaks("The code is A-V-O-C-A-D-O.", secrets=("avocado",))]
['configured_secret']
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import re
from dataclasses import dataclass
from functools import lru_cache

from slowleak.streams.core.guardrails._text import fold, folded_words

__all__ = ["ConfiguredLeak", "find_configured_leaks", "normalize"]

_LEET = str.maketrans(
    {
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
)
_NOT_BASE64_EDGE = ".,;:!?\"'()[]{}<>*`"
_LEET_BYTES = bytes.maketrans(b"013457@$!|", b"oieastasil")
_NON_ALNUM = re.compile(r"[\W_]+")
_ALNUM_CHAR = re.compile(r"[^\W_]")
_B64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){4,}")
# Hex of a letter or digit (either case) starts with 3 to 7, of other printable characters with
# 2: a hex payload holding a secret (three or more characters) has three such bytes in a row.
_HEX_GATE = re.compile(r"[3-7][0-9a-fA-F][\s:]?[2-7][0-9a-fA-F][\s:]?[2-7][0-9a-fA-F]")
# ASCII fast path of ``normalize``: lower-case, drop everything but letters and digits.
_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
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
#: System-prompt leaks: word runs of this length shared with the prompt.
_SHINGLE = 6


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
        return text.encode().translate(_ASCII_LOWER, _ASCII_NON_ALNUM).decode()
    return _NON_ALNUM.sub("", fold(text))


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


def _plain_word(run: str) -> bool:
    """A run that is one word of letters in one case (punctuation around it aside): the only
    base64-like segment in it is that word, which ``_decoded`` skips anyway."""
    core = run.strip(_NOT_BASE64_EDGE)
    return core.isalpha() and (core.islower() or core.isupper() or core.istitle())


def _leet(text: str) -> str:
    """``text.translate(_LEET)``; for ASCII a bytes table, some 20 times faster."""
    if text.isascii():
        return text.encode().translate(_LEET_BYTES).decode()
    return text.translate(_LEET)


def _decoded(text: str) -> list[str]:
    out: list[str] = []
    # Base64 has no white space: only the longer runs between spaces need the pattern.
    runs = [run for run in text.split() if len(run) >= 8 and not _plain_word(run)]
    for m in (m for run in runs for m in _B64.finditer(run)):
        seg = m.group()
        if seg.isalpha() and (seg.islower() or seg.isupper() or seg.istitle()):
            continue  # an ordinary word, not base64
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b64decode(seg + "=" * (-len(seg) % 4)).decode("utf-8", "ignore"))
    for m in _HEX.finditer(text) if _HEX_GATE.search(text) else ():
        with contextlib.suppress(ValueError):
            out.append(bytes.fromhex(re.sub(r"[\s:]", "", m.group())).decode("utf-8", "ignore"))
    return out


def _secret_leak(
    secret: str, text: str, norm: str, offsets: list[int], *, min_partial: float
) -> ConfiguredLeak | None:
    code = normalize(secret)
    if len(code) < 3:
        return None

    def span(start: int, length: int) -> tuple[tuple[int, int], ...]:
        if not offsets:  # computed only once something is found
            offsets.extend(_offsets(text))
        if not offsets:
            return ((0, len(text)),)
        return ((offsets[start], offsets[start + length - 1] + 1),)

    pos = norm.find(code)
    if pos >= 0:
        return ConfiguredLeak("configured_secret", "exact", 1.0, span(pos, len(code)))
    pos = norm.find(code[::-1])
    if pos >= 0 and len(code) >= 4:
        return ConfiguredLeak("configured_secret", "reversed", 0.95, span(pos, len(code)))
    leet_code, leet_norm = _leet(code), _leet(norm)
    pos = leet_norm.find(leet_code)
    if pos >= 0:
        return ConfiguredLeak("configured_secret", "leet", 0.95, span(pos, len(code)))
    rot = codecs.encode(code, "rot13")
    pos = norm.find(rot)
    if pos >= 0 and len(code) >= 5 and rot != code:
        return ConfiguredLeak("configured_secret", "rot13", 0.9, span(pos, len(code)))
    if any(code in normalize(d) for d in _decoded(text)):
        return ConfiguredLeak("configured_secret", "encoded", 0.95, ((0, len(text)),))
    parts = [normalize(p) for p in re.split(r"[\W_]+", fold(secret)) if len(normalize(p)) >= 2]
    if len(parts) >= 2:
        found = [norm.find(p) for p in parts]
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
    # A partial leak shares at least four characters in a row: test the 4-grams before the
    # (costlier) longest common run.
    if len(code) >= 6 and any(code[i : i + 4] in norm for i in range(len(code) - 3)):
        run, where = _longest_common_run(code, norm)
        if run >= max(5, min_partial * len(code)):
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
    return None


@lru_cache(maxsize=256)
def _prompt_shingles(system_prompt: str) -> frozenset[tuple[str, ...]]:
    sp = folded_words(system_prompt)
    return frozenset(zip(*(sp[i:] for i in range(_SHINGLE)), strict=False))


def _prompt_leak(system_prompt: str, text: str, *, min_shingles: int) -> ConfiguredLeak | None:
    shingles = _prompt_shingles(system_prompt)
    if not shingles:
        return None
    out = folded_words(text)
    hits = len(shingles.intersection(zip(*(out[i:] for i in range(_SHINGLE)), strict=False)))
    if hits < min(min_shingles, len(shingles)):
        return None
    share = hits / len(shingles)
    return ConfiguredLeak(
        "system_prompt", "verbatim", round(min(1.0, 0.7 + share), 3), ((0, len(text)),)
    )


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
        norm, offsets = _index_map(text)
        for secret in secrets:
            leak = _secret_leak(secret, text, norm, offsets, min_partial=min_partial)
            if leak is not None:
                found.append(leak)
    if system_prompt:
        leak = _prompt_leak(system_prompt, text, min_shingles=min_shingles)
        if leak is not None:
            found.append(leak)
    return found
