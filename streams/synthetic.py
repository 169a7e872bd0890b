"""Seeded synthetic traffic of a few LLM apps, for the demo, tests and benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["APPS", "AppProfile", "TrafficGenerator", "malformed_messages"]


@dataclass(frozen=True, slots=True)
class AppProfile:
    app: str
    models: tuple[tuple[str, float], ...]  # (model, share of calls)
    intents: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    latency_ms: float
    success_rate: float
    error_rate: float


APPS = (
    AppProfile(
        "support-bot", (("gpt-4o", 0.8), ("gpt-4o-mini", 0.2)),
        ("refund", "order_status", "complaint", "other"), 900, 220, 1_400.0, 0.83, 0.01,
    ),
    AppProfile(
        "food-order-bot", (("claude-3-5-haiku", 1.0),),
        ("order_food", "menu_question", "delivery_status"), 350, 90, 650.0, 0.91, 0.005,
    ),
    AppProfile(
        "doc-search", (("gpt-4o-mini", 0.7), ("llama-3.1-70b", 0.3)),
        ("search", "summarize"), 2_400, 380, 2_100.0, 0.76, 0.02,
    ),
)  # fmt: skip

_PRICES_PER_MTOK = {  # USD per million tokens (input, output), for plausible cost_usd values
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "claude-3-5-haiku": (0.8, 4.0),
    "llama-3.1-70b": (0.6, 0.6),
}


class TrafficGenerator:
    """Interaction and feedback events (as dicts in the contract's JSON shape), seeded."""

    def __init__(
        self,
        *,
        seed: int = 7,
        start: datetime,
        calls_per_second: float = 50.0,
        provider_swap_at: int | None = None,
    ) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        #: From this call on, the provider serves support-bot's gpt-4o from a new snapshot.
        self.provider_swap_at = provider_swap_at
        self.seed = seed
        self.start = start
        self.calls_per_second = calls_per_second
        self._rng = random.Random(seed)
        self._n = 0

    def interaction(self, *, with_text: bool = True) -> dict[str, Any]:
        rng = self._rng
        self._n += 1
        profile = rng.choice(APPS)
        model = rng.choices([m for m, _ in profile.models], [w for _, w in profile.models])[0]
        ts = self.start + timedelta(seconds=self._n / self.calls_per_second)
        input_tokens = max(1, int(rng.lognormvariate(0, 0.4) * profile.input_tokens))
        roll = rng.random()
        status = "ok" if roll >= profile.error_rate else rng.choice(["error", "timeout"])
        output_tokens = (
            0 if status != "ok" else int(rng.lognormvariate(0, 0.5) * profile.output_tokens)
        )
        price_in, price_out = _PRICES_PER_MTOK[model]
        event: dict[str, Any] = {
            "event_id": f"{profile.app}-{self.seed}-{self._n:08d}",
            "ts": ts.isoformat(timespec="milliseconds"),
            "app": profile.app,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "latency_ms": round(rng.lognormvariate(0, 0.35) * profile.latency_ms, 1),
            "status": status,
            "tenant": rng.choice(["acme", "globex", "initech"]),
            "intent": rng.choice(profile.intents),
            "provider": model.split("-")[0],
            "response_model": f"{model}-2024-08-06",
            "system_fingerprint": "fp_7e2c1a",
            "prompt_id": f"{profile.app}-main",
            "prompt_version": "v14",
            "cost_usd": round((input_tokens * price_in + output_tokens * price_out) / 1e6, 6),
        }
        swapped = self.provider_swap_at is not None and self._n >= self.provider_swap_at
        if swapped and model == "gpt-4o":
            event["response_model"] = "gpt-4o-2024-11-20"
            event["system_fingerprint"] = "fp_9b0f3d"
        if status == "ok":
            event["finish_reason"] = "stop"
            event["outcome"] = rng.random() < profile.success_rate
        else:
            event["error_type"] = "RateLimitError" if status == "error" else "ReadTimeout"
        if with_text:
            event["input_text"] = f"Customer asks about {event['intent'].replace('_', ' ')}."
            event["output_text"] = "Sure, here is what I found." if status == "ok" else None
            if event["output_text"] is None:
                del event["output_text"]
        return event

    def feedback(self, event: dict[str, Any], *, delay_s: float = 90.0) -> dict[str, Any]:
        """A later judgement of ``event`` (user thumbs up/down)."""
        ts = datetime.fromisoformat(event["ts"]) + timedelta(seconds=delay_s)
        return {
            "type": "feedback",
            "event_id": event["event_id"],
            "ts": ts.isoformat(timespec="milliseconds"),
            "app": event["app"],
            "outcome": bool(event.get("outcome", False)),
            "source": "user",
        }


def malformed_messages() -> list[tuple[str, bytes]]:
    """Messages a careless producer sends, each with what is wrong with it."""
    good = (
        b'"event_id":"bad-%d","ts":"2026-11-25T10:00:00+00:00","app":"support-bot",'
        b'"model":"gpt-4o","input_tokens":10,"output_tokens":5,"latency_ms":100,"status":"ok"'
    )
    return [
        ("not JSON", b"this is not json"),
        ("truncated JSON", b'{"event_id": "bad-1", "ts": '),
        ("negative tokens",
         b"{" + (good % 2).replace(b'"input_tokens":10', b'"input_tokens":-3') + b"}"),
        ("missing latency_ms", b"{" + (good % 3).replace(b',"latency_ms":100', b"") + b"}"),
        ("timestamp without offset", b"{" + (good % 4).replace(b"+00:00", b"") + b"}"),
        ("typo in a field name", b"{" + (good % 5) + b',"output_token":5}'),
        ("status not in the contract", b"{" + (good % 6).replace(b'"ok"', b'"done"') + b"}"),
        ("invalid UTF-8", b'{"event_id": "\xff\xfe"}'),
    ]  # fmt: skip
