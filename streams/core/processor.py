"""The per-message logic every path shares: decode, validate, run detectors, build rows.

A :class:`Processor` is fed records (from a Kafka chunk in the worker, from a file in replay) and
appends what they produce to an :class:`Output`: rows for ClickHouse, dead letters, alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from slowleak.models import Alert, DeadLetter, FeedbackEvent, InteractionEvent
from slowleak.streams.core.decode import (
    Rejected,
    SourceRecord,
    dead_letter,
    decode_feedback,
    decode_interaction,
)
from slowleak.streams.core.lifecycle import AlertLifecycle
from slowleak.streams.core.rows import Row, event_row, feedback_row

__all__ = ["ChunkDetector", "Detector", "Output", "Processor", "ProcessorStats"]


class Detector(Protocol):
    """Something that watches the stream and decides alerts. Detectors keep per-key state."""

    def on_interaction(self, event: InteractionEvent) -> Iterable[Alert]: ...

    def on_feedback(self, feedback: FeedbackEvent) -> Iterable[Alert]: ...


class ChunkDetector(Protocol):
    """A detector that takes a chunk's valid events at once (to group them by key and update
    its statistics per key in one go). Events of one key keep their order."""

    def on_interactions(self, events: Sequence[InteractionEvent]) -> Iterable[Alert]: ...

    def on_feedback(self, feedback: FeedbackEvent) -> Iterable[Alert]: ...


@dataclass(slots=True)
class Output:
    """What a batch of records produced."""

    events: list[Row] = field(default_factory=list)
    feedback: list[Row] = field(default_factory=list)
    dead_letters: list[tuple[DeadLetter, bytes | None]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: Rows of the ``detector_stats`` table (running statistics at a fixed event-time cadence).
    stats: list[Row] = field(default_factory=list)

    def clear(self) -> None:
        self.stats.clear()
        self.events.clear()
        self.feedback.clear()
        self.dead_letters.clear()
        self.alerts.clear()


@dataclass(slots=True)
class ProcessorStats:
    """Counters since start: every record is exactly one of accepted or rejected."""

    interactions: int = 0
    feedback: int = 0
    rejected: int = 0
    alerts: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Processor:
    """Decode and validate records, feed detectors, and build rows.

    Parameters
    ----------
    max_message_bytes
        Larger messages are rejected with a reason that names the size.
    dlq_max_raw_bytes
        Raw bytes kept in a dead letter.
    detectors
        Called in order for every valid event (or once per chunk with its valid events, for
        those with ``on_interactions``); their alerts are collected. Those with
        ``stats_rows(out)`` append rows of running statistics to ``out.stats`` after a chunk.
    lifecycle
        Turns the detectors' decisions into notifications (identity, repeat, resolve); without
        it, the decisions themselves are the alerts.
    clock
        Time source for ``received_at`` of dead letters.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 1_048_576,
        dlq_max_raw_bytes: int = 262_144,
        detectors: Sequence[Detector | ChunkDetector] = (),
        lifecycle: AlertLifecycle | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        if dlq_max_raw_bytes < 0:
            raise ValueError("dlq_max_raw_bytes must be 0 or more")
        self.max_message_bytes = max_message_bytes
        self.dlq_max_raw_bytes = dlq_max_raw_bytes
        self.detectors = tuple(detectors)
        self.lifecycle = lifecycle
        self._per_event = tuple(d for d in detectors if not hasattr(d, "on_interactions"))
        self._per_chunk = tuple(d for d in detectors if hasattr(d, "on_interactions"))
        self.clock = clock
        self.stats = ProcessorStats()

    def interactions(self, records: Iterable[SourceRecord], out: Output) -> None:
        """Process records of the events topic."""
        max_bytes = self.max_message_bytes
        rows = out.events
        detectors = self._per_event
        valid: list[InteractionEvent] = []
        keep = valid.append if self._per_chunk or self.lifecycle is not None else None
        alerts_before = len(out.alerts)
        for record in records:
            try:
                event = decode_interaction(record.value, max_bytes=max_bytes)
            except Rejected as rejected:
                self._reject(record, rejected, out)
                continue
            rows.append(event_row(event, partition=record.partition, offset=record.offset))
            for detector in detectors:
                out.alerts.extend(detector.on_interaction(event))
            if keep is not None:
                keep(event)
            self.stats.interactions += 1
        for chunk_detector in self._per_chunk:
            out.alerts.extend(chunk_detector.on_interactions(valid))
        self._stats_rows(out)
        self._notify(out, alerts_before, valid)
        self.stats.alerts += len(out.alerts) - alerts_before

    def feedback(self, records: Iterable[SourceRecord], out: Output) -> None:
        """Process records of the feedback topic."""
        alerts_before = len(out.alerts)
        judged: list[FeedbackEvent] = []
        for record in records:
            try:
                fb = decode_feedback(record.value, max_bytes=self.max_message_bytes)
            except Rejected as rejected:
                self._reject(record, rejected, out)
                continue
            judged.append(fb)
            out.feedback.append(feedback_row(fb, partition=record.partition, offset=record.offset))
            for detector in self.detectors:
                out.alerts.extend(detector.on_feedback(fb))
            self.stats.feedback += 1
        self._stats_rows(out)
        self._notify(out, alerts_before, judged)
        self.stats.alerts += len(out.alerts) - alerts_before

    def _notify(
        self, out: Output, first: int, seen: Sequence[InteractionEvent | FeedbackEvent]
    ) -> None:
        """Replace the chunk's decisions by the lifecycle's notifications, and run its timers on
        the latest event time of each app."""
        if self.lifecycle is None:
            return
        clocks = {e.app: e.ts for e in seen}
        out.alerts[first:] = self.lifecycle.process(out.alerts[first:], clocks)

    def _stats_rows(self, out: Output) -> None:
        for detector in self.detectors:
            rows = getattr(detector, "stats_rows", None)
            if rows is not None:
                rows(out.stats)

    def dirty_states(self) -> dict[str, Any]:
        """Detector states changed since the last call, by store key (to persist once per chunk)."""
        states: dict[str, Any] = {}
        for detector in (*self.detectors, self.lifecycle):
            dirty = getattr(detector, "dirty_states", None)
            if dirty is not None:
                states.update(dirty())
        return states

    def detector_stats(self) -> dict[str, Any]:
        """Counters detectors expose (``counters()``), by detector name."""
        out: dict[str, Any] = {}
        for detector in self.detectors:
            counters = getattr(detector, "counters", None)
            if counters is not None:
                out[getattr(detector, "name", type(detector).__name__)] = counters()
        return out

    def forget_states(self) -> None:
        """Drop detectors' cached states (after a rebalance); they reload from their store."""
        for detector in (*self.detectors, self.lifecycle):
            forget = getattr(detector, "forget", None)
            if forget is not None:
                forget()

    def _reject(self, record: SourceRecord, rejected: Rejected, out: Output) -> None:
        letter = dead_letter(
            record, rejected, received_at=self.clock(), max_raw_bytes=self.dlq_max_raw_bytes
        )
        out.dead_letters.append((letter, record.value))
        self.stats.rejected += 1
