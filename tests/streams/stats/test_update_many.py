"""``update_many`` over any chunking gives what one ``update`` per event gives.

Each stream alternates between two levels every few thousand events, so that with small
warm-ups it holds several detections and restarts; hypothesis chooses the chunk sizes, from
single values (the per-event path) to chunks longer than a numpy block, so chunks straddle the
warm-up's end and detections fall in mid-chunk.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slowleak.streams.core.stats import BernoulliDrift, CategoricalShift, MeanShift, TailShift
from slowleak.streams.core.stats._chunk import BLOCK

Detector = BernoulliDrift | MeanShift | TailShift | CategoricalShift
#: What a firing looks like: the event's index and the detector's readout then.
Firing = tuple[int, dict[str, Any]]

PERIOD, LENGTH = 3_000, 30_000


def _phase(i: int) -> int:
    return (i // PERIOD) % 2


def _rates() -> list[bool]:
    rng = random.Random(1)
    return [rng.random() < (0.8, 0.6)[_phase(i)] for i in range(LENGTH)]


def _means() -> list[float]:
    rng = random.Random(2)
    return [rng.gauss((0.0, 0.6)[_phase(i)], 1.0) for i in range(LENGTH)]


def _tails() -> list[float]:
    rng = random.Random(3)
    return [rng.lognormvariate(6.0, (0.6, 1.5)[_phase(i)]) for i in range(LENGTH)]


def _intents() -> list[str | None]:
    rng = random.Random(4)
    labels = ["search", "chat", "code", None, "rare-1", "rare-2"]
    mixes = ([0.5, 0.3, 0.15, 0.04, 0.005, 0.005], [0.3, 0.3, 0.15, 0.04, 0.2, 0.01])
    return [rng.choices(labels, mixes[_phase(i)])[0] for i in range(LENGTH)]


CASES: dict[str, tuple[Callable[[], Detector], Callable[[], Sequence[Any]]]] = {
    "bernoulli": (lambda: BernoulliDrift(direction="both", warmup=300), _rates),
    "gaussian": (lambda: MeanShift(warmup=300), _means),
    "tail": (lambda: TailShift(direction="both", warmup=600, quantile_warmup=400), _tails),
    "categorical": (lambda: CategoricalShift(warmup=500), _intents),
}


def readout(detector: Detector) -> dict[str, Any]:
    """Every observable of a detector, state included."""
    out = {
        name: getattr(detector, name)
        for name in ("drift_detected", "n", "reference", "estimate", "statistic", "threshold")
    }
    out |= {"change_index": detector.change_index, "state": detector.to_state()}
    if isinstance(detector, CategoricalShift):
        out |= {"category": detector.category, "direction": detector.direction}
    return out


@functools.cache
def sequential(case: str) -> tuple[list[Firing], dict[str, Any]]:
    """The reference: one update() per event."""
    make, values = CASES[case]
    detector, firings = make(), []
    for i, value in enumerate(values()):
        if detector.update(value):
            firings.append((i, readout(detector)))
    return firings, readout(detector)


def chunked(case: str, sizes: Sequence[int]) -> tuple[list[Firing], dict[str, Any]]:
    """update_many over chunks of the given sizes (cycled), as the worker's loop feeds it."""
    make, values = CASES[case]
    xs, detector, firings = values(), make(), []
    start, i = 0, 0
    while start < len(xs):
        chunk = xs[start : start + sizes[i % len(sizes)]]
        i += 1
        while chunk:
            taken = detector.update_many(chunk)
            assert 1 <= taken <= len(chunk)
            start += taken
            chunk = chunk[taken:]
            if detector.drift_detected:
                firings.append((start - 1, readout(detector)))
            else:
                assert not chunk
    return firings, readout(detector)


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (cumulative sums round differently from a running sum)."""
    if isinstance(expected, float) and not isinstance(got, bool):
        assert isinstance(got, float), where
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), where
        for k, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{where}[{k}]")
    else:
        assert type(got) is type(expected) and got == expected, f"{where}: {got!r} != {expected!r}"


def assert_same(case: str, sizes: Sequence[int]) -> None:
    firings, final = chunked(case, sizes)
    expected_firings, expected_final = sequential(case)
    assert [i for i, _ in firings] == [i for i, _ in expected_firings]
    assert_close(firings, expected_firings, "firings")
    assert_close(final, expected_final, "final")
    json.dumps(final["state"])  # still plain JSON


@pytest.mark.parametrize("case", list(CASES))
def test_the_streams_hold_several_detections(case: str) -> None:
    firings, _ = sequential(case)
    assert len(firings) >= 3


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [1, 20, 50, 997, BLOCK + 1, LENGTH])
def test_fixed_chunk_sizes(case: str, size: int) -> None:
    assert_same(case, [size])


sizes = st.lists(
    st.one_of(st.integers(1, 60), st.integers(60, 3 * BLOCK)),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=15, deadline=None)
@given(sizes=sizes)
def test_any_chunking(case: str, sizes: list[int]) -> None:
    assert_same(case, sizes)


def test_numpy_arrays_are_taken() -> None:
    xs = _means()[:2_900]  # before the first shift
    straight, chunked = MeanShift(warmup=300), MeanShift(warmup=300)
    for x in xs:
        straight.update(x)
    assert chunked.update_many(np.asarray(xs[:2_500])) == 2_500
    assert chunked.update_many(np.asarray(xs[2_500:2_510])) == 10  # the per-event path
    assert chunked.update_many(np.asarray(xs[2_510:])) == 390
    assert_close(chunked.to_state(), straight.to_state())
    json.dumps(chunked.to_state())
    rates = BernoulliDrift(warmup=300)
    assert rates.update_many(np.asarray(_rates()[:1_000])) == 1_000
    assert isinstance(rates.to_state()["zero_n"][0], int)


def test_an_empty_chunk_consumes_nothing() -> None:
    for make, _ in CASES.values():
        assert make().update_many([]) == 0


@pytest.mark.parametrize("size", [5, 500])
def test_mean_shift_rejects_a_non_finite_value_before_consuming_any(size: int) -> None:
    detector = MeanShift(warmup=300)
    values = [1.0] * size
    values[size - 2] = math.nan
    with pytest.raises(
        ValueError, match=f"MeanShift takes finite values, got nan at index {size - 2}"
    ):
        detector.update_many(values)
    assert detector.n == 0


@pytest.mark.parametrize("size", [5, 500])
def test_tail_shift_rejects_nan_in_its_first_stage_before_consuming_any(size: int) -> None:
    detector = TailShift(warmup=300, quantile_warmup=1_000)
    values = [1.0] * size
    values[3] = math.nan
    with pytest.raises(ValueError, match="TailShift takes values that are not NaN"):
        detector.update_many(values)
    assert detector.n == 0
