"""The ClickHouse sink: rows buffered per table, written in batches by size or age.

Rows are detached with :meth:`~ClickHouseSink.take` (on the event loop) and inserted with
:meth:`~ClickHouseSink.write` (in a thread, so the stream goes on meanwhile). A failed insert
keeps the rows in the batch and raises :class:`SinkUnavailable`; the caller retries with
backoff and, meanwhile, does not acknowledge the input of that batch, so offsets are not
committed past rows that are not durably in ClickHouse and the stream's bounded buffers hold the
rest (backpressure, not loss). The client is created in :meth:`setup` (at the first write, in
the writer thread), not in ``__init__``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slowleak.streams.core.rows import Row, TableBlock

__all__ = ["ClickHouseSink", "FlushResult", "PendingBatch", "SinkUnavailable"]

log = logging.getLogger(__name__)


#: Settings of a block's insert: a block seen before (same token) is dropped by the table and by
#: the materialized views fed from it.
DEDUPLICATED_INSERT = {"deduplicate_blocks_in_dependent_materialized_views": 1}


class SinkUnavailable(Exception):
    """ClickHouse did not take a batch; the rows are kept and the flush can be retried."""


@dataclass(slots=True)
class _TableBuffer:
    columns: Sequence[str]
    rows: list[Row] = field(default_factory=list)


@dataclass(slots=True)
class PendingBatch:
    """Rows detached from the buffers, per table, until they are written."""

    tables: dict[str, tuple[Sequence[str], list[Row]]]
    rows: int
    #: Inserted one per insert, with their deduplication token.
    blocks: list[TableBlock] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.tables and not self.blocks


@dataclass(frozen=True, slots=True)
class FlushResult:
    rows: dict[str, int]
    seconds: float


class ClickHouseSink:
    """Buffers rows per table and inserts them with one ``INSERT`` per table per flush.

    Parameters
    ----------
    client_factory
        Creates the clickhouse-connect client (called once, in :meth:`setup`).
    batch_rows
        :attr:`due` turns true when this many rows are buffered.
    flush_interval_ms
        ...or when the oldest buffered row waited this long.
    """

    def __init__(
        self,
        *,
        client_factory: Callable[[], Any],
        batch_rows: int,
        flush_interval_ms: int,
        idle_flush_ms: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if flush_interval_ms < 1:
            raise ValueError("flush_interval_ms must be at least 1")
        self.client_factory = client_factory
        self.batch_rows = batch_rows
        self.flush_interval_ms = flush_interval_ms
        self.idle_flush_ms = idle_flush_ms
        self._last_add: float = 0.0
        self.clock = clock
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._tables: dict[str, _TableBuffer] = {}
        self._blocks: list[TableBlock] = []
        self._buffered = 0
        self._oldest: float | None = None

    def setup(self) -> Any:
        """The calling thread's client, created on first use (one per writer thread)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.client_factory()
            with self._clients_lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()

    def add(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        if not rows:
            return
        buffer = self._tables.get(table)
        if buffer is None:
            buffer = self._tables[table] = _TableBuffer(columns)
        elif buffer.columns != columns:
            raise ValueError(f"rows for {table} come with different columns")
        buffer.rows.extend(rows)
        self._buffered += len(rows)
        self._last_add = self.clock()
        if self._oldest is None:
            self._oldest = self._last_add

    def add_block(self, block: TableBlock) -> None:
        """Rows to insert on their own with ``insert_deduplication_token = block.token``: sent
        again (after a crash), ClickHouse drops them, also from its materialized views."""
        if not block.rows:
            return
        self._blocks.append(block)
        self._buffered += len(block.rows)
        self._last_add = self.clock()
        if self._oldest is None:
            self._oldest = self._last_add

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return self._buffered

    @property
    def due(self) -> bool:
        """True when a flush should happen now: size bound, age bound, or input gone idle.

        Idle: nothing was added for ``idle_flush_ms`` (the stream caught up), so the rows of a
        burst land at once instead of waiting out the age bound, while a trickle of input still
        makes at most one insert per ``idle_flush_ms``.
        """
        if self._oldest is None:
            return False
        if self._buffered >= self.batch_rows:
            return True
        now = self.clock()
        if (now - self._oldest) * 1000.0 >= self.flush_interval_ms:
            return True
        return self.idle_flush_ms is not None and (
            (now - self._last_add) * 1000.0 >= self.idle_flush_ms
        )

    def take(self) -> PendingBatch:
        """Detach everything buffered as one batch to write; the buffers start empty again."""
        batch = PendingBatch(
            {t: (b.columns, b.rows) for t, b in self._tables.items() if b.rows},
            self._buffered,
            self._blocks,
        )
        self._tables = {}
        self._blocks = []
        self._buffered = 0
        self._oldest = None
        return batch

    def write(self, batch: PendingBatch) -> FlushResult:
        """Insert a batch. Blocking: the worker runs it in a thread while the stream goes on.

        Each table is dropped from the batch once inserted, so a retry after a partial failure
        writes only what is left.
        """
        try:
            client = self.setup()
        except Exception as exc:
            # A writer thread that starts while ClickHouse is down cannot create its client:
            # the same as a failed insert (the rows stay, the caller retries).
            raise SinkUnavailable(f"cannot connect to ClickHouse: {exc}") from exc
        started = self.clock()
        written: dict[str, int] = {}
        for table in list(batch.tables):
            columns, rows = batch.tables[table]
            try:
                client.insert(table, rows, column_names=list(columns))
            except Exception as exc:
                raise SinkUnavailable(
                    f"insert of {len(rows)} rows into {table} failed: {exc}"
                ) from exc
            written[table] = len(rows)
            del batch.tables[table]
        while batch.blocks:
            block = batch.blocks[0]
            try:
                client.insert(
                    block.table, block.rows, column_names=list(block.columns),
                    settings=dict(DEDUPLICATED_INSERT, insert_deduplication_token=block.token),
                )  # fmt: skip
            except Exception as exc:
                raise SinkUnavailable(
                    f"insert of a block of {len(block.rows)} rows into {block.table} failed: {exc}"
                ) from exc
            written[block.table] = written.get(block.table, 0) + len(block.rows)
            batch.blocks.pop(0)
            if block.written is not None:
                block.written(block.token)
        seconds = self.clock() - started
        if written:
            log.info(
                "sink flushed %s seconds=%.3f",
                " ".join(f"{t}={n}" for t, n in written.items()),
                seconds,
            )
        return FlushResult(written, seconds)
