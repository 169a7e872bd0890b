"""Drift detectors against the product bar, next to river's ADWIN, DDM and PageHinkley.

One run prints three tables, for the detectors in ``slowleak.streams.core.stats`` at their
default settings and river's at their defaults:

1. false alarms per 1,000,000 stable events per key. Ours: keys simulated as independent cycles
   (a warm-up, then up to 100,000 monitored stable events or until the first alarm, after which
   the documented reset policy starts a new cycle), alarms / monitored events, warm-ups not
   counted; at least 20M stable events per family, with the vectorised simulation of the very
   recursion the classes run (checked first: same firing event as the classes on a few streams).
   River's fire far more often and are measured on 2M events: 20 streams of 100,000, counting
   every detection (river's detectors reset themselves after one).
2. detection: a change at event 50,000 (warm-ups included): detected (within the horizon given),
   median and p90 delay in events after the change, the firing event counting as 1. Our runs
   that alarm before the change are counted apart and left out of the delays; river's count
   their first detection at or after the change (they reset and go on after false alarms).
3. speed: microseconds per update of each detector, one event at a time in Python.

The scenarios: a success rate 0.83 -> 0.81 and 0.83 -> 0.70 (``BernoulliDrift``, down; river's
on the success indicator, DDM on the error indicator); a log-normal latency (sigma_log 0.6) whose
median rises 10% (``MeanShift`` on log latency; river's ADWIN and PageHinkley on log latency)
and whose p95 doubles with the median unchanged (``TailShift``; ADWIN and PageHinkley on log
latency, DDM on ``latency > true p95``, a cutoff our detector has to estimate). The seeds are
printed; they differ from ``drift_calibration.py``'s.

    .venv/bin/python benchmarks/bench_drift.py           # ~2 min on 2 cores
    .venv/bin/python benchmarks/bench_drift.py --quick   # a tenth of the runs
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from river import drift
from scipy.special import ndtr  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).parent))
import drift_calibration as sim

from slowleak.streams.core.stats import BernoulliDrift, MeanShift, TailShift
from slowleak.streams.core.stats.thresholds import GAMMA

SEED = 31_337_000  # the calibration used 20_261_125 + i
CHANGE_AT = 50_000
SIGMA = 0.6
MEDIAN_UP = math.log(1.1) / SIGMA  # +10% median, in sd of log latency
WIDER = (SIGMA + math.log(2.0) / 1.6448536269514722) / SIGMA  # p95 x2, median unchanged
Q95 = 1.6448536269514722
HORIZON = 100_000


# --- our detectors, vectorised -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One simulated population of keys for one of our detectors."""

    family: str  # "bernoulli" | "mean" | "tail"
    direction: str
    warmup: int
    p: float = 0.83  # Bernoulli: rate before the change
    p_after: float = 0.83
    shift: float = 0.0  # mean: after the change, in sd of log latency
    spread: float = 1.0  # mean and tail: sd after the change, in sd
    quantile_warmup: int = 1_000  # tail


def run_case(case: Case, keys: int, monitored_before: int, after: int, seed: int) -> np.ndarray:
    """First firing per key, as a monitored-event index (NEVER if none)."""
    rng = np.random.default_rng(seed)
    total = monitored_before + after
    levels = np.array([1.0])
    if case.family == "mean":
        mean, sd = sim.gaussian_warmup(rng, keys, case.warmup)
        bank = sim.gaussian_banks(
            keys, warmup=case.warmup, direction=case.direction,
            gamma=GAMMA["gaussian", 2 if case.direction == "both" else 1], per_gamma=False,
        )  # fmt: skip
        source = sim.gaussian_source(
            rng, mean, sd, 3.0, monitored_before, shift=case.shift, spread=case.spread
        )
        return sim.first_passage(bank, source, total, levels)[:, 0]
    if case.family == "tail":
        rank = math.ceil(0.95 * case.quantile_warmup) - 1
        first = rng.standard_normal((keys, case.quantile_warmup))
        cutoff = np.partition(first, rank, axis=1)[:, rank]
        p, p_after = ndtr(-cutoff), ndtr(-cutoff / case.spread)
    else:
        p, p_after = np.full(keys, case.p), np.full(keys, case.p_after)
    ones = rng.binomial(case.warmup, p)
    bank = sim.bernoulli_banks(
        ones, warmup=case.warmup, direction=case.direction,
        gamma=GAMMA["bernoulli", 2 if case.direction == "both" else 1], per_gamma=False,
    )  # fmt: skip
    bits = sim.bernoulli_source(rng, p, p_after, monitored_before)
    return sim.first_passage(bank, bits, total, levels)[:, 0]


def warmup_events(case: Case) -> int:
    return case.warmup + (case.quantile_warmup if case.family == "tail" else 0)


def false_alarms(case: Case, keys: int, seed: int) -> tuple[int, int]:
    first = run_case(case, keys, HORIZON, 0, seed)
    _, alarms, exposure = sim.false_alarm_rate(first[:, None], HORIZON)
    return int(alarms[0]), int(exposure[0])


def delays(case: Case, runs: int, after: int, seed: int) -> tuple[list[int], int, int]:
    """Delays of the runs that fire after the change, runs that fired before it, and runs."""
    before = CHANGE_AT - warmup_events(case)
    first = run_case(case, runs, before, after, seed)
    early = int((first < before).sum())
    late = first[(first >= before) & (first < before + after)]
    return [int(t - before + 1) for t in late], early, runs


# --- the classes, one event at a time ----------------------------------------------------------


def make(case: Case) -> Any:
    if case.family == "bernoulli":
        return BernoulliDrift(direction=case.direction, warmup=case.warmup)  # type: ignore[arg-type]
    if case.family == "mean":
        return MeanShift(direction=case.direction, warmup=case.warmup)  # type: ignore[arg-type]
    return TailShift(warmup=case.warmup, quantile_warmup=case.quantile_warmup)


def events(case: Case, rng: np.random.Generator, n: int, change: int) -> list[Any]:
    """What the class is fed: booleans, log latencies, latencies (median 800 ms)."""
    after = np.arange(n) >= change
    if case.family == "bernoulli":
        return (rng.random(n) < np.where(after, case.p_after, case.p)).tolist()  # type: ignore[no-any-return]
    z = rng.standard_normal(n)
    z[after] = case.shift + case.spread * z[after]
    log_latency = math.log(800.0) + SIGMA * z
    return (log_latency if case.family == "mean" else np.exp(log_latency)).tolist()  # type: ignore[no-any-return]


def check_against_classes(case: Case, streams: int, seed: int) -> tuple[int, int]:
    """Streams where the class and the vectorised recursion first fire at the same event."""
    rng = np.random.default_rng(seed)
    n, change = 60_000, 30_000
    data = [events(case, rng, n, change) for _ in range(streams)]
    fired, refs = [], []
    for xs in data:
        detector = make(case)
        fired.append(next((i for i, x in enumerate(xs) if detector.update(x)), -1))
        replay = make(case)  # the frozen reference, read at the end of the warm-up
        for x in xs[: warmup_events(case)]:
            replay.update(x)
        refs.append(replay)
    skip = warmup_events(case)
    if case.family == "mean":
        mean = np.array([d.reference for d in refs])
        sd = np.array([d.scale for d in refs])
        raw = np.array(data)[:, skip:]
        bank = sim.gaussian_banks(
            streams, warmup=case.warmup, direction=case.direction,
            gamma=GAMMA["gaussian", 2 if case.direction == "both" else 1], per_gamma=False,
        )  # fmt: skip

        def source(t0: int, c: int) -> np.ndarray:
            z: np.ndarray = (raw[:, t0 : t0 + c] - mean[:, None]) / sd[:, None]
            np.clip(z, -3.0, 3.0, out=z)
            return z

    else:
        if case.family == "tail":
            cut = np.array([d.cutoff for d in refs])
            bits = np.array(data)[:, case.quantile_warmup :] > cut[:, None]
        else:
            bits = np.array(data, dtype=bool)
        ones = bits[:, : case.warmup].sum(axis=1)
        bits = bits[:, case.warmup :]
        bank = sim.bernoulli_banks(
            ones, warmup=case.warmup, direction=case.direction,
            gamma=GAMMA["bernoulli", 2 if case.direction == "both" else 1], per_gamma=False,
        )  # fmt: skip

        def source(t0: int, c: int) -> np.ndarray:
            return bits[:, t0 : t0 + c]

    first = sim.first_passage(bank, source, n - skip, np.array([1.0]))[:, 0]
    vectorised = [-1 if t == sim.NEVER else int(t) + skip for t in first]
    return sum(a == b for a, b in zip(fired, vectorised, strict=True)), streams


def microseconds(detector: Any, xs: Sequence[Any]) -> float:
    for x in xs[: len(xs) // 2]:  # warm up (ours) and fill windows (river's)
        detector.update(x)
    rest = xs[len(xs) // 2 :]
    started = time.perf_counter()
    for x in rest:
        detector.update(x)
    return (time.perf_counter() - started) / len(rest) * 1e6


# --- river --------------------------------------------------------------------------------------


RIVER: dict[str, Callable[[], Any]] = {
    "river ADWIN": drift.ADWIN,
    "river DDM": drift.binary.DDM,
    "river PageHinkley": drift.PageHinkley,
}


def river_input(name: str, case: Case, xs: list[Any]) -> list[Any]:
    """What river's detector is fed for a scenario (None: does not apply)."""
    if case.family == "bernoulli":
        return [not x for x in xs] if name == "river DDM" else [float(x) for x in xs]
    if name == "river DDM":
        if case.family == "mean":
            return []
        cutoff = 800.0 * math.exp(SIGMA * Q95)
        return [x > cutoff for x in xs]
    return xs if case.family == "mean" else [math.log(x) for x in xs]


def river_runs(name: str, case: Case, runs: int, after: int, seed: int) -> tuple[list[int], int]:
    """Delays of river's detector (first detection at or after the change) and misses."""
    rng = np.random.default_rng(seed)
    found, missed = [], 0
    for _ in range(runs):
        xs = river_input(name, case, events(case, rng, CHANGE_AT + after, CHANGE_AT))
        if not xs:
            return [], -1
        detector = RIVER[name]()
        for i, x in enumerate(xs):
            detector.update(x)
            if detector.drift_detected and i >= CHANGE_AT:
                found.append(i - CHANGE_AT + 1)
                break
        else:
            missed += 1
    return found, missed


def river_false_alarms(name: str, case: Case, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    alarms = total = 0
    for _ in range(20):
        xs = river_input(name, case, events(case, rng, 100_000, 100_000))
        if not xs:
            return -1, 0
        detector = RIVER[name]()
        for x in xs:
            detector.update(x)
            alarms += detector.drift_detected
        total += len(xs)
    return alarms, total


# --- the tables ----------------------------------------------------------------------------------


def ours(case: Case) -> str:
    family = {"bernoulli": "BernoulliDrift", "mean": "MeanShift", "tail": "TailShift"}
    return f"{family[case.family]}({case.direction}, warmup={case.warmup:,})"


def summary(found: Sequence[int], runs: int) -> str:
    if not found:
        return f"{0:>4}/{runs:<4} {'-':>7} {'-':>7}"
    p90 = float(np.percentile(found, 90))
    return f"{len(found):>4}/{runs:<4} {statistics.median(found):>7,.0f} {p90:>7,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the runs")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    seeds = iter(range(SEED, SEED + 1_000))
    started = time.perf_counter()
    print(f"GAMMA {GAMMA}; seeds {SEED}.. (calibration: 20261125..); change at {CHANGE_AT:,}")

    acc = Case("bernoulli", "down", 30_000)
    lat = Case("mean", "both", 10_000)
    tail = Case("tail", "up", 10_000)
    scenarios = [
        ("accuracy 0.83 -> 0.81", Case("bernoulli", "down", 30_000, p_after=0.81), 100_000),
        ("accuracy 0.83 -> 0.70", Case("bernoulli", "down", 30_000, p_after=0.70), 5_000),
        ("latency median +10%", Case("mean", "both", 10_000, shift=MEDIAN_UP), 20_000),
        ("latency p95 x2, same median", Case("tail", "up", 10_000, spread=WIDER), 5_000),
    ]
    extra = [  # the warm-up trade-off for the small drop
        ("accuracy 0.83 -> 0.81", Case("bernoulli", "down", w, p_after=0.81), 100_000)
        for w in (2_000, 10_000, 20_000, 40_000)
    ]

    print("\nvectorised simulation vs the classes, first firing event on the same streams:")
    checks = [
        Case("bernoulli", "down", 30_000, p_after=0.79),
        Case("bernoulli", "both", 2_000, p_after=0.9),
        Case("mean", "both", 10_000, shift=0.3),
        Case("tail", "up", 10_000, spread=WIDER),
    ]
    for case in checks:
        same, n = check_against_classes(case, 20, next(seeds))
        print(f"  {ours(case):44} {same}/{n} identical")

    fa_cases = [
        (acc, 1_000), (Case("bernoulli", "down", 30_000, p=0.5, p_after=0.5), 250),
        (Case("bernoulli", "down", 30_000, p=0.95, p_after=0.95), 250),
        (Case("bernoulli", "down", 30_000, p=0.99, p_after=0.99), 250),
        (Case("bernoulli", "both", 30_000), 250), (lat, 1_000), (tail, 500),
    ]  # fmt: skip
    with ProcessPoolExecutor(2) as pool:
        fa_jobs = [
            pool.submit(false_alarms, case, max(20, int(keys * scale)), next(seeds))
            for case, keys in fa_cases
        ]
        delay_jobs = [
            pool.submit(delays, case, max(50, int(1_000 * scale)), after, next(seeds))
            for _, case, after in scenarios + extra
        ]
        river_fa = {
            (name, case.family): pool.submit(river_false_alarms, name, case, next(seeds))
            for case in (acc, lat, tail)
            for name in RIVER
        }
        river_delay = {
            (title, name): pool.submit(
                river_runs, name, case, max(10, int((100 if "0.81" in title else 200) * scale)),
                after, next(seeds),
            )
            for title, case, after in scenarios
            for name in RIVER
        }  # fmt: skip

        print("\nfalse alarms per 1,000,000 stable events, per key:")
        print(f"  {'detector':44} {'stream':30} {'events':>8} {'alarms':>6} {'per 1M':>7}")
        for (case, _), job in zip(fa_cases, fa_jobs, strict=True):
            alarms, exposure = job.result()
            stream = {"bernoulli": f"success rate {case.p}", "mean": "log-normal latency",
                      "tail": "log-normal latency"}[case.family]  # fmt: skip
            print(
                f"  {ours(case):44} {stream:30} {exposure / 1e6:7.0f}M {alarms:6d} "
                f"{alarms / exposure * 1e6:7.2f}"
            )
        for (name, family), river_job in river_fa.items():
            alarms, total = river_job.result()
            if alarms < 0:
                continue
            stream = {"bernoulli": "success rate 0.83", "mean": "log latency",
                      "tail": "latency > true p95"}[family]  # fmt: skip
            if family == "tail" and name != "river DDM":
                continue  # the same stream as "log latency"
            print(
                f"  {name + ' (defaults)':44} {stream:30} {total / 1e6:7.0f}M {alarms:6d} "
                f"{alarms / total * 1e6:7.1f}"
            )

        print(f"\ndetection, change at event {CHANGE_AT:,} (delays in events after it):")
        print(
            f"  {'scenario':28} {'detector':44} {'horizon':>7} {'detected':>9} "
            f"{'median':>7} {'p90':>7} {'alarms before':>13}"
        )
        for (title, case, after), delay_job in zip(scenarios + extra, delay_jobs, strict=True):
            found, early, runs = delay_job.result()
            print(
                f"  {title:28} {ours(case):44} {after:7,} {summary(found, runs - early)} "
                f"{early:>6}/{runs}"
            )
            if (title, case, after) in extra:
                continue
            for name in RIVER:
                found, missed = river_delay[title, name].result()
                if missed < 0:
                    continue
                print(
                    f"  {'':28} {name + ' (defaults)':44} {after:7,} "
                    f"{summary(found, len(found) + missed)} {'-':>13}"
                )

    print("\nspeed, one event at a time (after the warm-up):")
    rng = np.random.default_rng(next(seeds))
    for case in (acc, Case("bernoulli", "both", 30_000), lat, tail):
        xs = events(case, rng, 2 * max(200_000, 2 * warmup_events(case)), 10**9)
        us = microseconds(make(case), xs)
        print(f"  {ours(case):44} {us:5.2f} us/update  {1e6 / us:10,.0f} updates/s")
    for name in RIVER:
        xs = river_input(name, acc, events(acc, rng, 400_000, 10**9))
        us = microseconds(RIVER[name](), xs)
        print(
            f"  {name + ' (on the success indicator)':44} {us:5.2f} us/update  "
            f"{1e6 / us:10,.0f} updates/s"
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
