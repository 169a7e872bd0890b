"""Event-time minute buckets with running window totals, and a cheap clock for one minute of
events; shared by the ``availability`` and ``fallback_rate`` detectors' chunk paths and the
``cost_budget`` burn rates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

from pydantic_core import TzInfo

__all__ = ["HORIZON", "WINDOWS_MIN", "MinuteClock", "Windows"]

#: The windows, in minutes; the last (longest) is how much history is kept.
WINDOWS_MIN: tuple[int, ...] = (5, 30, 60, 360)
HORIZON = WINDOWS_MIN[-1]
_MINUTE = timedelta(minutes=1)
#: Time zones with one fixed offset: comparing two times of the same one compares wall clocks.
_FIXED = (timezone, TzInfo)


class Windows:
    """Calls and failures per event-time minute of the last :data:`HORIZON` minutes, with a
    running total per window of :data:`WINDOWS_MIN` (window ``i`` at head minute ``h`` covers
    minutes ``h - WINDOWS_MIN[i] + 1 .. h``).

    The head minute's bucket is :attr:`top`: a call of the head minute costs one increment
    (``top[0] += 1``, ``top[1] += failed``); the totals of older minutes are kept apart, and
    :attr:`calls` / :attr:`failures` add the two.
    """

    __slots__ = ("_calls", "_failures", "buckets", "head", "top")

    def __init__(self, head: int) -> None:
        self.head = head
        self.top = [0, 0]  # calls, failures of the head minute
        self.buckets: dict[int, list[int]] = {head: self.top}  # minute -> [calls, failures]
        self._calls = [0] * len(WINDOWS_MIN)  # minutes 1 .. length - 1 before the head
        self._failures = [0] * len(WINDOWS_MIN)

    @property
    def calls(self) -> list[int]:
        """Calls per window of :data:`WINDOWS_MIN`."""
        top = self.top[0]
        return [c + top for c in self._calls]

    @property
    def failures(self) -> list[int]:
        top = self.top[1]
        return [f + top for f in self._failures]

    def add(self, minute: int, failed: bool) -> None:
        """Count one call of ``minute`` (at most :attr:`head`)."""
        self.put(minute, 1, failed)

    def put(self, minute: int, calls: int, amount: int) -> None:
        """Count ``calls`` calls and an ``amount`` of ``minute`` (at most :attr:`head`): the
        second total is failures for :meth:`add`, nano-dollars for the cost budgets."""
        age = self.head - minute
        if age == 0:
            self.top[0] += calls
            self.top[1] += amount
            return
        if age >= HORIZON:
            return  # later than any window
        bucket = self.buckets.get(minute)
        if bucket is None:
            bucket = self.buckets[minute] = [0, 0]
        bucket[0] += calls
        bucket[1] += amount
        for i, length in enumerate(WINDOWS_MIN):
            if age < length:
                self._calls[i] += calls
                self._failures[i] += amount

    def roll(self, new_head: int) -> None:
        """Move the windows' end to the later minute ``new_head``."""
        head, top, buckets = self.head, self.top, self.buckets
        self.head, self.top = new_head, [0, 0]
        if new_head - head >= HORIZON:
            buckets.clear()
            self._calls = [0] * len(WINDOWS_MIN)
            self._failures = [0] * len(WINDOWS_MIN)
        else:
            calls, failures = self._calls, self._failures
            if top[0]:  # the old head minute joins the older minutes of every window
                for i in range(len(WINDOWS_MIN)):
                    calls[i] += top[0]
                    failures[i] += top[1]
            else:
                del buckets[head]
            for minute in range(head + 1, new_head + 1):
                for i, length in enumerate(WINDOWS_MIN):
                    bucket = buckets.get(minute - length)
                    if bucket is not None:
                        calls[i] -= bucket[0]
                        failures[i] -= bucket[1]
                buckets.pop(minute - HORIZON, None)
        buckets[new_head] = self.top

    def to_state(self) -> list[list[int]]:
        """The non-empty minutes as ``[minute, calls, failures]``."""
        return [[m, c, f] for m, (c, f) in sorted(self.buckets.items()) if c]

    @classmethod
    def from_state(cls, state: list[list[int]], head: int) -> Windows:
        windows = cls(head)
        for minute, calls, failures in state:
            if minute == head:
                windows.top[0], windows.top[1] = calls, failures
                continue
            windows.buckets[minute] = [calls, failures]
            for i, length in enumerate(WINDOWS_MIN):
                if head - minute < length:
                    windows._calls[i] += calls
                    windows._failures[i] += failures
        return windows


class MinuteClock:
    """The event times of one UTC minute, read without :meth:`datetime.timestamp` (slow with
    pydantic's time zones): for a time ``ts`` with ``lo <= ts < hi`` and ``ts.tzinfo is tz``,
    ``(base + ts.second * 1_000_000 + ts.microsecond) / 1_000_000`` equals ``ts.timestamp()``
    exactly (both divide the integer microseconds since the epoch by 10**6).

    Only for a fixed offset of whole minutes (else :meth:`of` returns None): then the wall
    clock's seconds are UTC's, and comparing two times of the same zone compares wall clocks.
    """

    __slots__ = ("base", "hi", "lo", "minute", "tz")

    def __init__(self, minute: int, tz: tzinfo) -> None:
        self.minute = minute
        self.tz = tz
        self.base = minute * 60_000_000
        self.lo = datetime.fromtimestamp(minute * 60, tz)
        self.hi = self.lo + _MINUTE

    @classmethod
    def of(cls, minute: int, tz: tzinfo | None) -> MinuteClock | None:
        if not isinstance(tz, _FIXED):
            return None
        offset = tz.utcoffset(None)
        if offset is None or offset.total_seconds() % 60:
            return None
        return cls(minute, tz)
