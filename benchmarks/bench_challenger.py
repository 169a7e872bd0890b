"""Error rates of the challenger verdict under continuous monitoring, by seeded simulation.

The verdict reads ``MeanConfidenceSequence`` (the predictable plug-in empirical-Bernstein
confidence sequence) on paired success differences after *every* pair, as the
``ChallengerComparison`` detector does. This script checks what that promises:

- A/A: challenger and champion succeed at the same rate; over ``--runs`` simulated comparisons of
  ``--aa-pairs`` pairs each, the share that ever reads ``better`` (lower bound above 0) must stay
  at most alpha (the interval is two-sided at alpha, so about alpha/2 is the budget for each
  side), at several base rates and with and without correlation between the two calls of a pair;
- power: the challenger succeeds 2 points more often (0.83 -> 0.85); the share of runs that read
  ``better`` by n pairs, and the median n at which they do;
- that the vectorised recursion here is the class's own, on one seeded stream.

Pairs: the champion succeeds when ``U < p0``; the challenger when ``V < p1``, where ``V = U``
with probability ``rho`` (the same input is easy or hard for both: replayed pairs are
correlated) and an independent uniform otherwise.

    .venv/bin/python benchmarks/bench_challenger.py                # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_challenger.py --runs 200     # quick look
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from slowleak.streams.core.detectors._paired_ratio import RATIO_SCALE
from slowleak.streams.core.stats.sequential import MeanConfidenceSequence

ALPHA = 0.05
MAX_BET = 0.5
#: The detector's default ``ratio_margin``.
RATIO_MARGIN = 0.10


#: One pair per run: the values the confidence sequence is fed, in [-1, 1].
Draw = Callable[[np.random.Generator, int], NDArray[np.float64]]


def pairs(
    rng: np.random.Generator, runs: int, p0: float, p1: float, rho: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    u = rng.random(runs)
    v = np.where(rng.random(runs) < rho, u, rng.random(runs))
    return (v < p1).astype(np.float64), (u < p0).astype(np.float64)


def success_draw(p0: float, p1: float, rho: float) -> Draw:
    """Paired success differences (challenger minus champion)."""

    def draw(rng: np.random.Generator, runs: int) -> NDArray[np.float64]:
        mine, theirs = pairs(rng, runs, p0, p1, rho)
        return mine - theirs

    return draw


def simulate(
    *, runs: int, horizon: int, seed: int, draw: Draw | None = None, p0: float = 0.83,
    p1: float = 0.83, rho: float = 0.0, margin: float = 0.0, checkpoints: tuple[int, ...] = (),
) -> dict[str, object]:  # fmt: skip
    """First pair at which each run reads better / worse (0 = never within ``horizon``).
    ``draw`` gives each pair's value (default: success differences at ``p0``, ``p1``,
    ``rho``); ``worse`` is an upper bound below ``-margin``."""
    draw = draw or success_draw(p0, p1, rho)
    rng = np.random.default_rng(seed)
    log_term = np.log(2.0 / ALPHA)
    total = np.zeros(runs)
    squares = np.zeros(runs)
    bets = np.zeros(runs)
    bet_sum = np.zeros(runs)
    penalty = np.zeros(runs)
    lower = np.zeros(runs)
    upper = np.ones(runs)
    better_at = np.zeros(runs, dtype=np.int64)
    worse_at = np.zeros(runs, dtype=np.int64)
    better_by: dict[int, float] = {}
    worse_by: dict[int, float] = {}
    worse_below = (1.0 - margin) / 2.0  # -margin on the [0, 1] scale of y
    for t in range(1, horizon + 1):
        y = (draw(rng, runs) + 1.0) / 2.0
        mean_before = (0.5 + total) / t
        var_before = (0.25 + squares) / t
        bet = np.minimum(np.sqrt(2.0 * log_term / (var_before * t * np.log1p(t))), MAX_BET)
        bets += bet
        bet_sum += bet * y
        penalty += (y - mean_before) ** 2 * (-np.log1p(-bet) - bet)
        total += y
        squares += (y - (0.5 + total) / (t + 1)) ** 2
        center = bet_sum / bets
        half = (log_term + penalty) / bets
        np.maximum(lower, center - half, out=lower)
        np.minimum(upper, center + half, out=upper)
        better_at[(better_at == 0) & (lower > 0.5)] = t
        worse_at[(worse_at == 0) & (upper < worse_below)] = t
        if t in checkpoints:
            better_by[t] = float(np.mean(better_at > 0))
            worse_by[t] = float(np.mean(worse_at > 0))
    return {
        "better_at": better_at, "worse_at": worse_at, "better_by": better_by,
        "worse_by": worse_by,
    }  # fmt: skip


def ratio_draw(ratio: float, sigma: float) -> Draw:
    """Paired cost or latency scores (``ratio_score``) when the challenger's value is ``ratio``
    times the champion's on the same input, each call with its own log-normal noise of
    ``sigma`` (what the input costs or takes is shared, so it cancels in the ratio)."""

    def draw(rng: np.random.Generator, runs: int) -> NDArray[np.float64]:
        champion = rng.normal(0.0, sigma, runs)
        challenger = np.log(ratio) + rng.normal(0.0, sigma, runs)
        scores = (champion - challenger) / np.log(2.0) / RATIO_SCALE
        return np.clip(scores, -1.0, 1.0)

    return draw


def check_against_class(seed: int = 1) -> None:
    """The recursion above gives the class's interval on the same stream (to 1e-9)."""
    rng = np.random.default_rng(seed)
    xs = [float(a - b) for a, b in zip(*pairs(rng, 3_000, 0.8, 0.82, 0.3), strict=True)]
    cs = MeanConfidenceSequence(alpha=ALPHA, max_bet=MAX_BET)
    total = squares = bets = bet_sum = penalty = 0.0
    lower, upper = 0.0, 1.0
    log_term = float(np.log(2.0 / ALPHA))
    for t, x in enumerate(xs, start=1):
        cs.update(x)
        y = (x + 1.0) / 2.0
        mean_before, var_before = (0.5 + total) / t, (0.25 + squares) / t
        bet = min(float(np.sqrt(2.0 * log_term / (var_before * t * np.log1p(t)))), MAX_BET)
        bets, bet_sum = bets + bet, bet_sum + bet * y
        penalty += (y - mean_before) ** 2 * float(-np.log1p(-bet) - bet)
        total += y
        squares += (y - (0.5 + total) / (t + 1)) ** 2
        lower = max(lower, bet_sum / bets - (log_term + penalty) / bets)
        upper = min(upper, bet_sum / bets + (log_term + penalty) / bets)
        assert abs(cs.lower - (2 * lower - 1)) < 1e-9 and abs(cs.upper - (2 * upper - 1)) < 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--aa-pairs", type=int, default=50_000)
    parser.add_argument("--power-pairs", type=int, default=100_000)
    parser.add_argument("--ratio-pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    check_against_class()
    print("vectorised recursion matches MeanConfidenceSequence on a seeded stream")
    print(f"alpha = {ALPHA}, runs = {args.runs}, base seed = {args.seed}\n")
    print(f"A/A: {args.aa_pairs:,} pairs per run, verdict read after every pair")
    print("| base rate | rho | seed | false better | false worse | either | alpha |")
    print("|---|---|---|---|---|---|---|")
    seeds = random.Random(args.seed)
    worst = 0.0
    for p in (0.5, 0.83, 0.95):
        for rho in (0.0, 0.5):
            seed = seeds.randrange(2**31)
            started = time.perf_counter()
            out = simulate(runs=args.runs, horizon=args.aa_pairs, p0=p, p1=p, rho=rho, seed=seed)
            better = float(np.mean(out["better_at"] > 0))  # type: ignore[operator]
            worse = float(np.mean(out["worse_at"] > 0))  # type: ignore[operator]
            either = float(np.mean((out["better_at"] > 0) | (out["worse_at"] > 0)))  # type: ignore[operator]
            worst = max(worst, better)
            print(
                f"| {p:.2f} | {rho:.1f} | {seed} | {better:.3f} | {worse:.3f} | {either:.3f} "
                f"| {ALPHA} |  ({time.perf_counter() - started:.0f} s)"
            )
    print(f"\nlargest false-better rate: {worst:.3f} (must be <= alpha = {ALPHA})")
    assert worst <= ALPHA
    checkpoints = (5_000, 10_000, 20_000, 30_000, 50_000, 100_000)
    checkpoints = tuple(c for c in checkpoints if c <= args.power_pairs)
    print(f"\npower: champion 0.83, challenger 0.85 (+2 points), {args.power_pairs:,} pairs")
    header = " | ".join(f"by {c:,}" for c in checkpoints)
    print(f"| rho | seed | {header} | median n at 'better' | wrongly 'worse' |")
    print("|---|---|" + "---|" * len(checkpoints) + "---|---|")
    for rho in (0.0, 0.5, 0.8):
        seed = seeds.randrange(2**31)
        out = simulate(
            runs=args.runs, horizon=args.power_pairs, p0=0.83, p1=0.85, rho=rho, seed=seed,
            checkpoints=checkpoints,
        )  # fmt: skip
        better_at: NDArray[np.int64] = out["better_at"]  # type: ignore[assignment]
        by: dict[int, float] = out["better_by"]  # type: ignore[assignment]
        hit = better_at[better_at > 0]
        median = f"{int(np.median(hit)):,}" if hit.size * 2 >= better_at.size else "> horizon"
        worse = float(np.mean(out["worse_at"] > 0))  # type: ignore[operator]
        cells = " | ".join(f"{by[c]:.2f}" for c in checkpoints)
        print(f"| {rho:.1f} | {seed} | {cells} | {median} | {worse:.3f} |")
    ratios(args.runs, args.ratio_pairs, seeds)


def ratios(runs: int, horizon: int, seeds: random.Random) -> None:
    """Cost and latency verdicts: the geometric-mean ratio of paired values, margin 10%."""
    margin = float(np.log2(1.0 + RATIO_MARGIN) / RATIO_SCALE)
    print(
        f"\ncost and latency per call (ratio challenger / champion, margin "
        f"{100 * RATIO_MARGIN:g}%), {horizon:,} pairs, log-normal noise of sigma per call"
    )
    print("A/A: the same distribution on both sides")
    print("| sigma | seed | false better | false worse | either | alpha |")
    print("|---|---|---|---|---|---|")
    for sigma in (0.2, 0.5, 1.0):
        seed = seeds.randrange(2**31)
        out = simulate(
            runs=runs, horizon=horizon, seed=seed, draw=ratio_draw(1.0, sigma), margin=margin
        )
        better = float(np.mean(out["better_at"] > 0))  # type: ignore[operator]
        worse = float(np.mean(out["worse_at"] > 0))  # type: ignore[operator]
        print(f"| {sigma} | {seed} | {better:.3f} | {worse:.3f} | {better + worse:.3f} | {ALPHA} |")
        assert better + worse <= ALPHA
    checkpoints = tuple(c for c in (100, 200, 500, 1_000, 2_000, 5_000) if c <= horizon)
    header = " | ".join(f"by {c:,}" for c in checkpoints)
    print("\npower: share of runs with the right verdict by n pairs")
    print(f"| ratio | sigma | seed | verdict | {header} | median n | wrong verdict |")
    print("|---|---|---|---|" + "---|" * len(checkpoints) + "---|---|")
    for ratio, sigma in ((2.0, 0.2), (1.25, 0.5), (1.25, 1.0), (0.8, 0.5), (1.05, 0.2)):
        seed = seeds.randrange(2**31)
        out = simulate(
            runs=runs, horizon=horizon, seed=seed, draw=ratio_draw(ratio, sigma), margin=margin,
            checkpoints=checkpoints,
        )  # fmt: skip
        # Above the margin the right verdict is worse; below 1 better; in between none.
        right, wrong = ("worse_", "better_") if ratio > 1.0 else ("better_", "worse_")
        at: NDArray[np.int64] = out[right + "at"]  # type: ignore[assignment]
        by: dict[int, float] = out[right + "by"]  # type: ignore[assignment]
        hit = at[at > 0]
        median = f"{int(np.median(hit)):,}" if hit.size * 2 >= at.size else "> horizon"
        wrong_rate = float(np.mean(out[wrong + "at"] > 0))  # type: ignore[operator]
        cells = " | ".join(f"{by[c]:.2f}" for c in checkpoints)
        inside = 1.0 < ratio <= 1.0 + RATIO_MARGIN  # within the margin: no verdict is right
        name = "none: worse is wrong" if inside else right.rstrip("_")
        print(f"| {ratio} | {sigma} | {seed} | {name} | {cells} | {median} | {wrong_rate:.3f} |")


if __name__ == "__main__":
    main()
