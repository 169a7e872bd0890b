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

__all__ = ["mask_spans", "mask_text", "sensitive_spans"]

Labelled = tuple[int, int, str]


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
    if found_secrets is None:
        found_secrets = find_secrets(text)
    if leaks is None:
        leaks = find_configured_leaks(text, secrets=secrets) if secrets else []
    if pii is None:
        pii = find_pii(text)
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
