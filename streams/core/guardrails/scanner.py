"""One call per event: every guardrail detector on an :class:`InteractionEvent`, and the row
each finding becomes in ClickHouse table ``guardrail_findings`` (migration 0009).

The scanner holds no state across events, so the faust agent and ``slowleak replay`` produce the
same findings for the same events.

>>> from datetime import UTC, datetime
>>> from slowleak.models import InteractionEvent
>>> event = InteractionEvent(
...     event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), app="shop", model="m",
...     input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
...     input_text="Where is my order?", output_text="Card on file: 4539 1488 0343 6467.")
>>> [(f.detector, f.kind, f.spans, f.evidence) for f in Scanner().scan(event)]
[('pii_leak', 'card', ((14, 33),), 'Card on file: <CARD>.')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Literal

from slowleak.models import InteractionEvent
from slowleak.streams.core.guardrails.configured import ConfiguredLeak, find_configured_leaks
from slowleak.streams.core.guardrails.findings import Finding, Severity, Span
from slowleak.streams.core.guardrails.injection import InjectionModel, PromptInjectionDetector
from slowleak.streams.core.guardrails.mask import (
    Labelled,
    detect,
    detect_configured,
    mask_excerpt,
    mask_spans,
    sensitive_spans,
)
from slowleak.streams.core.guardrails.off_task import OffTaskDetector
from slowleak.streams.core.guardrails.pii import PiiMatch
from slowleak.streams.core.guardrails.profile import AppProfile
from slowleak.streams.core.guardrails.secrets import SecretMatch

__all__ = ["FOLLOWED", "FOLLOWED_KINDS", "GUARDRAIL_FINDING_COLUMNS", "Scanner", "finding_row"]

#: Column order of :func:`finding_row`, as in migration ``0009_create_guardrail_findings.sql``.
GUARDRAIL_FINDING_COLUMNS: tuple[str, ...] = (
    "ts",
    "event_id",
    "app",
    "env",
    "model",
    "variant",
    "detector",
    "field",
    "kind",
    "score",
    "severity",
    "spans",
    "evidence",
)
#: Characters of context kept either side of a span in ``evidence``.
EVIDENCE_CONTEXT = 40
#: Longest ``evidence`` string.
EVIDENCE_MAX = 240

_PII_SCORE: dict[str, tuple[float, Severity]] = {
    "card": (0.95, "high"),
    "iban": (0.95, "high"),
    "ssn": (0.95, "high"),
    "email": (0.9, "medium"),
    "phone": (0.8, "medium"),
    "id_number": (0.85, "high"),
    "ip_address": (0.6, "low"),
    "street_address": (0.6, "low"),
    "person": (0.5, "low"),
}
_NO_PROFILES: Mapping[str, AppProfile] = MappingProxyType({})
Field = Literal["input_text", "output_text"]


def _evidence(text: str, spans: tuple[Span, ...], masked: list[Labelled]) -> str:
    """The masked context around the first span: every sensitive value that touches the excerpt
    is replaced whole, then the excerpt is masked again on its own."""
    start, end = spans[0] if spans else (0, 0)
    lo, hi = max(0, start - EVIDENCE_CONTEXT), min(len(text), end + EVIDENCE_CONTEXT)
    # Whole words at both ends (the span itself is never cut), so that the excerpt reads.
    if lo > 0 and not text[lo - 1].isspace():
        space = text.find(" ", lo, start)
        lo = space + 1 if space >= 0 else lo
    if hi < len(text) and not text[hi].isspace():
        space = text.rfind(" ", end, hi)
        hi = space if space >= 0 else hi
    for s, e, _ in masked:  # widen to whole values, so no fragment of one is left outside a tag
        if s < hi and lo < e:
            lo, hi = min(lo, s), max(hi, e)
    inside = [(s - lo, e - lo, tag) for s, e, tag in masked if lo <= s and e <= hi]
    excerpt = mask_excerpt(mask_spans(text[lo:hi], inside))
    excerpt = " ".join(excerpt.split())
    if len(excerpt) > EVIDENCE_MAX:
        excerpt = excerpt[: EVIDENCE_MAX - 1] + "…"
    elif hi < len(text):
        excerpt += " …"
    return "… " + excerpt if lo > 0 else excerpt


class Scanner:
    """Runs ``prompt_injection`` on the input and ``pii_leak``, ``secret_leak`` and ``off_task``
    on the output of each event; ``profiles`` by app name add configured secrets, the system
    prompt, the off-task checks and an app's own injection threshold (``injection_threshold``
    is every other app's). ``scan_input_pii`` also reports PII in the user's input. An answer
    off task (program code, an intent not allowed) to an input flagged as a prompt injection is
    an injection the model followed: that ``off_task`` finding is ``critical``, and its evidence
    starts with :data:`FOLLOWED`."""

    def __init__(
        self,
        profiles: Mapping[str, AppProfile] = _NO_PROFILES,
        *,
        injection_model: InjectionModel | None = None,
        injection_threshold: float | None = None,
        scan_input_pii: bool = False,
    ) -> None:
        self.profiles = profiles
        self.injection_model = injection_model
        self.injection_threshold = injection_threshold
        self.scan_input_pii = scan_input_pii
        self._reset()

    def _reset(self) -> None:
        self._injection = PromptInjectionDetector(
            self.injection_model, threshold=self.injection_threshold
        )
        self._off_task = {app: OffTaskDetector(p) for app, p in self.profiles.items()}

    def scan(self, event: InteractionEvent) -> list[Finding]:
        """Every finding for ``event``: injection, then PII, secrets and off-task on the output."""
        profile = self.profiles.get(event.app)
        secrets = profile.secrets if profile is not None else ()
        findings: list[Finding] = []
        source = event.input_text or ""
        if source:
            threshold = profile.injection_threshold if profile is not None else None
            hit = self._injection.scan(source, threshold=threshold)
            pii = detect(source)[0] if self.scan_input_pii else []
            if hit is not None or pii:
                masked = sensitive_spans(source, secrets=secrets, pii=pii or None)
                if hit is not None:
                    findings.append(_with_evidence(hit, source, masked))
                findings += _pii_findings(source, "input_text", pii, masked)
        answer = event.output_text or ""
        if answer:
            pii, found = detect(answer)  # found once if the worker masked the answer already
            leaks = detect_configured(answer, secrets)  # found once if masked already
            if profile is not None and profile.system_prompt:
                leaks = leaks + find_configured_leaks(answer, system_prompt=profile.system_prompt)
            if pii or found or leaks:
                masked = sensitive_spans(
                    answer, secrets=secrets, pii=pii, found_secrets=found, leaks=leaks
                )
                findings += _pii_findings(answer, "output_text", pii, masked)
                findings += _secret_findings(answer, found, leaks, masked)
        if profile is not None:
            off_task = self._off_task.get(event.app)
            if off_task is None:  # an app added to ``profiles`` after the scanner was built
                off_task = self._off_task[event.app] = OffTaskDetector(profile)
            off = off_task.scan(answer, intent=event.intent)
            if off and any(f.detector == "prompt_injection" for f in findings):
                off = [_followed(f) if f.kind in FOLLOWED_KINDS else f for f in off]
            findings += off
        return findings


#: ``off_task`` kinds that, in an answer to an input flagged as a prompt injection, say the
#: model followed it (a food-ordering bot that writes the program it was talked into).
#: ``topic`` (lexical, weak) is not one of them.
FOLLOWED_KINDS = frozenset({"code", "intent"})
#: How ``evidence`` starts for such a finding.
FOLLOWED = "after a prompt injection in the input: "


def _followed(finding: Finding) -> Finding:
    """``finding`` (off task) as the answer to an injection: critical, and said so."""
    return replace(finding, severity="critical", evidence=FOLLOWED + finding.evidence)


def _with_evidence(finding: Finding, text: str, masked: list[Labelled]) -> Finding:
    return Finding(
        detector=finding.detector,
        kind=finding.kind,
        score=finding.score,
        severity=finding.severity,
        field=finding.field,
        spans=finding.spans,
        evidence=_evidence(text, finding.spans, masked),
    )


def _pii_findings(
    text: str, field: Field, matches: list[PiiMatch], masked: list[Labelled]
) -> list[Finding]:
    by_kind: dict[str, list[Span]] = {}
    for m in matches:
        by_kind.setdefault(m.kind, []).append((m.start, m.end))
    out = []
    for kind, spans in by_kind.items():
        score, severity = _PII_SCORE[kind]
        span_t = tuple(spans)
        evidence = _evidence(text, span_t, masked)
        out.append(Finding("pii_leak", kind, score, severity, field, span_t, evidence))
    return out


def _secret_findings(
    text: str, matches: list[SecretMatch], leaks: list[ConfiguredLeak], masked: list[Labelled]
) -> list[Finding]:
    by_kind: dict[str, tuple[float, list[Span]]] = {}
    for m in matches:
        score, spans = by_kind.get(m.kind, (0.0, []))
        by_kind[m.kind] = (max(score, m.score), [*spans, (m.start, m.end)])
    out = []
    for kind, (score, spans) in by_kind.items():
        severity: Severity = "critical" if score >= 1.0 else "high"
        span_t = tuple(spans)
        evidence = _evidence(text, span_t, masked)
        out.append(Finding("secret_leak", kind, score, severity, "output_text", span_t, evidence))
    for leak in leaks:
        severity = "critical" if leak.kind == "configured_secret" and leak.score >= 0.85 else "high"
        what = "configured secret" if leak.kind == "configured_secret" else "system prompt"
        evidence = f"{what} leaked ({leak.how})"
        out.append(
            Finding(
                "secret_leak", leak.kind, leak.score, severity, "output_text", leak.spans, evidence
            )
        )
    return out


def finding_row(event: InteractionEvent, finding: Finding) -> tuple[Any, ...]:
    """The ``guardrail_findings`` row of one finding, in :data:`GUARDRAIL_FINDING_COLUMNS` order."""
    return (
        event.ts,
        event.event_id,
        event.app,
        event.env,
        event.model,
        event.variant,
        finding.detector,
        finding.field,
        finding.kind,
        float(finding.score),
        finding.severity,
        [(int(s), int(e)) for s, e in finding.spans],
        finding.evidence,
    )
