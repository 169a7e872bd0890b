"""Find, in ClickHouse, the calls that feedback judges when the worker read them before it started.

The feedback join is in memory (``slowleak.streams.core.detectors.join``): after a restart or a
rebalance, feedback for a call read before names a call the worker does not know. Every call
the worker read is a row of ``events`` (a chunk is acknowledged only once its rows are written),
so the worker looks those calls up there, a chunk of feedback at a time, and hands them to the
processor before the chunk (``Processor.feedback_to_recall`` says which, only in the first
hour after a partition's first call, and only for calls the join does not know).

Calls that have an outcome of their own, or a feedback row already (judged before the start:
a second judgement is not fed again), are not returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slowleak.streams.core.detectors.join import RecalledCall

__all__ = ["CallRecall", "RecallStats"]

logger = logging.getLogger(__name__)

#: Event ids per query (the ``IN`` list).
MAX_IDS = 10_000

_QUERY = """
SELECT event_id, app, env, variant, model, intent, ts
FROM events
WHERE app IN {apps:Array(String)}
  AND ts >= {since:DateTime64(3, 'UTC')}
  AND event_id IN {ids:Array(String)}
  AND outcome IS NULL
  AND event_id NOT IN (
      SELECT event_id FROM feedback
      WHERE app IN {apps:Array(String)} AND event_id IN {ids:Array(String)}
  )
LIMIT 1 BY event_id
"""


@dataclass(slots=True)
class RecallStats:
    """Counters since start, for the stats page."""

    lookups: int = 0
    asked: int = 0
    found: int = 0
    failed: int = 0


class CallRecall:
    """Looks calls up by event id; ``client_factory`` makes a clickhouse-connect client (made
    on first use, kept)."""

    def __init__(self, client_factory: Callable[[], Any], *, horizon: timedelta) -> None:
        self.client_factory = client_factory
        self.horizon = horizon
        self.stats = RecallStats()
        self._client: Any = None

    def lookup(self, wanted: Sequence[tuple[str, str, datetime]]) -> list[RecalledCall]:
        """The calls of ``wanted`` (``(event_id, app, feedback ts)``, from
        ``Processor.feedback_to_recall``) found in ``events`` within ``horizon`` before their
        feedback. Raises what the client raises: the caller decides what a failure costs."""
        found: list[RecalledCall] = []
        for start in range(0, len(wanted), MAX_IDS):
            part = wanted[start : start + MAX_IDS]
            self.stats.lookups += 1
            self.stats.asked += len(part)
            parameters = {
                "apps": sorted({app for _, app, _ in part}),
                "since": min(ts for _, _, ts in part) - self.horizon,
                "ids": [event_id for event_id, _, _ in part],
            }
            try:
                if self._client is None:
                    self._client = self.client_factory()
                rows = self._client.query(_QUERY, parameters=parameters).result_rows
            except Exception:
                self.stats.failed += 1
                self._client = None  # a new connection next time
                raise
            found += [RecalledCall(*row) for row in rows]
        self.stats.found += len(found)
        return found
