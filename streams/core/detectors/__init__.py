"""Detectors: per-key state machines over the event stream that decide alerts.

Each detector keeps its state per key (e.g. app x env x variant x model) as plain JSON-able data,
so the worker can write it to a faust table (its changelog makes it survive restarts and move with
its partition) and ``slowleak replay`` can run the very same code with no table at all.
"""

from slowleak.streams.core.detectors.availability import Availability
from slowleak.streams.core.detectors.base import KeyedDetector, ObjectDetector, StateStore
from slowleak.streams.core.detectors.drift import BehaviourDrift
from slowleak.streams.core.detectors.fallback import FallbackRate
from slowleak.streams.core.detectors.model_change import DeclaredModelChange


def default_detectors(
    store: StateStore | None = None, *, availability_target: float = 0.995
) -> list[KeyedDetector]:
    """The detectors the worker and replay run, sharing one state store."""
    return [
        DeclaredModelChange(store=store),
        BehaviourDrift(store=store),
        Availability(store=store, target=availability_target),
        FallbackRate(store=store),
    ]


__all__ = [
    "Availability",
    "BehaviourDrift",
    "DeclaredModelChange",
    "FallbackRate",
    "KeyedDetector",
    "ObjectDetector",
    "StateStore",
    "default_detectors",
]
