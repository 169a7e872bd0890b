"""TailShift: p95 latency doubling with the median unchanged."""

from __future__ import annotations

import doctest
import json
import math
import random

import pytest

from slowleak.streams.core.stats import TailShift
from slowleak.streams.core.stats import tail as tail_module

#: sigma_log that doubles a log-normal's p95 with the median unchanged: 0.6 + ln 2 / 1.645.
WIDER = 0.6 + math.log(2.0) / 1.6448536269514722


def latencies(seed: int, change: int, n: int, sigma_after: float = WIDER) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(800.0), 0.6 if i < change else sigma_after)
            for i in range(n)]  # fmt: skip


def first_firing(detector: TailShift, xs: list[float]) -> int | None:
    return next((i for i, x in enumerate(xs) if detector.update(x)), None)


def test_docstring_example() -> None:
    assert doctest.testmod(tail_module).failed == 0


@pytest.mark.parametrize(("seed", "expected"), [(1, 50_172), (2, 50_182)])
def test_fires_at_pinned_indices_when_p95_doubles(seed: int, expected: int) -> None:
    detector = TailShift()
    assert first_firing(detector, latencies(seed, 50_000, 60_000)) == expected
    p95 = 800.0 * math.exp(0.6 * 1.6448536269514722)
    assert detector.cutoff == pytest.approx(p95, rel=0.1)
    assert detector.reference == pytest.approx(0.05, abs=0.02)
    assert detector.estimate is not None and detector.estimate > 0.1
    assert detector.change_index is not None and 49_000 < detector.change_index < expected


@pytest.mark.parametrize("seed", [31, 32])
def test_quiet_on_a_stable_stream(seed: int) -> None:
    assert first_firing(TailShift(warmup=2_000), latencies(seed, 0, 200_000)) is None


@pytest.mark.parametrize("cut", [500, 1_000, 2_500, 5_080])
def test_state_round_trip_mid_stream_gives_the_same_future(cut: int) -> None:
    xs = latencies(3, 5_000, 10_000)
    straight, restored = TailShift(warmup=1_000), TailShift(warmup=1_000)
    for x in xs[:cut]:
        straight.update(x)
        restored.update(x)
    restored = TailShift.from_state(json.loads(json.dumps(restored.to_state())))
    for x in xs[cut:]:
        assert restored.update(x) == straight.update(x)
    assert restored.to_state() == straight.to_state()


def test_the_update_after_a_detection_starts_over() -> None:
    detector = TailShift(warmup=1_000)
    assert first_firing(detector, latencies(3, 5_000, 10_000)) is not None
    detector.update(800.0)
    assert (detector.n, detector.cutoff, detector.reference) == (1, None, None)


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match=r"quantile must be strictly between 0 and 1, got 1\.0"):
        TailShift(quantile=1.0)
    with pytest.raises(
        ValueError,
        match=r"quantile_warmup must leave at least 10 values on each side of the quantile, "
        r"got 100 for quantile 0\.95",
    ):
        TailShift(quantile_warmup=100)
    with pytest.raises(ValueError, match="warmup must be at least 100 events, got 5"):
        TailShift(warmup=5)
    with pytest.raises(ValueError, match="TailShift takes values that are not NaN"):
        TailShift().update(math.nan)
