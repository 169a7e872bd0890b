"""Replace personal data and secrets in a text with typed placeholders.

``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ``<IBAN>``, ``<SSN>``, ``<IP_ADDRESS>``,
``<STREET_ADDRESS>`` for personal data, ``<SECRET:kind>`` for credentials (``kind`` as reported by
:func:`~slowleak.streams.core.guardrails.secrets.find_secrets`) and ``<SECRET:configured>`` for the
strings passed as ``secrets``. Only the value is replaced: ``postgres://app:<SECRET:connection_string>@db``.

>>> mask_text("Mail jo@example.org, key AKIAIOSFODNN7EXAMPLE.")
'Mail <EMAIL>, key <SECRET:aws_access_key>.'
"""

from __future__ import annotations

from collections.abc import Sequence

from slowleak.streams.core.guardrails.configured import ConfiguredLeak, find_configured_leaks
from slowleak.streams.core.guardrails.pii import PiiMatch, find_pii
from slowleak.streams.core.guardrails.secrets import SecretMatch, find_secrets

__all__ = [
    "detect",
    "detect_configured",
    "mask_excerpt",
    "mask_spans",
    "mask_text",
    "sensitive_spans",
]

Labelled = tuple[int, int, str]


class _Found:
    """What was found in one text: PII, credentials, and configured-secret leaks per secrets."""

    __slots__ = ("leaks", "pii", "secrets", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pii = find_pii(text)
        self.secrets = find_secrets(text)
        self.leaks: dict[tuple[str, ...], list[ConfiguredLeak]] = {}


#: What was found in the last two texts looked at, held with the text itself and matched by
#: identity: the worker masks an event's texts for storage, then the scanner looks at the same
#: string objects, so the patterns run once per text. All are pure functions of the text (and
#: the secrets), so a hit is exact; the tuple is replaced whole, so a reader never sees half an
#: update.
_recent: tuple[_Found, ...] = ()


def _found(text: str) -> _Found:
    global _recent
    for found in _recent:
        if found.text is text:
            return found
    new = _Found(text)
    _recent = (new, *_recent[:1])
    return new


def detect(text: str) -> tuple[list[PiiMatch], list[SecretMatch]]:
    """``(find_pii(text), find_secrets(text))``, computed once for the text last asked about.

    The lists are shared with the next caller asking about the same text: do not change them.
    """
    found = _found(text)
    return found.pii, found.secrets


def detect_configured(text: str, secrets: tuple[str, ...]) -> list[ConfiguredLeak]:
    """``find_configured_leaks(text, secrets=secrets)``, computed once per text and secrets."""
    if not secrets:
        return []
    found = _found(text)
    leaks = found.leaks.get(secrets)
    if leaks is None:
        leaks = found.leaks[secrets] = find_configured_leaks(text, secrets=secrets)
    return leaks


def sensitive_spans(
    text: str,
    *,
    secrets: tuple[str, ...] = (),
    pii: Sequence[PiiMatch] | None = None,
    found_secrets: Sequence[SecretMatch] | None = None,
    leaks: Sequence[ConfiguredLeak] | None = None,
) -> list[Labelled]:
    """``(start, end, placeholder)`` for every secret and PII value, sorted, without overlaps
    (secrets win over PII where they overlap). ``pii``, ``found_secrets`` and ``leaks`` are the
    detectors' results for ``text`` when the caller has them already."""
    if found_secrets is None or pii is None:
        pii_found, secrets_found = detect(text)
        pii = pii_found if pii is None else pii
        found_secrets = secrets_found if found_secrets is None else found_secrets
    if leaks is None:
        leaks = detect_configured(text, secrets)
    spans: list[Labelled] = [(s.start, s.end, f"<SECRET:{s.kind}>") for s in found_secrets]
    for leak in leaks:
        if leak.kind == "configured_secret":
            spans += [(a, b, "<SECRET:configured>") for a, b in leak.spans]
    spans += [(p.start, p.end, f"<{p.kind.upper()}>") for p in pii]
    kept: list[Labelled] = []
    for span in spans:
        if not any(span[0] < k[1] and k[0] < span[1] for k in kept):
            kept.append(span)
    kept.sort()
    return kept


def mask_spans(text: str, spans: list[Labelled]) -> str:
    """``text`` with each ``(start, end, placeholder)`` replaced (spans must not overlap)."""
    parts: list[str] = []
    pos = 0
    for start, end, placeholder in sorted(spans):
        parts += [text[pos:start], placeholder]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def mask_text(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every PII value and secret replaced by its placeholder."""
    if not text:
        return text
    return mask_spans(text, sensitive_spans(text, secrets=secrets))


def mask_excerpt(text: str) -> str:
    """``mask_text(text)`` without the record of recent texts: for short excerpts looked at
    once, which would otherwise push out of it the texts that are still being scanned."""
    if not text:
        return text
    found = sensitive_spans(text, pii=find_pii(text), found_secrets=find_secrets(text), leaks=())
    return mask_spans(text, found)
