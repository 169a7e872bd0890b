"""BernoulliDrift: firing indices on fixed seeds, quiet on stable streams, state round trips."""

from __future__ import annotations

import doctest
import json
import random

import pytest

from slowleak.streams.core.stats import BernoulliDrift
from slowleak.streams.core.stats import bernoulli as bernoulli_module


def stream(seed: int, before: float, after: float, change: int, n: int) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < (before if i < change else after) for i in range(n)]


def first_firing(detector: BernoulliDrift, xs: list[bool]) -> int | None:
    return next((i for i, x in enumerate(xs) if detector.update(x)), None)


def test_docstring_example() -> None:
    assert doctest.testmod(bernoulli_module).failed == 0


@pytest.mark.parametrize(("seed", "expected"), [(1, 10_201), (2, 10_115), (3, 10_432)])
def test_fires_at_pinned_indices_on_a_large_drop(seed: int, expected: int) -> None:
    xs = stream(seed, 0.83, 0.70, 10_000, 20_000)
    assert first_firing(BernoulliDrift(warmup=2_000), xs) == expected


def test_fires_on_a_small_drop_with_the_default_warmup() -> None:
    detector = BernoulliDrift()
    assert first_firing(detector, stream(4, 0.83, 0.81, 50_000, 120_000)) == 56_305
    assert detector.reference == pytest.approx(0.83, abs=0.01)
    assert detector.change_index is not None and 45_000 < detector.change_index < 56_305
    assert detector.estimate == pytest.approx(0.81, abs=0.03)
    assert detector.statistic > detector.threshold


def test_up_and_both_directions() -> None:
    xs = stream(5, 0.05, 0.10, 10_000, 20_000)
    assert first_firing(BernoulliDrift(direction="up", warmup=2_000), xs) == 10_787
    assert first_firing(BernoulliDrift(direction="down", warmup=2_000), xs) is None
    assert first_firing(BernoulliDrift(direction="both", warmup=2_000), xs) == 10_788


@pytest.mark.parametrize(("seed", "p"), [(11, 0.83), (12, 0.5), (13, 0.97)])
def test_quiet_on_a_stable_stream(seed: int, p: float) -> None:
    xs = stream(seed, p, p, 0, 200_000)
    assert first_firing(BernoulliDrift(direction="both", warmup=2_000), xs) is None


def test_the_update_after_a_detection_starts_a_new_warmup() -> None:
    detector = BernoulliDrift(warmup=2_000)
    xs = stream(1, 0.83, 0.70, 10_000, 20_000)
    fired = first_firing(detector, xs)
    assert fired is not None and detector.drift_detected
    assert detector.n == fired + 1
    assert detector.update(True) is False
    assert (detector.drift_detected, detector.n, detector.reference) == (False, 1, None)
    assert (detector.statistic, detector.change_index, detector.estimate) == (0.0, None, None)


@pytest.mark.parametrize("cut", [500, 2_000, 9_000, 10_050])
def test_state_round_trip_mid_stream_gives_the_same_future(cut: int) -> None:
    xs = stream(1, 0.83, 0.70, 10_000, 20_000)
    straight = BernoulliDrift(direction="both", warmup=2_000)
    restored = BernoulliDrift(direction="both", warmup=2_000)
    for x in xs[:cut]:
        straight.update(x)
        restored.update(x)
    restored = BernoulliDrift.from_state(json.loads(json.dumps(restored.to_state())))
    for x in xs[cut:]:
        assert restored.update(x) == straight.update(x)
        assert restored.statistic == straight.statistic
    assert restored.to_state() == straight.to_state()


def test_state_has_a_version() -> None:
    state = BernoulliDrift().to_state()
    assert state["v"] == 1
    with pytest.raises(ValueError, match="unknown BernoulliDrift state version 2"):
        BernoulliDrift.from_state(state | {"v": 2})


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match=r"direction must be one of \('down', 'up', 'both'\)"):
        BernoulliDrift(direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup must be at least 100 events, got 99"):
        BernoulliDrift(warmup=99)


def test_smaller_warmups_run_only_the_larger_shifts() -> None:
    def smallest_shift(warmup: int) -> float:
        detector = BernoulliDrift(warmup=warmup)
        for x in stream(6, 0.83, 0.83, 0, warmup):
            detector.update(x)
        return min(abs(s) for s in detector.shifts)

    assert smallest_shift(2_000) > smallest_shift(20_000) > smallest_shift(200_000)
