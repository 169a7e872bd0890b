"""Join outcomes that arrive later (:class:`~slowleak.models.FeedbackEvent`) to their call.

Feedback is keyed by ``app`` like the calls, so both land on the same partition and worker. The
join keeps, in memory, the calls without an outcome of the last ``horizon`` (event time) and at
most ``max_calls`` of them; and feedback that came before its call (the two topics are read
concurrently), at most ``max_early`` of it, for the same horizon. Each call takes one outcome:
a second judgement of the same call is counted, not fed twice.

Calls read before the worker started (or before their partition came to it) are not in memory:
their feedback names calls the join does not know. The worker then looks them up in ClickHouse
(``slowleak.streams.recall``) and hands them over as :class:`RecalledCall` before the feedback
is processed, so a restart or a rebalance loses no outcome of the last hour.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slowleak.models import FeedbackEvent

__all__ = ["JOIN_HORIZON", "JoinStats", "OutcomeJoin", "RecalledCall"]

#: How long after a call its outcome is still joined (the default of ``OutcomeJoin.horizon``).
JOIN_HORIZON = timedelta(hours=1)


@dataclass(slots=True)
class JoinStats:
    """Counters since start. Each feedback is joined (at once, or later when its call comes),
    a duplicate, or expired early (its call never came); each call without an outcome is
    joined, expired (no outcome within the horizon) or evicted (over ``max_calls``)."""

    joined: int = 0
    early: int = 0
    duplicate: int = 0
    expired_calls: int = 0
    evicted_calls: int = 0
    expired_early: int = 0
    recalled: int = 0  # calls read before the start, found again for their feedback


@dataclass(frozen=True, slots=True)
class RecalledCall:
    """What the join needs of a call read before the worker started: its key and intent."""

    event_id: str
    app: str
    env: str
    variant: str
    model: str
    intent: str | None
    ts: datetime

    @property
    def key(self) -> str:
        return f"{self.app}|{self.env}|{self.variant}|{self.model}"


@dataclass(slots=True)
class OutcomeJoin:
    """``event_id`` -> key and intent of the call, for calls whose outcome is not known yet."""

    horizon: timedelta = JOIN_HORIZON
    max_calls: int = 500_000
    max_early: int = 50_000
    stats: JoinStats = field(default_factory=JoinStats)
    _calls: OrderedDict[str, tuple[str, datetime, str | None]] = field(default_factory=OrderedDict)
    _early: OrderedDict[str, FeedbackEvent] = field(default_factory=OrderedDict)
    _done: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def expect(
        self, event_id: str, key: str, ts: datetime, intent: str | None = None
    ) -> FeedbackEvent | None:
        """Remember a call without an outcome; the feedback that came before it, if any."""
        early = self._early.pop(event_id, None)
        if early is not None:
            self.stats.joined += 1
            self._finish(event_id)
            return early
        self._calls[event_id] = (key, ts, intent)
        self._expire(ts)
        while len(self._calls) > self.max_calls:
            self._calls.popitem(last=False)
            self.stats.evicted_calls += 1
        return None

    def knows(self, event_id: str) -> bool:
        """Whether ``event_id`` is a call waiting for its outcome, one judged already, or one
        whose feedback came first and waits for it."""
        return event_id in self._calls or event_id in self._done or event_id in self._early

    def match(self, feedback: FeedbackEvent) -> tuple[str, str | None] | None:
        """The key and intent of the call ``feedback`` judges, or ``None`` (kept as early, or
        counted)."""
        found = self._calls.pop(feedback.event_id, None)
        if found is not None:
            self.stats.joined += 1
            self._finish(feedback.event_id)
            return found[0], found[2]
        if feedback.event_id in self._done:
            self.stats.duplicate += 1
            return None
        # Not seen yet (or older than the horizon, or evicted): wait for the call a while.
        self.stats.early += 1
        self._early[feedback.event_id] = feedback
        while len(self._early) > self.max_early:
            self._early.popitem(last=False)
            self.stats.expired_early += 1
        return None

    def _finish(self, event_id: str) -> None:
        self._done[event_id] = None
        while len(self._done) > self.max_calls:
            self._done.popitem(last=False)

    def _expire(self, now: datetime) -> None:
        limit = now - self.horizon
        calls = self._calls
        while calls:
            oldest = next(iter(calls.values()))
            if oldest[1] >= limit:
                break
            calls.popitem(last=False)
            self.stats.expired_calls += 1
        early = self._early
        while early:
            first = next(iter(early.values()))
            if first.ts >= limit:
                break
            early.popitem(last=False)
            self.stats.expired_early += 1
