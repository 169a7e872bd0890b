"""MeanConfidenceSequence: coverage under continuous monitoring, verdicts, state round trips."""

from __future__ import annotations

import doctest
import importlib.util
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from slowleak.streams.core.stats import sequential as sequential_module
from slowleak.streams.core.stats.sequential import MeanConfidenceSequence, verdict


def test_doctest() -> None:
    assert doctest.testmod(sequential_module).failed == 0


def paired(rng: random.Random, p_challenger: float, p_champion: float) -> float:
    return float(rng.random() < p_challenger) - float(rng.random() < p_champion)


@pytest.mark.parametrize(("p_challenger", "p_champion"), [(0.5, 0.5), (0.9, 0.9), (0.6, 0.5)])
def test_misses_the_mean_at_any_time_at_most_alpha(p_challenger: float, p_champion: float) -> None:
    """200 seeded streams of 2,000 pairs, checked after every pair: the share of streams whose
    interval ever excludes the true difference stays below alpha."""
    truth = p_challenger - p_champion
    misses = 0
    for seed in range(200):
        rng = random.Random(seed)
        cs = MeanConfidenceSequence(alpha=0.1)
        for _ in range(2_000):
            cs.update(paired(rng, p_challenger, p_champion))
            if not cs.lower <= truth <= cs.upper:
                misses += 1
                break
    assert misses / 200 <= 0.1


def test_narrows_and_contains_the_mean() -> None:
    rng = random.Random(11)
    cs = MeanConfidenceSequence(alpha=0.05)
    widths = []
    for i in range(20_000):
        cs.update(paired(rng, 0.85, 0.83))
        if i % 5_000 == 4_999:
            widths.append(cs.upper - cs.lower)
    assert widths == sorted(widths, reverse=True)
    assert cs.lower <= 0.02 <= cs.upper
    assert cs.upper - cs.lower < 0.05
    assert cs.mean == pytest.approx(0.02, abs=0.01)


def test_state_round_trip_continues_identically() -> None:
    rng = random.Random(5)
    xs = [paired(rng, 0.7, 0.6) for _ in range(3_000)]
    whole = MeanConfidenceSequence(alpha=0.05)
    half = MeanConfidenceSequence(alpha=0.05)
    for x in xs[:1_500]:
        whole.update(x)
        half.update(x)
    restored = MeanConfidenceSequence.from_state(orjson.loads(orjson.dumps(half.to_state())))
    for x in xs[1_500:]:
        whole.update(x)
        restored.update(x)
    assert (restored.n, restored.lower, restored.upper) == (whole.n, whole.lower, whole.upper)


def test_bounds_are_checked() -> None:
    cs = MeanConfidenceSequence(low=0.0, high=1.0)
    with pytest.raises(ValueError, match=r"value 1.5 is outside \[0.0, 1.0\]"):
        cs.update(1.5)
    with pytest.raises(ValueError, match="alpha must be in"):
        MeanConfidenceSequence(alpha=1.0)
    with pytest.raises(ValueError, match="high must be greater than low"):
        MeanConfidenceSequence(low=1.0, high=1.0)


def test_before_any_value_the_interval_is_the_whole_range() -> None:
    cs = MeanConfidenceSequence(low=-1.0, high=1.0)
    assert (cs.lower, cs.upper, cs.n) == (-1.0, 1.0, 0)


@pytest.mark.parametrize(
    ("lower", "upper", "margin", "expected"),
    [
        (0.003, 0.021, 0.01, "better"),
        (-0.005, 0.02, 0.01, "non_inferior"),
        (-0.005, 0.02, 0.0, "undecided"),
        (-0.03, -0.012, 0.01, "worse"),
        (-0.03, -0.005, 0.01, "undecided"),
        (-0.03, -0.005, 0.0, "worse"),
    ],
)
def test_verdict(lower: float, upper: float, margin: float, expected: str) -> None:
    assert verdict(lower, upper, margin=margin) == expected


def _bench() -> Any:
    path = Path(__file__).parents[2] / "benchmarks" / "bench_challenger.py"
    spec = importlib.util.spec_from_file_location("bench_challenger", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aa_false_better_at_most_alpha_over_1000_comparisons() -> None:
    """The benchmark's simulation (checked against the class first), at a smaller horizon:
    1,000 A/A comparisons read after every pair."""
    bench = _bench()
    bench.check_against_class()
    out = bench.simulate(runs=1_000, horizon=5_000, p0=0.83, p1=0.83, rho=0.3, seed=20261125)
    assert (out["better_at"] > 0).mean() <= bench.ALPHA
    power = bench.simulate(runs=1_000, horizon=5_000, p0=0.83, p1=0.85, rho=0.8, seed=7)
    assert (power["better_at"] > 0).mean() >= 0.8 and (power["worse_at"] > 0).sum() == 0
