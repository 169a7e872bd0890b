"""Statistical change detectors on one stream: rates, means and tails.

Pure Python, one small class per file, state as plain JSON-able data (``to_state`` /
``from_state``) so the worker can keep one detector per key in a faust table. Each runs a bank
of CUSUMs over a grid of shift sizes after a warm-up that estimates the reference, with
thresholds calibrated by simulation for about one false alarm per 1,000,000 stable events
(:mod:`slowleak.streams.core.stats.thresholds`).
"""

from slowleak.streams.core.stats.bernoulli import BernoulliDrift
from slowleak.streams.core.stats.gaussian import MeanShift
from slowleak.streams.core.stats.tail import TailShift

__all__ = ["BernoulliDrift", "MeanShift", "TailShift"]
