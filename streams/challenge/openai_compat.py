"""``OpenAICompatible``: a challenger that calls an OpenAI-compatible ``/chat/completions`` API.

Covers OpenAI and the many servers that speak its protocol (vLLM, Ollama, LiteLLM, Azure with a
compatible gateway, ...). The recorded call's ``input_text`` becomes the user message, after an
optional system prompt; cost is computed from the returned token usage and the prices given.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from slowleak.streams.challenge.challengers import ChallengerResult
from slowleak.streams.challenge.sampling import ChampionCall

__all__ = ["OpenAICompatible"]

ENV_PREFIX = "SLOWLEAK_CHALLENGER_"


class OpenAICompatible:
    """An ``async`` challenger for ``{base_url}/chat/completions``.

    An HTTP error or a timeout is a result with ``status`` ``"error"`` or ``"timeout"`` (the
    challenger failed that call), not an exception. Call :meth:`aclose` when done (the runner
    does).
    """

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None = None,
        system_prompt: str | None = None, temperature: float | None = None,
        usd_per_1m_input: float = 0.0, usd_per_1m_output: float = 0.0, timeout_s: float = 60.0,
    ) -> None:  # fmt: skip
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.usd_per_1m_input = usd_per_1m_input
        self.usd_per_1m_output = usd_per_1m_output
        self.timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OpenAICompatible:
        """From ``SLOWLEAK_CHALLENGER_BASE_URL``, ``_MODEL`` (required), ``_API_KEY``,
        ``_SYSTEM_PROMPT``, ``_USD_PER_1M_INPUT``, ``_USD_PER_1M_OUTPUT``, ``_TIMEOUT_S``."""

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name) or None

        base_url, model = get("BASE_URL"), get("MODEL")
        if base_url is None or model is None:
            raise ValueError(
                f"the openai challenger needs {ENV_PREFIX}BASE_URL (e.g. "
                f"https://api.openai.com/v1) and {ENV_PREFIX}MODEL set"
            )
        return cls(
            base_url=base_url, model=model, api_key=get("API_KEY"),
            system_prompt=get("SYSTEM_PROMPT"),
            usd_per_1m_input=float(get("USD_PER_1M_INPUT") or 0.0),
            usd_per_1m_output=float(get("USD_PER_1M_OUTPUT") or 0.0),
            timeout_s=float(get("TIMEOUT_S") or 60.0),
        )  # fmt: skip

    def _body(self, call: ChampionCall) -> dict[str, Any]:
        messages = [{"role": "user", "content": call.input_text}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    async def __call__(self, call: ChampionCall) -> ChallengerResult:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._http = aiohttp.ClientSession(headers=headers)
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self._http.post(
                f"{self.base_url}/chat/completions", json=self._body(call), timeout=timeout
            ) as response:
                if response.status >= 400:
                    return self._failed("error", f"http_{response.status}", started)
                data = await response.json()
        except TimeoutError:
            return self._failed("timeout", "timeout", started)
        except (aiohttp.ClientError, ValueError) as exc:
            return self._failed("error", type(exc).__name__, started)
        choice = (data.get("choices") or [{}])[0]
        usage = data.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
        return ChallengerResult(
            output_text=(choice.get("message") or {}).get("content"),
            input_tokens=input_tokens, output_tokens=output_tokens,
            latency_ms=(time.monotonic() - started) * 1000.0,
            cost_usd=(input_tokens * self.usd_per_1m_input
                      + output_tokens * self.usd_per_1m_output) / 1e6,
            finish_reason=choice.get("finish_reason"), model=data.get("model") or self.model,
        )  # fmt: skip

    def _failed(self, status: str, error_type: str, started: float) -> ChallengerResult:
        return ChallengerResult(
            output_text=None, latency_ms=(time.monotonic() - started) * 1000.0, cost_usd=0.0,
            status=status, error_type=error_type, model=self.model,
        )  # fmt: skip

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
