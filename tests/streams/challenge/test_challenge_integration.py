"""``slowleak challenge`` end to end against the real ClickHouse server and broker: champion rows
in ``events`` (and a feedback row), the fake challenger, its events read back from the topic,
then ``slowleak compare``'s queries over them."""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client
from kafka import KafkaConsumer, TopicPartition

from slowleak.models import FeedbackEvent, InteractionEvent, Settings
from slowleak.schemas import migrations
from slowleak.streams.challenge.command import RunOptions, run_from_settings
from slowleak.streams.challenge.compare import read_comparison
from slowleak.streams.challenge.demo import demo_challenge
from slowleak.streams.challenge.sampling import SampleSpec
from slowleak.streams.cli import main
from slowleak.streams.clickhouse import apply_migrations
from slowleak.streams.core.rows import EVENT_COLUMNS, FEEDBACK_COLUMNS, event_row, feedback_row

pytestmark = pytest.mark.integration

#: Yesterday: the tables' TTLs drop older rows on insert.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
APP = "support-bot"
#: The migrations of the tables a challenge reads and writes.
TABLES = ("create_events", "create_feedback", "create_alerts", "add_alerts_lifecycle")


def champion(i: int, intent: str, outcome: bool | None) -> InteractionEvent:
    return InteractionEvent(
        event_id=f"prod-{i}", ts=T0 + timedelta(seconds=i), app=APP, model="gpt-4o",
        input_tokens=40, output_tokens=20, latency_ms=800.0 + i, status="ok", intent=intent,
        input_text=f"question {i}", output_text="Sure." if i % 9 else "I'm sorry, I can't.",
        cost_usd=0.002, outcome=outcome, prompt_version="v14",
    )  # fmt: skip


def read_topic(kafka: str, topic: str, expected: int) -> list[tuple[bytes, dict[str, Any]]]:
    """Up to ``expected`` messages of every partition of ``topic``, from the start (no group)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka, consumer_timeout_ms=10_000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        out = []
        for message in consumer:
            out.append((message.key, orjson.loads(message.value)))
            if len(out) >= expected:
                break
        return out
    finally:
        consumer.close()


def test_challenge_publishes_exact_replays(
    kafka_bootstrap: str, new_topic: Callable[..., str], clickhouse_url: str, ch_database: str,
    ch_client: Client,
) -> None:  # fmt: skip
    needed = [m for m in migrations() if m.name.split("_", 1)[1] in TABLES]
    apply_migrations(ch_client, database=ch_database, files=needed)
    champions = [champion(i, "question", i % 3 != 0) for i in range(300)]
    champions += [champion(300 + i, "legal", True) for i in range(4)]  # a rare intent
    champions.append(champion(400, "refund", None))  # judged later, by feedback
    champions.append(champion(401, "refund", None))  # never judged: not sampled
    other_app = champion(500, "question", True).model_copy(update={"app": "other-bot"})
    rows = [event_row(e, partition=-1, offset=-1) for e in [*champions, other_app]]
    ch_client.insert("events", rows, column_names=list(EVENT_COLUMNS))
    late = FeedbackEvent(type="feedback", event_id="prod-400", ts=T0, app=APP, outcome=False)
    ch_client.insert(
        "feedback", [feedback_row(late, partition=-1, offset=-1)],
        column_names=list(FEEDBACK_COLUMNS),
    )  # fmt: skip

    topic = new_topic("events", partitions=2)
    settings = Settings(
        clickhouse_url=clickhouse_url, clickhouse_database=ch_database,
        kafka_bootstrap_servers=kafka_bootstrap, events_topic=topic,
    )  # fmt: skip
    sample = SampleSpec(
        app=APP, start=T0, end=T0 + timedelta(hours=1), size=60, seed=7, min_per_intent=10,
        exclude_replayed_by="prompt-v15",
    )  # fmt: skip
    options = RunOptions(
        name="prompt-v15", challenger="fake", evaluator="regex:^ANSWER: correct",
        spend_cap_usd=1.0, stop_when_decided=False, concurrency=4,
    )  # fmt: skip
    report = run_from_settings(settings, sample, options, err=io.StringIO())
    assert (report.calls, report.stopped) == (60, "done")

    messages = read_topic(kafka_bootstrap, topic, 60)
    assert len(messages) == 60
    assert {key for key, _ in messages} == {APP.encode()}
    events = [InteractionEvent.model_validate_json(orjson.dumps(m)) for _, m in messages]
    by_id = {e.event_id: e for e in champions}
    replayed = [e.attributes["replay_of"] for e in events]
    assert len(set(replayed)) == 60 and set(replayed) <= set(by_id) - {"prod-401"}
    intents = [by_id[r].intent for r in replayed]
    assert intents.count("legal") == 4 and intents.count("refund") == 1  # every rare one
    for event in events:
        source = by_id[event.attributes["replay_of"]]
        assert (event.env, event.variant, event.intent) == ("test", "prompt-v15", source.intent)
        assert event.input_text == source.input_text
        outcome = source.outcome if source.event_id != "prod-400" else False
        assert event.attributes["champion_outcome"] == str(outcome).lower()
        assert event.attributes["champion_latency_ms"] == repr(source.latency_ms)
        assert event.outcome == (event.output_text == "ANSWER: correct")

    # What the worker would write; then the comparison reads it back, pair for pair.
    rows = [event_row(e, partition=0, offset=i) for i, e in enumerate(events)]
    ch_client.insert("events", rows + rows[:5], column_names=list(EVENT_COLUMNS))  # redelivered
    view = read_comparison(ch_client, app=APP, challenger="prompt-v15")
    table = {row[0]: row[1:] for row in view.rows}
    assert table["replayed calls"][:2] == (60.0, 60.0)
    assert table["paired calls (both outcomes known)"][0] == 60.0
    mine = sum(bool(e.outcome) for e in events) / 60
    theirs = sum(e.attributes["champion_outcome"] == "true" for e in events) / 60
    assert table["success rate (%)"][:2] == (
        pytest.approx(100 * theirs, abs=1e-4), pytest.approx(100 * mine, abs=1e-4),
    )  # fmt: skip
    assert table["cost per call (USD)"][0] == pytest.approx(0.002)
    assert view.cs.n == 60 and view.cs.mean == pytest.approx(mine - theirs)
    assert "paired calls; verdict:" in view.describe()
    printed = CliRunner().invoke(
        main, ["compare", "--app", APP, "--challenger", "prompt-v15"],
        env={"SLOWLEAK_CLICKHOUSE_URL": clickhouse_url,
             "SLOWLEAK_CLICKHOUSE_DATABASE": ch_database},
    )  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith("metric") and "success rate (%)" in printed.output
    assert f"on 60 paired calls; verdict: {view.describe().split('verdict: ')[1]}" in printed.output


def test_demo_scenario_prints_a_verdict(ch_database: str, ch_client: Client) -> None:
    needed = [m for m in migrations() if m.name.split("_", 1)[1] in TABLES]
    apply_migrations(ch_client, database=ch_database, files=needed)
    rng = random.Random(3)
    intents = ["question"] * 6 + ["refund"] * 3 + ["legal"]
    champions = [champion(i, rng.choice(intents), rng.random() < 0.6) for i in range(3_000)]
    rows = [event_row(e, partition=-1, offset=-1) for e in champions]
    ch_client.insert("events", rows, column_names=list(EVENT_COLUMNS))
    lines: list[str] = []
    report = demo_challenge(ch_client, say=lines.append)
    assert report is not None and report.verdicts
    assert report.verdicts[-1].summary.startswith("prompt-v15 vs v14 on support-bot: success ")
    success = next(line for line in lines if ": success " in line)
    assert success.startswith("   prompt-v15 vs v14 on support-bot: success ")
    assert success.endswith("verdict: better") and "ETA" in lines[1]
    # Each call costs 8% more, and more calls succeed: the cost per success reflects both.
    assert re.search(r"cost per success [+\N{MINUS SIGN}]\d+%", success), success
    # 8% more per call is within the 10% margin: no cost verdict.
    assert not [a for a in report.verdicts if a.labels["measure"] == "cost"]
    assert report.stopped == "decided"
