"""Sampling allocation and SQL, the callable loader, evaluators and the HTTP adapter."""

from __future__ import annotations

import asyncio
import doctest
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from slowleak.streams.challenge import ChallengerResult, ChampionCall, SampleSpec, load_callable
from slowleak.streams.challenge import fake as fake_module
from slowleak.streams.challenge.evaluators import resolve_evaluator
from slowleak.streams.challenge.fake import FakeModel
from slowleak.streams.challenge.openai_compat import OpenAICompatible
from slowleak.streams.challenge.sampling import allocate, sample_query

CALL = ChampionCall(
    event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), app="bot", model="gpt-4o",
    input_text="2+2?", attributes={"expected": "4"}, outcome=True,
)  # fmt: skip


def result(text: str | None) -> ChallengerResult:
    return ChallengerResult(output_text=text)


def test_allocation_keeps_rare_intents() -> None:
    quotas = allocate({"question": 10_000, "refund": 30, "legal": 5}, 500, min_per_intent=50)
    assert quotas == {"legal": 5, "question": 465, "refund": 30}
    assert allocate({"a": 3, "b": 4}, 100, min_per_intent=50) == {"a": 3, "b": 4}
    even = allocate({"a": 1_000, "b": 1_000, "c": 1_000}, 90, min_per_intent=50)
    assert even == {"a": 30, "b": 30, "c": 30}
    skewed = allocate({"a": 900, "b": 100}, 101, min_per_intent=0)
    assert skewed == {"a": 91, "b": 10} and sum(skewed.values()) == 101


def test_sample_query_binds_every_value() -> None:
    spec = SampleSpec(
        app="x'; DROP TABLE events; --", start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 2, 1, tzinfo=UTC), size=10, intents=("refund",),
        exclude_replayed_by="prompt-v15",
    )  # fmt: skip
    sql, params = sample_query(spec, {"refund": 10})
    assert "DROP" not in sql and params["app"] == spec.app
    for token in (
        "{app:String}",
        "{seed:UInt64}",
        "{intents:Array(String)}",
        "{challenger:String}",
    ):
        assert token in sql
    with pytest.raises(ValueError, match="end must be after start"):
        SampleSpec(app="a", start=spec.end, end=spec.start, size=1)


def test_load_callable_says_what_is_wrong() -> None:
    assert load_callable("json:dumps") is json.dumps
    with pytest.raises(ValueError, match="name a callable as module:function"):
        load_callable("json.dumps")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        load_callable("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="module 'json' has no 'nope'"):
        load_callable("json:nope")
    with pytest.raises(ValueError, match="is a str, not a callable"):
        load_callable("json:__name__")


def test_evaluators(tmp_path: Path) -> None:
    exact = resolve_evaluator("exact")
    assert exact is not None and exact(CALL, result(" 4\n")) is True
    assert exact(CALL, result("5")) is False
    assert resolve_evaluator("exact:missing")(CALL, result("4")) is None  # type: ignore[misc]
    regex = resolve_evaluator(r"regex:^\d+$")
    assert regex is not None and regex(CALL, result("42")) and not regex(CALL, result(None))
    schema = tmp_path / "answer.json"
    schema.write_text(json.dumps({"type": "object", "required": ["answer"]}))
    check = resolve_evaluator(f"json-schema:{schema}")
    assert check is not None
    assert [check(CALL, result(t)) for t in ('{"answer": 4}', "{}", "not json")] == [
        True, False, False,
    ]  # fmt: skip
    assert resolve_evaluator("feedback") is None
    with pytest.raises(ValueError, match="is not a valid pattern"):
        resolve_evaluator("regex:(")
    with pytest.raises(ValueError, match="cannot read"):
        resolve_evaluator(f"json-schema:{tmp_path / 'none.json'}")


def test_fake_model_doctest() -> None:
    assert doctest.testmod(fake_module).failed == 0


def test_fake_model_is_deterministic_and_correlated_with_the_champion() -> None:
    fake = FakeModel(seed=2, keep=0.9, fix=0.2, refusal=0.0)
    calls = [
        ChampionCall(event_id=f"e{i}", ts=CALL.ts, app="a", model="m", input_text="q",
                     outcome=i % 2 == 0)
        for i in range(4_000)
    ]  # fmt: skip
    answers = [fake.answer(c).output_text == "ANSWER: correct" for c in calls]
    assert answers == [FakeModel(seed=2, keep=0.9, fix=0.2, refusal=0.0).answer(c).output_text
                       == "ANSWER: correct" for c in calls]  # fmt: skip
    kept = sum(a for a, c in zip(answers, calls, strict=True) if c.outcome) / 2_000
    fixed = sum(a for a, c in zip(answers, calls, strict=True) if not c.outcome) / 2_000
    assert kept == pytest.approx(0.9, abs=0.03) and fixed == pytest.approx(0.2, abs=0.03)


def test_openai_compatible_adapter() -> None:
    seen: list[dict[str, Any]] = []

    async def completions(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": await request.json()})
        if seen[-1]["body"]["messages"][-1]["content"] == "fail":
            return web.json_response({"error": "overloaded"}, status=529)
        return web.json_response({
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"message": {"content": "4"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1_000, "completion_tokens": 500},
        })  # fmt: skip

    async def main() -> tuple[ChallengerResult, ChallengerResult]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = OpenAICompatible.from_env({
            "SLOWLEAK_CHALLENGER_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "SLOWLEAK_CHALLENGER_MODEL": "gpt-4o-mini", "SLOWLEAK_CHALLENGER_API_KEY": "sk-test",
            "SLOWLEAK_CHALLENGER_SYSTEM_PROMPT": "Be brief.",
            "SLOWLEAK_CHALLENGER_USD_PER_1M_INPUT": "0.15",
            "SLOWLEAK_CHALLENGER_USD_PER_1M_OUTPUT": "0.60",
        })  # fmt: skip
        try:
            good = await client(CALL)
            bad = await client(ChampionCall(**{**_fields(CALL), "input_text": "fail"}))
        finally:
            await client.aclose()
            await runner.cleanup()
        return good, bad

    good, bad = asyncio.run(main())
    assert (good.output_text, good.input_tokens, good.output_tokens) == ("4", 1_000, 500)
    assert good.cost_usd == pytest.approx((1_000 * 0.15 + 500 * 0.60) / 1e6)
    assert good.model == "gpt-4o-mini-2024-07-18" and good.finish_reason == "stop"
    assert (bad.status, bad.error_type, bad.cost_usd) == ("error", "http_529", 0.0)
    assert seen[0]["auth"] == "Bearer sk-test"
    assert seen[0]["body"]["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="needs SLOWLEAK_CHALLENGER_BASE_URL"):
        OpenAICompatible.from_env({})


def _fields(call: ChampionCall) -> dict[str, Any]:
    return {name: getattr(call, name) for name in call.__slots__}
