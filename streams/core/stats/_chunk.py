"""The chunk path of the CUSUM banks: a block of events at once, vectorised with numpy.

Each bank member ``k`` runs ``s_n = max(0, s_{n-1} + d_n)``. With ``C_n`` the cumulative sum of
the increments over the block (``C_0 = 0``) the recursion has the closed form

    s_n = C_n - min(-s_0, min_{1 <= j <= n} C_j),

one ``cumsum`` and one ``minimum.accumulate`` along the event axis for every member at once.
``s_n`` is exactly 0 where ``C_n`` is the running minimum, so where a member leaves 0 (the
``change_index`` bookkeeping) is read off the zeros. The first detection is the first event at
which any member is above its threshold; the block is cut there, as the per-event ``update``
stops there.

Every increment here is ``p_k * u_j + q_k * v_j`` for per-event values ``u``, ``v`` (a count
of ``True`` events and of ``False`` ones, or a sum of standardised values and an event count),
so ``C`` is built from 1-D cumulative sums without an (members x events) ``cumsum``. Its
rounding differs from the sequential sum's by ~1e-13 relative: floats agree to ~1e-9, and the
event a member fires or leaves 0 at could only differ on a tie closer than that.

Only the ``update_many`` methods import this module, on their first large chunk: the
detectors' own import and their per-event path stay pure Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BLOCK",
    "Scan",
    "as_bools",
    "as_floats",
    "block_size",
    "count_true",
    "exceeds",
    "finite_floats",
    "scan_bank",
    "scan_means",
    "scan_rates",
    "scan_shares",
]

#: The most events per numpy block: bounds the work wasted past a detection early in a block.
BLOCK = 4096
#: (members x events) cells per block: a few float arrays of this size stay in cache (~0.5 MB
#: each), which beats longer blocks for large banks (0.87 vs 1.25 us/event for 60 members).
CELLS = 1 << 16


def block_size(members: int) -> int:
    """Events per block for a bank of ``members``: at most :data:`CELLS` cells, 256..BLOCK."""
    return min(max(CELLS // max(members, 1), 256), BLOCK)


Floats = Sequence[float]


@dataclass(frozen=True, slots=True)
class Scan:
    """What a bank did over a block, cut after its first detection.

    Attributes
    ----------
    consumed
        Events of the block consumed: through the first detection, else all.
    fired
        The member that fired (the largest ``s / h`` at that event, first on ties), else -1.
    s
        Each member's statistic after the last consumed event.
    left
        Per member, the block index of the last consumed event at which it left 0 (it was 0
        before that event), or -1 if it did not leave 0 in the block.
    before
        Per member, its running count (or total) just before that event, counted from the
        block's start; 0 where ``left`` is -1.
    end
        Per running count (row of ``prefix``), its value over the consumed events.
    """

    consumed: int
    fired: int
    s: list[float]
    left: list[int]
    before: list[float]
    end: list[float]


def scan_bank(
    s0: Floats,
    h: Floats,
    p: Floats,
    q: Floats,
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    prefix: NDArray[np.float64],
    rows: Sequence[int] | None = None,
) -> Scan:
    """Run a bank over one block of at least one event.

    Parameters
    ----------
    s0, h
        Per member: the statistic before the block, and the threshold.
    p, q
        Per member: the coefficients of its increments, ``d[k, j] = p[k] * du[j] + q[k] * dv[j]``.
    u, v
        The cumulative sums ``u[j] = du[0] + ... + du[j]`` (and ``v`` of ``dv``), shape
        ``(events,)`` shared by every member or ``(members, events)``.
    prefix
        Running counts (or totals) the caller keeps per member, shape ``(rows, events + 1)``:
        ``prefix[r, j]`` is the value before block event ``j``, 0 before the first.
    rows
        Per member, its row of ``prefix`` (default: row 0 for every member).
    """
    start = np.asarray(s0, dtype=np.float64)
    threshold = np.asarray(h, dtype=np.float64)
    events = u.shape[-1]
    c = np.asarray(p, dtype=np.float64)[:, None] * u + np.asarray(q, dtype=np.float64)[:, None] * v
    low = np.minimum.accumulate(c, axis=1)
    np.minimum(low, -start[:, None], out=low)
    s = np.subtract(c, low, out=c)

    over = np.flatnonzero((s > threshold[:, None]).any(axis=0))
    if over.size:
        first = int(over[0])
        consumed, fired = first + 1, int((s[:, first] / threshold).argmax())
        s = s[:, :consumed]
    else:
        consumed, fired = events, -1

    # A member leaves 0 at block event j when it was 0 before it and is not after it.
    zero = s == 0.0
    was_zero = np.empty_like(zero)
    was_zero[:, 0] = start == 0.0
    was_zero[:, 1:] = zero[:, :-1]
    leaves = was_zero & ~zero
    left = np.where(leaves.any(axis=1), consumed - 1 - leaves[:, ::-1].argmax(axis=1), -1)
    member_rows = np.zeros(len(start), dtype=np.intp) if rows is None else np.asarray(rows)
    before = np.where(left >= 0, prefix[member_rows, np.maximum(left, 0)], 0)
    return Scan(
        consumed=consumed,
        fired=fired,
        s=s[:, -1].tolist(),
        left=left.tolist(),
        before=before.tolist(),
        end=prefix[:, consumed].tolist(),
    )


def _running(values: NDArray[np.float64] | NDArray[np.bool_]) -> NDArray[np.float64]:
    """``values``' running sums along the last axis, with a leading 0: ``out[..., j]`` is the
    sum of the first ``j``."""
    out = np.zeros((*values.shape[:-1], values.shape[-1] + 1))
    np.cumsum(values, axis=-1, out=out[..., 1:])
    return out


def scan_rates(s0: Floats, h: Floats, inc0: Floats, inc1: Floats, x: NDArray[np.bool_]) -> Scan:
    """A Bernoulli bank (increment ``inc1[k]`` for a ``True`` event, ``inc0[k]`` for a
    ``False`` one) over the events ``x``; ``prefix`` counts the ``True`` events."""
    ones = _running(x)
    trues = ones[1:]
    falses = np.arange(1.0, len(x) + 1.0) - trues
    return scan_bank(s0, h, inc1, inc0, trues, falses, ones[None, :])


def scan_means(
    s0: Floats,
    h: Floats,
    a: Floats,
    c: Floats,
    x: NDArray[np.float64],
    mean: float,
    sd: float,
    clip: float,
) -> Scan:
    """A Gaussian bank (increment ``a[k] * z - c[k]`` for the standardised, clipped value
    ``z``) over the values ``x``; ``prefix`` sums the raw values."""
    z = np.clip((x - mean) / sd, -clip, clip)
    steps = np.arange(1.0, len(x) + 1.0)
    return scan_bank(s0, h, a, [-ci for ci in c], np.cumsum(z), steps, _running(x)[None, :])


def scan_shares(
    s0: Floats,
    h: Floats,
    inc0: Floats,
    inc1: Floats,
    of: Sequence[int],
    codes: Sequence[int],
    categories: int,
) -> Scan:
    """Banks on the indicators ``code == b``, one per category ``b`` (member ``k`` watches
    category ``of[k]``), over the category codes ``codes``; ``prefix`` has one row per category
    counting its events."""
    x = np.asarray(codes, dtype=np.intp)
    counts = _running(x[None, :] == np.arange(categories)[:, None])
    hits = counts[np.asarray(of, dtype=np.intp), 1:]
    misses = np.arange(1.0, len(x) + 1.0) - hits
    return scan_bank(s0, h, inc1, inc0, hits, misses, counts, of)


def finite_floats(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as floats; a ``ValueError`` naming the first non-finite one and its index."""
    x = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(bad.argmax())
        raise ValueError(f"{name} takes finite values, got {x[i]} at index {i}")
    return x


def as_floats(values: ArrayLike) -> list[float]:
    """``values`` as a list of Python floats."""
    out: list[float] = np.asarray(values, dtype=np.float64).tolist()
    return out


def exceeds(values: ArrayLike, cutoff: float) -> NDArray[np.bool_]:
    """Which of ``values`` are above ``cutoff`` (NaN is not)."""
    return np.asarray(values, dtype=np.float64) > cutoff


def as_bools(values: ArrayLike) -> NDArray[np.bool_]:
    """``values`` as a boolean array."""
    return np.asarray(values, dtype=np.bool_)


def count_true(x: NDArray[np.bool_]) -> int:
    """How many of ``x`` are ``True``."""
    return int(np.count_nonzero(x))
