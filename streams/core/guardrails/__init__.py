"""Guardrails: per-event scans for prompt injection, PII, secrets and off-task answers.

Pure code (no broker or database client), shared by the faust agents and ``slowleak replay``:
build one :class:`Scanner` with the apps' :class:`AppProfile` s, call :meth:`Scanner.scan` per
:class:`~slowleak.models.InteractionEvent`, store each finding with :func:`finding_row`.
:func:`mask_text` is the masking used for evidence, for other stored text to use as well.
"""

from slowleak.streams.core.guardrails.findings import DETECTORS, SEVERITIES, Finding
from slowleak.streams.core.guardrails.mask import mask_text
from slowleak.streams.core.guardrails.profile import AppProfile
from slowleak.streams.core.guardrails.scanner import GUARDRAIL_FINDING_COLUMNS, Scanner, finding_row

__all__ = [
    "DETECTORS",
    "GUARDRAIL_FINDING_COLUMNS",
    "SEVERITIES",
    "AppProfile",
    "Finding",
    "Scanner",
    "finding_row",
    "mask_text",
]
