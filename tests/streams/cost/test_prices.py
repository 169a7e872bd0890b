"""PriceBook: the caller's cost, the table, overrides, name matching and the shipped snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from slowleak.models import InteractionEvent
from slowleak.streams.core.cost import Price, PriceBook, Priced
from slowleak.streams.core.cost.prices import SNAPSHOT, snapshot_version
from slowleak.streams.core.cost.snapshot import FIELDS, trim

TABLE = {
    "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
               "cache_read_input_token_cost": 1.25e-06},
    "openai/gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
    "claude-3-5-sonnet": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05},
    "o1": {"input_cost_per_token": 1.5e-05, "output_cost_per_token": 6e-05,
           "output_cost_per_reasoning_token": 3e-05},
}  # fmt: skip
SHARED_PRICES = (
    Path(__file__).parents[4]
    / "shared/data/prices/model_prices_and_context_window.litellm-1.110.2.json"
)


def call(model: str, **fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": "e", "ts": datetime(2026, 1, 1, tzinfo=UTC), "app": "bot", "model": model,
        "input_tokens": 1_000, "output_tokens": 100, "latency_ms": 2_000.0, "status": "ok",
    }  # fmt: skip
    return InteractionEvent(**(base | fields))


@pytest.mark.parametrize(
    ("model", "provider", "source"),
    [
        ("gpt-4o", None, "table:gpt-4o"),
        ("gpt-4o-2024-08-06", None, "table:gpt-4o"),  # dated: the family
        ("gpt-4o-0806", None, "table:gpt-4o"),
        ("gpt-4o-latest", None, "table:gpt-4o"),
        ("openai/gpt-4o", None, "table:gpt-4o"),  # provider prefix dropped
        ("gpt-4o", "openai", "table:gpt-4o"),
        ("gpt-4o-mini", "openai", "table:openai/gpt-4o-mini"),  # provider/model first
        ("openai/gpt-4o-mini-2024-07-18", None, "table:openai/gpt-4o-mini"),
        ("claude-3-5-sonnet-20241022", "anthropic", "table:claude-3-5-sonnet"),
        ("claude-3-5-sonnet@20241022", None, "table:claude-3-5-sonnet"),
        ("gpt-5-turbo", None, "unknown"),
        ("gpt-4", None, "unknown"),  # a prefix is not a family
    ],
)
def test_model_names_match(model: str, provider: str | None, source: str) -> None:
    assert PriceBook(table=TABLE).match(model, provider)[1] == source


def test_cost_prices_cached_and_reasoning_tokens_apart() -> None:
    book = PriceBook(table=TABLE)

    # 800 fresh + 200 cached input, 100 output.
    assert book.price(call("gpt-4o", cached_input_tokens=200)) == Priced(
        800 * 2.5e-06 + 200 * 1.25e-06 + 100 * 1e-05, "table:gpt-4o"
    )
    # No reasoning price: reasoning tokens are output tokens.
    assert book.price(call("gpt-4o", reasoning_tokens=60)).cost_usd == pytest.approx(
        1_000 * 2.5e-06 + 100 * 1e-05, rel=1e-15
    )
    assert book.price(call("o1", reasoning_tokens=60)).cost_usd == pytest.approx(
        1_000 * 1.5e-05 + 40 * 6e-05 + 60 * 3e-05, rel=1e-15
    )
    # No cached price: cached tokens are input tokens; counts beyond the totals are capped.
    assert book.price(call("claude-3-5-sonnet", cached_input_tokens=5_000)).cost_usd == (
        1_000 * 3e-06 + 100 * 1.5e-05
    )


def test_the_caller_s_cost_wins_and_an_unknown_model_is_flagged() -> None:
    book = PriceBook(table=TABLE)

    assert book.price(call("gpt-4o", cost_usd=0.5)) == Priced(0.5, "caller")
    assert book.price(call("mystery", cost_usd=0.0)) == Priced(0.0, "caller")
    unknown = book.price(call("mystery"))
    assert unknown == Priced(0.0, "unknown") and not unknown.known


def test_overrides_win_over_the_table_and_price_by_the_second() -> None:
    book = PriceBook(
        table=TABLE,
        overrides={
            "gpt-4o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
            "llama-3.1-70b": {"cost_per_second": 0.0005},
            "local/free-model": {},
        },
    )

    assert book.price(call("gpt-4o-2024-08-06")) == Priced(
        1_000 * 2e-06 + 100 * 8e-06, "override:gpt-4o"
    )
    assert book.price(call("llama-3.1-70b")) == Priced(2.0 * 0.0005, "override:llama-3.1-70b")
    assert book.price(call("free-model", provider="local")) == Priced(
        0.0, "override:local/free-model"
    )


def test_a_user_file_replaces_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input_cost_per_token": 1e-06}}))

    book = PriceBook(path=path)
    assert book.price(call("my-model")) == Priced(1_000 * 1e-06, "table:my-model")
    assert book.price(call("gpt-4o")).price_source == "unknown"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a JSON object of model name -> prices"),
        ("{", "not JSON"),
    ],
)
def test_a_bad_user_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(text)

    with pytest.raises(ValueError, match=f"price file {path}: {message}"):
        PriceBook(path=path)
    with pytest.raises(ValueError, match="cannot read it"):
        PriceBook(path=tmp_path / "missing.json")


def test_the_snapshot_is_trimmed_and_names_its_source() -> None:
    table = json.loads(SNAPSHOT.read_text())

    assert table["_snapshot"] == {
        "source": "LiteLLM model_prices_and_context_window.json", "version": "litellm-1.110.2",
    }  # fmt: skip
    assert snapshot_version() == "litellm-1.110.2"
    assert all(set(entry) <= set(FIELDS) for key, entry in table.items() if key != "_snapshot")
    book = PriceBook()
    assert book.match("gpt-4o-2024-08-06")[0] == Price(
        input=2.5e-06, output=1e-05, cached_input=1.25e-06
    )
    assert book.match("claude-sonnet-4-5-20991231", "anthropic")[1] == "table:claude-sonnet-4-5"


def test_trim_keeps_priced_llm_models_and_the_fields_used() -> None:
    source = {
        "sample_spec": {"input_cost_per_token": 0.0, "mode": "chat"},
        "b-chat": {"input_cost_per_token": 1e-06, "max_tokens": 8, "mode": "chat",
                   "output_cost_per_token_batches": 5e-07},
        "a-embed": {"input_cost_per_token": 1e-08, "mode": "embedding"},
        "dall-e": {"output_cost_per_image": 0.04, "mode": "image_generation"},
        "no-price": {"mode": "chat"},
    }  # fmt: skip

    assert trim(source, source="test", version="1") == {
        "_snapshot": {"source": "test", "version": "1"},
        "a-embed": {"input_cost_per_token": 1e-08},
        "b-chat": {"input_cost_per_token": 1e-06},
    }


@pytest.mark.skipif(not SHARED_PRICES.is_file(), reason="the LiteLLM source file is not here")
def test_the_snapshot_is_what_the_script_makes_of_its_source() -> None:
    made = trim(
        json.loads(SHARED_PRICES.read_text()),
        source="LiteLLM model_prices_and_context_window.json",
        version="litellm-1.110.2",
    )
    assert json.loads(SNAPSHOT.read_text()) == made  # fmt: skip


def test_a_book_takes_a_table_or_a_path_not_both(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give a price table or the path of one, not both"):
        PriceBook(table={}, path=tmp_path)
