"""A small local HTTP receiver for the delivery tests: records requests, answers as told."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web

from slowleak.streams.localstack import free_port


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Recorder:
    """An aiohttp server on 127.0.0.1 that records every request.

    ``answers`` are (status, headers, body) returned in order, one per request; once they run
    out it answers 200.
    """

    port: int = field(default_factory=free_port)
    answers: deque[tuple[int, dict[str, str], str]] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(time.monotonic(), request.path, dict(request.headers), body))
        status, headers, text = self.answers.popleft() if self.answers else (200, {}, "ok")
        return web.Response(status=status, headers=headers, text=text)

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"got {len(self.received)} of {count} requests"
            await asyncio.sleep(0.01)
        return self.received
