"""The per-message logic every path shares: decode, validate, run detectors, build rows.

A :class:`Processor` is fed records (from a Kafka chunk in the worker, from a file in replay) and
appends what they produce to an :class:`Output`: rows for ClickHouse, dead letters, alerts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from slowleak.models import Alert, DeadLetter, FeedbackEvent, InteractionEvent
from slowleak.streams.core.decode import (
    Rejected,
    SourceRecord,
    dead_letter,
    decode_feedback,
    decode_interaction,
)
from slowleak.streams.core.detectors.join import RecalledCall
from slowleak.streams.core.guardrails.mask import mask_text
from slowleak.streams.core.lifecycle import AlertLifecycle
from slowleak.streams.core.rows import Row, TableBlock, TextPolicy, event_row, feedback_row

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


class Recalling(Protocol):
    """A detector that joins feedback to calls it holds in memory, and can be handed calls
    read before this process started (found again by the worker)."""

    @property
    def recall_horizon(self) -> timedelta: ...

    def wants(self, feedback: FeedbackEvent) -> bool: ...

    def recall(self, calls: Sequence[RecalledCall]) -> None: ...


@dataclass(slots=True)
class Output:
    """What a batch of records produced."""

    events: list[Row] = field(default_factory=list)
    feedback: list[Row] = field(default_factory=list)
    dead_letters: list[tuple[DeadLetter, bytes | None]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: Rows of the ``detector_stats`` table (running statistics at a fixed event-time cadence).
    stats: list[Row] = field(default_factory=list)
    #: Rows of other tables, by table: (columns, rows).
    tables: dict[str, tuple[Sequence[str], list[Row]]] = field(default_factory=dict)
    #: Blocks inserted one per insert, with a deduplication token.
    blocks: list[TableBlock] = field(default_factory=list)

    def add_rows(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        entry = self.tables.get(table)
        if entry is None:
            entry = self.tables[table] = (columns, [])
        entry[1].extend(rows)

    def clear(self) -> None:
        self.stats.clear()
        self.tables.clear()
        self.blocks.clear()
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
    #: Valid calls whose ``event_id`` was seen among the recent ones (a producer's retry, or a
    #: record read again): written again (the table keeps one), not fed to the detectors again.
    duplicates: int = 0
    #: Valid records read again that the stored detector states had seen (``applied_before``):
    #: written again, not fed to the detectors again.
    replayed: int = 0


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
        Time source for ``received_at`` of dead letters and for ``future_tolerance_s``.
    recent_ids
        How many recent ``event_id`` s are remembered (in memory) to feed a call to the detectors
        once when a producer retries it; 0 turns that off. Its row is written again either way.
    text_policies, default_text, secrets
        How each app's prompt and completion texts are stored (``full``, ``masked``, ``hash``,
        ``none``; see :func:`~slowleak.streams.core.rows.event_row`), and its configured
        secrets, masked too. A dead letter keeps raw bytes for ``full`` only (masked ones for
        ``masked``). Detectors always see the full text.
    future_tolerance_s
        Events (and feedback) whose ``ts`` is more than this many seconds ahead of ``clock()``
        are rejected with a reason naming ``ts``, so that a producer's wrong clock cannot close
        event-time windows early. ``None`` accepts any ``ts`` the contract allows.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 1_048_576,
        dlq_max_raw_bytes: int = 262_144,
        detectors: Sequence[Detector | ChunkDetector] = (),
        lifecycle: AlertLifecycle | None = None,
        clock: Callable[[], datetime] = _utcnow,
        future_tolerance_s: float | None = None,
        recent_ids: int = 200_000,
        text_policies: Mapping[str, TextPolicy] | None = None,
        default_text: TextPolicy = "full",
        secrets: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        if dlq_max_raw_bytes < 0:
            raise ValueError("dlq_max_raw_bytes must be 0 or more")
        if recent_ids < 0:
            raise ValueError("recent_ids must be 0 or more")
        self.recent_ids = recent_ids
        self.text_policies = dict(text_policies or {})
        self.default_text: TextPolicy = default_text
        self.secrets = {app: tuple(s) for app, s in (secrets or {}).items()}
        self._all_full = default_text == "full" and all(
            p == "full" for p in self.text_policies.values()
        )
        self._recent: dict[str, None] = {}
        if future_tolerance_s is not None and not future_tolerance_s >= 0:
            raise ValueError("future_tolerance_s must be 0 or more (or None for no limit)")
        self.future_tolerance_s = future_tolerance_s
        self.max_message_bytes = max_message_bytes
        self.dlq_max_raw_bytes = dlq_max_raw_bytes
        self.detectors = tuple(detectors)
        self.lifecycle = lifecycle
        self._per_event = tuple(d for d in detectors if not hasattr(d, "on_interactions"))
        self._per_chunk = tuple(d for d in detectors if hasattr(d, "on_interactions"))
        #: Chunk detectors that take each event's source ``(partition, offset)`` too, to apply
        #: an event once even when it is read again after a crash.
        self._positioned = frozenset(
            id(d) for d in self._per_chunk if getattr(d, "takes_positions", False)
        )
        self._writers = tuple(d for d in detectors if hasattr(d, "write_rows"))
        #: Detectors that join feedback to calls in memory, and can take calls read before
        #: this process started (``wants``, ``recall``, ``recall_horizon``).
        self._recallers: tuple[Recalling, ...] = tuple(
            cast(Recalling, d) for d in detectors if hasattr(d, "recall")
        )
        #: Per partition, the event time of the first call the detectors saw in this process
        #: (since the last rebalance): feedback from a horizon after it on cannot judge a call
        #: read before.
        self._first_call: dict[int, datetime] = {}
        self.clock = clock
        self.stats = ProcessorStats()

    def interactions(
        self, records: Iterable[SourceRecord], out: Output, *, applied_before: int | None = None
    ) -> None:
        """Process records of the events topic; those at offsets below ``applied_before`` are
        in the detectors' stored states already (read again after a crash): their rows are
        written, the detectors do not see them again."""
        max_bytes = self.max_message_bytes
        rows = out.events
        detectors = self._per_event
        valid: list[InteractionEvent] = []
        positions: list[tuple[int, int]] = []
        alerts_before = len(out.alerts)
        horizon = self._horizon()
        recent = self._recent
        for record in records:
            try:
                event = decode_interaction(record.value, max_bytes=max_bytes)
                if horizon is not None and event.ts > horizon:
                    raise self._from_future(event.ts, horizon)
            except Rejected as rejected:
                self._reject(record, rejected, out)
                continue
            if self._all_full:
                rows.append(event_row(event, partition=record.partition, offset=record.offset))
            else:
                rows.append(
                    event_row(
                        event, partition=record.partition, offset=record.offset,
                        text=self.text_policies.get(event.app, self.default_text),
                        secrets=self.secrets.get(event.app, ()),
                    )
                )  # fmt: skip
            self.stats.interactions += 1
            if applied_before is not None and record.offset < applied_before:
                self.stats.replayed += 1
                continue
            if event.event_id in recent:
                self.stats.duplicates += 1
                continue
            if self.recent_ids:
                recent[event.event_id] = None
                if len(recent) > self.recent_ids:
                    del recent[next(iter(recent))]
            for detector in detectors:
                out.alerts.extend(detector.on_interaction(event))
            valid.append(event)
            positions.append((record.partition, record.offset))
        if valid:
            self._first_call.setdefault(positions[0][0], valid[0].ts)
        positioned = self._positioned
        for chunk_detector in self._per_chunk:
            if id(chunk_detector) in positioned:
                found = chunk_detector.on_interactions(valid, positions)  # type: ignore[call-arg]
            else:
                found = chunk_detector.on_interactions(valid)
            out.alerts.extend(found)
        self._stats_rows(out)
        self._notify(out, alerts_before, valid)
        self.stats.alerts += len(out.alerts) - alerts_before

    @property
    def recall_horizon(self) -> timedelta | None:
        """How long after a call feedback may still judge it, for the detectors that join
        feedback in memory (None: none does)."""
        return max((r.recall_horizon for r in self._recallers), default=None)

    def feedback_to_recall(
        self, records: Iterable[SourceRecord], *, applied_before: int | None = None
    ) -> list[tuple[str, str, datetime]]:
        """``(event_id, app, ts)`` of each feedback in ``records`` that judges a call the
        detectors do not know, and may judge one read before this process started or before
        its partition came here (within a horizon of the partition's first call since). The
        worker looks those calls up and passes them to :meth:`feedback` as ``recalled``."""
        if not self._recallers:
            return []
        wanted = []
        for record in records:
            if applied_before is not None and record.offset < applied_before:
                continue
            try:
                fb = decode_feedback(record.value, max_bytes=self.max_message_bytes)
            except Rejected:
                continue  # a dead letter when the chunk is processed
            first = self._first_call.get(record.partition)
            for recaller in self._recallers:
                young = first is None or fb.ts < first + recaller.recall_horizon
                if young and recaller.wants(fb):
                    wanted.append((fb.event_id, fb.app, fb.ts))
                    break
        return wanted

    def feedback(
        self,
        records: Iterable[SourceRecord],
        out: Output,
        *,
        applied_before: int | None = None,
        recalled: Sequence[RecalledCall] = (),
    ) -> None:
        """Process records of the feedback topic (``applied_before`` as for
        :meth:`interactions`); ``recalled`` are calls read before this process started that
        the feedback judges (:meth:`feedback_to_recall`)."""
        alerts_before = len(out.alerts)
        if recalled:
            for recaller in self._recallers:
                recaller.recall(recalled)
        judged: list[FeedbackEvent] = []
        horizon = self._horizon()
        for record in records:
            try:
                fb = decode_feedback(record.value, max_bytes=self.max_message_bytes)
                if horizon is not None and fb.ts > horizon:
                    raise self._from_future(fb.ts, horizon)
            except Rejected as rejected:
                self._reject(record, rejected, out)
                continue
            out.feedback.append(feedback_row(fb, partition=record.partition, offset=record.offset))
            self.stats.feedback += 1
            if applied_before is not None and record.offset < applied_before:
                self.stats.replayed += 1
                continue
            judged.append(fb)
            for detector in self.detectors:
                out.alerts.extend(detector.on_feedback(fb))
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
        for writer in self._writers:
            writer.write_rows(out)

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
        """Drop detectors' cached states (after a rebalance); they reload from their store.
        Partitions may have moved: feedback may judge calls another worker read."""
        self._first_call.clear()
        for detector in (*self.detectors, self.lifecycle):
            forget = getattr(detector, "forget", None)
            if forget is not None:
                forget()

    def _horizon(self) -> datetime | None:
        """The latest ``ts`` accepted now (once per chunk: the check per event is a compare)."""
        if self.future_tolerance_s is None:
            return None
        return self.clock() + timedelta(seconds=self.future_tolerance_s)

    def _from_future(self, ts: datetime, horizon: datetime) -> Rejected:
        tolerance = self.future_tolerance_s
        ahead = (ts - horizon).total_seconds() + (tolerance or 0.0)
        msg = (
            f"{ts.isoformat()} is {ahead:,.0f} s in the future; the tolerance is {tolerance:g} s "
            "(setting future_tolerance_s): fix the producer's clock, and send ts with its offset"
        )
        return Rejected(f"ts: {msg}", [{"type": "ts_in_future", "loc": ("ts",), "msg": msg}])

    def _protect(
        self, record: SourceRecord, raw: bytes, letter: DeadLetter
    ) -> tuple[bytes, DeadLetter]:
        """A dead letter's raw bytes as the app's text policy allows (the app is the Kafka key):
        kept for ``full``, masked for ``masked``, dropped otherwise (``raw_bytes`` stays)."""
        app = record.key.decode("utf-8", "replace") if record.key is not None else ""
        policy = self.text_policies.get(app, self.default_text)
        if policy == "full":
            return raw, letter
        kept = raw[: self.dlq_max_raw_bytes]
        stored = b""
        if policy == "masked":
            text = kept.decode("utf-8", "replace")
            masked = mask_text(text, secrets=self.secrets.get(app, ()))
            # Nothing to mask: the bytes as received (invalid UTF-8 included, for diagnosis).
            stored = kept if masked == text else masked.encode()
        if stored is kept:
            return raw, letter
        update = {"raw_b64": base64.b64encode(stored).decode("ascii"), "raw_truncated": True}
        return stored, letter.model_copy(update=update)

    def _reject(self, record: SourceRecord, rejected: Rejected, out: Output) -> None:
        letter = dead_letter(
            record, rejected, received_at=self.clock(), max_raw_bytes=self.dlq_max_raw_bytes
        )
        raw = record.value
        if not self._all_full and raw:
            raw, letter = self._protect(record, raw, letter)
        out.dead_letters.append((letter, raw))
        self.stats.rejected += 1
