"""What a challenger is: a Python callable, named in configuration as ``module:function``.

It takes the recorded call (:class:`~slowleak.streams.challenge.sampling.ChampionCall`; the
prompt is ``call.input_text``) and returns a :class:`ChallengerResult`, or a mapping with its
field names, or a tuple ``(output_text, input_tokens, output_tokens, latency_ms, cost_usd)``. It
may be a plain function (run in a thread, so a blocking client is fine) or ``async``. Teams plug
in their own client this way; ``openai`` and ``fake`` name the built-in adapters.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeAlias

from slowleak.streams.challenge.sampling import ChampionCall

__all__ = ["Challenger", "ChallengerResult", "is_async", "load_callable", "resolve_challenger"]

Challenger: TypeAlias = Callable[[ChampionCall], "ChallengerResult | Awaitable[Any] | Any"]
_TUPLE_FIELDS = ("output_text", "input_tokens", "output_tokens", "latency_ms", "cost_usd")


@dataclass(frozen=True, slots=True)
class ChallengerResult:
    """What one challenger call produced. ``latency_ms`` None: the runner measures it."""

    output_text: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float | None = None
    cost_usd: float | None = None
    status: str = "ok"
    finish_reason: str | None = None
    error_type: str | None = None
    model: str | None = None
    provider: str | None = None

    @classmethod
    def coerce(cls, value: object) -> ChallengerResult:
        """A result from what a challenger returned; ``TypeError`` that names the forms."""
        if isinstance(value, ChallengerResult):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise TypeError(
                    f"challenger returned unknown fields {unknown}; known: {sorted(known)}"
                )
            return cls(**value)
        if isinstance(value, tuple) and len(value) == len(_TUPLE_FIELDS):
            return cls(**dict(zip(_TUPLE_FIELDS, value, strict=True)))
        raise TypeError(
            "a challenger returns a ChallengerResult, a mapping of its fields or a tuple "
            f"(output_text, input_tokens, output_tokens, latency_ms, cost_usd), not "
            f"{type(value).__name__}"
        )


def load_callable(spec: str) -> Callable[..., Any]:
    """The object named ``module:attribute`` (``attribute`` may be dotted); ``ValueError``
    saying what is wrong and how to name it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r}: name a callable as module:function, e.g. mypkg.bots:call_v15")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"{spec!r}: cannot import module {module_name!r} ({exc}); is it on PYTHONPATH?"
        ) from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: module {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise ValueError(f"{spec!r}: {attr!r} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]


def is_async(fn: object) -> bool:
    """Whether calling ``fn`` returns an awaitable (an ``async def`` function or ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - instances with an async __call__
    )


def resolve_challenger(spec: str, *, seed: int = 0) -> Challenger:
    """``fake`` (the deterministic fake model), ``openai`` (the HTTP adapter, configured from
    ``SLOWLEAK_CHALLENGER_*`` environment variables) or ``module:function``."""
    if spec == "fake":
        from slowleak.streams.challenge.fake import FakeModel

        return FakeModel(seed=seed)
    if spec == "openai":
        from slowleak.streams.challenge.openai_compat import OpenAICompatible

        return OpenAICompatible.from_env(os.environ)
    return load_callable(spec)
