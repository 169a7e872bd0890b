"""What a call cost: the caller's ``cost_usd``, else its tokens priced from a price table.

The table is in LiteLLM's ``model_prices_and_context_window.json`` format (USD per token:
``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``,
``output_cost_per_reasoning_token``; ``input_cost_per_second``/``output_cost_per_second`` for
models billed by time). A snapshot ships in ``data/model_prices.json`` (made by
:mod:`~slowleak.streams.core.cost.snapshot`); a user file in the same format replaces it, and
overrides (same fields, plus ``cost_per_second``) win over both.

Token convention (OpenAI's): ``input_tokens`` includes ``cached_input_tokens`` and
``output_tokens`` includes ``reasoning_tokens``. So a call costs
``(input - cached) * input_price + cached * cached_price + (output - reasoning) * output_price
+ reasoning * reasoning_price + latency_s * per_second``; a missing cached price is the input
price, a missing reasoning price the output price.

A model name is matched, overrides first and then the table, against these candidates in
turn: ``provider/model`` (when the event names a provider), ``model``, ``model`` without a
``provider/`` prefix, then each of those without a date or version suffix (``gpt-4o-2024-08-06``
and ``gpt-4o-0806`` to ``gpt-4o``, ``claude-3-5-sonnet-20241022`` and ``...@20241022`` to
``claude-3-5-sonnet``, ``...-latest`` to the family). Matches are cached per provider and model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slowleak.models import InteractionEvent, Settings

__all__ = ["SNAPSHOT", "Price", "PriceBook", "Priced", "snapshot_version"]

SNAPSHOT = Path(__file__).parent / "data" / "model_prices.json"
#: Date or version suffixes a model family is listed without.
_SUFFIX = re.compile(r"([-@](20\d{2}-\d{2}-\d{2}|20\d{6}|\d{4}|latest|v\d+(:\d+)?))+$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token (and per second of latency, for models billed by time)."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    reasoning: float | None = None
    per_second: float = 0.0

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Price:
        """A price from a LiteLLM-format entry (unknown fields ignored)."""
        per_second = entry.get("cost_per_second")
        if per_second is None:
            per_second = (entry.get("input_cost_per_second") or 0.0) + (
                entry.get("output_cost_per_second") or 0.0
            )
        return cls(
            input=float(entry.get("input_cost_per_token") or 0.0),
            output=float(entry.get("output_cost_per_token") or 0.0),
            cached_input=_optional(entry.get("cache_read_input_token_cost")),
            reasoning=_optional(entry.get("output_cost_per_reasoning_token")),
            per_second=float(per_second),
        )

    def cost_usd(self, event: InteractionEvent) -> float:
        """What the call cost at this price (``CostWindows`` computes it inline, in the same
        order of operations, so both give the same float)."""
        inp, out = event.input_tokens, event.output_tokens
        cached, reasoning = event.cached_input_tokens, event.reasoning_tokens
        if cached:
            cached = min(cached, inp)
            cached_price = self.input if self.cached_input is None else self.cached_input
            cost = (inp - cached) * self.input + cached * cached_price
        else:
            cost = inp * self.input
        if reasoning:
            reasoning = min(reasoning, out)
            reasoning_price = self.output if self.reasoning is None else self.reasoning
            cost += (out - reasoning) * self.output + reasoning * reasoning_price
        else:
            cost += out * self.output
        if self.per_second:
            cost += event.latency_ms / 1000.0 * self.per_second
        return cost


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Priced:
    """A call's cost and where it came from: ``caller`` (the event's ``cost_usd``),
    ``table:<key>``, ``override:<key>``, or ``unknown`` (no price: cost 0, flagged)."""

    cost_usd: float
    price_source: str

    @property
    def known(self) -> bool:
        return self.price_source != "unknown"


def snapshot_version(path: Path = SNAPSHOT) -> str:
    """The ``_snapshot`` header of a price file, e.g. ``litellm-1.110.2`` (``""`` without one)."""
    header = json.loads(path.read_text()).get("_snapshot", {})
    return str(header.get("version", "")) if isinstance(header, dict) else ""


class PriceBook:
    """Prices calls: see the module's docstring for the matching rules.

    ``table`` is a LiteLLM-format mapping (default: the shipped snapshot, or ``path``);
    ``overrides`` maps model names (or ``provider/model``) to entries of the same format, plus
    ``cost_per_second``; a zero price is a price (self-hosted models).

    >>> from datetime import UTC, datetime
    >>> book = PriceBook(overrides={"llama-70b-local": {"cost_per_second": 0.002}})
    >>> def call(model, **fields):
    ...     return InteractionEvent(**{"event_id": "e", "ts": datetime(2026, 1, 1, tzinfo=UTC),
    ...         "app": "bot", "model": model, "input_tokens": 1000, "output_tokens": 100,
    ...         "latency_ms": 1500.0, "status": "ok"} | fields)
    >>> book.price(call("gpt-4o-2024-08-06"))
    Priced(cost_usd=0.0035, price_source='table:gpt-4o-2024-08-06')
    >>> book.price(call("gpt-4o-2099-01-01"))
    Priced(cost_usd=0.0035, price_source='table:gpt-4o')
    >>> book.price(call("llama-70b-local"))
    Priced(cost_usd=0.003, price_source='override:llama-70b-local')
    >>> book.price(call("my-own-model")), book.price(call("gpt-4o", cost_usd=0.01))
    (Priced(cost_usd=0.0, price_source='unknown'), Priced(cost_usd=0.01, price_source='caller'))
    """

    def __init__(
        self,
        *,
        table: Mapping[str, Any] | None = None,
        path: Path | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if table is not None and path is not None:
            raise ValueError("give a price table or the path of one, not both")
        if table is None:
            table = load_table(SNAPSHOT if path is None else path)
        self.path = path
        self.table = {k: Price.from_entry(v) for k, v in table.items() if _is_entry(k, v)}
        self.overrides = {k: Price.from_entry(v) for k, v in (overrides or {}).items()}
        self._matches: dict[tuple[str | None, str], tuple[Price | None, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceBook:
        """The book ``settings`` ask for: ``prices_file`` (or the snapshot), ``price_overrides``."""
        return cls(
            path=settings.prices_file,
            overrides={k: v.model_dump() for k, v in settings.price_overrides.items()},
        )

    def price(self, event: InteractionEvent) -> Priced:
        """The call's cost and its price's source."""
        if event.cost_usd is not None:
            return Priced(event.cost_usd, "caller")
        price, source = self.match(event.model, event.provider)
        if price is None:
            return Priced(0.0, "unknown")
        return Priced(price.cost_usd(event), source)

    def match(self, model: str, provider: str | None = None) -> tuple[Price | None, str]:
        """The price of a model and its source (``(None, "unknown")`` when none matches)."""
        found = self._matches.get((provider, model))
        if found is None:
            found = self._matches[provider, model] = self._lookup(model, provider)
        return found

    def _lookup(self, model: str, provider: str | None) -> tuple[Price | None, str]:
        names = []
        if provider is not None and not model.startswith(f"{provider}/"):
            names.append(f"{provider}/{model}")
        names.append(model)
        if "/" in model:
            names.append(model.split("/", 1)[1])
        names += [_SUFFIX.sub("", n) for n in names if _SUFFIX.search(n)]
        for kind, prices in (("override", self.overrides), ("table", self.table)):
            for name in names:
                price = prices.get(name)
                if price is not None:
                    return price, f"{kind}:{name}"
        return None, "unknown"


def _is_entry(key: str, value: Any) -> bool:
    return not key.startswith("_") and key != "sample_spec" and isinstance(value, dict)


def load_table(path: Path) -> dict[str, Any]:
    """A LiteLLM-format price file; ``ValueError`` saying what is wrong with it otherwise."""
    try:
        table = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"price file {path}: cannot read it ({error})") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"price file {path}: not JSON ({error})") from error
    if not isinstance(table, dict):
        raise ValueError(
            f"price file {path}: expected a JSON object of model name -> prices, as LiteLLM's "
            "model_prices_and_context_window.json"
        )
    return table
