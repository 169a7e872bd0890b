"""Detectors: per-key state machines over the event stream that decide alerts.

Each detector keeps its state per key (e.g. app x env x variant x model) as plain JSON-able data,
so the worker can write it to a faust table (its changelog makes it survive restarts and move with
its partition) and ``slowleak replay`` can run the very same code with no table at all.
"""

from collections.abc import Mapping, Sequence

from slowleak.models import Settings
from slowleak.models.settings import Budget
from slowleak.streams.core.cost import CostBudget, CostSpike, CostWindows, PriceBook
from slowleak.streams.core.detectors.availability import Availability
from slowleak.streams.core.detectors.base import KeyedDetector, ObjectDetector, StateStore
from slowleak.streams.core.detectors.challenger import ChallengerComparison
from slowleak.streams.core.detectors.drift import BehaviourDrift
from slowleak.streams.core.detectors.fallback import FallbackRate
from slowleak.streams.core.detectors.guardrail import GuardrailMonitor
from slowleak.streams.core.detectors.model_change import DeclaredModelChange
from slowleak.streams.core.guardrails import AppProfile, Scanner


def default_detectors(
    store: StateStore | None = None,
    *,
    availability_target: float = 0.995,
    prices: PriceBook | None = None,
    budgets: Sequence[Budget] = (),
    window_grace_s: float = 120.0,
    profiles: Mapping[str, AppProfile] | None = None,
    guardrails: bool = True,
    injection_threshold: float | None = None,
) -> list[KeyedDetector]:
    """The detectors the worker and replay run, sharing one state store."""
    prices = PriceBook() if prices is None else prices
    detectors: list[KeyedDetector] = [
        DeclaredModelChange(store=store),
        BehaviourDrift(store=store),
        Availability(store=store, target=availability_target),
        FallbackRate(store=store),
        ChallengerComparison(store=store),
        CostWindows(
            store=store, prices=prices, grace_s=window_grace_s, watcher=CostSpike(store=store)
        ),
    ]
    if budgets:
        detectors.append(CostBudget(store=store, prices=prices, budgets=list(budgets)))
    if guardrails:
        scanner = Scanner(profiles or {}, injection_threshold=injection_threshold)
        detectors.append(GuardrailMonitor(store=store, profiles=profiles, scanner=scanner))
    return detectors


def settings_detectors(settings: Settings, store: StateStore | None = None) -> list[KeyedDetector]:
    """:func:`default_detectors` as ``settings`` configure them."""
    return default_detectors(
        store,
        availability_target=settings.availability_target,
        prices=PriceBook.from_settings(settings),
        budgets=settings.budgets,
        window_grace_s=settings.window_grace_s,
        profiles=guardrail_profiles(settings),
        guardrails=settings.guardrails,
        injection_threshold=settings.injection_threshold,
    )


def guardrail_profiles(settings: Settings) -> dict[str, AppProfile]:
    """The guardrail profiles of the apps ``settings`` describe."""
    return {
        name: AppProfile(
            description=p.description,
            allowed_intents=tuple(p.allowed_intents),
            code_expected=p.code_expected,
            secrets=tuple(s.get_secret_value() for s in p.secrets),
            system_prompt=p.system_prompt.get_secret_value() if p.system_prompt else "",
            topic_terms=tuple(p.topic_terms),
            injection_threshold=p.injection_threshold,
        )
        for name, p in settings.apps.items()
    }


__all__ = [
    "Availability",
    "BehaviourDrift",
    "ChallengerComparison",
    "DeclaredModelChange",
    "FallbackRate",
    "GuardrailMonitor",
    "KeyedDetector",
    "ObjectDetector",
    "StateStore",
    "default_detectors",
    "guardrail_profiles",
    "settings_detectors",
]
