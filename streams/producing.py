"""A producer whose ``flush()`` returns only once every buffered message was handed over and sent.

faust commits a partition's offsets after ``await app.producer.flush()``, so that the table
changelog records written while processing those offsets reach Kafka first: state and offsets
then move together, and a crash restores state that matches the committed position. But
faust's ``ProducerBuffer.flush()`` gives up as soon as no message was sent for 0.1 s, with
messages still in the buffer (a busy event loop, or a broker slow to take a batch, is enough).
The commit then went ahead of the state: killed at that moment, a worker restored window state
older than its committed offsets, and the calls in between were never counted again.

:class:`DurableFlushProducer` keeps waiting while messages are buffered or being handed to the
client, then waits for the client's own flush (every batch acknowledged). A broker that does
not answer therefore holds the commit back, which is what a commit must do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport import producer as faust_producer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import FutureMessage

__all__ = ["DurableFlushBuffer", "DurableFlushProducer"]

#: How long one wait for a message to be sent lasts before the buffer is looked at again.
POLL_S = 0.1
#: How often a flush that keeps waiting says so.
WARN_EVERY_S = 30.0

log = logging.getLogger(__name__)


class DurableFlushBuffer(faust_producer.ProducerBuffer):
    """faust's producer buffer, whose :meth:`flush` waits until it is empty and idle."""

    def __post_init__(self) -> None:
        super().__post_init__()
        #: Messages taken off the queue whose hand-over to the client has not returned yet.
        self.sending = 0

    async def _send_pending(self, fut: FutureMessage) -> None:
        self.sending += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.sending -= 1

    async def flush(self) -> None:
        """Return once no message is buffered or being handed to the client.

        Logs a warning every :data:`WARN_EVERY_S` while it waits: offsets are not committed
        meanwhile, so consumer lag grows until the broker takes the records.
        """
        loop = asyncio.get_running_loop()
        started = warned = loop.time()
        while self.size or self.sending:
            if self.state != "running":
                # Stopping: the task that drains the buffer may be gone; faust's own rule
                # (raise if messages are left) applies.
                await super().flush()
                return
            now = loop.time()
            if now - warned >= WARN_EVERY_S:
                warned = now
                log.warning(
                    "commit waiting %.0f s for %d changelog records to reach Kafka "
                    "(broker unreachable or slow?); offsets are committed once they do",
                    now - started, self.size + self.sending,
                )  # fmt: skip
            self.message_sent.clear()
            try:
                await asyncio.wait_for(self.message_sent.wait(), timeout=POLL_S)
            except TimeoutError:
                continue


class DurableFlushProducer(faust_aiokafka.Producer):
    """The aiokafka producer with :class:`DurableFlushBuffer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.threaded_producer is None:
            buffer = DurableFlushBuffer(loop=self.loop, beacon=self.beacon)
            buffer.app = self.app
            self.buffer = buffer
