"""Run a challenger over a sample of recorded calls and publish its calls as events.

:func:`run_challenge` calls the challenger with at most ``concurrency`` calls in flight, at most
``rate_per_s`` calls per second (a token bucket), and stops before the spend cap would be passed;
each call becomes an :class:`~slowleak.models.InteractionEvent` with ``env = "test"``,
``variant`` = the challenger's name and the champion call it replays in its attributes
(:func:`~slowleak.streams.core.detectors.challenger.pair_attributes`), judged by the evaluator.
It also feeds each call to its own :class:`ChallengerComparison` (the same code the worker
runs), to show the running difference and, with ``stop_when_decided``, to stop at a verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import ValidationError

from slowleak.models import Alert, InteractionEvent
from slowleak.models.events import Status
from slowleak.streams.challenge.challengers import Challenger, ChallengerResult, is_async
from slowleak.streams.challenge.evaluators import Evaluator
from slowleak.streams.challenge.sampling import ChampionCall, refused
from slowleak.streams.core.detectors._paired_ratio import MEASURES
from slowleak.streams.core.detectors.challenger import (
    GUARDRAIL,
    REFUSAL,
    TEST_ENV,
    ChallengerComparison,
    pair_attributes,
)

__all__ = ["ChallengeReport", "Progress", "TokenBucket", "challenger_event", "run_challenge"]

log = logging.getLogger(__name__)

#: Floating-point slack in the spend cap comparison (dollars).
SPEND_EPSILON_USD = 1e-12


class TokenBucket:
    """At most ``rate_per_s`` acquisitions per second on average, ``burst`` at once."""

    def __init__(
        self, *, rate_per_s: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:  # fmt: skip
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self.clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
                self._at = now
                if self._tokens >= 1.0 - 1e-9:  # float slack: a sleep may land just short
                    self._tokens = max(self._tokens - 1.0, 0.0)
                    return
                await self.sleep((1.0 - self._tokens) / self.rate_per_s)


class Progress:
    """A progress bar with an ETA on a terminal (a line per tenth elsewhere), on stderr."""

    def __init__(
        self, *, total: int, label: str, stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic, every_s: float = 0.2, width: int = 24,
    ) -> None:  # fmt: skip
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.every_s = every_s
        self.width = width
        self._started = clock()
        self._shown_at = -float("inf")
        self._tenth = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, done: int, note: str = "") -> str:
        elapsed = max(self.clock() - self._started, 1e-9)
        rate = done / elapsed
        share = done / self.total if self.total else 1.0
        filled = round(self.width * share)
        eta = "--:--" if rate == 0 else _clock((self.total - done) / rate)
        bar = "#" * filled + "-" * (self.width - filled)
        return (
            f"{self.label} [{bar}] {done:,}/{self.total:,} {100 * share:3.0f}% "
            f"{rate:.1f} calls/s ETA {eta}" + (f"  {note}" if note else "")
        )

    def update(self, done: int, note: str = "", *, final: bool = False) -> None:
        now = self.clock()
        if self._tty:
            if final or now - self._shown_at >= self.every_s:
                self._shown_at = now
                self.stream.write("\r\x1b[2K" + self.line(done, note) + ("\n" if final else ""))
                self.stream.flush()
            return
        tenth = 10 * done // max(self.total, 1)
        if final or tenth > self._tenth:
            self._tenth = tenth
            self.stream.write(self.line(done, note) + "\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def challenger_event(
    call: ChampionCall, result: ChallengerResult, *, name: str, champion_name: str,
    outcome: bool | None, ts: datetime, guardrail_violation: bool | None = None,
) -> InteractionEvent:  # fmt: skip
    """The event of one challenger call replaying ``call``. Its ``event_id`` is a hash of the
    challenger's name and the champion's ``event_id``: replaying a call twice is one event."""
    digest = hashlib.blake2b(f"{name}\x1f{call.event_id}".encode(), digest_size=12).hexdigest()
    attributes = pair_attributes(
        replay_of=call.event_id, champion_name=champion_name, outcome=call.outcome,
        cost_usd=call.cost_usd, latency_ms=call.latency_ms, refusal=call.refusal,
        guardrail_violation=call.guardrail_violation,
    )  # fmt: skip
    if refused(result.status, result.finish_reason, result.output_text):
        attributes[REFUSAL] = "true"
    if guardrail_violation is not None:
        attributes[GUARDRAIL] = "true" if guardrail_violation else "false"
    status: Status = "error"
    if result.status in ("ok", "timeout"):
        status = "ok" if result.status == "ok" else "timeout"
    return InteractionEvent(
        event_id=f"replay-{digest}", ts=ts, app=call.app, model=result.model or name,
        input_tokens=result.input_tokens, output_tokens=result.output_tokens,
        latency_ms=max(result.latency_ms or 0.0, 0.0), status=status,
        env=TEST_ENV, variant=name, intent=call.intent, provider=result.provider,
        input_text=call.input_text, output_text=result.output_text,
        finish_reason=result.finish_reason, cost_usd=result.cost_usd, outcome=outcome,
        error_type=result.error_type, attributes=attributes,
    )  # fmt: skip


@dataclass(slots=True)
class ChallengeReport:
    """What a run did. ``stopped`` is ``done``, ``spend_cap`` or ``decided``."""

    sampled: int
    calls: int = 0
    failed: int = 0
    spend_usd: float = 0.0
    stopped: str = "done"
    #: Calls whose evaluator or guardrail check raised (they have no outcome).
    judge_errors: int = 0
    verdicts: list[Alert] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        text = (
            f"{self.calls:,} of {self.sampled:,} calls replayed ({self.failed:,} failed), "
            f"spend ${self.spend_usd:,.4f}, stopped: {self.stopped}"
        )
        if self.judge_errors:
            text += f", {self.judge_errors:,} not judged (the evaluator raised)"
        # The last verdict of each measure: success first, then cost and latency.
        latest = {a.labels.get("measure", "success"): a for a in self.verdicts}
        for measure in ("success", *MEASURES):
            if measure in latest:
                text += f"\n{latest[measure].summary}"
        return text


@dataclass(slots=True)
class _RunState:
    dearest: float | None  # the reservation per call
    reserved: float = 0.0  # for the calls in flight
    next: int = 0  # index of the next call to start
    stop: bool = False


async def _invoke(challenger: Challenger, call: ChampionCall, timeout_s: float) -> ChallengerResult:
    started = time.monotonic()
    try:
        if is_async(challenger):
            raw = await asyncio.wait_for(challenger(call), timeout_s)  # type: ignore[arg-type]
        else:
            raw = await asyncio.wait_for(asyncio.to_thread(challenger, call), timeout_s)
        result = ChallengerResult.coerce(raw)
    except TimeoutError:
        return ChallengerResult(
            output_text=None, latency_ms=timeout_s * 1000.0, status="timeout", error_type="timeout"
        )
    except Exception as exc:
        result = ChallengerResult(output_text=None, status="error", error_type=type(exc).__name__)
    if result.latency_ms is None:
        elapsed = (time.monotonic() - started) * 1000.0
        result = ChallengerResult(**{**_fields(result), "latency_ms": elapsed})
    return result


def _judge(
    judge: Callable[[ChampionCall, ChallengerResult], bool | None] | None,
    call: ChampionCall,
    result: ChallengerResult,
    report: ChallengeReport,
) -> bool | None:
    """An evaluator's (or guardrail's) answer; None, counted and logged, when it raises."""
    if judge is None:
        return None
    try:
        answer = judge(call, result)
    except Exception as exc:
        report.judge_errors += 1
        if report.judge_errors == 1:
            log.warning("evaluator raised error=%s; those calls have no outcome", _name(exc))
        return None
    return None if answer is None else bool(answer)


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _fields(result: ChallengerResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__slots__}


async def run_challenge(
    calls: Iterable[ChampionCall], challenger: Challenger, *, name: str,
    publish: Callable[[InteractionEvent], object], evaluator: Evaluator | None = None,
    guardrail: Callable[[ChampionCall, ChallengerResult], bool] | None = None,
    champion_name: str | None = None, concurrency: int = 4, rate_per_s: float | None = None,
    burst: int = 1, spend_cap_usd: float | None = None, max_call_cost_usd: float | None = None,
    stop_when_decided: bool = False, margin: float = 0.01, alpha: float = 0.05,
    timeout_s: float = 120.0, progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ChallengeReport:  # fmt: skip
    """Replay ``calls`` through ``challenger``; publish each call's event; report what it did.

    The spend cap: a call starts only if what was spent, plus a reservation for every call in
    flight and for itself, stays within ``spend_cap_usd``. The reservation is
    ``max_call_cost_usd`` when given, else the dearest call so far (the first call runs alone to
    measure it). The cap holds exactly as long as no call costs more than its reservation; a
    call that reports no cost counts as free.
    ``champion_name`` defaults to each call's ``prompt_version``, else its ``variant``.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if spend_cap_usd is not None and spend_cap_usd < 0:
        raise ValueError("spend_cap_usd must be 0 or more")
    pending = list(calls)
    report = ChallengeReport(sampled=len(pending))
    bucket = TokenBucket(rate_per_s=rate_per_s, burst=burst) if rate_per_s else None
    comparison = ChallengerComparison(margin=margin, alpha=alpha, min_pairs=1)
    state = _RunState(dearest=max_call_cost_usd)
    first_done = asyncio.Event()
    if max_call_cost_usd is not None:
        first_done.set()

    def reserve() -> float | None:
        """The reservation for one more call, or None when the cap does not allow it."""
        amount = state.dearest or 0.0
        if spend_cap_usd is None:
            return amount
        if state.dearest is None and spend_cap_usd <= 0:
            return None  # nothing measured and nothing to spend
        if report.spend_usd + state.reserved + amount > spend_cap_usd + SPEND_EPSILON_USD:
            return None
        return amount

    async def worker(index: int) -> None:
        if index > 0:
            await first_done.wait()  # the first call alone measures the cost of a call
        while not state.stop and state.next < len(pending):
            amount = reserve()
            if amount is None:
                report.stopped = "spend_cap"
                state.stop = True
                break
            call = pending[state.next]
            state.next += 1
            state.reserved += amount
            try:
                if bucket is not None:
                    await bucket.acquire()
                result = await _invoke(challenger, call, timeout_s)
            finally:
                state.reserved -= amount
            _record(call, result)
            first_done.set()
        first_done.set()

    def _record(call: ChampionCall, result: ChallengerResult) -> None:
        cost = result.cost_usd or 0.0
        report.spend_usd += cost
        state.dearest = max(state.dearest or 0.0, cost)
        report.calls += 1
        ok = result.status == "ok"
        report.failed += not ok
        outcome = _judge(evaluator, call, result, report) if ok else False
        violation = _judge(guardrail, call, result, report) if ok else None
        try:
            event = challenger_event(
                call, result, name=name, outcome=outcome, ts=clock(),
                champion_name=champion_name or call.prompt_version or call.variant,
                guardrail_violation=violation,
            )  # fmt: skip
        except ValidationError as exc:  # e.g. negative token counts: the challenger's bug
            report.failed += ok
            invalid = ChallengerResult(output_text=None, status="error", cost_usd=result.cost_usd,
                                       error_type="InvalidResult", model=result.model)  # fmt: skip
            log.warning("challenger result invalid name=%s error=%s", name, exc.errors()[0]["msg"])
            event = challenger_event(
                call, invalid, name=name, outcome=False, ts=clock(),
                champion_name=champion_name or call.prompt_version or call.variant,
            )  # fmt: skip
        publish(event)
        found = comparison.on_interactions([event])
        report.verdicts += found
        if stop_when_decided and any(
            a.labels["measure"] == "success" and a.labels["verdict"] in ("better", "worse")
            for a in found
        ):
            report.stopped = "decided"
            state.stop = True
        if progress is not None:
            progress.update(report.calls, _note(comparison, report, spend_cap_usd))

    try:
        await asyncio.gather(*(worker(i) for i in range(min(concurrency, max(len(pending), 1)))))
    finally:
        close = getattr(challenger, "aclose", None)
        if close is not None:
            await close()
    if progress is not None:
        progress.update(report.calls, _note(comparison, report, spend_cap_usd), final=True)
    for found in comparison.comparisons().values():
        report.numbers = found.summary_numbers()
    return report


def _note(comparison: ChallengerComparison, report: ChallengeReport, cap: float | None) -> str:
    spend = f"${report.spend_usd:,.2f}" + (f"/${cap:,.2f}" if cap is not None else "")
    objects = list(comparison.comparisons().values())
    if not objects or not objects[0].cs.n:
        return spend
    cs = objects[0].cs
    return (
        f"{spend}  Δ {100 * cs.mean:+.1f} pts [{100 * cs.lower:+.1f}, {100 * cs.upper:+.1f}] "
        f"on {cs.n:,} pairs"
    )
