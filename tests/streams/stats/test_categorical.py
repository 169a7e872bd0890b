"""CategoricalShift: which categories are watched, firing on seeded shifts, quiet on a stable
stream, state round trips, and update_many against update."""

from __future__ import annotations

import doctest
import json
import math
import random

import pytest

from slowleak.streams.core.stats import CategoricalShift
from slowleak.streams.core.stats import categorical as categorical_module
from slowleak.streams.core.stats.bernoulli import bernoulli_bank
from slowleak.streams.core.stats.categorical import NONE, OTHER
from slowleak.streams.core.stats.thresholds import GAMMA

LABELS = ["search", "chat", "code", "math", None, "rare-1", "rare-2", "rare-3"]
MIX = [0.49, 0.2, 0.15, 0.1, 0.05, 0.004, 0.003, 0.003]


def intents(
    seed: int, n: int, change: int | None = None, after: list[float] | None = None
) -> list[str | None]:
    rng = random.Random(seed)
    return [
        rng.choices(LABELS, MIX if change is None or i < change else after)[0] for i in range(n)
    ]


def first_firing(detector: CategoricalShift, xs: list[str | None]) -> int | None:
    return next((i for i, x in enumerate(xs) if detector.update(x)), None)


def test_docstring_example() -> None:
    assert doctest.testmod(categorical_module).failed == 0


def test_watched_categories_and_reference() -> None:
    detector = CategoricalShift(warmup=5_000)
    assert detector.reference is None and detector.categories == ()
    for x in intents(1, 5_000):
        detector.update(x)
    assert detector.categories == ("search", "chat", "code", "math", NONE, OTHER)
    reference = detector.reference
    assert reference is not None and sum(reference.values()) == pytest.approx(1.0, abs=1e-3)
    assert reference["chat"] == pytest.approx(0.2, abs=0.02)
    assert reference[OTHER] == pytest.approx(0.01, abs=0.005)
    fewer = CategoricalShift(warmup=5_000, max_categories=2, min_share=0.12)
    for x in intents(1, 5_000):
        fewer.update(x)
    assert fewer.categories == ("search", "chat", OTHER)


def test_banks_split_the_false_alarm_budget() -> None:
    detector = CategoricalShift(warmup=20_000)
    for x in intents(2, 20_000):
        detector.update(x)
    reference = detector.reference
    assert reference is not None
    m = len(detector.categories)  # 6 banks: each gets 1e-6 / 6 (Bonferroni)
    chat = [(s, h) for s, h, i in zip(detector._shift, detector._h, detector._of, strict=True)
            if i == 1]  # fmt: skip
    split = bernoulli_bank(
        reference["chat"], direction="both", warmup=20_000, false_alarm_rate=1e-6 / m
    )
    assert chat == [(s, h) for s, h, _, _ in split]
    lone = bernoulli_bank(reference["chat"], direction="both", warmup=20_000)
    alone = {s: h for s, h, _, _ in lone}
    for s, h in chat:
        assert h - alone[s] == pytest.approx(GAMMA["bernoulli", 2] * math.log(m))


def test_out_of_range_references_are_clamped_one_sided() -> None:
    detector = CategoricalShift(warmup=2_000)
    for _ in range(2_000):
        detector.update("stop")
    assert detector.categories == ("stop", OTHER)
    shifts = detector._shift
    assert all(s < 0 for s, i in zip(shifts, detector._of, strict=True) if i == 0)  # down
    assert all(s > 0 for s, i in zip(shifts, detector._of, strict=True) if i == 1)  # up
    for i in range(10_000):
        if detector.update("length" if i % 20 == 0 else "stop"):  # a new value at 5%
            break
    else:
        pytest.fail("a new category at 5% was not detected")
    assert i < 1_000
    assert detector.direction is not None


def test_fires_when_one_share_rises() -> None:
    after = [0.44, 0.2, 0.15, 0.15, 0.05, 0.004, 0.003, 0.003]  # math 0.10 -> 0.15
    xs = intents(3, 40_000, change=22_000, after=after)
    detector = CategoricalShift()
    fired = first_firing(detector, xs)
    assert fired is not None and 22_000 < fired < 26_000
    assert (detector.category, detector.direction) == ("math", "up")
    assert detector.estimate == pytest.approx(0.15, abs=0.04)
    assert detector.change_index is not None and 20_000 <= detector.change_index < fired
    assert detector.statistic > detector.threshold


def test_fires_when_a_new_category_appears() -> None:
    after = [p * 0.95 for p in MIX]
    xs = intents(4, 10_000, change=5_000, after=after)
    rng = random.Random(5)
    xs = [x if i < 5_000 or rng.random() >= 0.05 else "brand-new" for i, x in enumerate(xs)]
    detector = CategoricalShift(warmup=5_000)
    fired = first_firing(detector, xs)
    assert fired is not None and 5_000 < fired < 6_000
    assert (detector.category, detector.direction) == (OTHER, "up")


def test_quiet_on_a_stable_stream() -> None:
    detector = CategoricalShift()
    assert detector.update_many(intents(6, 200_000)) == 200_000
    assert not detector.drift_detected


def test_the_update_after_a_detection_starts_a_new_warmup() -> None:
    detector = CategoricalShift(warmup=2_000)
    after = [0.2, 0.2, 0.15, 0.39, 0.05, 0.004, 0.003, 0.003]
    assert first_firing(detector, intents(7, 5_000, change=2_500, after=after)) is not None
    assert detector.update("chat") is False
    assert (detector.n, detector.reference, detector.category, detector.direction) == (
        1, None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize("cut", [1_000, 2_000, 2_600])
def test_state_round_trip_mid_stream_gives_the_same_future(cut: int) -> None:
    after = [0.3, 0.2, 0.15, 0.29, 0.05, 0.004, 0.003, 0.003]
    xs = intents(8, 6_000, change=2_500, after=after)
    straight, restored = CategoricalShift(warmup=2_000), CategoricalShift(warmup=2_000)
    for x in xs[:cut]:
        straight.update(x)
        restored.update(x)
    restored = CategoricalShift.from_state(json.loads(json.dumps(restored.to_state())))
    for x in xs[cut:]:
        assert restored.update(x) == straight.update(x)
        assert restored.statistic == straight.statistic
    assert restored.to_state() == straight.to_state()


def test_update_many_matches_update_on_a_shift() -> None:
    after = [0.3, 0.2, 0.15, 0.29, 0.05, 0.004, 0.003, 0.003]
    xs = intents(9, 8_000, change=4_000, after=after)
    straight = CategoricalShift(warmup=3_000)
    fired = first_firing(straight, xs)
    assert fired is not None
    chunked = CategoricalShift(warmup=3_000)
    assert chunked.update_many(xs[:2_000]) == 2_000
    assert chunked.update_many(xs[2_000:]) == fired + 1 - 2_000  # straddles the warm-up's end
    assert (chunked.category, chunked.direction) == (straight.category, straight.direction)
    assert chunked.estimate == straight.estimate and chunked.n == straight.n
    assert chunked.statistic == pytest.approx(straight.statistic, rel=1e-9)


def test_too_many_distinct_values_are_pooled() -> None:
    detector = CategoricalShift(warmup=2_000)
    for i in range(2_000):
        detector.update("common" if i % 2 else f"id-{i}")
    assert detector.categories == ("common", OTHER)
    assert detector.reference == pytest.approx({"common": 0.5, OTHER: 0.5}, abs=1e-3)


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="warmup must be at least 100 events, got 99"):
        CategoricalShift(warmup=99)
    with pytest.raises(ValueError, match=r"min_share must be in \[0.01, 1\), got 0.001"):
        CategoricalShift(min_share=0.001)
    with pytest.raises(ValueError, match="max_categories must be at least 1, got 0"):
        CategoricalShift(max_categories=0)
    with pytest.raises(ValueError, match="unknown CategoricalShift state version 3"):
        CategoricalShift.from_state(CategoricalShift().to_state() | {"v": 3})
