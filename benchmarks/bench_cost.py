"""Events/s of the cost windows beside the core's, one core.

Same traffic and chunking as ``bench_core.py`` (its ``make_chunks``), without the callers'
``cost_usd`` so every call is priced from the shipped table (the slower path). Cases, interleaved
within each repeat:

- ``core``: ``Processor.interactions`` with no detector (bench_core's ``core``);
- ``core+windows``: the same with :class:`CostWindows` as a chunk detector, its window rows
  drained after every chunk and its changed state collected, as the worker does;
- ``core+cost``: windows, their ``CostSpike`` watcher and ``CostBudget`` (two budgets);
- ``windows alone``: ``CostWindows.on_interactions`` over the decoded events.

The target: ``core+windows`` at least 70% of ``core`` (the windows cost at most 30% of the
core's throughput).

    .venv/bin/python benchmarks/bench_cost.py                 # 100k events, 5 repeats
    .venv/bin/python benchmarks/bench_cost.py --json --cpu 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

import orjson
from bench_core import DEFAULT_GC, Record, make_chunks, timed, worker_gc_thresholds

from slowleak.models import InteractionEvent
from slowleak.streams.core import Output, Processor
from slowleak.streams.core.cost import Budget, CostBudget, CostSpike, CostWindows, PriceBook

#: The windows may cost at most this share of the core's throughput.
MAX_SHARE = 0.30
BUDGETS = (
    Budget(scope="app", name="support-bot", period="month", amount_usd=50_000.0),
    Budget(scope="tenant", name="acme", period="day", amount_usd=500.0),
)


def uncosted(chunks: list[list[Record]]) -> list[list[Record]]:
    """The chunks without the callers' ``cost_usd``: every call is priced from the table."""
    out = []
    for chunk in chunks:
        new = []
        for record in chunk:
            event = orjson.loads(record.value or b"{}")
            event.pop("cost_usd", None)
            new.append(replace(record, value=orjson.dumps(event)))
        out.append(new)
    return out


def run(chunks: Sequence[Sequence[Record]], prices: PriceBook, case: str) -> int:
    store: dict[str, object] = {}
    detectors: list[object] = []
    windows: CostWindows | None = None
    if case != "core":
        spike = CostSpike(store=store) if case == "core+cost" else None
        windows = CostWindows(store=store, prices=prices, watcher=spike)
        detectors.append(windows)
    if case == "core+cost":
        detectors.append(CostBudget(store=store, prices=prices, budgets=BUDGETS))
    processor = Processor(detectors=detectors)  # type: ignore[arg-type]
    out = Output()
    rows: list[object] = []
    for chunk in chunks:
        out.clear()
        processor.interactions(chunk, out)
        store.update(processor.dirty_states())
        if windows is not None:
            windows.window_rows(rows)  # type: ignore[arg-type]
            rows.clear()
    return processor.stats.interactions


def run_windows_alone(events: Sequence[Sequence[InteractionEvent]], prices: PriceBook) -> int:
    store: dict[str, object] = {}
    windows = CostWindows(store=store, prices=prices)
    rows: list[object] = []
    for chunk in events:
        windows.on_interactions(chunk)
        store.update(windows.dirty_states())
        windows.window_rows(rows)  # type: ignore[arg-type]
        rows.clear()
    return sum(len(c) for c in events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU (Linux)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    gc_worker = worker_gc_thresholds()
    chunks = uncosted(make_chunks(args.events, with_text=False, seed=args.seed))
    events = [[InteractionEvent.model_validate_json(r.value or b"") for r in c] for c in chunks]
    prices = PriceBook()
    cases: dict[str, Callable[[Sequence[Sequence[Record]]], int]] = {
        name: (lambda c, name=name: run(c, prices, name))  # type: ignore[misc]
        for name in ("core", "core+windows", "core+cost")
    }
    cases["windows alone"] = lambda _: run_windows_alone(events, prices)
    timed(lambda c: run(c, prices, "core+cost"), chunks[:2], DEFAULT_GC)  # warm up
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            rates[name].append(timed(fn, chunks, gc_worker))

    print(
        f"bench_cost: {args.events:,} events (no caller cost_usd) in chunks of "
        f"{len(chunks[0]):,}, {args.repeats} repeats, worker GC {gc_worker}, Python "
        f"{platform.python_version()}" + (f", pinned to CPU {args.cpu}" if args.cpu else "")
    )
    print(f"{'case':<16} {'median ev/s':>12} {'min':>10} {'max':>10} {'us/ev':>7}")
    summary = {}
    for name, values in rates.items():
        median = statistics.median(values)
        summary[name] = round(median)
        print(
            f"{name:<16} {median:>12,.0f} {min(values):>10,.0f} {max(values):>10,.0f} "
            f"{1e6 / median:>7.2f}"
        )
    core, with_windows = summary["core"], summary["core+windows"]
    share = 1.0 - with_windows / core
    ok = share <= MAX_SHARE
    print(
        f"target: core+windows {with_windows:,} ev/s is {with_windows / core:.0%} of core "
        f"{core:,} ev/s (windows cost {share:.0%} <= {MAX_SHARE:.0%}): {'PASS' if ok else 'FAIL'}"
    )
    if args.json:
        print(json.dumps({"benchmark": "cost", "events": args.events, "cpu": args.cpu,
                          "events_per_s": summary, "windows_share": round(share, 3),
                          "pass": ok}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
