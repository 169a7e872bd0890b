"""What every receiver shares: the notifier protocol, delivery errors, backoff, HTTP posting.

A notifier sends one :class:`~slowleak.models.Alert` to one receiver. It raises
:class:`RetryableDeliveryError` when trying again later can help (network errors, timeouts, 5xx,
408, 429) and :class:`PermanentDeliveryError` when it cannot (other 4xx: the payload or the
configuration is wrong). The runner decides what to do with each; notifiers never retry.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import orjson

from slowleak.models import Alert

__all__ = [
    "RETRY_AFTER_CAP_S",
    "Backoff",
    "DeliveryError",
    "HttpNotifier",
    "Notifier",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "describe_details",
    "parse_retry_after",
    "rfc3339",
    "runbook_url",
]

#: A ``Retry-After`` longer than this is taken as this (a receiver asking for a day is wrong).
RETRY_AFTER_CAP_S = 600.0
#: HTTP statuses worth retrying besides 5xx.
RETRYABLE_STATUSES = frozenset({408, 429})
#: Characters of a response body kept in an error message.
ERROR_BODY_CHARS = 200


class DeliveryError(Exception):
    """A receiver did not take an alert."""


class RetryableDeliveryError(DeliveryError):
    """Trying again later may work; ``retry_after_s`` is the receiver's own hint, if any."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentDeliveryError(DeliveryError):
    """Trying again will not work: the receiver rejected this alert."""


class Notifier(Protocol):
    """Sends alerts to one receiver."""

    name: str

    async def setup(self) -> None:
        """Create clients (called once, on the event loop that will send)."""

    async def send(self, alert: Alert) -> None:
        """Deliver one alert, or raise a :class:`DeliveryError`."""

    async def close(self) -> None:
        """Release what :meth:`setup` created."""


class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` waits ``U(0, min(max, base * 2**n))``.

    A receiver's ``Retry-After`` is a floor (capped at :data:`RETRY_AFTER_CAP_S`).

    >>> backoff = Backoff(base_s=0.5, max_s=4.0, seed=7)
    >>> [round(backoff.delay(n), 3) for n in range(6)]
    [0.162, 0.151, 1.302, 0.29, 2.144, 1.463]
    >>> backoff.delay(0, retry_after_s=2.0) >= 2.0
    True
    """

    def __init__(self, *, base_s: float = 0.2, max_s: float = 60.0, seed: int | None = None):
        if base_s <= 0:
            raise ValueError("base_s must be positive")
        if max_s < base_s:
            raise ValueError("max_s must be at least base_s")
        self.base_s = base_s
        self.max_s = max_s
        self.seed = seed
        self._rng = random.Random(seed)

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.max_s, self.base_s * float(2 ** min(attempt, 62)))

    def delay(self, attempt: int, *, retry_after_s: float | None = None) -> float:
        wait: float = self._rng.uniform(0.0, self.ceiling(attempt))
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, RETRY_AFTER_CAP_S))
        return wait


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rfc3339(ts: datetime) -> str:
    """``2026-11-25T10:00:00.123Z``: UTC with milliseconds, as Alertmanager and Slack expect."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def runbook_url(base_url: str, kind: str) -> str:
    return f"{base_url.rstrip('/')}/{kind}.md"


def describe_details(details: dict[str, Any]) -> str:
    """``k=v k=v`` when every value is a scalar, else compact JSON; ``""`` when empty."""
    if not details:
        return ""
    if all(isinstance(v, str | int | float | bool) or v is None for v in details.values()):
        return " ".join(f"{k}={_scalar(v)}" for k, v in details.items())
    return orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and (not value or any(c.isspace() or c in '="' for c in value)):
        return orjson.dumps(value).decode()
    return str(value)


class HttpNotifier:
    """A notifier that POSTs JSON; subclasses build the URL, body and headers."""

    def __init__(self, *, name: str, timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def setup(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": "slowleak-delivery"},
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """POST ``body``; returns on 2xx, raises a :class:`DeliveryError` otherwise."""
        if self._session is None:
            await self.setup()
        assert self._session is not None
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json", **headers}
            ) as response:
                if 200 <= response.status < 300:
                    await response.read()
                    return
                text = (await response.text(errors="replace"))[:ERROR_BODY_CHARS]
                message = f"HTTP {response.status} from {url}: {text.strip()!r}"
                if response.status >= 500 or response.status in RETRYABLE_STATUSES:
                    raise RetryableDeliveryError(
                        message,
                        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                    )
                raise PermanentDeliveryError(message)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise RetryableDeliveryError(f"POST {url} failed: {detail}") from exc
