"""AdwinBackstop: river's ADWIN behind the banks' interface, with a JSON state."""

from __future__ import annotations

import random

import orjson

from slowleak.streams.core.stats.adwin import AdwinBackstop


def stream(seed: int, n: int = 30_000, change: int = 20_000) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < (0.83 if i < change else 0.6) for i in range(n)]


def firings(detector: AdwinBackstop, xs: list[bool], chunk: int) -> list[int]:
    out, start = [], 0
    while start < len(xs):
        start += detector.update_many(xs[start : start + chunk])
        if detector.drift_detected:
            out.append(start - 1)
    return out


def test_detects_a_drop_and_dates_it() -> None:
    detector = AdwinBackstop()
    xs = stream(1)
    at = detector.update_many(xs) - 1
    assert detector.drift_detected and 20_000 < at < 20_400
    assert detector.reference is not None and 0.78 < detector.reference < 0.84
    # ADWIN cuts only the oldest part of the window that differs: the part it keeps can still
    # hold values from before the change, so its mean is between the two levels.
    assert detector.estimate is not None and detector.estimate < detector.reference - 0.03
    assert detector.change_index is not None and detector.change_index < at


def test_update_many_equals_update_whatever_the_chunking() -> None:
    xs = stream(2)
    one = AdwinBackstop()
    expected = [i for i, x in enumerate(xs) if one.update(x)]
    assert firings(AdwinBackstop(), xs, 1) == expected == firings(AdwinBackstop(), xs, 777)


def test_state_round_trip_through_json_continues_identically() -> None:
    xs = stream(3)
    whole = firings(AdwinBackstop(), xs, 500)
    first = AdwinBackstop()
    before = firings(first, xs[:15_000], 500)
    restored = AdwinBackstop.from_state(orjson.loads(orjson.dumps(first.to_state())))
    after = [15_000 + i for i in firings(restored, xs[15_000:], 500)]
    assert before + after == whole


def test_a_state_from_another_format_starts_the_window_over() -> None:
    detector = AdwinBackstop()
    firings(detector, stream(4)[:5_000], 500)
    state = detector.to_state() | {"format": "something-else"}
    assert AdwinBackstop.from_state(state).width == 0
