"""CostSpike: names what drove a rise in spend (tokens, price or volume), and is quiet on
stable traffic."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.cost import CostSpike, CostWindows, MinuteTotals, PriceBook

T0 = datetime(2026, 11, 25, tzinfo=UTC)
EVENT = InteractionEvent(event_id="e", ts=T0, app="support-bot", model="m", input_tokens=1,
                         output_tokens=1, latency_ms=1.0, status="ok")  # fmt: skip


def minute(
    m: int, rng: random.Random, *, calls: int = 20, input_tokens: float = 1_850.0,
    price: float = 1.0, prompt: str = "v13",
) -> MinuteTotals:  # fmt: skip
    """A minute of ``calls`` calls with about ``input_tokens`` in and 300 out each, at
    ``price`` times $2.50/$10 per million tokens."""
    t = MinuteTotals(m)
    t.calls = calls
    t.input_tokens = round(calls * input_tokens * rng.lognormvariate(0, 0.1))
    t.output_tokens = round(calls * 300 * rng.lognormvariate(0, 0.1))
    t.cost_usd = price * (t.input_tokens * 2.5 + t.output_tokens * 10) / 1e6
    t.prompts = {prompt: calls}
    return t


def feed(spike: CostSpike, minutes: list[MinuteTotals]) -> list[tuple[int, Alert]]:
    out = []
    for m in minutes:
        out += [(m.minute, a) for a in spike.on_minutes("support-bot", [m], EVENT)]
    return out


def test_an_input_token_rise_on_a_new_prompt() -> None:
    rng = random.Random(1)
    minutes = [minute(m, rng) for m in range(200)]
    minutes += [minute(m, rng, input_tokens=11_300, prompt="v14") for m in range(200, 260)]
    [(at, alert)] = feed(CostSpike(), minutes)

    assert 200 <= at <= 205  # a few minutes: each value counts at most 3 sd (clip)
    assert (alert.kind, alert.severity, alert.labels) == (
        "cost_spike", "warning", {"signal": "spend", "driver": "input_tokens"},
    )  # fmt: skip
    assert alert.summary.startswith("support-bot spent $")
    assert "its usual rate, driven by input tokens per call (1,8" in alert.summary
    assert alert.summary.endswith(" on prompt v14")
    assert alert.details["prompt_version"] == "v14"


@pytest.mark.parametrize(
    ("change", "driver", "label"),
    [
        ({"price": 4.0}, "price", "price per 1k tokens"),
        ({"calls": 120}, "call_volume", "call volume"),
    ],
)
def test_the_driver_is_named(change: dict[str, Any], driver: str, label: str) -> None:
    rng = random.Random(2)
    minutes = [minute(m, rng) for m in range(200)]
    minutes += [minute(m, rng, **change) for m in range(200, 260)]
    fired = feed(CostSpike(), minutes)

    assert [(a.labels["driver"]) for _, a in fired] == [driver]
    assert f"driven by {label} (" in fired[0][1].summary
    assert " on prompt" not in fired[0][1].summary


def test_stable_traffic_is_quiet() -> None:
    rng = random.Random(3)
    minutes = [minute(m, rng, calls=rng.randrange(5, 40)) for m in range(3_000)]

    assert feed(CostSpike(), minutes) == []


def test_after_an_alert_it_learns_the_new_level() -> None:
    rng = random.Random(4)
    minutes = [minute(m, rng) for m in range(200)]
    minutes += [minute(m, rng, input_tokens=11_300) for m in range(200, 800)]

    assert len(feed(CostSpike(), minutes)) == 1


def test_end_to_end_through_the_windows_with_restarts() -> None:
    """Calls into CostWindows, whose closed minutes feed the spike; the same alert whatever
    the chunks, with the states saved and restored between them."""
    rng = random.Random(5)
    events = []
    for i in range(150 * 12):
        tokens = 1_850 if i < 130 * 12 else 11_300
        events.append(InteractionEvent(
            event_id=f"e{i}", ts=T0 + timedelta(seconds=5 * i), app="support-bot",
            model="gpt-4o", input_tokens=round(tokens * rng.lognormvariate(0, 0.2)),
            output_tokens=300, latency_ms=800.0, status="ok",
            prompt_version="v13" if i < 130 * 12 else "v14",
        ))  # fmt: skip
    book = PriceBook()

    def run(chunk: int) -> list[Alert]:
        store: dict[str, Any] = {}
        alerts = []
        for start in range(0, len(events), chunk):
            windows = CostWindows(store=store, prices=book, watcher=CostSpike(store=store))
            alerts += windows.on_interactions(events[start : start + chunk])
            store.update(json.loads(json.dumps(windows.dirty_states())))
        return alerts

    alerts = run(len(events))
    assert [a.labels["driver"] for a in alerts] == ["input_tokens"]
    assert alerts[0].summary.endswith("on prompt v14")
    assert run(7) == alerts


def _app_minute(models: dict[str, MinuteTotals]) -> MinuteTotals:
    """The app's totals of one minute: its models' summed, and each model's."""
    [m] = {t.minute for t in models.values()}
    app = MinuteTotals(m)
    for t in models.values():
        app.calls += t.calls
        app.cost_usd += t.cost_usd
        app.input_tokens += t.input_tokens
        app.output_tokens += t.output_tokens
        for prompt, n in t.prompts.items():
            app.prompts[prompt] = app.prompts.get(prompt, 0) + n
    app.models = models
    return app


def test_a_model_with_a_small_share_of_the_spend_is_watched_on_its_own() -> None:
    """One call a minute of gpt-4o-mini beside 40 of gpt-4o: its input tokens grow sixfold,
    the app's spend 7% (about one standard deviation of its minutes)."""
    rng = random.Random(6)
    minutes = [
        _app_minute({
            "gpt-4o": minute(m, rng, calls=40),
            "gpt-4o-mini": minute(m, rng, calls=1, input_tokens=1_850 if m < 200 else 11_100),
        })
        for m in range(260)
    ]  # fmt: skip
    alerts = feed(CostSpike(), minutes)

    at, first = alerts[0]
    assert 200 <= at <= 205
    assert (first.model, first.labels) == (
        "gpt-4o-mini",
        {"signal": "cost_per_call", "driver": "input_tokens", "model": "gpt-4o-mini"},
    )  # fmt: skip
    assert first.summary.startswith("support-bot spent $")
    assert " on gpt-4o-mini in the last " in first.summary
    assert all(a.model != "gpt-4o" for _, a in alerts)


def test_calls_moving_between_models_are_no_spike() -> None:
    """A fallback takes the primary's calls: the fallback's spend per minute rises tenfold, its
    cost per call does not, nor does the app's spend."""
    rng = random.Random(9)
    minutes = [
        _app_minute({
            "primary": minute(m, rng, calls=20 if m < 200 else 2),
            "fallback": minute(m, rng, calls=2 if m < 200 else 20),
        })
        for m in range(400)
    ]  # fmt: skip

    assert feed(CostSpike(), minutes) == []


def test_an_app_of_one_model_says_a_change_once() -> None:
    rng = random.Random(7)
    minutes = [
        _app_minute({"gpt-4o": minute(m, rng, input_tokens=1_850 if m < 200 else 11_300)})
        for m in range(400)
    ]
    spike = CostSpike()
    alerts = feed(spike, minutes)

    assert [(a.model, a.labels["driver"]) for _, a in alerts] == [(None, "input_tokens")]
    assert list(spike.dirty_states()) == ["cost_spike/support-bot"]  # no series per model


def test_models_are_watched_apart_from_the_first_minute_with_two() -> None:
    rng = random.Random(10)
    one = [_app_minute({"gpt-4o": minute(m, rng)}) for m in range(30)]
    two = [_app_minute({"gpt-4o": minute(30, rng), "claude": minute(30, rng, calls=1)})]
    spike = CostSpike()
    feed(spike, one)
    assert list(spike.dirty_states()) == ["cost_spike/support-bot"]
    feed(spike, [*two, _app_minute({"gpt-4o": minute(31, rng)})])
    states = spike.dirty_states()
    assert sorted(states) == [
        "cost_spike/support-bot", "cost_spike/support-bot|claude", "cost_spike/support-bot|gpt-4o"
    ]  # fmt: skip
    assert states["cost_spike/support-bot"]["models"] is True
    assert states["cost_spike/support-bot|gpt-4o"]["detectors"]["cost_per_call"]["n"] == 2
    # A state stored before this rule watched its models already: it goes on doing so.
    old = dict(states["cost_spike/support-bot"])
    del old["models"]
    assert CostSpike().load("support-bot", old).models is True


def test_stable_traffic_of_several_models_is_quiet() -> None:
    rng = random.Random(8)
    minutes = [
        _app_minute({name: minute(m, rng, calls=calls) for name, calls in
                     (("gpt-4o", 30), ("gpt-4o-mini", 3), ("claude", 1))})
        for m in range(1_500)
    ]  # fmt: skip

    assert feed(CostSpike(), minutes) == []


def test_warmup_is_validated() -> None:
    with pytest.raises(ValueError, match="warmup must be at least 100 minutes"):
        CostSpike(warmup=50)
