"""``slowleak guard``: the guardrail scan of each event of a JSONL file, one JSON line per event.

So that anyone can score the detectors on their own labelled data: the same
:class:`~slowleak.streams.core.guardrails.Scanner` (and app profiles from the settings) the worker
runs, with no broker and no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

import orjson

from slowleak.models import Settings
from slowleak.streams.core.decode import Rejected, decode_interaction
from slowleak.streams.core.detectors import guardrail_profiles
from slowleak.streams.core.guardrails import Scanner

__all__ = ["GuardSummary", "guard_file"]


@dataclass(slots=True)
class GuardSummary:
    events: int = 0
    flagged: int = 0
    rejected: int = 0

    def describe(self) -> str:
        events = f"{self.events:,} event{'' if self.events == 1 else 's'}"
        lines = f"{self.rejected:,} line{'' if self.rejected == 1 else 's'}"
        return f"guard: {events} scanned, {self.flagged:,} with findings, {lines} rejected"


def guard_file(
    lines: Iterable[bytes], *, settings: Settings, out: IO[str], err: IO[str], name: str = "stdin"
) -> GuardSummary:
    """Scan each interaction event of ``lines``; write ``{"event_id", "violations"}`` lines."""
    scanner = Scanner(
        guardrail_profiles(settings), injection_threshold=settings.injection_threshold
    )
    summary = GuardSummary()
    for lineno, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            event = decode_interaction(raw, max_bytes=settings.max_message_bytes)
        except Rejected as rejected:
            summary.rejected += 1
            err.write(f"{name}:{lineno}: rejected: {rejected.reason}\n")
            continue
        summary.events += 1
        findings = scanner.scan(event)
        summary.flagged += bool(findings)
        violations = [
            {
                "detector": f.detector, "kind": f.kind, "score": round(f.score, 4),
                "severity": f.severity, "field": f.field, "spans": [list(s) for s in f.spans],
                "evidence": f.evidence,
            }
            for f in findings
        ]  # fmt: skip
        out.write(orjson.dumps({"event_id": event.event_id, "violations": violations}).decode())
        out.write("\n")
    out.flush()
    return summary
