"""``slowleak replay``: the worker's per-event logic over a JSONL file, in order, offline."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

import orjson

from slowleak.models import Settings
from slowleak.streams.core import Detector, Output, Processor, Record
from slowleak.streams.core.cost import CostWindows
from slowleak.streams.core.detectors import settings_detectors
from slowleak.streams.core.lifecycle import AlertLifecycle, lifecycle_policy

__all__ = ["ReplaySummary", "replay_file"]

#: Consecutive lines of one kind are processed together, as the worker processes a chunk.
CHUNK_LINES = 2_000


@dataclass(slots=True)
class ReplaySummary:
    lines: int = 0
    interactions: int = 0
    feedback: int = 0
    rejected: int = 0
    alerts: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return (
            f"replayed {self.lines:,} lines in {self.seconds:.2f} s ({rate:,.0f} lines/s): "
            f"{self.interactions:,} interactions, {self.feedback:,} feedback, "
            f"{self.rejected:,} rejected, {self.alerts:,} alerts"
        )


def _is_feedback(line: bytes) -> bool:
    if b'"feedback"' not in line:  # fast path: the word is not even there
        return False
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("type") == "feedback"


def replay_file(
    handle: IO[bytes],
    *,
    settings: Settings,
    out: IO[str],
    err: IO[str],
    detectors: Sequence[Detector] | None = None,
    rows_out: IO[str] | None = None,
) -> ReplaySummary:
    """Feed each line of ``handle`` to the same :class:`Processor` the worker runs.

    Alerts go to ``out`` as JSON lines; each rejected line goes to ``err`` with its reason.
    ``rows_out`` gets the rows the worker would write besides events, one JSON line each with
    its ``table``: cost windows (every window, the open ones flushed at the end, with the
    values the live run gives) and guardrail findings.
    """
    processor = Processor(
        max_message_bytes=settings.max_message_bytes,
        dlq_max_raw_bytes=0,
        detectors=(settings_detectors(settings) if detectors is None else detectors),
        lifecycle=AlertLifecycle(policy=lifecycle_policy(settings)),
    )
    name = getattr(handle, "name", "stdin")
    summary = ReplaySummary()
    output = Output()
    started = time.perf_counter()

    def run(kind_feedback: bool, chunk: list[Record]) -> None:
        output.clear()
        if kind_feedback:
            processor.feedback(chunk, output)
        else:
            processor.interactions(chunk, output)
        for alert in output.alerts:
            out.write(alert.model_dump_json() + "\n")
        for letter, _ in output.dead_letters:
            err.write(f"{name}:{letter.offset}: rejected: {letter.reason}\n")
        if rows_out is not None:
            _write_rows(rows_out, output)

    chunk: list[Record] = []
    chunk_is_feedback = False
    for lineno, raw in enumerate(_lines(handle), start=1):
        if not raw.strip():
            continue
        summary.lines += 1
        is_feedback = _is_feedback(raw)
        if chunk and (is_feedback != chunk_is_feedback or len(chunk) >= CHUNK_LINES):
            run(chunk_is_feedback, chunk)
            chunk = []
        chunk_is_feedback = is_feedback
        chunk.append(Record(str(name), -1, lineno, None, raw))
    if chunk:
        run(chunk_is_feedback, chunk)
    if rows_out is not None:
        output.clear()
        for detector in processor.detectors:
            if isinstance(detector, CostWindows):
                detector.flush_open()
                detector.write_rows(output)
        _write_rows(rows_out, output)
        rows_out.flush()
    out.flush()
    stats = processor.stats
    summary.interactions = stats.interactions
    summary.feedback = stats.feedback
    summary.rejected = stats.rejected
    summary.alerts = stats.alerts
    summary.seconds = time.perf_counter() - started
    return summary


def _write_rows(rows_out: IO[str], output: Output) -> None:
    for block in output.blocks:
        for row in block.rows:
            line = {"table": block.table, **dict(zip(block.columns, row, strict=True))}
            rows_out.write(orjson.dumps(line).decode() + "\n")
    for table, (columns, rows) in output.tables.items():
        for row in rows:
            line = {"table": table, **dict(zip(columns, row, strict=True))}
            rows_out.write(orjson.dumps(line).decode() + "\n")


def _lines(handle: Iterable[bytes]) -> Iterable[bytes]:
    for line in handle:
        yield line.rstrip(b"\r\n")
