"""CostWindows: hand-computed windows (out of order and late calls), determinism across
chunkings and restarts from saved state, unknown prices."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slowleak.models import InteractionEvent
from slowleak.streams.core.cost import (
    WINDOW_COLUMNS,
    CostSpike,
    CostWindows,
    PriceBook,
    latency_quantile_ms,
)
from slowleak.streams.core.cost.windows import HIST_BUCKETS, block_token, latency_bucket
from slowleak.streams.core.rows import Row

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
K = 2.0**-10  # 1,024 input tokens of m
PRICES = PriceBook(
    table={"m": {"input_cost_per_token": 2.0**-20, "output_cost_per_token": 2.0**-19}}
)


def call(second: float, **fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": f"e{second}", "ts": T0 + timedelta(seconds=second), "app": "a",
        "model": "m", "input_tokens": 1024, "output_tokens": 0, "latency_ms": 100.0,
        "status": "ok",
    }  # fmt: skip
    return InteractionEvent(**(base | fields))


def rows_of(windows: CostWindows) -> list[dict[str, Any]]:
    rows: list[Row] = []
    windows.window_rows(rows)
    return [dict(zip(WINDOW_COLUMNS, row, strict=True)) for row in rows]


def brief(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        f"{row['window_start']:%H:%M}", row["tenant"], row["late"], f"{row['emitted_at']:%H:%M}",
        row["calls"], row["errors"], row["cost_usd"],
    )  # fmt: skip


def hist(*latencies: float) -> list[int]:
    out = [0] * HIST_BUCKETS
    for ms in latencies:
        out[latency_bucket(ms)] += 1
    return out


def test_hand_computed_windows_with_out_of_order_and_late_calls() -> None:
    windows = CostWindows(prices=PRICES, grace_s=120.0)
    events = [
        call(10, tenant="t1", latency_ms=10.0),
        call(50, output_tokens=512, status="error"),  # 2K, no tenant
        call(30, tenant="t1", input_tokens=2048),  # out of order, minute 10:00 still open: 2K
        call(70, tenant="t1"),
        call(125, tenant="t1"),  # cutoff 10:00 (125 - 120 s): nothing before it is open
        call(180, tenant="t1"),  # cutoff 10:01: closes 10:00
        call(40, tenant="t1", outcome=True),  # late for 10:00
        call(45, tenant="t1", outcome=False),  # late for 10:00
        call(240, tenant="t1"),  # cutoff 10:02: closes 10:01, emits the late delta
    ]
    windows.on_interactions(events[:6])
    first = rows_of(windows)
    windows.on_interactions(events[6:])
    second = rows_of(windows)

    assert [brief(r) for r in first] == [
        ("10:00", "", 0, "10:01", 1, 1, 2 * K),
        ("10:00", "t1", 0, "10:01", 2, 0, 3 * K),
    ]
    assert [brief(r) for r in second] == [
        ("10:01", "t1", 0, "10:02", 1, 0, K),
        ("10:00", "t1", 1, "10:02", 2, 0, 2 * K),
    ]
    on_time = first[1]
    assert on_time["input_tokens"] == 3072 and on_time["latency_hist"] == hist(10.0, 100.0)
    assert on_time["price_source"] == "table:m" and on_time["prompt_version"] == ""
    late = second[1]
    assert (late["outcomes"], late["successes"]) == (2, 1)
    assert windows.counters() == {"apps": 1, "late_calls": 2, "unknown_price_calls": 0,
                                  "window_rows": 4, "replayed_calls": 0}  # fmt: skip
    # Minutes 10:02 to 10:04 are still open; the end of a replay emits them.
    windows.flush_open()
    assert [brief(r) for r in rows_of(windows)] == [
        ("10:02", "t1", 0, "10:03", 1, 0, K),
        ("10:03", "t1", 0, "10:04", 1, 0, K),
        ("10:04", "t1", 0, "10:05", 1, 0, K),
    ]


def test_zero_grace_closes_a_minute_at_the_first_call_of_the_next() -> None:
    windows = CostWindows(prices=PRICES, grace_s=0.0)
    windows.on_interactions([call(1), call(59), call(60), call(61)])

    assert [brief(r) for r in rows_of(windows)] == [("10:00", "", 0, "10:01", 2, 0, 2 * K)]


def test_windows_are_per_key_and_app() -> None:
    windows = CostWindows(prices=PRICES, grace_s=0.0)
    windows.on_interactions([
        call(1, prompt_version="v1"), call(2, prompt_version="v2"), call(3, env="staging"),
        call(4, app="b", cost_usd=0.5), call(61), call(62, app="b"),
    ])  # fmt: skip

    got = [(r["app"], r["env"], r["prompt_version"], r["price_source"], r["calls"], r["cost_usd"])
           for r in rows_of(windows)]  # fmt: skip
    assert got == [
        ("a", "prod", "v1", "table:m", 1, K),
        ("a", "prod", "v2", "table:m", 1, K),
        ("a", "staging", "", "table:m", 1, K),
        ("b", "prod", "", "caller", 1, 0.5),
    ]


def test_unknown_price_is_counted_flagged_and_alerted_once_per_model() -> None:
    windows = CostWindows(prices=PRICES, grace_s=0.0)
    alerts = windows.on_interactions([call(1, model="x"), call(2, model="x"), call(3, model="y")])
    alerts += windows.on_interactions([call(61, model="x"), call(62)])

    assert [(a.kind, a.severity, a.model) for a in alerts] == [
        ("unknown_price", "info", "x"), ("unknown_price", "info", "y"),
    ]  # fmt: skip
    assert alerts[0].summary == (
        "a: no price for model x and the call sent no cost_usd; its calls count with cost $0 "
        "(price_source 'unknown') until you add it to price_overrides or the prices_file"
    )
    rows = rows_of(windows)
    got = [(r["model"], r["price_source"], r["calls"], r["unknown_price_calls"], r["cost_usd"])
           for r in rows]  # fmt: skip
    assert got == [("x", "unknown", 2, 2, 0.0), ("y", "unknown", 1, 1, 0.0)]
    assert windows.counters()["unknown_price_calls"] == 4


def test_latency_quantiles_of_a_histogram() -> None:
    h = hist(0.5, 100.0, 100.0, 200.0, 1_000.0, 10**9)

    assert latency_quantile_ms(h, 0.0) == 0.5
    assert latency_quantile_ms(h, 0.5) == pytest.approx(100.0, rel=0.045)
    assert latency_quantile_ms(h, 0.95) == 2.0 ** (159.5 / 8)  # the last bucket
    assert latency_quantile_ms([0] * HIST_BUCKETS, 0.5) is None
    assert [latency_bucket(ms) for ms in (0.0, 0.99, 1.0, 2.0, 2.1)] == [0, 0, 1, 9, 9]


def test_grace_is_validated() -> None:
    with pytest.raises(ValueError, match="grace_s must be between 0 and 86400 s, got -1"):
        CostWindows(grace_s=-1.0)


# --- determinism ---------------------------------------------------------------------------


def traffic(n: int, seed: int) -> list[InteractionEvent]:
    """Three apps, a few models and tenants, calls up to 3 minutes out of order, some of them
    beyond the grace period; times in two time zones."""
    rng = random.Random(seed)
    out = []
    tz = [UTC, datetime.now().astimezone().tzinfo, UTC]
    for i in range(n):
        second = i * 0.7 + rng.choice([0.0, 0.0, 0.0, -rng.uniform(0, 200)])
        fields: dict[str, Any] = {
            "event_id": f"e{i}", "ts": (T0 + timedelta(seconds=second)).astimezone(tz[i % 3]),
            "app": rng.choice("abc"), "model": rng.choice(["gpt-4o", "m", "nobody-knows"]),
            "tenant": rng.choice([None, "t1", "t2"]), "input_tokens": rng.randrange(5000),
            "output_tokens": rng.randrange(800), "latency_ms": rng.lognormvariate(6, 1),
            "status": rng.choice(["ok"] * 9 + ["error"]),
            "cached_input_tokens": rng.choice([None, 100]),
            "outcome": rng.choice([None, True, False]),
            "cost_usd": rng.choice([None, None, 0.001]),
        }  # fmt: skip
        out.append(InteractionEvent(**fields))
    return out


def run(events: list[InteractionEvent], cuts: list[int], restarts: set[int]) -> list[Row]:
    """Rows from feeding ``events`` in chunks ending at ``cuts``; at a cut in ``restarts`` the
    detector's saved state goes through JSON and a new detector picks up from it."""
    store: dict[str, Any] = {}
    rows: list[Row] = []
    windows = CostWindows(store=store, watcher=CostSpike(store=store, warmup=100))
    start = 0
    for cut in [*cuts, len(events)]:
        windows.on_interactions(events[start:cut])
        store.update(json.loads(json.dumps(windows.dirty_states())))
        windows.window_rows(rows)
        if cut in restarts:
            windows = CostWindows(store=store, watcher=CostSpike(store=store, warmup=100))
        start = cut
    windows.flush_open()
    windows.window_rows(rows)
    # Each app's rows come in its own order; apps interleave as the chunks group them.
    return sorted(rows, key=lambda row: (row[1], *row[:9]))  # type: ignore[arg-type]


def test_replay_gives_the_same_rows_whatever_the_chunks_and_restarts() -> None:
    events = traffic(3_000, seed=1)
    whole = run(events, [], set())
    rng = random.Random(2)

    assert sum(r[9] for r in whole) == len(events)  # type: ignore[misc]
    assert any(r[7] for r in whole)  # some late rows
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(events)), 20))
        assert run(events, cuts, set()) == whole
        assert run(events, cuts, set(rng.sample(cuts, 5))) == whole
    assert run(events, list(range(1, len(events))), set(range(1, len(events), 97))) == whole


def test_the_cost_package_imports_no_broker_or_database_client() -> None:
    code = (
        "import sys, slowleak.streams.core.cost;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust', 'kafka', 'aiokafka', 'clickhouse_connect', 'chdb', 'mode'});"
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_windows_price_calls_as_the_book_does() -> None:
    events = [e for e in traffic(2_000, seed=3) if e.app == "a"]
    windows = CostWindows(grace_s=0.0)
    windows.on_interactions(events)
    windows.flush_open()
    rows = rows_of(windows)
    book = PriceBook()
    by_key: dict[tuple[Any, ...], float] = {}
    for event in sorted(events, key=lambda e: e.ts):
        priced = book.price(event)
        key = (event.ts.replace(second=0, microsecond=0).astimezone(UTC), event.model,
               event.tenant or "", priced.price_source)  # fmt: skip
        by_key[key] = by_key.get(key, 0.0) + priced.cost_usd

    got = {}
    for r in rows:
        key = (r["window_start"], r["model"], r["tenant"], r["price_source"])
        got[key] = got.get(key, 0.0) + r["cost_usd"]
    assert got.keys() == by_key.keys()
    for key, cost in by_key.items():
        assert got[key] == pytest.approx(cost, rel=1e-12, abs=1e-15)


def test_blocks_and_their_tokens_do_not_depend_on_the_chunks() -> None:
    events = traffic(1_500, seed=4)

    def blocks(chunk: int) -> list[tuple[str, list[Row]]]:
        store: dict[str, Any] = {}
        out: list[tuple[str, list[Row]]] = []
        for start in range(0, len(events), chunk):
            windows = CostWindows(store=store)
            windows.on_interactions(events[start : start + chunk])
            store.update(json.loads(json.dumps(windows.dirty_states())))
            windows.window_blocks(out)
        windows.flush_open(apps="abc")
        windows.window_blocks(out)
        return sorted(out, key=lambda block: block[0])

    whole = blocks(len(events))
    assert len(whole) > 50  # about one per app and minute
    assert blocks(13) == whole
    assert all(block_token(rows) == token for token, rows in whole)


def test_a_crash_between_state_insert_and_commit_counts_every_call_once() -> None:
    """A worker that crashes (its state already saved, its inserts and offset commit not all
    done) and reads again from the committed offset: each app skips what its saved state
    counted (the fence), blocks not known to be inserted are sent again from the saved outbox,
    and ClickHouse drops a block whose token it has seen. The rows equal a crash-free run's."""
    events = traffic(3_000, seed=3)
    whole = run(events, [], set())
    rng = random.Random(4)
    store: dict[str, Any] = {}
    inserted: dict[str, list[Row]] = {}  # token -> rows: ClickHouse's insert deduplication

    def new_windows() -> CostWindows:
        return CostWindows(store=store, watcher=CostSpike(store=store, warmup=100))

    windows, pending, committed, position, crashes, replayed = new_windows(), [], 0, 0, 0, 0
    while position < len(events):
        end = min(len(events), position + rng.randrange(1, 100))
        windows.on_interactions(events[position:end], [(0, i) for i in range(position, end)])
        out = type("Out", (), {"blocks": []})()
        windows.write_rows(out)
        store.update(json.loads(json.dumps(windows.dirty_states())))  # the changelog
        pending += out.blocks
        position = end
        if rng.random() < 0.3:  # the sink writes, then the offsets are committed
            for block in pending:
                inserted.setdefault(block.token, block.rows)
                block.written(block.token)
            pending, committed = [], position
        if rng.random() < 0.15 and crashes < 8:  # SIGKILL: unwritten blocks are gone
            crashes += 1
            replayed += windows.replayed_calls
            windows, pending, position = new_windows(), [], committed
    windows.flush_open(apps="abc")
    out = type("Out", (), {"blocks": []})()
    windows.write_rows(out)
    for block in [*pending, *out.blocks]:
        inserted.setdefault(block.token, block.rows)
    rows = sorted((r for b in inserted.values() for r in b), key=lambda row: (row[1], *row[:9]))
    assert crashes >= 5
    assert replayed + windows.replayed_calls > 0
    assert rows == whole


def test_calls_of_many_closed_minutes_are_emitted_early_and_the_state_stays_small() -> None:
    """A backfill in reverse order: calls of 200 closed minutes. Their deltas go out 64 minutes
    at a time (late = 2, 3, 4 before the next close), every call is in a row once, and the
    app's state (one changelog message) stays small."""
    store: dict[str, Any] = {}
    windows = CostWindows(store=store, prices=PRICES)
    calls = [call(86_400)] + [call(60.0 * (200 - i) + 1) for i in range(200)]
    windows.on_interactions(calls)
    largest = max(len(json.dumps(state)) for state in windows.dirty_states().values())
    rows = rows_of(windows)
    assert sorted({r["late"] for r in rows}) == [2, 3, 4]
    assert sum(r["calls"] for r in rows) == 3 * 64
    windows.flush_open()
    rows += rows_of(windows)
    assert sum(r["calls"] for r in rows) == len(calls)
    keys = [(r["window_start"], r["late"], r["emitted_at"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert largest < 64 * 1024
