"""The delivery audit: one ClickHouse row per finished delivery, in table ``alert_deliveries``.

Delivery never waits for it: :meth:`DeliveryAudit.record` appends to a bounded buffer, and
:meth:`DeliveryAudit.run` writes small batches from a thread soon after. These rows are a record,
not the queue (Kafka is), so when ClickHouse is down a batch is logged, counted in
:attr:`DeliveryAudit.dropped` and dropped rather than holding anything up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["AUDIT_COLUMNS", "AUDIT_TABLE", "DeliveryAudit", "DeliveryRecord"]

log = logging.getLogger(__name__)

AUDIT_TABLE = "alert_deliveries"
Outcome = Literal["delivered", "failed"]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """How the delivery of one alert transition to one receiver ended."""

    alert_id: str
    sequence: int
    status: str
    kind: str
    app: str
    receiver: str
    delivered_at: datetime
    attempts: int
    outcome: Outcome
    error: str
    ts: datetime


AUDIT_COLUMNS = tuple(DeliveryRecord.__dataclass_fields__)


class DeliveryAudit:
    """Buffers :class:`DeliveryRecord` rows and writes them to ClickHouse in small batches.

    Parameters
    ----------
    client_factory
        Creates the clickhouse-connect client (called in the writer thread at the first write,
        and again after a failure).
    flush_interval_ms
        How long a row waits at most before it is written.
    batch_rows
        Write as soon as this many rows are buffered.
    max_buffered
        Rows kept while a write is slow; beyond it the oldest are dropped (and counted).
    """

    def __init__(
        self,
        *,
        client_factory: Callable[[], Any],
        flush_interval_ms: int = 200,
        batch_rows: int = 100,
        max_buffered: int = 10_000,
    ) -> None:
        if flush_interval_ms < 1 or batch_rows < 1 or max_buffered < batch_rows:
            raise ValueError("need flush_interval_ms >= 1 and 1 <= batch_rows <= max_buffered")
        self.client_factory = client_factory
        self.flush_interval_ms = flush_interval_ms
        self.batch_rows = batch_rows
        self.max_buffered = max_buffered
        self._rows: deque[DeliveryRecord] = deque()
        self._client: Any = None
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self.written = 0
        self.dropped = 0

    def record(self, row: DeliveryRecord) -> None:
        """Queue one row (never blocks, never raises)."""
        if len(self._rows) >= self.max_buffered:
            self._rows.popleft()
            self.dropped += 1
        self._rows.append(row)
        if self._wake is not None and len(self._rows) >= self.batch_rows:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Write batches until ``stop`` is set, then write what is left."""
        self._wake = asyncio.Event()
        interval_s = self.flush_interval_ms / 1000.0
        while not stop.is_set():
            waiters = [asyncio.ensure_future(e.wait()) for e in (self._wake, stop)]
            _, pending = await asyncio.wait(
                waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
            self._wake.clear()
            await self.flush()
        await self.flush()

    async def flush(self) -> int:
        """Write everything buffered now; returns rows written (0 when dropped or empty)."""
        written = 0
        while self._rows:
            batch = [self._rows.popleft() for _ in range(min(self.batch_rows, len(self._rows)))]
            try:
                await asyncio.to_thread(self._insert, batch)
            except Exception as exc:
                self.dropped += len(batch)
                log.warning(
                    "delivery audit rows dropped rows=%d dropped_total=%d error=%s; check "
                    "ClickHouse, and run `slowleak schema apply` if table %s is missing",
                    len(batch),
                    self.dropped,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    AUDIT_TABLE,
                )
                return written
            written += len(batch)
            self.written += len(batch)
        return written

    def _insert(self, batch: list[DeliveryRecord]) -> None:
        with self._lock:
            try:
                if self._client is None:
                    self._client = self.client_factory()
                self._client.insert(
                    AUDIT_TABLE, [astuple(r) for r in batch], column_names=list(AUDIT_COLUMNS)
                )
            except Exception:
                self._close_client()
                raise

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("closing the audit ClickHouse client failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._close_client()
