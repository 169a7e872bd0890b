"""What a guardrail detector reports: a :class:`Finding` per problem found in one event's text.

A finding never carries raw sensitive text: ``evidence`` is a short excerpt around the first span
with every PII value and secret in it replaced by a typed placeholder (see
:func:`~slowleak.streams.core.guardrails.mask.mask_text`), and ``spans`` are character offsets
into the field named by ``field``, so the stored event text can be highlighted without the finding
repeating it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DETECTORS",
    "SEVERITIES",
    "Detector",
    "Finding",
    "Severity",
    "Span",
    "merged_spans",
    "severity_for",
]

Detector = Literal["prompt_injection", "pii_leak", "secret_leak", "off_task"]
Severity = Literal["low", "medium", "high", "critical"]
#: ``(start, end)`` character offsets, end exclusive, into the scanned field.
Span = tuple[int, int]

DETECTORS: tuple[Detector, ...] = ("prompt_injection", "pii_leak", "secret_leak", "off_task")
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by one detector in one field of one event.

    ``kind`` says what was found within the detector (``email``, ``aws_access_key``,
    ``jailbreak``, ``configured_secret``, ``code``...); ``score`` is in [0, 1].
    """

    detector: Detector
    kind: str
    score: float
    severity: Severity
    field: Literal["input_text", "output_text"]
    spans: tuple[Span, ...] = ()
    evidence: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        for start, end in self.spans:
            if not 0 <= start <= end:
                raise ValueError(f"span ({start}, {end}) must satisfy 0 <= start <= end")


def severity_for(score: float, *, high: float = 0.9, critical: float | None = None) -> Severity:
    """Map a score to a severity: ``critical`` above ``critical`` (when given), ``high`` above
    ``high``, ``medium`` above the midpoint between 0.5 and ``high``, else ``low``."""
    if critical is not None and score >= critical:
        return "critical"
    if score >= high:
        return "high"
    if score >= (0.5 + high) / 2:
        return "medium"
    return "low"


def merged_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    """``spans`` sorted, with those that overlap or touch joined.

    >>> merged_spans([(11, 32), (0, 32), (40, 50), (50, 55)])
    ((0, 32), (40, 55))
    """
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)
