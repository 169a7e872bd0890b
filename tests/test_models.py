"""The data contracts: events, alerts, dead letters and settings."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from slowleak.models import (
    Alert,
    ClickHouseTarget,
    DeadLetter,
    FeedbackEvent,
    InteractionEvent,
    Settings,
    WebhookReceiver,
)
from slowleak.models.events import TS_MAX, TS_MIN, UINT32_MAX

MINIMAL_EVENT: dict[str, Any] = {
    "event_id": "evt-1",
    "ts": "2026-11-25T10:00:00.123+00:00",
    "app": "support-bot",
    "model": "gpt-4o-mini",
    "input_tokens": 812,
    "output_tokens": 143,
    "latency_ms": 1234.5,
    "status": "ok",
}

FULL_EVENT: dict[str, Any] = {
    **MINIMAL_EVENT,
    "ts": "2026-11-25T12:00:00.123456+02:00",
    "type": "interaction",
    "schema_version": 1,
    "env": "staging",
    "tenant": "acme",
    "user_id": "u-42",
    "session_id": "s-7",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "intent": "refund",
    "variant": "challenger",
    "provider": "openai",
    "response_model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_0ba0d124f1",
    "fallback_from": "gpt-4o",
    "prompt_id": "refund-answer",
    "prompt_version": "7",
    "input_text": "Can I get my money back? \u00e9\u00e8 \U0001f600",
    "output_text": "Yes, within 30 days.",
    "finish_reason": "stop",
    "cached_input_tokens": 512,
    "reasoning_tokens": 0,
    "cost_usd": 0.00042,
    "outcome": True,
    "score": 0.75,
    "error_type": "none",
    "attributes": {"region": "eu-west-1", "ab_bucket": "b"},
}

REQUIRED_EVENT_FIELDS = (
    "event_id",
    "ts",
    "app",
    "model",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "status",
)

FEEDBACK: dict[str, Any] = {
    "type": "feedback",
    "event_id": "evt-1",
    "ts": "2026-11-25T10:05:00Z",
    "app": "support-bot",
    "outcome": False,
}

ALERT: dict[str, Any] = {
    "alert_id": "accuracy_drift:support-bot:gpt-4o-mini:1",
    "kind": "accuracy_drift",
    "severity": "warning",
    "status": "firing",
    "ts": "2026-11-25T10:00:00Z",
    "event_id": "evt-1",
    "app": "support-bot",
    "summary": "Success rate of support-bot fell from 0.92 to 0.71 over the last 2,000 calls.",
}


def event_json(**changes: Any) -> str:
    """MINIMAL_EVENT as JSON with ``changes`` applied (``...`` removes a field)."""
    data = {**MINIMAL_EVENT, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def event_errors(raw: str) -> list[Any]:
    with pytest.raises(ValidationError) as exc_info:
        InteractionEvent.model_validate_json(raw)
    return exc_info.value.errors(include_url=False)


# --- InteractionEvent: valid ----------------------------------------------------------------


def test_minimal_event_round_trips_through_json() -> None:
    event = InteractionEvent.model_validate_json(json.dumps(MINIMAL_EVENT))

    assert event.ts == datetime(2026, 11, 25, 10, 0, 0, 123_000, tzinfo=UTC)
    assert event.input_tokens == 812
    assert InteractionEvent.model_validate_json(event.model_dump_json()) == event


def test_full_event_round_trips_through_json() -> None:
    event = InteractionEvent.model_validate_json(json.dumps(FULL_EVENT))

    assert event.model_dump(mode="json") == {
        **FULL_EVENT,
        "ts": "2026-11-25T12:00:00.123456+02:00",
    }
    assert event.ts.utcoffset() == timedelta(hours=2)
    assert InteractionEvent.model_validate_json(event.model_dump_json()) == event


def test_event_defaults() -> None:
    event = InteractionEvent.model_validate_json(json.dumps(MINIMAL_EVENT))

    assert event.type == "interaction"
    assert event.schema_version == 1
    assert event.env == "prod"
    assert event.variant == "champion"
    assert event.attributes == {}
    assert event.tenant is None
    assert event.input_text is None
    assert event.score is None


def test_event_accepts_z_suffix_and_integer_latency() -> None:
    event = InteractionEvent.model_validate_json(
        event_json(ts="2026-11-25T10:00:00Z", latency_ms=7)
    )

    assert event.ts == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert event.latency_ms == 7.0


@pytest.mark.parametrize("tokens", [0, UINT32_MAX])
def test_event_accepts_token_counts_at_the_bounds(tokens: int) -> None:
    event = InteractionEvent.model_validate_json(event_json(input_tokens=tokens))

    assert event.input_tokens == tokens


def test_event_accepts_timestamps_inside_the_plausible_range() -> None:
    last = TS_MAX - timedelta(milliseconds=1)
    for ts in (TS_MIN, last):
        event = InteractionEvent.model_validate_json(event_json(ts=ts.isoformat()))
        assert event.ts == ts


def test_event_is_frozen() -> None:
    event = InteractionEvent.model_validate_json(json.dumps(MINIMAL_EVENT))

    with pytest.raises(ValidationError) as exc_info:
        event.app = "other"
    assert [e["type"] for e in exc_info.value.errors()] == ["frozen_instance"]


# --- InteractionEvent: invalid --------------------------------------------------------------


def test_event_missing_required_fields() -> None:
    assert event_errors("{}") == [
        {"type": "missing", "loc": (field,), "msg": "Field required", "input": {}}
        for field in REQUIRED_EVENT_FIELDS
    ]


def test_event_not_an_object() -> None:
    assert event_errors("[]") == [
        {
            "type": "model_type",
            "loc": (),
            "msg": "Input should be an object",
            "input": [],
            "ctx": {"class_name": "InteractionEvent"},
        }
    ]


def test_event_negative_tokens() -> None:
    assert event_errors(event_json(output_tokens=-1)) == [
        {
            "type": "greater_than_equal",
            "loc": ("output_tokens",),
            "msg": "Input should be greater than or equal to 0",
            "input": -1,
            "ctx": {"ge": 0},
        }
    ]


@pytest.mark.parametrize("field", ["input_tokens", "cached_input_tokens", "reasoning_tokens"])
def test_event_tokens_above_uint32(field: str) -> None:
    assert event_errors(event_json(**{field: UINT32_MAX + 1})) == [
        {
            "type": "less_than_equal",
            "loc": (field,),
            "msg": "Input should be less than or equal to 4294967295",
            "input": 4_294_967_296,
            "ctx": {"le": 4_294_967_295},
        }
    ]


@pytest.mark.parametrize("field", ["latency_ms", "cost_usd"])
def test_event_negative_latency_and_cost(field: str) -> None:
    assert event_errors(event_json(**{field: -0.5})) == [
        {
            "type": "greater_than_equal",
            "loc": (field,),
            "msg": "Input should be greater than or equal to 0",
            "input": -0.5,
            "ctx": {"ge": 0.0},
        }
    ]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["latency_ms", "cost_usd", "score"])
def test_event_rejects_nan_and_infinity_literals(field: str, literal: str) -> None:
    raw = event_json(**{field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', literal)

    errors = event_errors(raw)

    received = errors[0].pop("input")
    assert math.isnan(received) if literal == "NaN" else math.isinf(received)
    assert errors == [
        {"type": "finite_number", "loc": (field,), "msg": "Input should be a finite number"}
    ]


@pytest.mark.parametrize("status", ["OK", "failed", ""])
def test_event_status_outside_the_set(status: str) -> None:
    assert event_errors(event_json(status=status)) == [
        {
            "type": "literal_error",
            "loc": ("status",),
            "msg": "Input should be 'ok', 'error' or 'timeout'",
            "input": status,
            "ctx": {"expected": "'ok', 'error' or 'timeout'"},
        }
    ]


def test_event_naive_timestamp() -> None:
    assert event_errors(event_json(ts="2026-11-25T10:00:00")) == [
        {
            "type": "timezone_aware",
            "loc": ("ts",),
            "msg": "Input should have timezone info",
            "input": "2026-11-25T10:00:00",
        }
    ]


@pytest.mark.parametrize(
    ("ts", "error_type", "msg"),
    [
        ("1970-01-01T00:00:00Z", "greater_than_equal",
         "Input should be greater than or equal to 2000-01-01T00:00:00Z"),
        ("1999-12-31T23:59:59.999Z", "greater_than_equal",
         "Input should be greater than or equal to 2000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "less_than", "Input should be less than 2100-01-01T00:00:00Z"),
        (TS_MAX.isoformat(), "less_than", "Input should be less than 2100-01-01T00:00:00Z"),
    ],
)  # fmt: skip
def test_event_implausible_timestamp(ts: str, error_type: str, msg: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        InteractionEvent.model_validate_json(event_json(ts=ts))

    assert exc_info.value.errors(include_url=False, include_context=False) == [
        {"type": error_type, "loc": ("ts",), "msg": msg, "input": ts}
    ]


def test_event_unix_timestamp_is_not_a_datetime() -> None:
    assert event_errors(event_json(ts=1_764_064_800)) == [
        {
            "type": "datetime_type",
            "loc": ("ts",),
            "msg": "Input should be a valid datetime",
            "input": 1_764_064_800,
        }
    ]


@pytest.mark.parametrize("value", ["12", 12.0])
def test_event_strict_integers(value: object) -> None:
    assert event_errors(event_json(input_tokens=value)) == [
        {
            "type": "int_type",
            "loc": ("input_tokens",),
            "msg": "Input should be a valid integer",
            "input": value,
        }
    ]


@pytest.mark.parametrize("value", ["true", 1])
def test_event_strict_booleans(value: object) -> None:
    assert event_errors(event_json(outcome=value)) == [
        {
            "type": "bool_type",
            "loc": ("outcome",),
            "msg": "Input should be a valid boolean",
            "input": value,
        }
    ]


def test_event_score_above_one() -> None:
    assert event_errors(event_json(score=1.01)) == [
        {
            "type": "less_than_equal",
            "loc": ("score",),
            "msg": "Input should be less than or equal to 1",
            "input": 1.01,
            "ctx": {"le": 1.0},
        }
    ]


def test_event_score_below_zero() -> None:
    assert event_errors(event_json(score=-0.01)) == [
        {
            "type": "greater_than_equal",
            "loc": ("score",),
            "msg": "Input should be greater than or equal to 0",
            "input": -0.01,
            "ctx": {"ge": 0.0},
        }
    ]


def test_event_unknown_field() -> None:
    assert event_errors(event_json(input_token=812)) == [
        {
            "type": "extra_forbidden",
            "loc": ("input_token",),
            "msg": "Extra inputs are not permitted",
            "input": 812,
        }
    ]


@pytest.mark.parametrize("field", ["event_id", "app", "model", "env", "tenant", "prompt_id"])
def test_event_empty_names(field: str) -> None:
    assert event_errors(event_json(**{field: ""})) == [
        {
            "type": "string_too_short",
            "loc": (field,),
            "msg": "String should have at least 1 character",
            "input": "",
            "ctx": {"min_length": 1},
        }
    ]


def test_event_name_too_long() -> None:
    assert event_errors(event_json(app="a" * 257)) == [
        {
            "type": "string_too_long",
            "loc": ("app",),
            "msg": "String should have at most 256 characters",
            "input": "a" * 257,
            "ctx": {"max_length": 256},
        }
    ]


def test_event_attributes_with_non_string_values() -> None:
    raw = event_json(attributes={"n": 1, "flag": True, "none": None, "ok": "yes"})

    assert event_errors(raw) == [
        {
            "type": "string_type",
            "loc": ("attributes", key),
            "msg": "Input should be a valid string",
            "input": value,
        }
        for key, value in [("n", 1), ("flag", True), ("none", None)]
    ]


def test_event_attributes_with_empty_key() -> None:
    assert event_errors(event_json(attributes={"": "x"})) == [
        {
            "type": "string_too_short",
            "loc": ("attributes", "", "[key]"),
            "msg": "String should have at least 1 character",
            "input": "",
            "ctx": {"min_length": 1},
        }
    ]


def test_event_wrong_type() -> None:
    assert event_errors(event_json(type="feedback")) == [
        {
            "type": "literal_error",
            "loc": ("type",),
            "msg": "Input should be 'interaction'",
            "input": "feedback",
            "ctx": {"expected": "'interaction'"},
        }
    ]


@pytest.mark.parametrize("version", [2, 0, "1"])
def test_event_wrong_schema_version(version: object) -> None:
    assert event_errors(event_json(schema_version=version)) == [
        {
            "type": "literal_error",
            "loc": ("schema_version",),
            "msg": "Input should be 1",
            "input": version,
            "ctx": {"expected": "1"},
        }
    ]


def test_event_every_error_is_reported_at_once() -> None:
    raw = event_json(input_tokens=-1, status="OK", extra=1)

    assert [(e["type"], e["loc"]) for e in event_errors(raw)] == [
        ("greater_than_equal", ("input_tokens",)),
        ("literal_error", ("status",)),
        ("extra_forbidden", ("extra",)),
    ]


def test_event_python_mode_is_strict_so_decode_from_json() -> None:
    # Strict validation of a dict wants datetime objects: consumers must call
    # model_validate_json on the message bytes, not json.loads then model_validate.
    with pytest.raises(ValidationError) as exc_info:
        InteractionEvent.model_validate(MINIMAL_EVENT)

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "datetime_type",
            "loc": ("ts",),
            "msg": "Input should be a valid datetime",
            "input": MINIMAL_EVENT["ts"],
        }
    ]


# --- FeedbackEvent --------------------------------------------------------------------------


def test_feedback_round_trips_through_json() -> None:
    feedback = FeedbackEvent.model_validate_json(
        json.dumps({**FEEDBACK, "score": 0.0, "source": "user"})
    )

    assert feedback.outcome is False
    assert feedback.score == 0.0
    assert FeedbackEvent.model_validate_json(feedback.model_dump_json()) == feedback


def test_feedback_defaults() -> None:
    feedback = FeedbackEvent.model_validate_json(json.dumps(FEEDBACK))

    assert (feedback.score, feedback.source) == (None, None)


def test_feedback_requires_type() -> None:
    data = {k: v for k, v in FEEDBACK.items() if k != "type"}

    with pytest.raises(ValidationError) as exc_info:
        FeedbackEvent.model_validate_json(json.dumps(data))

    assert exc_info.value.errors(include_url=False) == [
        {"type": "missing", "loc": ("type",), "msg": "Field required", "input": data}
    ]


def test_feedback_invalid() -> None:
    raw = json.dumps({**FEEDBACK, "type": "interaction", "outcome": "yes", "score": 2})

    with pytest.raises(ValidationError) as exc_info:
        FeedbackEvent.model_validate_json(raw)

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "literal_error",
            "loc": ("type",),
            "msg": "Input should be 'feedback'",
            "input": "interaction",
            "ctx": {"expected": "'feedback'"},
        },
        {
            "type": "bool_type",
            "loc": ("outcome",),
            "msg": "Input should be a valid boolean",
            "input": "yes",
        },
        {
            "type": "less_than_equal",
            "loc": ("score",),
            "msg": "Input should be less than or equal to 1",
            "input": 2,
            "ctx": {"le": 1.0},
        },
    ]


def test_feedback_rejects_an_interaction_event() -> None:
    with pytest.raises(ValidationError) as exc_info:
        FeedbackEvent.model_validate_json(json.dumps(MINIMAL_EVENT))

    assert [(e["type"], e["loc"]) for e in exc_info.value.errors()] == [
        ("missing", ("type",)),
        ("missing", ("outcome",)),
        ("extra_forbidden", ("model",)),
        ("extra_forbidden", ("input_tokens",)),
        ("extra_forbidden", ("output_tokens",)),
        ("extra_forbidden", ("latency_ms",)),
        ("extra_forbidden", ("status",)),
    ]


# --- Alert ----------------------------------------------------------------------------------


def test_alert_round_trips_through_json() -> None:
    data = {
        **ALERT,
        "model": "gpt-4o-mini",
        "labels": {"env": "prod"},
        "details": {"before": 0.92, "after": 0.71, "window": [1, 2000], "note": None},
        "sequence": 2,
        "starts_at": "2026-11-25T09:00:00Z",
        "ends_at": "2026-11-25T10:00:00Z",
    }

    alert = Alert.model_validate_json(json.dumps(data))

    assert alert.model_dump(mode="json") == {**data, "ts": "2026-11-25T10:00:00Z"}
    assert Alert.model_validate_json(alert.model_dump_json()) == alert


def test_alert_defaults() -> None:
    alert = Alert.model_validate_json(json.dumps(ALERT))

    assert (alert.model, alert.labels, alert.details) == (None, {}, {})
    assert (alert.sequence, alert.starts_at, alert.ends_at) == (0, None, None)


@pytest.mark.parametrize("kind", ["Accuracy_Drift", "accuracy-drift", "1drift", "", "a" * 65])
def test_alert_kind_pattern(kind: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        Alert.model_validate_json(json.dumps({**ALERT, "kind": kind}))

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "string_pattern_mismatch",
            "loc": ("kind",),
            "msg": "String should match pattern '^[a-z][a-z0-9_]{0,63}$'",
            "input": kind,
            "ctx": {"pattern": "^[a-z][a-z0-9_]{0,63}$"},
        }
    ]


def test_alert_severity_and_status() -> None:
    raw = json.dumps({**ALERT, "severity": "error", "status": "open"})

    with pytest.raises(ValidationError) as exc_info:
        Alert.model_validate_json(raw)

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "literal_error",
            "loc": ("severity",),
            "msg": "Input should be 'info', 'warning' or 'critical'",
            "input": "error",
            "ctx": {"expected": "'info', 'warning' or 'critical'"},
        },
        {
            "type": "literal_error",
            "loc": ("status",),
            "msg": "Input should be 'firing' or 'resolved'",
            "input": "open",
            "ctx": {"expected": "'firing' or 'resolved'"},
        },
    ]


def test_alert_empty_summary_and_missing_fields() -> None:
    data = {k: v for k, v in ALERT.items() if k not in {"alert_id", "event_id"}}
    data["summary"] = ""

    with pytest.raises(ValidationError) as exc_info:
        Alert.model_validate_json(json.dumps(data))

    assert exc_info.value.errors(include_url=False) == [
        {"type": "missing", "loc": ("alert_id",), "msg": "Field required", "input": data},
        {"type": "missing", "loc": ("event_id",), "msg": "Field required", "input": data},
        {
            "type": "string_too_short",
            "loc": ("summary",),
            "msg": "String should have at least 1 character",
            "input": "",
            "ctx": {"min_length": 1},
        },
    ]


# --- DeadLetter -----------------------------------------------------------------------------


def test_dead_letter_round_trips_through_json() -> None:
    dead = DeadLetter(
        reason="input_tokens: Input should be greater than or equal to 0",
        errors=[{"type": "greater_than_equal", "loc": ["input_tokens"], "msg": "..."}],
        topic="slowleak.events",
        partition=3,
        offset=-1,
        key="support-bot",
        raw_b64="e30=",
        raw_bytes=2,
        received_at=datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
    )

    assert dead.raw_truncated is False
    assert DeadLetter.model_validate_json(dead.model_dump_json()) == dead


# --- Settings -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_slowleak_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings tests see only the variables they set."""
    for name in list(os.environ):
        if name.upper().startswith("SLOWLEAK_"):
            monkeypatch.delenv(name)


def test_settings_defaults() -> None:
    settings = Settings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_broker_url == "kafka://127.0.0.1:9092"
    assert settings.app_id == "slowleak"
    assert (
        settings.events_topic,
        settings.feedback_topic,
        settings.alerts_topic,
        settings.dlq_topic,
    ) == ("slowleak.events", "slowleak.feedback", "slowleak.alerts", "slowleak.dlq")
    assert settings.clickhouse_url == "chdb://.slowleak/clickhouse"
    assert settings.clickhouse.embedded
    assert settings.clickhouse_database == "slowleak"
    assert settings.clickhouse_password is None
    assert settings.sink_batch_rows == 20_000
    assert settings.sink_flush_interval_ms == 1_000
    assert settings.data_dir == Path(".slowleak")
    assert settings.log_level == "info"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOWLEAK_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    monkeypatch.setenv("SLOWLEAK_CLICKHOUSE_URL", "http://ch:8123")
    monkeypatch.setenv("SLOWLEAK_CLICKHOUSE_PASSWORD", "s3cret")

    settings = Settings.load()

    assert settings.topic_partitions == 8
    assert settings.kafka_broker_url == "kafka://k1:9092;kafka://k2:9093"
    assert not settings.clickhouse.embedded
    assert settings.clickhouse_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_settings_from_environment_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOWLEAK_TOPIC_PARTITIONS", "eight")

    with pytest.raises(ValidationError) as exc_info:
        Settings()

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "int_parsing",
            "loc": ("topic_partitions",),
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "eight",
        }
    ]


def test_settings_from_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "slowleak.toml"
    config.write_text(
        'clickhouse_url = "https://ch.example.com"\ntopic_partitions = 12\nlog_level = "debug"\n'
    )

    settings = Settings.load(config)

    assert isinstance(settings, Settings)
    assert settings.clickhouse_url == "https://ch.example.com"
    assert settings.topic_partitions == 12
    assert settings.log_level == "debug"
    assert settings.app_id == "slowleak"


def test_settings_environment_beats_file_and_arguments_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "slowleak.toml"
    config.write_text("topic_partitions = 12\nweb_port = 7000\nsink_batch_rows = 10\n")
    monkeypatch.setenv("SLOWLEAK_TOPIC_PARTITIONS", "3")
    monkeypatch.setenv("SLOWLEAK_WEB_PORT", "7001")

    settings = Settings.load(config, web_port=7002)

    assert (settings.topic_partitions, settings.web_port, settings.sink_batch_rows) == (3, 7002, 10)


def test_settings_file_with_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "slowleak.toml"
    config.write_text("topic_partition = 12\n")

    with pytest.raises(ValidationError) as exc_info:
        Settings.load(config)

    assert exc_info.value.errors(include_url=False) == [
        {
            "type": "extra_forbidden",
            "loc": ("topic_partition",),
            "msg": "Extra inputs are not permitted",
            "input": 12,
        }
    ]


def test_settings_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config file .*missing\.toml does not exist"):
        Settings.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://db:5432",
            "clickhouse_url 'postgres://db:5432': use http://HOST:PORT or https://HOST:PORT "
            "for a ClickHouse server, or chdb://PATH for embedded ClickHouse",
        ),
        (
            "ch:8123",
            "clickhouse_url 'ch:8123': use http://HOST:PORT or https://HOST:PORT "
            "for a ClickHouse server, or chdb://PATH for embedded ClickHouse",
        ),
        ("http://", "clickhouse_url 'http://' has no host"),
    ],
)
def test_settings_bad_clickhouse_url(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        Settings(clickhouse_url=url)

    assert exc_info.value.errors(include_url=False, include_context=False) == [
        {
            "type": "value_error",
            "loc": ("clickhouse_url",),
            "msg": f"Value error, {message}",
            "input": url,
        }
    ]


@pytest.mark.parametrize("servers", ["localhost", "k1:9092,,k2:9092", "k1:", ":9092", "k1:port"])
def test_settings_bad_bootstrap_servers(servers: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        Settings(kafka_bootstrap_servers=servers)

    assert exc_info.value.errors(include_url=False, include_context=False) == [
        {
            "type": "value_error",
            "loc": ("kafka_bootstrap_servers",),
            "msg": f"Value error, kafka_bootstrap_servers {servers!r}: "
            "expected host:port[,host:port...]",
            "input": servers,
        }
    ]


def test_settings_duplicate_topics() -> None:
    with pytest.raises(ValidationError) as exc_info:
        Settings(dlq_topic="slowleak.events")

    assert exc_info.value.errors(include_url=False, include_context=False) == [
        {
            "type": "value_error",
            "loc": (),
            "msg": "Value error, events, feedback, alerts and dlq topics must differ: "
            "['slowleak.events', 'slowleak.feedback', 'slowleak.alerts', 'slowleak.events']",
            "input": {"dlq_topic": "slowleak.events"},
        }
    ]


def test_settings_bad_topic_name_and_identifier() -> None:
    with pytest.raises(ValidationError) as exc_info:
        Settings(events_topic="slowleak events", clickhouse_database="slow-leak")

    assert [(e["type"], e["loc"]) for e in exc_info.value.errors()] == [
        ("string_pattern_mismatch", ("events_topic",)),
        ("string_pattern_mismatch", ("clickhouse_database",)),
    ]


# --- ClickHouseTarget -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "interface", "host", "port"),
    [
        ("http://ch.internal", "http", "ch.internal", 8123),
        ("https://ch.internal", "https", "ch.internal", 8443),
        ("http://127.0.0.1:18123", "http", "127.0.0.1", 18123),
        ("https://ch.example.com:9440", "https", "ch.example.com", 9440),
        ("http://[::1]:8123", "http", "::1", 8123),
    ],
)
def test_clickhouse_target_server(url: str, interface: str, host: str, port: int) -> None:
    target = ClickHouseTarget(url)

    assert (target.interface, target.host, target.port, target.path) == (
        interface,
        host,
        port,
        None,
    )
    assert not target.embedded


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("chdb://.slowleak/clickhouse", Path(".slowleak/clickhouse")),
        ("chdb://data/ch", Path("data/ch")),
        ("chdb:///var/lib/slowleak", Path("/var/lib/slowleak")),
        ("chdb://", Path(".slowleak/clickhouse")),
    ],
)
def test_clickhouse_target_embedded(url: str, path: Path) -> None:
    target = ClickHouseTarget(url)

    assert (target.interface, target.host, target.port, target.path) == ("chdb", "", 0, path)
    assert target.embedded


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("clickhouse://ch:9000", "use http://HOST:PORT or https://HOST:PORT"),
        ("ch.internal:8123", "use http://HOST:PORT or https://HOST:PORT"),
        ("https://:8443", "has no host"),
    ],
)
def test_clickhouse_target_rejects(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClickHouseTarget(url)


# --- Settings: alert receivers --------------------------------------------------------------


def test_settings_receivers_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SLOWLEAK_RECEIVERS",
        '[{"type": "stdout", "name": "log"},'
        ' {"type": "webhook", "name": "hook", "url": "http://hooks.internal/x", "secret": "k3y"},'
        ' {"type": "alertmanager", "name": "am", "url": "http://am:9093", "timeout_s": 2},'
        ' {"type": "slack", "name": "oncall", "url": "https://hooks.slack.com/services/T/B/C"}]',
    )

    settings = Settings.load()

    assert [(r.type, r.name) for r in settings.receivers] == [
        ("stdout", "log"),
        ("webhook", "hook"),
        ("alertmanager", "am"),
        ("slack", "oncall"),
    ]
    hook = settings.receiver("hook")
    assert isinstance(hook, WebhookReceiver)
    assert hook.secret is not None and hook.secret.get_secret_value() == "k3y"
    assert "k3y" not in repr(settings)
    assert (settings.receiver("am").timeout_s, settings.receiver("am").max_backoff_s) == (2, 60)
    assert settings.runbook_base_url == (
        "https://github.com/slowleak/slowleak/blob/main/docs/runbooks"
    )


def test_settings_receivers_default_to_none() -> None:
    settings = Settings()

    assert settings.receivers == []
    with pytest.raises(KeyError, match=r"no receiver named 'x' \(receivers: none configured\)"):
        settings.receiver("x")


def test_settings_receivers_from_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "slowleak.toml"
    config.write_text(
        'runbook_base_url = "https://wiki.example/runbooks/"\n\n'
        '[[receivers]]\ntype = "alertmanager"\nname = "am"\nurl = "http://alertmanager:9093"\n\n'
        '[[receivers]]\ntype = "webhook"\nname = "pager"\nurl = "https://pager.example/hook"\n'
        'secret = "x"\nmax_backoff_s = 30\n'
    )

    settings = Settings.load(config)

    assert [r.name for r in settings.receivers] == ["am", "pager"]
    assert settings.receiver("pager").max_backoff_s == 30
    assert settings.runbook_base_url == "https://wiki.example/runbooks"


def test_settings_receiver_names_must_be_unique() -> None:
    receivers = [{"type": "stdout", "name": "log"}, {"type": "stdout", "name": "log"}]
    with pytest.raises(ValidationError) as exc_info:
        Settings(receivers=receivers)

    assert exc_info.value.errors(include_url=False, include_context=False) == [
        {
            "type": "value_error",
            "loc": ("receivers",),
            "msg": "Value error, receiver names must be unique, 'log' is used more than once; "
            "give each receiver its own name",
            "input": receivers,
        }
    ]


def test_settings_receiver_misconfigurations_are_named() -> None:
    receivers = [
        {"type": "webhook", "name": "hook"},
        {"type": "pager", "name": "p"},
        {"type": "slack", "name": "s", "url": "hooks.slack.com/x"},
        {"type": "stdout", "name": "has space"},
        {"type": "alertmanager", "name": "am", "url": "http://am:9093", "timeout_s": 0},
    ]
    with pytest.raises(ValidationError) as exc_info:
        Settings(receivers=receivers)

    assert [(e["type"], e["loc"], e["msg"]) for e in exc_info.value.errors()] == [
        ("missing", ("receivers", 0, "webhook", "url"), "Field required"),
        (
            "union_tag_invalid",
            ("receivers", 1),
            "Input tag 'pager' found using 'type' does not match any of the expected tags: "
            "'alertmanager', 'webhook', 'slack', 'stdout'",
        ),
        (
            "value_error",
            ("receivers", 2, "slack", "url"),
            "Value error, url 'hooks.slack.com/x': expected an http:// or https:// URL with a host",
        ),
        (
            "string_pattern_mismatch",
            ("receivers", 3, "stdout", "name"),
            "String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
        (
            "greater_than",
            ("receivers", 4, "alertmanager", "timeout_s"),
            "Input should be greater than 0",
        ),
    ]


def test_settings_webhook_over_http_with_a_secret_is_allowed() -> None:
    settings = Settings(
        receivers=[{"type": "webhook", "name": "h", "url": "http://10.0.0.5:8080/", "secret": "s"}]
    )

    assert settings.receiver("h").type == "webhook"
