"""Calibrated thresholds of the CUSUM banks in :mod:`slowleak.streams.core.stats`.

Every detector here runs a bank of one-sided CUSUMs, one per shift in :data:`SHIFTS` (log-odds
for a rate, standard deviations for a continuous value) and per direction. Member ``k`` has the
per-event information ``kl_k`` (the Kullback-Leibler divergence between the reference and the
shifted distribution; the stable stream drifts down by that much per event) and fires above

    h_k = gamma * ln(kl_k / TARGET_FALSE_ALARMS_PER_EVENT)

where ``ln(kl / rate)`` is Siegmund's approximation of the threshold a lone CUSUM tuned to that
shift needs for one false alarm per ``1 / rate`` events, and ``gamma`` (one number per family and
per one- or two-sided bank) pays for running many of them at once. ``gamma`` is calibrated by
simulation: :file:`benchmarks/drift_calibration.py` regenerates :data:`GAMMA` and prints it.

The reference (a rate, or a mean and standard deviation) is estimated from a warm-up of
``warmup`` events and then frozen. Its estimation error is paid for in the statistic: each
member's log-likelihood ratio is charged ``h_k / warmup`` per event. For a Gaussian mean this is
exact: the two-sample log-likelihood ratio of a segment of ``n`` events against a reference of
``warmup`` events is the one-sample one times ``warmup / (warmup + n)``, and "some segment's
shrunk ratio exceeds ``h``" is the same event as "the CUSUM of the increments minus
``h / warmup`` exceeds ``h``"; for a rate it is the same through the normal approximation. With
that charge the false-alarm rate depends little on the reference's error, so one ``gamma`` per
family holds for every key (without it: 0.83 estimated from 2,000 events is off by 0.008, one
sd, which is 40% of a 0.02 drop, and the keys whose estimate came out high would see a stable
stream as a drop and alarm within a few thousand events). A member that could not
reach its own threshold within one warm-up length even when its shift is exactly the true one
(``kl_k * warmup < 2 * h_k``) is not run at all: the warm-up cannot tell a shift that small
from the reference's own error.
"""

from __future__ import annotations

import math

__all__ = [
    "GAMMA",
    "SHIFTS",
    "TARGET_FALSE_ALARMS_PER_EVENT",
    "is_active",
    "member_threshold",
    "penalty",
]

#: The false-alarm rate every family is calibrated to: one per 1,000,000 stable events per key.
TARGET_FALSE_ALARMS_PER_EVENT = 1e-6

#: The bank's shifts, a geometric grid with ratio sqrt(2) (a shift between two members loses at
#: most 3% of the per-event information): log-odds for rates, standard deviations for values.
#: 0.1 log-odds is 0.83 -> 0.815; 1.6 is 0.83 -> 0.496.
SHIFTS: tuple[float, ...] = tuple(round(0.1 * 2 ** (k / 2), 6) for k in range(9))

#: gamma by (family, sides), from ``benchmarks/drift_calibration.py`` (seeds 20261125..20261204;
#: 80 conditions x 800 keys x 100,000 monitored stable events: 80M events per condition, 6.4G
#: in all; 376 s on 2 cores). Each is the largest gamma any condition of the family needs for at
#: most 0.8 false alarms per 1,000,000 monitored events (the target is 1; the margin covers the
#: simulation's error, ~60 alarms per condition). Conditions: rates 0.5, 0.7, 0.83, 0.95, 0.99,
#: banks down, up (up at p is down at 1 - p) and both, and the Gaussian bank one- and two-sided
#: (values clipped at 3 sd), each with warm-ups of 2,000, 10,000, 20,000, 40,000 and 200,000
#: events. The largest always came with the 200,000 warm-up (gamma rises with it, ~0.03 from
#: 40,000 to 200,000; larger warm-ups are not covered), so at the default warm-ups the rate is
#: about half the target. The last run printed these values, except 1.275 for ("bernoulli", 2).
GAMMA: dict[tuple[str, int], float] = {
    ("bernoulli", 1): 1.185,
    ("bernoulli", 2): 1.28,
    ("gaussian", 1): 1.115,
    ("gaussian", 2): 1.2,
}


def member_threshold(
    kl: float, gamma: float, false_alarm_rate: float = TARGET_FALSE_ALARMS_PER_EVENT
) -> float:
    """The threshold of a bank member whose stable stream drifts down by ``kl`` per event.

    ``false_alarm_rate`` is the bank's share of a key's budget: a detector running ``m`` banks
    on one stream gives each ``TARGET_FALSE_ALARMS_PER_EVENT / m`` (Bonferroni).
    """
    return gamma * math.log(kl / false_alarm_rate)


def penalty(threshold: float, warmup: int) -> float:
    """What each event's log-likelihood ratio is charged for the reference's estimation error."""
    return threshold / warmup


def is_active(kl: float, threshold: float, warmup: int) -> bool:
    """Whether a member can detect its own shift within one warm-up length (else it is not run)."""
    return threshold > 0.0 and kl * warmup >= 2.0 * threshold
