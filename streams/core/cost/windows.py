"""``CostWindows``: calls, tokens, cost and latency per event-time minute, for ClickHouse
``cost_windows_1m`` (and through its materialized views, hours and days).

Per app (the Kafka key: its events arrive in order on one partition), every call is priced
(:class:`~slowleak.streams.core.cost.prices.PriceBook`) and counted in its tumbling 1-minute
window of event time, per env x model x tenant x prompt version x price source. The app's
watermark is the latest event time it has seen; window ``[m, m + 60 s)`` closes, and its rows
are emitted, at the first event that brings the watermark to ``m + 60 s + grace_s`` or later.
A later call of a closed window is *late*: it is counted in a delta row (``late = 1``) for its
window, emitted at the next close, so sums over rows stay exact and nothing is lost; when calls
of more than :data:`MAX_LATE_MINUTES` closed minutes wait, their deltas are emitted at once
(``late = 2, 3, ...`` for the first, second... such flush before the next close).

Determinism: the rows depend only on each app's events in order (not on how they are chunked,
nor on restarts from saved state). An on-time row's ``emitted_at`` is its window's end; a late
row's is the cutoff minute at which it was emitted. So (key, window, late, emitted_at) names one
row, and a row emitted again after a crash has the same key and values: the table is a
``ReplacingMergeTree`` on that key (see ``schemas/clickhouse/0008_create_cost_windows.sql``).
The rows of one close of one app form a block (:meth:`CostWindows.window_blocks`), itself
the same whatever the chunking, with a token for ClickHouse's insert deduplication, which keeps
the hourly and daily rollups from counting a re-sent block twice.
:meth:`CostWindows.flush_open` emits what is still open, at the end of a replay.

Latency is a fixed log-bucket histogram (:data:`HIST_BUCKETS` buckets, 8 per doubling of
milliseconds), which ClickHouse sums per hour and day (``sumForEach``) so the rolled-up p50/p95
are those of the merged minutes (within the bucket's +-4.4%).

A model without a price is counted with cost 0 and ``price_source = 'unknown'``, in the
``unknown_price_calls`` counter, and raises one ``unknown_price`` alert (info) per app and model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, ClassVar, Protocol

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.cost.prices import PriceBook
from slowleak.streams.core.detectors._windows import MinuteClock
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.rows import Row, TableBlock

__all__ = [
    "HIST_BUCKETS",
    "WINDOW_COLUMNS",
    "WINDOW_TABLE",
    "CostWindows",
    "MinuteTotals",
    "MinuteWatcher",
    "block_token",
    "latency_bucket",
    "latency_quantile_ms",
]

WINDOW_TABLE = "cost_windows_1m"
#: Columns of ``cost_windows_1m``, in the order of the rows :meth:`CostWindows.window_rows` gives.
WINDOW_COLUMNS = (
    "window_start", "app", "env", "model", "tenant", "prompt_version", "price_source",
    "late", "emitted_at", "calls", "errors", "input_tokens", "output_tokens",
    "cached_input_tokens", "reasoning_tokens", "cost_usd", "unknown_price_calls", "outcomes",
    "successes", "latency_hist",
)  # fmt: skip
#: Latency buckets: 0 is below 1 ms; bucket k >= 1 is [2 ** ((k - 1) / 8), 2 ** (k / 8)) ms;
#: the last also holds everything from 2 ** 20 ms (17.5 min) up.
HIST_PER_DOUBLING = 8
HIST_BUCKETS = 1 + 20 * HIST_PER_DOUBLING
_LAST = HIST_BUCKETS - 1
#: Models whose unknown price an app has reported (the alert is sent once per model).
_MAX_UNKNOWN = 256
#: Closed minutes with late calls an app keeps before it emits their deltas early (so its state,
#: one changelog message, stays far below Kafka's 1 MB message limit whatever the disorder).
MAX_LATE_MINUTES = 64
#: Accumulator fields, per window and key.
_CALLS, _ERRORS, _IN, _OUT, _CACHED, _REASONING, _COST, _UNKNOWN, _OUTCOMES, _OK, _HIST = range(11)

#: (env, model, tenant, prompt_version, price_source)
Key = tuple[str, str, str | None, str | None, str]
_NO_PRICE = "unknown"
_fields = itemgetter(
    "ts", "env", "model", "tenant", "prompt_version", "status", "input_tokens", "output_tokens",
    "cached_input_tokens", "reasoning_tokens", "cost_usd", "outcome", "latency_ms", "provider",
)  # fmt: skip


def latency_bucket(latency_ms: float) -> int:
    """The histogram bucket of a latency."""
    if latency_ms < 1.0:
        return 0
    return min(1 + int(HIST_PER_DOUBLING * math.log2(latency_ms)), _LAST)


def block_token(rows: Sequence[Row]) -> str:
    """A deduplication token for a block of window rows: a hash of their contents."""
    return hashlib.blake2b(repr(list(rows)).encode(), digest_size=16).hexdigest()


def latency_quantile_ms(hist: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of a histogram: the geometric middle of the first bucket whose
    cumulative count reaches ``q * total`` (the views in ClickHouse compute the same)."""
    total = sum(hist)
    if not total:
        return None
    need, running = q * total, 0
    for k, n in enumerate(hist):
        running += n
        if running >= need:
            return 0.5 if k == 0 else float(2.0 ** ((k - 0.5) / HIST_PER_DOUBLING))
    return float(2.0 ** ((_LAST - 0.5) / HIST_PER_DOUBLING))


class MinuteTotals:
    """An app's on-time totals of one closed minute, all keys summed, for :class:`MinuteWatcher`;
    ``models``: the same per model (empty in the totals of one model)."""

    __slots__ = (
        "calls", "cost_usd", "input_tokens", "minute", "models", "output_tokens", "prompts",
    )  # fmt: skip

    def __init__(self, minute: int) -> None:
        self.minute = minute
        self.calls = 0
        self.cost_usd = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.prompts: dict[str, int] = {}  # prompt version ("" for none) -> calls
        self.models: dict[str, MinuteTotals] = {}

    def add(self, acc: list[Any], prompt: str) -> None:
        """Count one window's accumulator (of prompt version ``prompt``)."""
        self.calls += acc[_CALLS]
        self.cost_usd += acc[_COST]
        self.input_tokens += acc[_IN]
        self.output_tokens += acc[_OUT]
        self.prompts[prompt] = self.prompts.get(prompt, 0) + acc[_CALLS]


class MinuteWatcher(Protocol):
    """Something that watches an app's closed minutes (``CostSpike``); it keeps its own state
    and hands it over with ``dirty_states``."""

    def on_minutes(
        self, app: str, minutes: list[MinuteTotals], event: InteractionEvent
    ) -> list[Alert]: ...

    def dirty_states(self) -> dict[str, State]: ...

    def forget(self) -> None: ...


class _App:
    """One app: its watermark (epoch s), the cutoff minute (windows before it are closed), the
    open windows, late deltas waiting for the next close, and the models reported unpriced."""

    __slots__ = (
        "clock", "cutoff", "fence", "late", "late_flushes", "open", "outbox", "unknown",
        "watermark",
    )  # fmt: skip

    def __init__(self) -> None:
        self.clock: MinuteClock | None = None  # of the latest minute read (not stored)
        self.watermark: float | None = None
        self.cutoff: int | None = None
        self.open: dict[int, dict[Key, list[Any]]] = {}
        self.late: dict[int, dict[Key, list[Any]]] = {}
        #: Late deltas emitted early since the last close, to bound ``late`` (see
        #: :data:`MAX_LATE_MINUTES`): the n-th is labelled ``late = n + 1``.
        self.late_flushes = 0
        self.unknown: list[str] = []
        #: ``[partition, offset]`` of the last call counted, when read from Kafka: a call read
        #: again after a crash (at or before it, on the same partition) is not counted twice.
        self.fence: list[int] | None = None
        #: Blocks handed over and not known to be written, as ``[token, rows in state form]``:
        #: sent again after a restart (the token makes a second copy a no-op), so a crash
        #: between this state's write and the insert loses no window.
        self.outbox: list[list[Any]] = []


def _order(key: Key) -> tuple[str, ...]:
    env, model, tenant, prompt, source = key
    return env, model, tenant or "", prompt or "", source


def _new_acc() -> list[Any]:
    return [0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, [0] * HIST_BUCKETS]


def _dump_windows(windows: dict[int, dict[Key, list[Any]]]) -> list[Any]:
    return [
        [
            m,
            [
                [list(key), *acc[:_HIST], [[b, n] for b, n in enumerate(acc[_HIST]) if n]]
                for key, acc in keys.items()
            ],
        ]
        for m, keys in sorted(windows.items())
    ]


def _row_to_state(row: Row) -> list[Any]:
    """A window row as JSON-able data (minutes for its two times, the histogram sparse)."""
    start, at, hist = row[0], row[8], row[-1]
    assert isinstance(start, datetime) and isinstance(at, datetime) and isinstance(hist, list)
    sparse = [[b, n] for b, n in enumerate(hist) if n]
    return [int(start.timestamp()) // 60, *row[2:8], int(at.timestamp()) // 60, *row[9:-1], sparse]


def _row_from_state(app: str, item: list[Any]) -> Row:
    start, env, model, tenant, prompt, source, late, at, *counts, sparse = item
    hist = [0] * HIST_BUCKETS
    for b, n in sparse:
        hist[b] = n
    return (
        datetime.fromtimestamp(start * 60, UTC), app, env, model, tenant, prompt, source, late,
        datetime.fromtimestamp(at * 60, UTC), *counts, hist,
    )  # fmt: skip


def _load_windows(state: list[Any]) -> dict[int, dict[Key, list[Any]]]:
    out: dict[int, dict[Key, list[Any]]] = {}
    for minute, keys in state:
        windows: dict[Key, list[Any]] = {}
        for key, *values, hist in keys:
            dense = [0] * HIST_BUCKETS
            for b, n in hist:
                dense[b] = n
            windows[tuple(key)] = [*values, dense]
        out[minute] = windows
    return out


class CostWindows(ObjectDetector[_App]):
    """Per app: 1-minute event-time windows of cost, tokens and latency; see the module.

    A chunk detector: :meth:`on_interactions` takes a chunk's events and returns its alerts
    (``unknown_price``, and the ``watcher``'s, e.g. ``cost_spike``); :meth:`window_rows` hands
    the rows of the windows closed since its last call to the caller (table
    :data:`WINDOW_TABLE`, columns :data:`WINDOW_COLUMNS`); :meth:`counters` are the late calls,
    unpriced calls and windows emitted since start.

    >>> from datetime import UTC, datetime, timedelta
    >>> windows = CostWindows(prices=PriceBook(table={"m": {"input_cost_per_token": 1e-6}}))
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def call(s, **f):
    ...     return InteractionEvent(**{"event_id": f"e{s}", "ts": t0 + timedelta(seconds=s),
    ...         "app": "bot", "model": "m", "input_tokens": 1000, "output_tokens": 0,
    ...         "latency_ms": 100.0, "status": "ok"} | f)
    >>> _ = windows.on_interactions([call(10), call(20), call(185), call(30), call(400)])
    >>> rows = []
    >>> windows.window_rows(rows)
    >>> for r in rows:
    ...     print(f"{r[0]:%H:%M} late={r[7]} emitted={r[8]:%H:%M} calls={r[9]} cost={r[15]}")
    00:00 late=0 emitted=00:01 calls=2 cost=0.002
    00:03 late=0 emitted=00:04 calls=1 cost=0.001
    00:00 late=1 emitted=00:04 calls=1 cost=0.001

    With the default 120 s of grace, the call at 03:05 closes minute 00:00 (it needs 03:00);
    the call of 00:30 after it is late, emitted at the next close (06:40 closes 00:03).
    """

    name: ClassVar[str] = "cost_windows"
    takes_positions: ClassVar[bool] = True
    version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        prices: PriceBook | None = None,
        grace_s: float = 120.0,
        watcher: MinuteWatcher | None = None,
    ) -> None:
        if not 0.0 <= grace_s <= 86_400.0:
            raise ValueError(f"grace_s must be between 0 and 86400 s, got {grace_s}")
        self.prices = PriceBook() if prices is None else prices
        self.grace_s = grace_s
        self.watcher = watcher
        self.late_calls = 0
        self.unknown_price_calls = 0
        self.rows_emitted = 0
        #: Calls read again after a crash and skipped (already counted, see ``_App.fence``).
        self.replayed_calls = 0
        self._blocks: list[list[Row]] = []  # rows of each close, until handed over
        self._block_apps: list[str] = []  # the app of each of them
        #: Blocks restored from an outbox, to hand over again: (app, token, rows).
        self._resend: list[tuple[str, str, list[Row]]] = []
        #: Tokens of blocks written, to drop from their app's outbox when it next runs.
        self._written: set[str] = set()
        self._price_cache: dict[
            tuple[str, str | None], tuple[str, float, float, float, float, float]
        ] = {}
        super().__init__(store=store)

    # -- state ----------------------------------------------------------------------------------

    def new_object(self, key: str) -> _App:
        return _App()

    def load(self, key: str, state: State) -> _App:
        app = _App()
        app.watermark, app.cutoff = state["watermark"], state["cutoff"]
        app.open, app.late = _load_windows(state["open"]), _load_windows(state["late"])
        app.unknown = list(state["unknown"])
        app.fence = state.get("fence")
        app.late_flushes = state.get("late_flushes", 0)
        app.outbox = state.get("outbox", [])
        for token, rows in app.outbox:
            self._resend.append((key, token, [_row_from_state(key, r) for r in rows]))
        return app

    def dump(self, obj: _App) -> State:
        return {
            "watermark": obj.watermark, "cutoff": obj.cutoff, "open": _dump_windows(obj.open),
            "late": _dump_windows(obj.late), "unknown": obj.unknown, "fence": obj.fence,
            "outbox": obj.outbox, "late_flushes": obj.late_flushes,
        }  # fmt: skip

    def dirty_states(self) -> dict[str, State]:
        out = super().dirty_states()
        if self.watcher is not None:
            out.update(self.watcher.dirty_states())
        return out

    def forget(self) -> None:
        super().forget()
        if self.watcher is not None:
            self.watcher.forget()

    # -- events ---------------------------------------------------------------------------------

    def on_interactions(
        self,
        events: Sequence[InteractionEvent],
        positions: Sequence[tuple[int, int]] | None = None,
    ) -> list[Alert]:
        """Count ``events``; ``positions`` (their Kafka partition and offset, in the worker)
        let each app skip the calls it counted before a crash and is given again."""
        last: dict[str, tuple[int, int]] = {}
        if positions is not None:
            groups, last = self._after_fences(events, positions)
        else:
            groups = {}
            for event in events:
                group = groups.get(event.app)
                if group is None:
                    groups[event.app] = group = []
                group.append(event)
        alerts: list[Alert] = []
        for name, group in groups.items():
            app = self.obj(name)
            self._prune(app)
            if group:
                alerts += self._run(name, app, group)
            if name in last:
                app.fence = list(last[name])
            self.touch(name)
        return alerts

    def _after_fences(
        self, events: Sequence[InteractionEvent], positions: Sequence[tuple[int, int]]
    ) -> tuple[dict[str, list[InteractionEvent]], dict[str, tuple[int, int]]]:
        """Group by app the calls past each app's fence; and each app's last position."""
        groups: dict[str, list[InteractionEvent]] = {}
        last: dict[str, tuple[int, int]] = {}
        fences: dict[str, list[int] | None] = {}
        for event, position in zip(events, positions, strict=True):
            name = event.app
            group = groups.get(name)
            if group is None:
                groups[name] = group = []
                fences[name] = self.obj(name).fence
            fence = fences[name]
            partition, offset = position
            if offset < 0:
                group.append(event)
                continue
            if fence is None or fence[0] != partition or offset > fence[1]:
                group.append(event)
                last[name] = position
            else:
                self.replayed_calls += 1
        return groups, last

    def _run(self, name: str, app: _App, group: list[InteractionEvent]) -> list[Alert]:
        """Count one app's events in order. The event time is read off the current minute's
        :class:`MinuteClock` when it falls in it (``datetime.timestamp`` is slow with pydantic's
        time zones), the fields with one ``itemgetter`` of the model's ``__dict__``, and prices
        from a per-model cache (the book's match and the price's fields). The accumulator's
        fields are indexed by literals (see ``_CALLS`` .. ``_HIST``): globals cost a lookup."""
        alerts: list[Alert] = []
        grace = self.grace_s
        watermark = app.watermark
        cutoff = app.cutoff
        # The watermark closes the next window when it reaches this time.
        next_close = math.inf if cutoff is None else (cutoff + 1) * 60.0 + grace
        open_ = app.open
        prices = self._price_cache
        log2 = math.log2
        fields = _fields
        mc = app.clock
        tz, lo, hi, base = (None, None, None, 0) if mc is None else (mc.tz, mc.lo, mc.hi, mc.base)
        minute = -1
        current: dict[Key, list[Any]] = {}  # the open windows of ``minute``
        for event in group:
            (ts, env, model, tenant, prompt, status, inp, out, cached, reasoning, cost, outcome,
             ms, provider) = fields(event.__dict__)  # fmt: skip
            if ts.tzinfo is tz and lo <= ts < hi:
                t = (base + ts.second * 1_000_000 + ts.microsecond) / 1_000_000
            else:
                t = ts.timestamp()
                mc = app.clock = MinuteClock.of(int(t // 60.0), ts.tzinfo)
                tz, lo, hi, base = (
                    (None, None, None, 0) if mc is None else (mc.tz, mc.lo, mc.hi, mc.base)
                )
            if watermark is None or t > watermark:
                watermark = t
                if cutoff is None or t >= next_close:
                    new_cutoff = math.floor((t - grace) / 60.0)
                    app.watermark, app.cutoff = watermark, new_cutoff
                    if cutoff is not None:
                        alerts += self._close(name, app, new_cutoff, event)
                    cutoff = new_cutoff
                    next_close = (cutoff + 1) * 60.0 + grace
                    minute = -1  # the windows may have closed
            if cost is None:
                found = prices.get((model, provider))
                if found is None:
                    found = prices[model, provider] = self._price_entry(model, provider)
                source, p_in, p_out, p_cached, p_reasoning, p_second = found
                if source is _NO_PRICE:
                    cost = 0.0
                else:
                    if cached:
                        if cached > inp:
                            cached = inp
                        cost = (inp - cached) * p_in + cached * p_cached
                    else:
                        cost = inp * p_in
                    if reasoning:
                        if reasoning > out:
                            reasoning = out
                        cost += (out - reasoning) * p_out + reasoning * p_reasoning
                    else:
                        cost += out * p_out
                    if p_second:
                        cost += ms / 1000.0 * p_second
            else:
                source = "caller"
            key = (env, model, tenant, prompt, source)
            m = int(t // 60.0)
            if m == minute:
                windows = current
            elif m >= cutoff:  # type: ignore[operator]  # set by the first event
                found_windows = open_.get(m)
                if found_windows is None:
                    found_windows = open_[m] = {}
                windows = minute_windows = found_windows
                minute, current = m, minute_windows
            else:
                self.late_calls += 1
                found_windows = app.late.get(m)
                if found_windows is None:
                    if len(app.late) >= MAX_LATE_MINUTES:
                        self._flush_late(name, app, cutoff)  # type: ignore[arg-type]
                    found_windows = app.late[m] = {}
                windows = found_windows
            acc = windows.get(key)
            if acc is None:
                acc = windows[key] = _new_acc()
                if source is _NO_PRICE and model not in app.unknown:
                    alerts.append(self._unknown(name, app, event))
            acc[0] += 1
            if status != "ok":
                acc[1] += 1
            acc[2] += inp
            acc[3] += out
            if cached:
                acc[4] += cached
            if reasoning:
                acc[5] += reasoning
            acc[6] += cost
            if source is _NO_PRICE:
                acc[7] += 1
                self.unknown_price_calls += 1
            if outcome is not None:
                acc[8] += 1
                if outcome:
                    acc[9] += 1
            if ms < 1.0:
                acc[10][0] += 1
            else:
                b = 1 + int(8.0 * log2(ms))
                acc[10][b if b < 160 else 160] += 1
        app.watermark, app.cutoff = watermark, cutoff
        return alerts

    def _price_entry(
        self, model: str, provider: str | None
    ) -> tuple[str, float, float, float, float, float]:
        """(source, input, output, cached input, reasoning, per second) of a model."""
        price, source = self.prices.match(model, provider)
        if price is None:
            return _NO_PRICE, 0.0, 0.0, 0.0, 0.0, 0.0
        cached = price.input if price.cached_input is None else price.cached_input
        reasoning = price.output if price.reasoning is None else price.reasoning
        return source, price.input, price.output, cached, reasoning, price.per_second

    def _close(
        self, name: str, app: _App, cutoff: int, event: InteractionEvent | None
    ) -> list[Alert]:
        """Emit the windows before ``cutoff`` and the late deltas waiting; tell the watcher
        about the minutes closed (unless ``event``, which dates its alerts, is None)."""
        closed = sorted(m for m in app.open if m < cutoff)
        self._blocks.append([])
        self._block_apps.append(name)
        totals = []
        for minute in closed:
            windows = app.open.pop(minute)
            self._emit(name, minute, windows, late=0, emitted=minute + 1)
            if self.watcher is not None:
                totals.append(_totals(minute, windows))
        for minute in sorted(app.late):
            self._emit(name, minute, app.late[minute], late=1, emitted=cutoff)
        app.late.clear()
        app.late_flushes = 0
        if not self._blocks[-1]:
            self._blocks.pop()
            self._block_apps.pop()
        if totals and self.watcher is not None and event is not None:
            return self.watcher.on_minutes(name, totals, event)
        return []

    def _flush_late(self, name: str, app: _App, cutoff: int) -> None:
        """Emit the late deltas before the next close, when calls of too many closed minutes
        wait (e.g. a backfill in reverse order); labelled with the current cutoff and the
        flush's number, so each row keeps its own key."""
        app.late_flushes += 1
        self._blocks.append([])
        self._block_apps.append(name)
        for minute in sorted(app.late):
            self._emit(name, minute, app.late[minute], late=1 + app.late_flushes, emitted=cutoff)
        app.late.clear()

    def _emit(
        self, name: str, minute: int, windows: dict[Key, list[Any]], *, late: int, emitted: int
    ) -> None:
        start = datetime.fromtimestamp(minute * 60, UTC)
        at = datetime.fromtimestamp(emitted * 60, UTC)
        for key in sorted(windows, key=_order):
            acc = windows[key]
            hist = acc[_HIST]
            env, model, tenant, prompt, source = key
            self._blocks[-1].append(
                (start, name, env, model, tenant or "", prompt or "", source, late, at,
                 *acc[:_HIST], hist)
            )  # fmt: skip
        self.rows_emitted += len(windows)

    def flush_open(self, apps: Iterable[str] = ()) -> None:
        """Emit every open window and late delta (the end of a replay): the rows the live run
        emits later, with the same values; late deltas are labelled with the next cutoff.
        The apps in memory are flushed, and ``apps`` (restored from the store if need be)."""
        for name in apps:
            self.obj(name)
        for name, app in self._objects.items():
            if app.cutoff is None:
                continue
            cutoff = max([app.cutoff + 1, *(m + 1 for m in app.open)])
            self._close(name, app, cutoff, None)
            app.cutoff = cutoff  # later calls of these minutes are late
            self.touch(name)

    def window_rows(self, out: list[Row]) -> None:
        """Append the rows of the windows closed since the last call to ``out``."""
        for block in self._blocks:
            out.extend(block)
        self._blocks.clear()
        self._block_apps.clear()

    def write_rows(self, out: Any) -> None:
        """The processor's hook: the closed windows as blocks for ``cost_windows_1m``, each
        kept in its app's outbox (in the state) until :meth:`written` says it is inserted."""
        for name, rows in zip(self._block_apps, self._blocks, strict=True):
            token = block_token(rows)
            self._objects[name].outbox.append([token, [_row_to_state(r) for r in rows]])
            self.touch(name)
            self._resend.append((name, token, rows))
        self._blocks.clear()
        self._block_apps.clear()
        for _, token, rows in self._resend:
            out.blocks.append(TableBlock(WINDOW_TABLE, WINDOW_COLUMNS, token, rows, self.written))
        self._resend.clear()

    def written(self, token: str) -> None:
        """A block is in ClickHouse: its app drops it from the outbox the next time it runs
        (not now: the state is written with the app's own chunk, to the app's partition)."""
        self._written.add(token)

    def _prune(self, app: _App) -> None:
        if app.outbox and self._written:
            written = self._written
            done = [e[0] for e in app.outbox if e[0] in written]
            if done:
                app.outbox = [e for e in app.outbox if e[0] not in written]
                written.difference_update(done)

    def window_blocks(self, out: list[tuple[str, list[Row]]]) -> None:
        """Append the rows closed since the last call (or :meth:`window_rows`) to ``out`` as
        ``(token, rows)``, one block per app and close. A block's rows, hence its token, are
        the same whatever the chunking and restarts: inserted one block per insert with
        ClickHouse setting ``insert_deduplication_token = token``, a block sent again after a
        crash is dropped by the table and by its rollups (see the 0008 migration)."""
        out.extend((block_token(block), block) for block in self._blocks)
        self._blocks.clear()
        self._block_apps.clear()

    def counters(self) -> dict[str, Any]:
        return {
            "apps": len(self._objects),
            "late_calls": self.late_calls,
            "unknown_price_calls": self.unknown_price_calls,
            "window_rows": self.rows_emitted,
            "replayed_calls": self.replayed_calls,
        }

    def _unknown(self, name: str, app: _App, event: InteractionEvent) -> Alert:
        app.unknown.append(event.model)
        del app.unknown[:-_MAX_UNKNOWN]
        where = name if event.env == "prod" else f"{name} ({event.env})"
        provider = f" (provider {event.provider})" if event.provider else ""
        return Alert(
            alert_id=alert_id("unknown_price", name, event.model),
            kind="unknown_price",
            severity="info",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=name,
            model=event.model,
            labels={"env": event.env},
            summary=(
                f"{where}: no price for model {event.model}{provider} and the call sent no "
                "cost_usd; its calls count with cost $0 (price_source 'unknown') until you add "
                "it to price_overrides or the prices_file"
            ),
            # A one-off fact: the lifecycle closes it after alert_auto_resolve_s.
            details={"env": event.env, "provider": event.provider, "auto_resolve": True},
        )


def _totals(minute: int, windows: dict[Key, list[Any]]) -> MinuteTotals:
    totals = MinuteTotals(minute)
    for key, acc in windows.items():
        prompt = key[3] or ""
        totals.add(acc, prompt)
        model = totals.models.get(key[1])
        if model is None:
            model = totals.models[key[1]] = MinuteTotals(minute)
        model.add(acc, prompt)
    return totals
