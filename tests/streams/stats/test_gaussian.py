"""MeanShift: firing indices on fixed seeds, quiet on stable streams, state round trips."""

from __future__ import annotations

import doctest
import json
import math
import random

import pytest

from slowleak.streams.core.stats import MeanShift
from slowleak.streams.core.stats import gaussian as gaussian_module


def log_latencies(seed: int, change: int, n: int, *, factor: float = 1.0) -> list[float]:
    """log(latency_ms) of a log-normal with median 800 ms and sigma_log 0.6; the median is
    multiplied by ``factor`` from event ``change``."""
    rng = random.Random(seed)
    mu = math.log(800.0)
    return [rng.gauss(mu + (math.log(factor) if i >= change else 0.0), 0.6) for i in range(n)]


def first_firing(detector: MeanShift, xs: list[float]) -> int | None:
    return next((i for i, x in enumerate(xs) if detector.update(x)), None)


def test_docstring_example() -> None:
    assert doctest.testmod(gaussian_module).failed == 0


@pytest.mark.parametrize(("seed", "expected"), [(1, 50_803), (2, 51_243)])
def test_fires_at_pinned_indices_on_a_ten_percent_slower_median(seed: int, expected: int) -> None:
    detector = MeanShift()
    assert first_firing(detector, log_latencies(seed, 50_000, 60_000, factor=1.1)) == expected
    assert detector.reference == pytest.approx(math.log(800.0), abs=0.02)
    assert detector.scale == pytest.approx(0.6, abs=0.02)
    assert detector.change_index is not None and 48_000 < detector.change_index < expected
    assert detector.estimate == pytest.approx(math.log(880.0), abs=0.1)


def test_one_sided_banks_see_one_direction() -> None:
    xs = log_latencies(3, 5_000, 10_000, factor=0.8)
    assert first_firing(MeanShift(direction="up", warmup=2_000), xs) is None
    assert first_firing(MeanShift(direction="down", warmup=2_000), xs) == 5_311


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_quiet_on_a_stable_stream(seed: int) -> None:
    assert first_firing(MeanShift(warmup=2_000), log_latencies(seed, 0, 200_000)) is None


def test_one_outlier_is_clipped() -> None:
    detector = MeanShift(warmup=1_000)
    for x in log_latencies(4, 0, 1_000):
        detector.update(x)
    assert detector.update(math.log(30_000.0)) is False  # a 30 s timeout: z = 6, clipped to 3
    assert detector.statistic < detector.threshold / 2


def test_the_update_after_a_detection_starts_a_new_warmup() -> None:
    detector = MeanShift(warmup=2_000)
    assert first_firing(detector, log_latencies(3, 5_000, 10_000, factor=0.8)) is not None
    assert detector.update(6.0) is False
    assert (detector.n, detector.reference, detector.scale, detector.shifts) == (1, None, None, ())


@pytest.mark.parametrize("cut", [1_500, 2_000, 5_020])
def test_state_round_trip_mid_stream_gives_the_same_future(cut: int) -> None:
    xs = log_latencies(3, 5_000, 10_000, factor=0.8)
    straight, restored = MeanShift(warmup=2_000), MeanShift(warmup=2_000)
    for x in xs[:cut]:
        straight.update(x)
        restored.update(x)
    restored = MeanShift.from_state(json.loads(json.dumps(restored.to_state())))
    for x in xs[cut:]:
        assert restored.update(x) == straight.update(x)
        assert restored.statistic == straight.statistic
    assert restored.to_state() == straight.to_state()


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match=r"direction must be one of \('down', 'up', 'both'\)"):
        MeanShift(direction="left")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup must be at least 100 events, got 10"):
        MeanShift(warmup=10)
    with pytest.raises(ValueError, match=r"clip must be positive \(standard deviations\), got 0"):
        MeanShift(clip=0)
    with pytest.raises(ValueError, match="MeanShift takes finite values, got -inf"):
        MeanShift().update(-math.inf)
    with pytest.raises(ValueError, match="unknown MeanShift state version None"):
        MeanShift.from_state({})
