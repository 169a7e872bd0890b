"""The calibrated constants and the rules the banks are built with."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest

from slowleak.streams.core.stats.bernoulli import bernoulli_bank
from slowleak.streams.core.stats.gaussian import gaussian_bank
from slowleak.streams.core.stats.thresholds import (
    GAMMA,
    SHIFTS,
    TARGET_FALSE_ALARMS_PER_EVENT,
    is_active,
    member_threshold,
    penalty,
)


def test_shifts_are_a_sqrt2_grid() -> None:
    assert SHIFTS[0] == 0.1 and len(SHIFTS) == 9
    assert all(
        b / a == pytest.approx(math.sqrt(2), rel=1e-5) for a, b in itertools.pairwise(SHIFTS)
    )


def test_member_threshold_penalty_and_activity() -> None:
    assert TARGET_FALSE_ALARMS_PER_EVENT == 1e-6
    assert member_threshold(0.01, 1.0) == pytest.approx(math.log(10_000))
    assert penalty(10.0, 20_000) == 5e-4
    assert is_active(0.01, 10.0, 2_000) and not is_active(0.01, 10.0, 1_999)
    assert not is_active(1e-7, member_threshold(1e-7, 1.0), 10**9)


def test_gamma_covers_every_family_and_bank() -> None:
    assert set(GAMMA) == {("bernoulli", 1), ("bernoulli", 2), ("gaussian", 1), ("gaussian", 2)}
    assert all(1.0 < g < 1.5 for g in GAMMA.values())


def test_banks() -> None:
    down = bernoulli_bank(0.83, direction="down", warmup=20_000)
    assert [s for s, *_ in down] == [-s for s in SHIFTS[1:]]  # 0.1: too small for 20,000
    assert [s for s, *_ in bernoulli_bank(0.83, direction="down", warmup=40_000)] == [
        -s for s in SHIFTS
    ]
    assert all(inc0 > 0 > inc1 and h > 0 for _, h, inc0, inc1 in down)
    both = bernoulli_bank(0.83, direction="both", warmup=20_000)
    assert len(both) == 2 * len(down) and both[0][1] > down[0][1]  # two-sided: higher
    assert len(bernoulli_bank(0.999, direction="down", warmup=2_000)) == 0  # 2 failures: no bank
    assert [s for s, _, _ in gaussian_bank(direction="up", warmup=10_000)] == list(SHIFTS)


def test_stats_import_no_broker_or_database_client() -> None:
    # numpy is allowed (update_many runs the banks with it; river needs it anyway).
    code = (
        "import sys, slowleak.streams.core.stats;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust', 'kafka', 'aiokafka', 'clickhouse_connect', 'chdb', 'mode'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
