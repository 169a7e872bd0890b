"""Events/s through slowleak's broker-free core: decode + validate + row building, one core.

What one worker process does per Kafka chunk, minus Kafka and ClickHouse:
``Processor.interactions(chunk, out)`` over chunks of 5,000 records, and the rows handed to a
buffer that is dropped every ``sink_batch_rows`` (20,000) rows, as the sink does. The baseline,
timed in the same run over the same bytes, is ``orjson.loads`` alone. Each case runs with
Python's default GC thresholds and with the worker's ``GC_THRESHOLDS``; cases are interleaved
within each repeat so machine noise hits them alike. One more case adds the worker's default
detectors (``core+detectors``), for what the worker actually runs per event; the target
(100,000 events/s) is for the core alone, with the worker's GC thresholds.

    .venv/bin/python benchmarks/bench_core.py                 # 100k events, 5 repeats
    .venv/bin/python benchmarks/bench_core.py --json --cpu 0  # pinned to CPU 0, plus a JSON line
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from slowleak.streams.core import Output, Processor
from slowleak.streams.core.detectors import default_detectors
from slowleak.streams.synthetic import TrafficGenerator

TARGET_EVENTS_PER_S = 100_000
CHUNK_RECORDS = 5_000
#: The sink's default ``sink_batch_rows``: rows stay alive in its buffer until a flush.
SINK_BATCH_ROWS = 20_000
DEFAULT_GC = (700, 10, 10)


@dataclass(frozen=True, slots=True)
class Record:
    """The fields of aiokafka's ``ConsumerRecord`` that the core reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def worker_gc_thresholds() -> tuple[int, ...]:
    from slowleak.streams.app import GC_THRESHOLDS  # imports faust: only for the constant

    return tuple(GC_THRESHOLDS)


def make_chunks(n: int, *, with_text: bool, seed: int) -> list[list[Record]]:
    gen = TrafficGenerator(seed=seed, start=datetime.now(UTC) - timedelta(days=1))
    records = []
    for offset in range(n):
        event = gen.interaction(with_text=with_text)
        records.append(
            Record("slowleak.events", 0, offset, event["app"].encode(), orjson.dumps(event))
        )
    return [records[i : i + CHUNK_RECORDS] for i in range(0, n, CHUNK_RECORDS)]


def run_orjson(chunks: Sequence[Sequence[Record]]) -> int:
    loads = orjson.loads
    n = 0
    for chunk in chunks:
        for record in chunk:
            loads(record.value)  # type: ignore[arg-type]
        n += len(chunk)
    return n


def run_core(chunks: Sequence[Sequence[Record]], *, detectors: bool = False) -> int:
    """The worker's per-chunk work; ``detectors``: also the default detectors, whose changed
    states are collected once per chunk (into a dict here, a faust table in the worker)."""
    store: dict[str, object] = {}
    processor = Processor(detectors=default_detectors(store) if detectors else ())
    out = Output()
    buffered: list[object] = []
    for chunk in chunks:
        out.clear()
        processor.interactions(chunk, out)
        store.update(processor.dirty_states())
        buffered.extend(out.events)
        if len(buffered) >= SINK_BATCH_ROWS:
            buffered = []
    stats = processor.stats
    if stats.rejected or stats.interactions != sum(len(c) for c in chunks):
        raise SystemExit(f"core rejected events: {stats}")
    return stats.interactions


def run_core_detectors(chunks: Sequence[Sequence[Record]]) -> int:
    return run_core(chunks, detectors=True)


def timed(
    fn: Callable[[Sequence[Sequence[Record]]], int],
    chunks: list[list[Record]],
    thresholds: tuple[int, ...],
) -> float:
    """Events/s of one pass, with the GC thresholds set for the pass only."""
    saved = gc.get_threshold()
    gc.collect()
    gc.set_threshold(*thresholds)
    try:
        started = time.perf_counter()
        n = fn(chunks)
        elapsed = time.perf_counter() - started
    finally:
        gc.set_threshold(*saved)
    return n / elapsed


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

    worker_gc = worker_gc_thresholds()
    data = {
        "no_text": make_chunks(args.events, with_text=False, seed=args.seed),
        "short_text": make_chunks(args.events, with_text=True, seed=args.seed),
    }
    sizes = {
        name: statistics.mean(len(r.value or b"") for c in chunks for r in c)
        for name, chunks in data.items()
    }
    cases: list[tuple[str, str, Callable[..., int], tuple[int, ...]]] = []
    for name in data:
        cases.append((f"orjson.loads {name} (baseline)", name, run_orjson, DEFAULT_GC))
        cases.append((f"core {name}, default GC", name, run_core, DEFAULT_GC))
        cases.append((f"core {name}, worker GC", name, run_core, worker_gc))
        cases.append((f"core+detectors {name}, worker GC", name, run_core_detectors, worker_gc))

    timed(run_core, data["no_text"][:2], DEFAULT_GC)  # warm up imports and caches
    rates: dict[str, list[float]] = {label: [] for label, *_ in cases}
    for _ in range(args.repeats):
        for label, name, fn, thresholds in cases:
            rates[label].append(timed(fn, data[name], thresholds))

    print(
        f"bench_core: {args.events:,} events in chunks of {CHUNK_RECORDS:,}, {args.repeats} "
        f"repeats, Python {platform.python_version()}, {os.cpu_count()} CPUs"
        + (f", pinned to CPU {args.cpu}" if args.cpu is not None else "")
    )
    print(
        f"event size: no_text {sizes['no_text']:.0f} B, short_text {sizes['short_text']:.0f} B;"
        f" GC default {DEFAULT_GC}, worker {worker_gc}"
    )
    print(f"{'case':<40} {'median ev/s':>12} {'min':>10} {'max':>10} {'us/ev':>7}")
    summary: dict[str, dict[str, float]] = {}
    for label, *_ in cases:
        values = rates[label]
        median = statistics.median(values)
        summary[label] = {
            "median": round(median),
            "min": round(min(values)),
            "max": round(max(values)),
        }
        print(
            f"{label:<40} {median:>12,.0f} {min(values):>10,.0f} {max(values):>10,.0f} "
            f"{1e6 / median:>7.2f}"
        )
    verdicts = []
    for name in data:
        core = summary[f"core {name}, worker GC"]["median"]
        base = summary[f"orjson.loads {name} (baseline)"]["median"]
        ok = core >= TARGET_EVENTS_PER_S
        verdicts.append(ok)
        print(
            f"target {name}: core (worker GC) {core:,.0f} ev/s >= {TARGET_EVENTS_PER_S:,}: "
            f"{'PASS' if ok else 'FAIL'}  ({core / base:.2f}x of orjson.loads alone)"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "core",
                    "events": args.events,
                    "chunk": CHUNK_RECORDS,
                    "repeats": args.repeats,
                    "cpu": args.cpu,
                    "gc_default": DEFAULT_GC,
                    "gc_worker": worker_gc,
                    "event_bytes": {k: round(v) for k, v in sizes.items()},
                    "events_per_s": summary,
                    "target": TARGET_EVENTS_PER_S,
                    "pass": all(verdicts),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
