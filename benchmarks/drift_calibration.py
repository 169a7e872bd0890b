"""Regenerate ``GAMMA`` in ``slowleak.streams.core.stats.thresholds`` by simulation.

Each bank member ``k`` fires above ``h_k = gamma * ln(kl_k / 1e-6)``; this script finds, for
each family (Bernoulli rate, Gaussian mean) and bank (one- or two-sided), the smallest
``gamma`` with at most 0.8 false alarms per 1,000,000 stable events (the target is 1; the margin
is for the simulation's own error) in every simulated condition, and prints the table. The
conditions cover what the reference can be after its warm-up:

- Bernoulli: true rate p in {0.5, 0.7, 0.83, 0.95, 0.99} x warm-up in {2,000, 10,000, 20,000,
  40,000, 200,000}, direction down and up (up at p is down at 1 - p, so one-sided covers
  0.01..0.99), and the two-sided bank at the same rates and warm-ups;
- Gaussian (the bank is equivariant, so only the warm-up matters; values clipped at 3 sd as
  ``MeanShift`` does by default): the same warm-ups, one- and two-sided.

Each condition simulates ``--keys`` keys (default 800): a warm-up drawn exactly (a binomial
count; a Gaussian sample mean and variance), then ``HORIZON`` (100,000) stable monitored events
or until the first alarm. With the documented reset policy (the update after an alarm starts a
new warm-up) a key's life is a sequence of such independent cycles, so the false-alarm rate per
event is alarms / monitored events, counting only monitored events (warm-ups excluded). One
simulation gives the rate at every gamma: the first time ``max_k S_k / (h_k / gamma)`` exceeds
each gamma on a grid. The charge ``h_k / warmup`` and which members run depend on gamma too; they
are computed with the gamma in ``thresholds.py``, so the table is a fixed point: copy the
printed table into the file and run again until no printed value exceeds the file's (the last
run printed the file's values, but 1.275 for the two-sided Bernoulli bank, which stayed 1.28).

The simulation is the detectors' own recursion, vectorised over keys and over time with the
Lindley form ``S_t = W_t - min(-S_0, min_{s<=t} W_s)`` of ``S_t = max(0, S_{t-1} + d_t)``, with
the banks built by the detectors' own ``bernoulli_bank`` / ``gaussian_bank``;
``benchmarks/bench_drift.py`` checks it fires at the same events as the classes.

    .venv/bin/python benchmarks/drift_calibration.py              # 6-8 min on 2 cores
    .venv/bin/python benchmarks/drift_calibration.py --keys 100   # quick look
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from slowleak.streams.core.stats.bernoulli import bernoulli_bank
from slowleak.streams.core.stats.gaussian import gaussian_bank
from slowleak.streams.core.stats.thresholds import GAMMA, TARGET_FALSE_ALARMS_PER_EVENT

SEED = 20_261_125  # calibration seeds are SEED + condition number; the benchmark uses others
HORIZON = 100_000
CHUNK = 512
NEVER = np.iinfo(np.int64).max
GAMMAS = np.round(np.arange(0.60, 1.80, 0.005), 3)
WARMUPS = (2_000, 10_000, 20_000, 40_000, 200_000)
#: Calibrated to 0.8 per 1M rather than 1: a condition's rate is measured from ~80 alarms (+-11%),
#: and the margin keeps an unlucky condition under the target of 1.
CALIBRATION_TARGET = 0.8 * TARGET_FALSE_ALARMS_PER_EVENT

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Bank:
    """Members of one bank per key, padded to the same count: the walk of member k is
    ``u[:, k] * A_t + v[:, k] * B_t`` for two cumulative series A, B of the data."""

    u: Floats
    v: Floats
    g: Floats  # the member's threshold divided by the scale the first passage is measured in
    kind: str  # "bernoulli": A = ones, B = zeros; "gaussian": A = sum of clipped z, B = t


def _pad(rows: Sequence[Sequence[tuple[float, float, float]]]) -> tuple[Floats, Floats, Floats]:
    k = max(1, max(len(r) for r in rows))
    u, v, g = np.zeros((len(rows), k)), np.zeros((len(rows), k)), np.full((len(rows), k), np.inf)
    for i, row in enumerate(rows):
        for j, (a, b, c) in enumerate(row):
            u[i, j], v[i, j], g[i, j] = a, b, c
    return u, v, g


@lru_cache(maxsize=100_000)
def _bernoulli_row(
    ones: int, warmup: int, direction: str, gamma: float, scale: float, min_reference: float
) -> tuple[tuple[float, float, float], ...]:
    p0 = max((ones + 0.5) / (warmup + 1.0), min_reference)
    members = bernoulli_bank(p0, direction=direction, warmup=warmup, gamma=gamma)  # type: ignore[arg-type]
    return tuple((inc1, inc0, h / scale) for _, h, inc0, inc1 in members)


def bernoulli_banks(
    ones: Ints,
    *,
    warmup: int,
    direction: str,
    gamma: float,
    per_gamma: bool,
    min_reference: float = 0.0,
) -> Bank:
    """Banks for keys whose warm-ups counted ``ones``; ``per_gamma``: thresholds in units of
    gamma (for calibration), else in their own units (first passage at 1.0). ``min_reference``
    floors the reference rate as ``BernoulliDrift(min_reference=...)`` does."""
    scale = gamma if per_gamma else 1.0
    rows = [_bernoulli_row(int(c), warmup, direction, gamma, scale, min_reference) for c in ones]
    return Bank(*_pad(rows), kind="bernoulli")


def gaussian_banks(n: int, *, warmup: int, direction: str, gamma: float, per_gamma: bool) -> Bank:
    scale = gamma if per_gamma else 1.0
    members = gaussian_bank(direction=direction, warmup=warmup, gamma=gamma)  # type: ignore[arg-type]
    row = [(a, -c, h / scale) for a, h, c in members]
    return Bank(*_pad([row] * n), kind="gaussian")


def first_passage(
    bank: Bank, source: Callable[[int, int], NDArray[np.generic]], total: int, levels: Floats
) -> Ints:
    """Index (0-based, monitored events) of the first event where ``max_k S_k / g_k`` exceeds
    each level, per key; NEVER if not within ``total`` events. ``source(t0, c)`` gives the data
    of events t0..t0+c-1 for all keys: booleans, or clipped standardised values."""
    n, k = bank.u.shape
    s = np.zeros((n, k))
    first = np.full((n, len(levels)), NEVER, dtype=np.int64)
    steps = np.arange(1, CHUNK + 1, dtype=np.float64)
    t0 = 0
    while t0 < total:
        c = min(CHUNK, total - t0)
        data = source(t0, c)
        if bank.kind == "bernoulli":
            a = np.cumsum(data, axis=1, dtype=np.int64).astype(np.float64)
            b = steps[None, :c] - a
        else:
            a = np.cumsum(data, axis=1)
            b = np.broadcast_to(steps[None, :c], a.shape)
        best = np.zeros((n, c))
        for j in range(k):
            w = bank.u[:, j, None] * a
            w += bank.v[:, j, None] * b
            low = np.minimum.accumulate(w, axis=1)
            np.minimum(low, -s[:, j, None], out=low)
            w -= low
            s[:, j] = w[:, -1]
            w /= bank.g[:, j, None]
            np.maximum(best, w, out=best)
        top = best.max(axis=1)
        for i, level in enumerate(levels):
            new = (first[:, i] == NEVER) & (top > level)
            if new.any():
                first[new, i] = t0 + np.argmax(best[new] > level, axis=1)
        t0 += c
    return first


def bernoulli_source(
    rng: np.random.Generator, p_before: Floats, p_after: Floats, change: int
) -> Callable[[int, int], NDArray[np.bool_]]:
    """Bernoulli events, rate ``p_before`` per key until monitored event ``change``."""

    def draw(t0: int, c: int) -> NDArray[np.bool_]:
        t = np.arange(t0, t0 + c)
        p = np.where(t[None, :] < change, p_before[:, None], p_after[:, None])
        return rng.random((len(p_before), c)) < p

    return draw


def gaussian_source(
    rng: np.random.Generator,
    mean: Floats,
    sd: Floats,
    clip: float,
    change: int,
    shift: float = 0.0,
    spread: float = 1.0,
) -> Callable[[int, int], Floats]:
    """Standard normal values, ``shift + spread * N(0, 1)`` from monitored event ``change``,
    standardised with each key's warm-up ``mean`` and ``sd`` and clipped as the detector does."""

    def draw(t0: int, c: int) -> Floats:
        x = rng.standard_normal((len(mean), c))
        after = np.arange(t0, t0 + c) >= change
        if after.any():
            x[:, after] = shift + spread * x[:, after]
        z = (x - mean[:, None]) / sd[:, None]
        return np.clip(z, -clip, clip, out=z)

    return draw


def gaussian_warmup(rng: np.random.Generator, n: int, warmup: int) -> tuple[Floats, Floats]:
    """The warm-up's mean and standard deviation of ``warmup`` standard normal values, drawn
    exactly (independent normal and scaled chi-square)."""
    mean = rng.standard_normal(n) / np.sqrt(warmup)
    sd = np.sqrt(rng.chisquare(warmup - 1, n) / (warmup - 1))
    return mean, sd


def false_alarm_rate(first: Ints, horizon: int) -> tuple[Floats, Ints, Ints]:
    """Alarms per monitored event, alarms, and monitored events, per level."""
    fired = first < horizon
    exposure = (np.minimum(first, horizon - 1) + 1).sum(axis=0)
    return fired.sum(axis=0) / exposure, fired.sum(axis=0), exposure


@dataclass(frozen=True)
class Condition:
    family: str  # "bernoulli" | "gaussian"
    direction: str
    warmup: int
    p: float = float("nan")  # the true rate, Bernoulli only

    @property
    def sides(self) -> int:
        return 2 if self.direction == "both" else 1


def conditions() -> list[Condition]:
    out = []
    for direction in ("down", "up", "both"):
        for p in (0.5, 0.7, 0.83, 0.95, 0.99):
            for warmup in WARMUPS:
                if direction == "up" and p == 0.5:
                    continue  # the same as down at 0.5
                out.append(Condition("bernoulli", direction, warmup, p))
    for direction in ("up", "both"):
        for warmup in WARMUPS:
            out.append(Condition("gaussian", direction, warmup))
    return out


def simulate(condition: Condition, keys: int, seed: int) -> tuple[Floats, Ints]:
    """Rate per level of GAMMAS and alarms per level, for one condition."""
    rng = np.random.default_rng(seed)
    gamma = GAMMA[condition.family, condition.sides]
    if condition.family == "bernoulli":
        ones = rng.binomial(condition.warmup, condition.p, size=keys)
        bank = bernoulli_banks(
            ones, warmup=condition.warmup, direction=condition.direction, gamma=gamma,
            per_gamma=True,
        )  # fmt: skip
        p = np.full(keys, condition.p)
        source: Callable[[int, int], NDArray[np.generic]] = bernoulli_source(rng, p, p, HORIZON)
    else:
        mean, sd = gaussian_warmup(rng, keys, condition.warmup)
        bank = gaussian_banks(
            keys, warmup=condition.warmup, direction=condition.direction, gamma=gamma,
            per_gamma=True,
        )  # fmt: skip
        source = gaussian_source(rng, mean, sd, 3.0, HORIZON)
    first = first_passage(bank, source, HORIZON, GAMMAS)
    rate, alarms, _ = false_alarm_rate(first, HORIZON)
    return rate, alarms


def smallest_gamma(rate: Floats) -> float:
    ok = np.nonzero(rate <= CALIBRATION_TARGET)[0]
    return float(GAMMAS[ok[0]]) if len(ok) else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=800, help="keys per condition")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    todo = conditions()
    seeds = [SEED + i for i in range(len(todo))]
    print(
        f"{len(todo)} conditions x {args.keys} keys x {HORIZON:,} monitored events "
        f"({args.keys * HORIZON / 1e6:.0f}M per condition); seeds {seeds[0]}..{seeds[-1]}; "
        f"target {CALIBRATION_TARGET * 1e6:.1f} per 1M; charges and active members computed "
        f"with the current GAMMA {GAMMA}",
        flush=True,
    )
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(simulate, todo, [args.keys] * len(todo), seeds))
    table: dict[tuple[str, int], float] = {}
    print(
        f"{'family':10} {'direction':9} {'p':>5} {'warmup':>7} {'gamma':>6} "
        f"{'alarms':>6} {'FA/1M at table gamma':>21}"
    )
    for condition, (rate, alarms) in zip(todo, results, strict=True):
        g = smallest_gamma(rate)
        i = int(np.searchsorted(GAMMAS, GAMMA[condition.family, condition.sides]))
        key = (condition.family, condition.sides)
        table[key] = max(table.get(key, 0.0), g)
        j = min(int(np.searchsorted(GAMMAS, g)), len(GAMMAS) - 1)
        print(
            f"{condition.family:10} {condition.direction:9} {condition.p:5.2f} "
            f"{condition.warmup:7,} {g:6.3f} {alarms[j]:6d} {rate[i] * 1e6:21.2f}"
        )
    print(f"\n{time.perf_counter() - started:.0f} s. GAMMA = {{")
    for (family, sides), g in sorted(table.items()):
        print(f'    ("{family}", {sides}): {g:.3f},')
    print("}")


if __name__ == "__main__":
    main()
