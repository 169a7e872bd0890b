"""``FakeModel``: a deterministic challenger, so the harness can be run and tested offline.

Whether it answers a call correctly is decided by a seeded hash of the call's ``event_id``, with
a probability that depends on whether the champion got that call right (``keep`` when it did,
``fix`` when it did not): real challengers are correlated with their champion in this way. A
correct answer reads ``ANSWER: correct``, a wrong one ``ANSWER: wrong`` (judge them with the
evaluator ``regex:^ANSWER: correct``); a share ``refusal`` of calls is declined. Tokens, latency
and cost follow from the text and the hash, so a run is reproducible to the digit; with
``cost_vs_champion`` a call costs that multiple of the champion's recorded cost instead (a
prompt change that makes each call 8% dearer: 1.08).
"""

from __future__ import annotations

import asyncio
import hashlib
import math

from slowleak.streams.challenge.challengers import ChallengerResult
from slowleak.streams.challenge.sampling import ChampionCall

__all__ = ["FakeModel"]


class FakeModel:
    """A fake challenger (an ``async`` callable).

    >>> import asyncio
    >>> from datetime import UTC, datetime
    >>> call = ChampionCall(event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), app="bot",
    ...                     model="gpt-4o", input_text="Where is my order?", outcome=True)
    >>> result = asyncio.run(FakeModel(seed=1)(call))
    >>> result.output_text, result.input_tokens, round(result.latency_ms), result.cost_usd
    ('ANSWER: correct', 4, 706, 6.5e-06)
    """

    def __init__(
        self, *, seed: int = 0, keep: float = 0.97, fix: float = 0.25, refusal: float = 0.01,
        unknown: float = 0.83, latency_median_ms: float = 700.0, cost_usd: float | None = None,
        usd_per_1k_input: float = 0.0005, usd_per_1k_output: float = 0.0015,
        cost_vs_champion: float | None = None, delay_s: float = 0.0, name: str = "fake-model",
    ) -> None:  # fmt: skip
        for label, p in (("keep", keep), ("fix", fix), ("refusal", refusal), ("unknown", unknown)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{label} must be a probability in [0, 1]")
        if latency_median_ms <= 0 or delay_s < 0 or (cost_usd is not None and cost_usd < 0):
            raise ValueError(
                "latency_median_ms must be positive; delay_s and cost_usd not negative"
            )
        if cost_vs_champion is not None and not cost_vs_champion >= 0:
            raise ValueError("cost_vs_champion must be 0 or more (a multiple of the champion's)")
        self.seed = seed
        self.keep = keep
        self.fix = fix
        self.refusal = refusal
        self.unknown = unknown
        self.latency_median_ms = latency_median_ms
        self.cost_usd = cost_usd
        self.usd_per_1k_input = usd_per_1k_input
        self.usd_per_1k_output = usd_per_1k_output
        self.cost_vs_champion = cost_vs_champion
        self.delay_s = delay_s
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def _uniform(self, event_id: str, salt: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}\x1f{salt}\x1f{event_id}".encode(), digest_size=8)
        return (int.from_bytes(digest.digest(), "big") + 0.5) / 2.0**64

    def answer(self, call: ChampionCall) -> ChallengerResult:
        """The result for ``call``, at once (the same every time)."""
        p = {True: self.keep, False: self.fix, None: self.unknown}[call.outcome]
        if self._uniform(call.event_id, "refusal") < self.refusal:
            text = "I'm sorry, I can't help with that."
        else:
            text = (
                "ANSWER: correct"
                if self._uniform(call.event_id, "correct") < p
                else "ANSWER: wrong"
            )
        u1, u2 = self._uniform(call.event_id, "z1"), self._uniform(call.event_id, "z2")
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        input_tokens = max(1, len(call.input_text) // 4)
        output_tokens = max(1, len(text) // 4)
        cost = self.cost_usd
        if self.cost_vs_champion is not None and call.cost_usd is not None:
            cost = call.cost_usd * self.cost_vs_champion
        elif cost is None:
            cost = (
                input_tokens * self.usd_per_1k_input + output_tokens * self.usd_per_1k_output
            ) / 1000
        return ChallengerResult(
            output_text=text, input_tokens=input_tokens, output_tokens=output_tokens,
            latency_ms=self.latency_median_ms * math.exp(0.4 * z), cost_usd=round(cost, 12),
            finish_reason="stop", model=self.name, provider="fake",
        )  # fmt: skip

    async def __call__(self, call: ChampionCall) -> ChallengerResult:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return self.answer(call)
        finally:
            self.in_flight -= 1
