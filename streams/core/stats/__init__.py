"""Statistical change detectors on one stream: rates, means, tails and category mixes.

Pure Python per event, one small class per file, state as plain JSON-able data (``to_state`` /
``from_state``) so the worker can keep one detector per key in a faust table. Each runs a bank
of CUSUMs over a grid of shift sizes after a warm-up that estimates the reference, with
thresholds calibrated by simulation for about one false alarm per 1,000,000 stable events
(:mod:`slowleak.streams.core.stats.thresholds`). Each also takes a chunk of events at once
(``update_many``, the same results as one ``update`` per event): long chunks run the banks with
numpy, imported only then.
"""

from slowleak.streams.core.stats.bernoulli import BernoulliDrift
from slowleak.streams.core.stats.categorical import CategoricalShift
from slowleak.streams.core.stats.gaussian import MeanShift
from slowleak.streams.core.stats.tail import TailShift

__all__ = ["BernoulliDrift", "CategoricalShift", "MeanShift", "TailShift"]
