"""Drift detectors against the product bar, next to river's ADWIN, DDM and PageHinkley.

One run prints five tables, for the detectors in ``slowleak.streams.core.stats`` at their
default settings (and the settings ``streams/core/detectors/signals.py`` gives them) and river's
at their defaults:

1. false alarms per 1,000,000 stable events per key. Ours: keys simulated as independent cycles
   (a warm-up, then up to 100,000 monitored stable events or until the first alarm, after which
   the documented reset policy starts a new cycle), alarms / monitored events, warm-ups not
   counted; at least 20M stable events per family, with the vectorised simulation of the very
   recursion the classes run (checked first: same firing event as the classes on a few streams).
   ``CategoricalShift`` is run as the class itself (``update_many``, which the tests hold equal
   to ``update``), on 50M events of an intent mix 0.49/0.2/0.15/0.1/0.05 plus five rare intents
   at 0.002 (pooled as "(other)"). River's fire far more often and are measured on 2M events:
   20 streams of 100,000, counting every detection (river's detectors reset themselves after
   one).
2. detection: a change at event 50,000 (warm-ups included): detected (within the horizon given),
   median and p90 delay in events after the change, the firing event counting as 1. Our runs
   that alarm before the change are counted apart and left out of the delays; river's count
   their first detection at or after the change (they reset and go on after false alarms).
3. the intent mix, a change at event 30,000: one intent 0.10 -> 0.15 (the others scaled down in
   proportion) and a new intent appearing at 5% (the others x 0.95). River has no categorical
   detector: its row is ADWIN on the indicator of the intent that moves, which assumes one
   knows in advance which one will.
4. the silent model change: the real ``KeyMonitor`` (every signal in ``SIGNALS``,
   ``on_calls`` on chunks of 500 validated ``InteractionEvent``s) on one key per seed; at call
   40,000, after every signal's warm-up, the median latency rises 15% and output length
   (characters and tokens) falls 20% with the declared ``response_model`` and
   ``system_fingerprint`` unchanged. Delay in calls from the change to the silent
   ``model_change`` alert (median, p90; the bar is a median of at most 1,000), runs that raise
   one before the change, and every other firing alert (resolve decisions are left out).
5. speed: microseconds per event of each detector, ``update()`` one event at a time and
   ``update_many()`` on chunks of 500 (what the worker does per key per chunk), after the
   warm-up; river's one at a time; a whole ``KeyMonitor.on_calls`` per call.

The scenarios: a success rate 0.83 -> 0.81 and 0.83 -> 0.70 (``BernoulliDrift``, down; river's
on the success indicator, DDM on the error indicator); a log-normal latency (sigma_log 0.6) whose
median rises 10% (``MeanShift`` on log latency; river's ADWIN and PageHinkley on log latency)
and whose p95 doubles with the median unchanged (``TailShift``; ADWIN and PageHinkley on log
latency, DDM on ``latency > true p95``, a cutoff our detector has to estimate); an error rate
0.5% -> 5% and 0 -> 5% (``BernoulliDrift("up", warmup=10_000, min_reference=0.01)``, as the
``error_rate`` and ``refusal_rate`` signals run it; river's on the error indicator). The seeds
are printed; they differ from ``drift_calibration.py``'s, and the rows added after the first
version draw theirs from a second range, so the first version's rows keep their seeds. The
success rate of one intent (``BernoulliDrift("down", warmup=INTENT_WARMUP)``, as
``intent_signal`` runs it: its stable rate, a large drop and a small one) draws from a third.

    .venv/bin/python benchmarks/bench_drift.py           # 3.5-4.5 min on 2 cores
    .venv/bin/python benchmarks/bench_drift.py --quick   # a tenth of the runs, ~40 s
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from river import drift
from scipy.special import ndtr  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).parent))
import drift_calibration as sim

from slowleak.models import InteractionEvent
from slowleak.streams.core.detectors.drift import KeyMonitor
from slowleak.streams.core.detectors.signals import INTENT_WARMUP, SIGNALS
from slowleak.streams.core.stats import BernoulliDrift, CategoricalShift, MeanShift, TailShift
from slowleak.streams.core.stats.thresholds import GAMMA

SEED = 31_337_000  # the calibration used 20_261_125 + i
CHANGE_AT = 50_000
SIGMA = 0.6
MEDIAN_UP = math.log(1.1) / SIGMA  # +10% median, in sd of log latency
WIDER = (SIGMA + math.log(2.0) / 1.6448536269514722) / SIGMA  # p95 x2, median unchanged
Q95 = 1.6448536269514722
HORIZON = 100_000
SILENT_SEED = 31_339_000  # one seed per simulated key
W = 50  # width of the detector column


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
    min_reference: float = 0.0  # Bernoulli: the floor of the bank's reference rate
    errors: bool = False  # Bernoulli: True is a rare bad event (an error), not a success


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
        min_reference=case.min_reference,
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
        return BernoulliDrift(
            direction=case.direction,  # type: ignore[arg-type]
            warmup=case.warmup,
            min_reference=case.min_reference,
        )
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
            min_reference=case.min_reference,
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
    if case.family == "bernoulli":  # DDM watches the rate of bad events
        if name == "river DDM":
            return xs if case.errors else [not x for x in xs]
        return [float(x) for x in xs]
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


# --- CategoricalShift, the class itself ---------------------------------------------------------

#: An intent mix: five common intents and five rare ones (0.2% each: pooled as "(other)").
INTENTS = np.array(["search", "chat", "code", "math", "translate", "r1", "r2", "r3", "r4", "r5"])
MIX = np.array([0.49, 0.2, 0.15, 0.1, 0.05] + [0.002] * 5)
CAT_WARMUP = 20_000
CAT_CHANGE = 30_000


def mix_after(kind: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Intents, their shares after the change, and the category that moves: "math" 0.10 ->
    0.15 (the others scaled down in proportion), or a new intent at 5% (the others x 0.95)."""
    if kind == "up":
        after = MIX * (0.85 / 0.90)
        after[3] = 0.15
        return INTENTS, after, "math"
    return np.append(INTENTS, "new"), np.append(MIX * 0.95, 0.05), "new"


def intents(rng: np.random.Generator, n: int, change: int, kind: str) -> list[str]:
    names, after, _ = mix_after(kind)
    before = np.append(MIX, 0.0) if len(names) > len(MIX) else MIX
    codes = rng.choice(len(names), n, p=before)
    if change < n:
        codes[change:] = rng.choice(len(names), n - change, p=after)
    return names[codes].tolist()  # type: ignore[no-any-return]


def categorical_false_alarms(keys: int, seed: int) -> tuple[int, int, list[str]]:
    """Cycles of a warm-up and up to HORIZON monitored stable values, fed with update_many:
    alarms, monitored events, and the category and direction of each alarm."""
    rng = np.random.default_rng(seed)
    alarms = exposure = 0
    moved = []
    for _ in range(keys):
        detector = CategoricalShift(warmup=CAT_WARMUP)
        taken = detector.update_many(intents(rng, CAT_WARMUP + HORIZON, 10**9, "up"))
        if detector.drift_detected:
            alarms += 1
            moved.append(f"{detector.category} {detector.direction}")
        exposure += taken - CAT_WARMUP
    return alarms, exposure, moved


def categorical_delays(kind: str, runs: int, after: int, seed: int) -> tuple[list[int], int, int]:
    rng = np.random.default_rng(seed)
    found, early = [], 0
    for _ in range(runs):
        detector = CategoricalShift(warmup=CAT_WARMUP)
        taken = detector.update_many(intents(rng, CAT_CHANGE + after, CAT_CHANGE, kind))
        if detector.drift_detected and taken <= CAT_CHANGE:
            early += 1
        elif detector.drift_detected:
            found.append(taken - CAT_CHANGE)
    return found, early, runs


def adwin_categorical(kind: str, runs: int, after: int, seed: int) -> tuple[list[int], int]:
    """river's ADWIN on the indicator of the category that moves: delays and misses."""
    rng = np.random.default_rng(seed)
    target = mix_after(kind)[2]
    found, missed = [], 0
    for _ in range(runs):
        detector = drift.ADWIN()
        for i, x in enumerate(intents(rng, CAT_CHANGE + after, CAT_CHANGE, kind)):
            detector.update(float(x == target))
            if detector.drift_detected and i >= CAT_CHANGE:
                found.append(i - CAT_CHANGE + 1)
                break
        else:
            missed += 1
    return found, missed


def adwin_categorical_false_alarms(seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    alarms = total = 0
    for _ in range(20):
        detector = drift.ADWIN()
        for x in intents(rng, 100_000, 10**9, "up"):
            detector.update(float(x == "math"))
            alarms += detector.drift_detected
            total += 1
    return alarms, total


# --- the silent model change: KeyMonitor on whole calls ----------------------------------------

KEY = "support-bot|prod|champion|gpt-4o"
T0 = datetime(2026, 11, 25, tzinfo=UTC)
SILENT_CHANGE = 40_000  # after every signal's warm-up (success rate: 30,000 outcomes)
SILENT_AFTER = 10_000
LATENCY_UP = 1.15  # median latency x 1.15
SHORTER = 0.80  # output length x 0.8
REFUSAL = "I'm sorry, I can't help with that. "


def calls(rng: np.random.Generator, start: int, n: int, change: int) -> list[InteractionEvent]:
    """``n`` validated calls of one key from call ``start``; from call ``change`` on, latency
    x LATENCY_UP and output length x SHORTER. Latency log-normal (median 800 ms, sigma_log
    0.6), output characters log-normal (median 400, sigma_log 0.4) and output tokens a quarter
    of them, input tokens log-normal (900, 0.3), 1% errors, success 0.83 on ok calls, 0.5%
    refusals, finish_reason "length" on 3%, the intent mix above, the same declared
    response_model and system_fingerprint throughout, cost from the tokens."""
    index = np.arange(start, start + n)
    after = index >= change
    latency = np.exp(
        math.log(800.0) + math.log(LATENCY_UP) * after + SIGMA * rng.standard_normal(n)
    )
    chars = np.exp(math.log(400.0) + math.log(SHORTER) * after + 0.4 * rng.standard_normal(n))
    chars = np.maximum(chars.astype(np.int64), 1)
    input_tokens = np.exp(math.log(900.0) + 0.3 * rng.standard_normal(n)).astype(np.int64)
    ok = rng.random(n) >= 0.01
    success = rng.random(n) < 0.83
    refusal = rng.random(n) < 0.005
    truncated = rng.random(n) < 0.03
    intent = INTENTS[rng.choice(len(INTENTS), n, p=MIX)]
    out = []
    for j in range(n):
        i = start + j
        length = int(chars[j])
        output_tokens = max(1, length // 4) if ok[j] else 0
        text = None
        if ok[j]:
            text = (REFUSAL + "x" * length)[:length] if refusal[j] else "x" * length
        out.append(
            InteractionEvent(
                event_id=f"c{i}", ts=T0 + timedelta(milliseconds=100 * i), app="support-bot",
                model="gpt-4o", input_tokens=int(input_tokens[j]), output_tokens=output_tokens,
                latency_ms=float(latency[j]), status="ok" if ok[j] else "error",
                intent=str(intent[j]), finish_reason=(
                    ("length" if truncated[j] else "stop") if ok[j] else None
                ), output_text=text, outcome=bool(success[j]) if ok[j] else None,
                response_model="gpt-4o-2024-08-06", system_fingerprint="fp_a",
                cost_usd=(2.5 * int(input_tokens[j]) + 10.0 * output_tokens) / 1e6,
            )
        )  # fmt: skip
    return out


@dataclass
class SilentRun:
    seed: int
    delay: int | None = None  # calls from the change to the silent model_change alert
    early_silent: int = 0  # silent model_change alerts before the change
    alerts_before: list[str] = field(default_factory=list)  # any alert before the change
    signals_after: dict[str, int] = field(default_factory=dict)  # signal -> its delay
    silent_signals: list[str] = field(default_factory=list)


def silent_runs(seeds: Sequence[int], chunk: int = 500) -> list[SilentRun]:
    """The real KeyMonitor on chunks of ``chunk`` calls, up to the first silent model_change
    after the change or SILENT_AFTER calls after it."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        monitor = KeyMonitor(KEY)
        run = SilentRun(seed)
        for start in range(0, SILENT_CHANGE + SILENT_AFTER, chunk):
            for alert in monitor.on_calls(calls(rng, start, chunk, SILENT_CHANGE)):
                if alert.status != "firing":
                    continue  # a resolve decision: the detector measured its new reference
                i = int(alert.event_id[1:])
                signal = alert.labels["signal"]
                if i < SILENT_CHANGE:
                    run.alerts_before.append(signal)
                    run.early_silent += alert.kind == "model_change"
                elif alert.kind == "model_change" and run.delay is None:
                    run.delay = i - SILENT_CHANGE + 1
                    run.silent_signals = list(alert.details["signals"])
                elif alert.kind != "model_change":
                    run.signals_after.setdefault(signal, i - SILENT_CHANGE + 1)
            if run.delay is not None:
                break
        out.append(run)
    return out


# --- speed ------------------------------------------------------------------------------------


def microseconds_many(detector: Any, xs: Sequence[Any], chunk: int = 500) -> float:
    """update_many on chunks of ``chunk`` values, after a first half that warms up."""

    def feed(values: Sequence[Any]) -> None:
        for start in range(0, len(values), chunk):
            block = values[start : start + chunk]
            while block:
                block = block[detector.update_many(block) :]

    feed(xs[: len(xs) // 2])
    rest = xs[len(xs) // 2 :]
    started = time.perf_counter()
    feed(rest)
    return (time.perf_counter() - started) / len(rest) * 1e6


def monitor_microseconds(rng: np.random.Generator, chunk: int = 500) -> tuple[float, float]:
    """µs per call of KeyMonitor.on_calls on chunks of ``chunk`` stable calls after every
    signal's warm-up, and of building those calls (validated InteractionEvents), for scale."""
    warm, timed = 35_000, 50_000
    started = time.perf_counter()
    events = calls(rng, 0, warm + timed, 10**9)
    build = (time.perf_counter() - started) / len(events) * 1e6
    monitor = KeyMonitor(KEY)
    for start in range(0, warm, chunk):
        monitor.on_calls(events[start : start + chunk])
    started = time.perf_counter()
    for start in range(warm, warm + timed, chunk):
        monitor.on_calls(events[start : start + chunk])
    return (time.perf_counter() - started) / timed * 1e6, build


# --- the tables ----------------------------------------------------------------------------------


def ours(case: Case) -> str:
    family = {"bernoulli": "BernoulliDrift", "mean": "MeanShift", "tail": "TailShift"}
    floor = f", min_ref={case.min_reference:g}" if case.min_reference else ""
    return f"{family[case.family]}({case.direction}, warmup={case.warmup:,}{floor})"


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
    more = iter(range(SEED + 1_000, SEED + 2_000))  # the rows added later: the others' stay
    started = time.perf_counter()
    print(
        f"GAMMA {GAMMA}; seeds {SEED}.., {SEED + 1_000}.. and {SEED + 3_000}.. (calibration: "
        "20261125..); "
        f"change at {CHANGE_AT:,} (intent mix: {CAT_CHANGE:,}; silent model change: "
        f"{SILENT_CHANGE:,})"
    )

    acc = Case("bernoulli", "down", 30_000)
    lat = Case("mean", "both", 10_000)
    tail = Case("tail", "up", 10_000)
    err = Case("bernoulli", "up", 10_000, p=0.005, p_after=0.005, min_reference=0.01, errors=True)
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
    rare = [  # rare bad events: the bank's reference floored at 1%
        ("error rate 0.5% -> 5%", replace(err, p_after=0.05), 5_000),
        ("error rate 0 -> 5%", replace(err, p=0.0, p_after=0.05), 5_000),
    ]
    mixes = [("intent 'math' 0.10 -> 0.15", "up", 10_000), ("new intent at 5%", "new", 5_000)]
    later = iter(range(SEED + 3_000, SEED + 4_000))  # the rows of one intent's success rate
    intent = Case("bernoulli", "down", INTENT_WARMUP)
    intent_fa = [(intent, 250), (replace(intent, p=0.5, p_after=0.5), 250)]
    intent_rows = [
        ("one intent 0.83 -> 0.70", replace(intent, p_after=0.70), 5_000),
        ("one intent 0.83 -> 0.76", replace(intent, p_after=0.76), 5_000),
        ("one intent 0.83 -> 0.81", replace(intent, p_after=0.81), 100_000),
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
        print(f"  {ours(case):{W}} {same}/{n} identical")
    case = replace(err, p_after=0.05)
    same, n = check_against_classes(case, 20, next(more))
    print(f"  {ours(case):{W}} {same}/{n} identical")

    fa_cases = [
        (acc, 1_000), (Case("bernoulli", "down", 30_000, p=0.5, p_after=0.5), 250),
        (Case("bernoulli", "down", 30_000, p=0.95, p_after=0.95), 250),
        (Case("bernoulli", "down", 30_000, p=0.99, p_after=0.99), 250),
        (Case("bernoulli", "both", 30_000), 250), (lat, 1_000), (tail, 500),
    ]  # fmt: skip
    rare_fa = [(err, 250), (replace(err, p=0.01, p_after=0.01), 250)]
    silent_seeds = list(range(SILENT_SEED, SILENT_SEED + max(6, int(60 * scale))))
    with ProcessPoolExecutor(2) as pool:
        # the longest jobs first
        silent_jobs = [pool.submit(silent_runs, silent_seeds[k::2]) for k in (0, 1)]
        cat_fa_jobs = [
            pool.submit(categorical_false_alarms, max(25, int(250 * scale)), next(more))
            for _ in range(2)
        ]
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
        speed_seed = next(seeds)
        rare_fa_jobs = [
            pool.submit(false_alarms, case, max(20, int(keys * scale)), next(more))
            for case, keys in rare_fa
        ]
        rare_jobs = [
            pool.submit(delays, case, max(50, int(1_000 * scale)), after, next(more))
            for _, case, after in rare
        ]
        river_fa |= {
            (name, "errors"): pool.submit(river_false_alarms, name, err, next(more))
            for name in RIVER
        }
        river_delay |= {
            (title, name): pool.submit(
                river_runs, name, case, max(10, int(200 * scale)), after, next(more)
            )
            for title, case, after in rare
            for name in RIVER
        }
        cat_jobs = [
            pool.submit(categorical_delays, kind, max(100, int(1_000 * scale)), after, next(more))
            for _, kind, after in mixes
        ]
        adwin_fa_job = pool.submit(adwin_categorical_false_alarms, next(more))
        adwin_jobs = [
            pool.submit(adwin_categorical, kind, max(10, int(100 * scale)), after, next(more))
            for _, kind, after in mixes
        ]
        intent_fa_jobs = [
            pool.submit(false_alarms, case, max(20, int(keys * scale)), next(later))
            for case, keys in intent_fa
        ]
        intent_jobs = [
            pool.submit(delays, case, max(50, int(1_000 * scale)), after, next(later))
            for _, case, after in intent_rows
        ]

        print("\nfalse alarms per 1,000,000 stable events, per key:")
        print(f"  {'detector':{W}} {'stream':30} {'events':>8} {'alarms':>6} {'per 1M':>7}")
        for (case, _), job in zip(
            fa_cases + rare_fa + intent_fa, fa_jobs + rare_fa_jobs + intent_fa_jobs, strict=True
        ):
            alarms, exposure = job.result()
            stream = {"bernoulli": f"success rate {case.p}", "mean": "log-normal latency",
                      "tail": "log-normal latency"}[case.family]  # fmt: skip
            if case.errors:
                stream = f"error rate {case.p:.1%}"
            elif case.warmup == INTENT_WARMUP:
                stream += ", one intent"
            print(
                f"  {ours(case):{W}} {stream:30} {exposure / 1e6:7.0f}M {alarms:6d} "
                f"{alarms / exposure * 1e6:7.2f}"
            )
        alarms = sum(job.result()[0] for job in cat_fa_jobs)
        exposure = sum(job.result()[1] for job in cat_fa_jobs)
        moved = Counter(m for job in cat_fa_jobs for m in job.result()[2])
        print(
            f"  {f'CategoricalShift(warmup={CAT_WARMUP:,})':{W}} {'intent mix (5 + 5 rare)':30} "
            f"{exposure / 1e6:7.0f}M {alarms:6d} {alarms / exposure * 1e6:7.2f}"
            f"   ({', '.join(f'{m}: {c}' for m, c in moved.most_common())})"
        )
        for (name, family), river_job in river_fa.items():
            alarms, total = river_job.result()
            if alarms < 0:
                continue
            stream = {"bernoulli": "success rate 0.83", "mean": "log latency",
                      "tail": "latency > true p95",
                      "errors": "error rate 0.5%"}[family]  # fmt: skip
            if family == "tail" and name != "river DDM":
                continue  # the same stream as "log latency"
            print(
                f"  {name + ' (defaults)':{W}} {stream:30} {total / 1e6:7.0f}M {alarms:6d} "
                f"{alarms / total * 1e6:7.1f}"
            )
        alarms, total = adwin_fa_job.result()
        print(
            f"  {'river ADWIN (defaults)':{W}} {'intent is math (10%)':30} {total / 1e6:7.0f}M "
            f"{alarms:6d} {alarms / total * 1e6:7.1f}"
        )

        print(f"\ndetection, change at event {CHANGE_AT:,} (delays in events after it):")
        header = (
            f"  {'scenario':28} {'detector':{W}} {'horizon':>7} {'detected':>9} "
            f"{'median':>7} {'p90':>7} {'alarms before':>13}"
        )
        print(header)
        rows = list(
            zip(
                scenarios + extra + rare + intent_rows,
                delay_jobs + rare_jobs + intent_jobs,
                strict=True,
            )
        )
        for (title, case, after), delay_job in rows:
            found, early, runs = delay_job.result()
            print(
                f"  {title:28} {ours(case):{W}} {after:7,} {summary(found, runs - early)} "
                f"{early:>6}/{runs}"
            )
            if (title, case, after) in extra + intent_rows:
                continue
            for name in RIVER:
                found, missed = river_delay[title, name].result()
                if missed < 0:
                    continue
                print(
                    f"  {'':28} {name + ' (defaults)':{W}} {after:7,} "
                    f"{summary(found, len(found) + missed)} {'-':>13}"
                )
        print(f"\nintent mix, change at event {CAT_CHANGE:,} (river: ADWIN on the indicator):")
        print(header)
        for (title, kind, after), cat_job, adwin_job in zip(
            mixes, cat_jobs, adwin_jobs, strict=True
        ):
            found, early, runs = cat_job.result()
            print(
                f"  {title:28} {f'CategoricalShift(warmup={CAT_WARMUP:,})':{W}} {after:7,} "
                f"{summary(found, runs - early)} {early:>6}/{runs}"
            )
            found, missed = adwin_job.result()
            target = mix_after(kind)[2]
            print(
                f"  {'':28} {f'river ADWIN (defaults) on intent == {target}':{W}} {after:7,} "
                f"{summary(found, len(found) + missed)} {'-':>13}"
            )

        runs = [run for job in silent_jobs for run in job.result()]
        silent_table(runs)

    print(
        "\nspeed, after the warm-up: update() one event at a time, update_many() on chunks of 500"
    )
    print(f"  {'detector':{W}} {'update':>8} {'update_many':>12} {'ratio':>6}")
    rng = np.random.default_rng(speed_seed)
    for case in (acc, Case("bernoulli", "both", 30_000), lat, tail, replace(err, p=0.01)):
        xs = events(case, rng, 2 * max(200_000, 2 * warmup_events(case)), 10**9)
        us = microseconds(make(case), xs)
        many = microseconds_many(make(case), xs)
        print(f"  {ours(case):{W}} {us:5.2f} us {many:9.2f} us {us / many:5.1f}x")
    xs = intents(rng, 400_000, 10**9, "up")
    us = microseconds(CategoricalShift(warmup=CAT_WARMUP), xs)
    many = microseconds_many(CategoricalShift(warmup=CAT_WARMUP), xs)
    name = f"CategoricalShift(warmup={CAT_WARMUP:,}), intents"
    print(f"  {name:{W}} {us:5.2f} us {many:9.2f} us {us / many:5.1f}x")
    for name in RIVER:
        xs = river_input(name, acc, events(acc, rng, 400_000, 10**9))
        us = microseconds(RIVER[name](), xs)
        print(f"  {name + ' (on the success indicator)':{W}} {us:5.2f} us")
    per_call, build = monitor_microseconds(np.random.default_rng(next(more)))
    name = f"KeyMonitor.on_calls, {len(SIGNALS)} signals, per call"
    print(
        f"  {name:{W}} {'':>8} {per_call:9.2f} us"
        f"   (building the validated calls: {build:.2f} us each)"
    )
    print(f"\n{time.perf_counter() - started:.0f} s")


def silent_table(runs: list[SilentRun]) -> None:
    n = len(runs)
    delays_ = [r.delay for r in runs if r.delay is not None]
    print(
        f"\nsilent model change: KeyMonitor ({len(SIGNALS)} signals) on {n} keys, seeds "
        f"{runs[0].seed}..{max(r.seed for r in runs)}; at call {SILENT_CHANGE:,} latency median "
        f"x{LATENCY_UP} and output length x{SHORTER}, nothing declared; chunks of 500 calls"
    )
    line = f"  silent model_change within {SILENT_AFTER:,} calls: {summary(delays_, n)}"
    print(line + "  (detected, median and p90 delay in calls; bar: median <= 1,000)")
    early = sum(r.early_silent > 0 for r in runs)
    before = sum(len(r.alerts_before) for r in runs)
    kinds = sorted({s for r in runs for s in r.alerts_before})
    print(f"  runs with a silent model_change before the change: {early}/{n}")
    print(f"  alerts of any signal before the change: {before} in {n} runs {kinds}")
    print(
        "  first alert of each signal after the change, up to the silent one (runs, median delay):"
    )
    for signal in sorted({s for r in runs for s in r.signals_after}):
        got = [r.signals_after[signal] for r in runs if signal in r.signals_after]
        print(f"    {signal:16} {len(got):3}/{n}  {statistics.median(got):7,.0f}")
    pairs: dict[str, int] = {}
    for r in runs:
        if r.silent_signals:
            pair = " + ".join(sorted(r.silent_signals))
            pairs[pair] = pairs.get(pair, 0) + 1
    for pair, count in sorted(pairs.items(), key=lambda kv: -kv[1]):
        print(f"  silent alert from {pair}: {count} runs")


if __name__ == "__main__":
    main()
