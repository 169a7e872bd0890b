"""The cost settings: prices file, price overrides, budgets and the windows' grace period."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from slowleak.models import InteractionEvent, Settings
from slowleak.models.settings import Budget, PriceOverride
from slowleak.streams.core.cost import PriceBook, Priced


def errors(**values: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        Settings(**values)
    return [{k: e[k] for k in ("type", "loc", "msg")} for e in info.value.errors()]


def test_defaults() -> None:
    settings = Settings()

    assert settings.prices_file is None
    assert settings.price_overrides == {}
    assert settings.budgets == []
    assert settings.window_grace_s == 120.0


def test_budgets_and_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOWLEAK_BUDGETS", json.dumps([
        {"scope": "app", "name": "support-bot", "period": "month", "amount_usd": 10_000},
        {"scope": "tenant", "name": "acme", "period": "day", "amount_usd": 50, "app": "bot"},
    ]))  # fmt: skip
    monkeypatch.setenv("SLOWLEAK_PRICE_OVERRIDES", json.dumps({
        "gpt-4o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
        "llama-3.1-70b": {"cost_per_second": 0.0005},
    }))  # fmt: skip
    settings = Settings()

    assert settings.budgets == [
        Budget(scope="app", name="support-bot", period="month", amount_usd=10_000.0),
        Budget(scope="tenant", name="acme", period="day", amount_usd=50.0, app="bot"),
    ]
    assert settings.price_overrides["llama-3.1-70b"] == PriceOverride(cost_per_second=0.0005)
    book = PriceBook.from_settings(settings)
    call = InteractionEvent(event_id="e", ts=datetime(2026, 1, 1, tzinfo=UTC), app="bot",
                            model="gpt-4o-2024-08-06", input_tokens=1_000, output_tokens=100,
                            latency_ms=2_000.0, status="ok")  # fmt: skip
    assert book.price(call) == Priced(1_000 * 2e-06 + 100 * 8e-06, "override:gpt-4o")


def test_a_prices_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"house-model": {"input_cost_per_token": 1e-06}}))

    book = PriceBook.from_settings(Settings(prices_file=path))
    assert book.match("house-model")[1] == "table:house-model"
    assert book.match("gpt-4o")[1] == "unknown"


def test_a_missing_prices_file_says_what_to_do() -> None:
    assert errors(prices_file="/nonexistent/prices.json") == [{
        "type": "value_error", "loc": ("prices_file",),
        "msg": "Value error, prices_file /nonexistent/prices.json is not a file: give the path "
        "of a JSON price table in LiteLLM's model_prices_and_context_window.json format, or "
        "unset it to use the shipped snapshot",
    }]  # fmt: skip


def test_two_budgets_for_the_same_thing_are_refused() -> None:
    budget = {"scope": "app", "name": "bot", "period": "day", "amount_usd": 1}

    assert errors(budgets=[budget, budget | {"amount_usd": 2}]) == [{
        "type": "value_error", "loc": ("budgets",),
        "msg": "Value error, two day budgets for app 'bot': keep one (amounts do not add up)",
    }]  # fmt: skip
    # A day and a month budget of the same app are two budgets.
    assert len(Settings(budgets=[budget, budget | {"period": "month"}]).budgets) == 2


def test_app_narrows_tenant_budgets_only() -> None:
    budget = {"scope": "app", "name": "bot", "period": "day", "amount_usd": 1, "app": "x"}

    assert errors(budgets=[budget]) == [{
        "type": "value_error", "loc": ("budgets", 0),
        "msg": "Value error, budget 'bot': 'app' narrows a tenant budget to one app; an app "
        "budget names its app in 'name': remove 'app'",
    }]  # fmt: skip


def test_budget_fields_are_checked() -> None:
    budget = {"scope": "team", "name": "bot", "period": "week", "amount_usd": 0}

    assert errors(budgets=[budget]) == [
        {"type": "literal_error", "loc": ("budgets", 0, "scope"),
         "msg": "Input should be 'app' or 'tenant'"},
        {"type": "literal_error", "loc": ("budgets", 0, "period"),
         "msg": "Input should be 'day' or 'month'"},
        {"type": "greater_than", "loc": ("budgets", 0, "amount_usd"),
         "msg": "Input should be greater than 0"},
    ]  # fmt: skip


def test_price_override_fields_are_checked() -> None:
    override = {"input_cost_per_token": -1, "input_cost_per_1k": 1}

    assert errors(price_overrides={"m": override}) == [
        {"type": "greater_than_equal", "loc": ("price_overrides", "m", "input_cost_per_token"),
         "msg": "Input should be greater than or equal to 0"},
        {"type": "extra_forbidden", "loc": ("price_overrides", "m", "input_cost_per_1k"),
         "msg": "Extra inputs are not permitted"},
    ]  # fmt: skip


def test_the_grace_period_is_bounded() -> None:
    assert errors(window_grace_s=-5) == [{
        "type": "greater_than_equal", "loc": ("window_grace_s",),
        "msg": "Input should be greater than or equal to 0",
    }]  # fmt: skip
