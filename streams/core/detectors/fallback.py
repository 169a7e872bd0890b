"""``fallback_rate``: the share of an app's calls served by a fallback model goes up.

Per app x env, the indicator "this call has ``fallback_from`` set" runs through a
:class:`~slowleak.streams.core.stats.BernoulliDrift` (direction ``"up"``). When it fires, the
alert says what the fallback costs: the fallback model's success rate (known ``outcome``) and
cost per call while serving as a fallback, against the primary's on its own calls.

The reference share of fallbacks is usually 0, where ``BernoulliDrift`` is blind: its reference
is ``(fallbacks in the warm-up + 0.5) / (warmup + 1)``, 5e-5 with the default 10,000 warm-up
and no fallback, and its bank only runs members whose log-odds shift (at most 1.6, i.e. the rate
times ~5) the warm-up could tell from its own error, so at 5e-5 the bank is empty and nothing,
not even 100% fallbacks, is ever detected (measured: no member below 0.001, one at 0.001, three
at 0.005). Its thresholds are also calibrated only for references in 0.01..0.99. So the
reference the bank is built for is floored at ``floor`` (0.01): a stream whose true share is
below the floor drifts away from a bank built for 1% faster than from its own (fewer false
alarms than the calibrated one per 1,000,000 calls), and a rise to 5% is 1.65 log-odds above
1%, what the bank's largest member looks for. Measured with warm-up 10,000 (seeds 0..9): 0 -> 5%
is detected 126..389 calls after it starts (none without the floor); 0.5% -> 5% the same (103..312
without it); 0.5% -> 2% after 562..5,564 (523..1,490 without it: the price of the floor); 0 and
0.5% stable: no alarm in 20 x 300,000 calls with or without it. The floor is set through
``BernoulliDrift``'s state (``to_state`` / ``from_state``): a warm-up count that gives the floor.

After firing, the detector watches blocks of ``resolve_block`` calls and resolves (same
``alert_id``) at the first block consistent with the reference the bank watched (floored): at
most that share plus 3.09 standard deviations of a block's share, its 99.9% quantile (2.0% for a
1% reference and blocks of 1,000). Not the midpoint between the reference and the share at
detection: that estimate is biased up (the bank fires on an excursion), 53% for a true 20%.
Then it warms up afresh, so that the reference is measured on normal traffic again, never on
the incident. While it warms up (``warmup`` calls) it cannot
fire; the ``availability`` detector covers hard outages meanwhile.

Quality counters, per model (at most ``max_models``, the least recently seen forgotten), for its
own calls and for its calls as a fallback: calls, known outcomes, successes, cost and calls with
a cost, each decayed with a half-life of ``half_life_s`` of event time, plus the fallbacks away
from it. The primary named is the model most fallen back from, the fallback the model serving
most fallbacks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.detectors._windows import MinuteClock
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.stats import BernoulliDrift

__all__ = ["FallbackRate"]

#: Event-time minutes remembered to date the start of a change (``[call index, minute]`` at the
#: first call of each minute).
_MAX_CHECKPOINTS = 240
#: The one-sided 99.9% quantile of the standard normal: resolving blocks are below it.
_Z_999 = 3.09
#: Per model and group: calls, known outcomes, successes, cost sum, calls with a cost.
_CALLS, _KNOWN, _OK, _COST, _COSTED = range(5)
#: The decayed counters are kept in units of their share's ``epoch``: a call at time ``now``
#: weighs ``2 ** ((now - epoch) / half_life_s)``. The epoch moves up (the counters are scaled
#: down) once a call weighs more than ``2 ** _REBASE``.
_REBASE = 32.0


class _Quality:
    """Decayed counters of one model: its own calls, its calls as a fallback, fallbacks away;
    in units of the share's epoch, read as decayed to ``t`` (the latest call touching it) by
    :meth:`view`."""

    __slots__ = ("away", "fallback", "own", "t")

    def __init__(self, t: float) -> None:
        self.t = t
        self.own = [0.0] * 5
        self.fallback = [0.0] * 5
        self.away = 0.0

    def scale(self, f: float) -> None:
        self.own = [v * f for v in self.own]
        self.fallback = [v * f for v in self.fallback]
        self.away *= f

    def view(self, epoch: float, half_life_s: float) -> _Quality:
        """A copy with the counters decayed to ``t``."""
        out = _Quality(self.t)
        out.own, out.fallback, out.away = self.own, self.fallback, self.away
        out.scale(0.5 ** ((self.t - epoch) / half_life_s))
        return out

    def to_state(self) -> list[Any]:
        return [self.t, self.own, self.fallback, self.away]

    @classmethod
    def from_state(cls, state: list[Any]) -> _Quality:
        quality = cls(state[0])
        quality.own, quality.fallback, quality.away = list(state[1]), list(state[2]), state[3]
        return quality


class _Share:
    """The live state of one app x env."""

    __slots__ = (
        "block", "checkpoints", "clock", "drift", "epoch", "firing", "minute", "models",
        "reference",
    )  # fmt: skip

    def __init__(self, drift: BernoulliDrift) -> None:
        self.drift = drift
        self.reference: float | None = None  # measured share of the warm-up
        self.checkpoints: list[list[int]] = []
        # The open alert: [alert_id, minute the change started or None, share, level to resolve].
        self.firing: list[Any] | None = None
        self.block = [0, 0]  # calls and fallbacks in the current block (while firing)
        self.models: dict[str, _Quality] = {}
        self.clock = 0.0
        self.epoch: float | None = None  # of the counters; None until the first call
        self.minute: MinuteClock | None = None  # not stored


def _minute(minute: int) -> str:
    return f"{datetime.fromtimestamp(minute * 60, UTC):%H:%M} UTC"


def _iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).isoformat()


def _group(stats: list[float]) -> str:
    success = (
        f"success {stats[_OK] / stats[_KNOWN]:.1%} (n={stats[_KNOWN]:,.0f})"
        if stats[_KNOWN] >= 0.5
        else "success unknown (no outcomes)"
    )
    cost = f"${stats[_COST] / stats[_COSTED]:.4f}/call" if stats[_COSTED] >= 0.5 else "cost unknown"
    return f"{success}, {cost}"


def _stats(stats: list[float]) -> dict[str, float | None]:
    return {
        "calls": stats[_CALLS],
        "known_outcomes": stats[_KNOWN],
        "success_rate": stats[_OK] / stats[_KNOWN] if stats[_KNOWN] > 0 else None,
        "cost_per_call": stats[_COST] / stats[_COSTED] if stats[_COSTED] > 0 else None,
    }


class FallbackRate(ObjectDetector[_Share]):
    """Per app x env: the share of calls with ``fallback_from`` set rises (see the module).

    >>> import random
    >>> from datetime import UTC, datetime, timedelta
    >>> from slowleak.models import InteractionEvent
    >>> rng, detector = random.Random(3), FallbackRate(warmup=2_000)
    >>> t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    >>> def call(i):
    ...     fields = {"model": "gpt-4o", "outcome": rng.random() < 0.83, "cost_usd": 0.005}
    ...     if i >= 5_000 and rng.random() < 0.3:
    ...         fields = {"model": "claude", "fallback_from": "gpt-4o",
    ...                   "outcome": rng.random() < 0.7, "cost_usd": 0.003}
    ...     return InteractionEvent(event_id=f"e{i}", ts=t0 + timedelta(seconds=i), app="bot",
    ...         input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok", **fields)
    >>> for alert in (a for i in range(6_000) for a in detector.on_interaction(call(i))):
    ...     print(alert.event_id, alert.summary)  # doctest: +NORMALIZE_WHITESPACE
    e5026 bot: 39.1% of the 23 calls since about 03:23 UTC served by a fallback
    (reference 0.0%); fallback claude: success 55.6% (n=9), $0.0030/call
    vs primary gpt-4o: success 82.7% (n=4,634), $0.0050/call

    No fallback in the warm-up: the bank is built for a 1% reference (see the module), and 30%
    fallbacks from call 5,000 (03:23) are detected 26 calls later. The primary's counts are
    decayed (half-life 6 h): 5,000 calls over 83 minutes weigh 4,634.
    """

    name: ClassVar[str] = "fallback_rate"
    version: ClassVar[int] = 2

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        warmup: int = 10_000,
        floor: float = 0.01,
        resolve_block: int = 1_000,
        half_life_s: float = 6 * 3600.0,
        max_models: int = 8,
    ) -> None:
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        if resolve_block < 1 or max_models < 2 or half_life_s <= 0:
            raise ValueError("resolve_block, max_models (>= 2) and half_life_s must be positive")
        BernoulliDrift(direction="up", warmup=warmup)  # validates the warm-up
        self.warmup = warmup
        self.floor = floor
        self.resolve_block = resolve_block
        self.half_life_s = half_life_s
        self.max_models = max_models
        super().__init__(store=store)

    # -- state ----------------------------------------------------------------------------------

    def new_object(self, key: str) -> _Share:
        return _Share(BernoulliDrift(direction="up", warmup=self.warmup, min_reference=self.floor))

    def load(self, key: str, state: State) -> _Share:
        share = _Share(BernoulliDrift.from_state(state["drift"]))
        share.reference, share.checkpoints = state["reference"], state["checkpoints"]
        share.firing, share.block, share.clock = state["firing"], state["block"], state["clock"]
        share.epoch = state["epoch"]
        share.models = {m: _Quality.from_state(q) for m, q in state["models"].items()}
        return share

    def dump(self, obj: _Share) -> State:
        return {
            "drift": obj.drift.to_state(), "reference": obj.reference,
            "checkpoints": obj.checkpoints, "firing": obj.firing, "block": obj.block,
            "clock": obj.clock, "epoch": obj.epoch,
            "models": {m: q.to_state() for m, q in obj.models.items()},
        }  # fmt: skip

    # -- events ---------------------------------------------------------------------------------

    def on_interaction(self, event: InteractionEvent) -> list[Alert]:
        return self.on_interactions((event,))

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        """The alerts of the events in turn. Per app x env: one pass reads each event's time,
        whether it fell back and where the event-time minute changes; the drift detector takes
        the indicators in one go (``update_many``) up to a detection; the counters are updated
        up to each alert's event before it is written, and to the end after."""
        groups: dict[tuple[str, str], list[InteractionEvent]] = {}
        for event in events:
            group = groups.get((event.app, event.env))
            if group is None:
                groups[event.app, event.env] = group = []
            group.append(event)
        fired: list[tuple[InteractionEvent, Alert]] = []
        for (app, env), group in groups.items():
            key = f"{app}|{env}"
            self._run(self.obj(key), group, fired)
            self.touch(key)
        if len(groups) > 1 and len(fired) > 1:  # back in event order across apps
            order = {id(event): i for i, event in enumerate(events)}
            fired.sort(key=lambda pair: order[id(pair[0])])
        return [alert for _, alert in fired]

    def _run(
        self,
        share: _Share,
        group: list[InteractionEvent],
        fired: list[tuple[InteractionEvent, Alert]],
    ) -> None:
        # Pass 1: the share's clock after each event, the fallback indicators, and the events
        # at which the clock's minute moves up ([index, minute]).
        nows: list[float] = []
        fells: list[bool] = []
        marks: list[tuple[int, int]] = []
        clock = share.clock
        mc = share.minute
        tz, lo, hi, base = (None, None, None, 0) if mc is None else (mc.tz, mc.lo, mc.hi, mc.base)
        minute = int(clock // 60)
        next_minute = (minute + 1) * 60.0
        for event in group:
            ts = event.ts
            if ts.tzinfo is tz and lo <= ts < hi:  # type: ignore[operator]  # tz: lo, hi set
                t = (base + ts.second * 1_000_000 + ts.microsecond) / 1_000_000
            else:
                t = ts.timestamp()
                mc = MinuteClock.of(int(t // 60), ts.tzinfo)
                if mc is not None:
                    tz, lo, hi, base = mc.tz, mc.lo, mc.hi, mc.base
            if t > clock:
                clock = t
                if t >= next_minute and int(t // 60) > minute:
                    minute = int(t // 60)
                    next_minute = (minute + 1) * 60.0
                    marks.append((len(nows), minute))
            nows.append(clock)
            primary = event.fallback_from
            fells.append(primary is not None and primary != event.model)
        share.minute = mc

        drift = share.drift
        n, i, counted, m = len(group), 0, 0, 0  # m: the next mark
        while i < n:
            if share.firing is None:
                n0 = drift.n
                j = i + drift.update_many(fells[i:])
                checkpoints = share.checkpoints
                if not checkpoints:
                    checkpoints.append([n0 + 1, int(nows[i] // 60)])
                while m < len(marks) and marks[m][0] < j:
                    at, minute = marks[m]
                    if at >= i and minute > checkpoints[-1][1]:
                        checkpoints.append([n0 + 1 + at - i, minute])
                    m += 1
                if len(checkpoints) > _MAX_CHECKPOINTS:
                    del checkpoints[: len(checkpoints) - _MAX_CHECKPOINTS]
                if share.reference is None and drift.n >= drift.warmup:  # the warm-up ended
                    share.reference = drift.measured
                if drift.drift_detected:
                    event = group[j - 1]
                    self._count(share, group, nows, counted, j)
                    counted = j
                    fired.append((event, self._fire(event, share, nows[j - 1])))
                i = j
            else:
                block = share.block
                take = min(self.resolve_block - block[0], n - i)
                block[0] += take
                block[1] += sum(fells[i : i + take])
                i += take
                while m < len(marks) and marks[m][0] < i:
                    m += 1
                if block[0] >= self.resolve_block:
                    self._count(share, group, nows, counted, i)
                    counted = i
                    alert = self._block(group[i - 1], share)
                    if alert is not None:
                        fired.append((group[i - 1], alert))
        self._count(share, group, nows, counted, n)
        share.clock = clock

    def _count(
        self, share: _Share, group: list[InteractionEvent], nows: list[float], start: int, end: int
    ) -> None:
        """Add the events ``group[start:end]`` to the counters."""
        if start >= end:
            return
        half_life_s = self.half_life_s
        models = share.models
        epoch = share.epoch
        if epoch is None:
            epoch = share.epoch = nows[start]
        last, w = math.nan, 0.0
        for k in range(start, end):
            event = group[k]
            now = nows[k]
            if now != last:
                last = now
                x = (now - epoch) / half_life_s
                if x > _REBASE:
                    f = 0.5**x
                    for scaled in models.values():
                        scaled.scale(f)
                    epoch = share.epoch = now
                    x = 0.0
                w = 2.0**x
            name = event.model
            quality = models.get(name)
            if quality is None:
                quality = self._quality(share, name, now)
            elif now > quality.t:
                quality.t = now
            primary = event.fallback_from
            if primary == name:
                primary = None
            stats = quality.own if primary is None else quality.fallback
            stats[_CALLS] += w
            outcome = event.outcome
            if outcome is not None:
                stats[_KNOWN] += w
                if outcome:
                    stats[_OK] += w
            cost = event.cost_usd
            if cost is not None:
                stats[_COST] += w * cost
                stats[_COSTED] += w
            if primary is not None:
                away = models.get(primary)
                if away is None:
                    away = self._quality(share, primary, now)
                elif now > away.t:
                    away.t = now
                away.away += w

    def _quality(self, share: _Share, model: str, now: float) -> _Quality:
        """A new entry (forgetting the least recently seen model beyond ``max_models``)."""
        if len(share.models) >= self.max_models:
            del share.models[min(share.models, key=lambda m: share.models[m].t)]
        quality = share.models[model] = _Quality(now)
        return quality

    def _fire(self, event: InteractionEvent, share: _Share, now: float) -> Alert:
        drift = share.drift
        rate = drift.estimate
        reference = share.reference or 0.0
        rate = reference if rate is None else rate
        since = self._since(share, drift.change_index)
        aid = alert_id(self.name, event.app, event.env, repr(now))
        watched = drift.reference or self.floor
        level = watched + _Z_999 * math.sqrt(watched * (1.0 - watched) / self.resolve_block)
        share.firing = [aid, since, rate, level]
        share.block = [0, 0]
        return self._fired(event, share, drift)

    @staticmethod
    def _since(share: _Share, change_index: int | None) -> int | None:
        """The minute of the first call after ``change_index`` (None if not remembered)."""
        if change_index is None:
            return None
        found = None
        for n, minute in share.checkpoints:
            if n > change_index + 1:
                break
            found = minute
        return found

    def _block(self, event: InteractionEvent, share: _Share) -> Alert | None:
        """At the end of a block (``event`` its last call): resolve, or start the next."""
        block = share.block
        firing = share.firing
        assert firing is not None
        share.block = [0, 0]
        if block[1] / block[0] > firing[3]:
            return None
        share.firing = None
        share.drift.reset()  # warm up afresh on normal traffic
        share.checkpoints = []
        reference, share.reference = share.reference, None
        return self._resolved(event, firing, block, reference)

    # -- alerts ---------------------------------------------------------------------------------

    def _fired(self, event: InteractionEvent, share: _Share, drift: BernoulliDrift) -> Alert:
        assert share.firing is not None
        aid, since, rate, _ = share.firing
        reference = share.reference or 0.0
        epoch = share.epoch if share.epoch is not None else 0.0
        models = {m: q.view(epoch, self.half_life_s) for m, q in share.models.items()}
        primary = max(models, key=lambda m: models[m].away)
        fallback = max(models, key=lambda m: models[m].fallback[_CALLS])
        when = (
            f"since about {_minute(since)}"
            if since is not None
            else f"since before {_minute(share.checkpoints[0][1])}"
        )
        n = drift.n - (drift.change_index or drift.n)
        summary = (
            f"{self._who(event)}: {rate:.1%} of the {n:,} calls {when} served by a fallback "
            f"(reference {reference:.1%}); fallback {fallback}: "
            f"{_group(models[fallback].fallback)} vs primary {primary}: "
            f"{_group(models[primary].own)}"
        )
        return Alert(
            alert_id=aid,
            kind=self.name,
            severity="warning",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=primary,
            labels={"env": event.env, "primary": primary, "fallback": fallback},
            summary=summary,
            details={
                "env": event.env,
                "share": rate,
                "reference": reference,
                "bank_reference": drift.reference,
                "since": None if since is None else _iso(since),
                "calls_since_change": n,
                "primary": {"model": primary, **_stats(models[primary].own)},
                "fallback": {"model": fallback, **_stats(models[fallback].fallback)},
            },
        )

    def _resolved(
        self, event: InteractionEvent, firing: list[Any], block: list[int], reference: float | None
    ) -> Alert:
        share = block[1] / block[0]
        return Alert(
            alert_id=firing[0],
            kind=self.name,
            severity="warning",
            status="resolved",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            labels={"env": event.env},
            summary=(
                f"{self._who(event)}: fallbacks are down to {share:.1%} of the last "
                f"{block[0]:,} calls (reference {reference or 0.0:.1%}, {firing[2]:.1%} when it "
                f"fired); the reference is measured afresh over the next {self.warmup:,} calls"
            ),
            details={"env": event.env, "share": share, "calls": block[0], "level": firing[3]},
        )

    @staticmethod
    def _who(event: InteractionEvent) -> str:
        return event.app if event.env == "prod" else f"{event.app} ({event.env})"
