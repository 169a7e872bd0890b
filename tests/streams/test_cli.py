"""The ``slowleak`` command as a user runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from slowleak.schemas import migrations
from slowleak.streams.cli import main
from slowleak.streams.synthetic import TrafficGenerator


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_help_lists_every_command_with_a_description() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "worker", "replay", "sql", "schema"):
        assert f"  {command} " in result.output
    assert "apply" in run("schema", "--help").output
    for command in ("demo", "worker", "replay", "sql"):
        help_text = run(command, "--help").output
        assert len(help_text.splitlines()) > 5, command


def _jsonl(tmp_path: Path, n: int = 200) -> Path:
    gen = TrafficGenerator(seed=11, start=datetime(2026, 11, 25, tzinfo=UTC))
    lines = []
    for i in range(n):
        event = gen.interaction()
        lines.append(orjson.dumps(event))
        if i % 10 == 0:
            lines.append(orjson.dumps(gen.feedback(event)))
    lines.append(b'{"event_id": "broken"')
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_prints_no_alerts_yet_and_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(_jsonl(tmp_path))])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "200 interactions, 20 feedback, 1 rejected, 0 alerts" in result.stderr
    assert "traffic.jsonl:221: rejected: not valid JSON" in result.stderr


def test_replay_reads_stdin(tmp_path: Path) -> None:
    data = _jsonl(tmp_path, 5).read_text()
    result = CliRunner().invoke(main, ["replay", "-"], input=data)
    assert result.exit_code == 0
    assert "5 interactions, 1 feedback, 1 rejected" in result.stderr


def test_bad_setting_fails_at_start_saying_what_to_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["replay", str(_jsonl(tmp_path, 1))], env={"SLOWLEAK_CLICKHOUSE_URL": "mysql://x"}
    )
    assert result.exit_code == 2
    assert "invalid settings" in result.output
    assert "clickhouse_url 'mysql://x': use http://HOST:PORT" in result.output


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sql", "--config", str(tmp_path / "nope.toml"), "SELECT 1"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.integration
def test_schema_apply_then_sql(clickhouse_url: str, ch_database: str) -> None:
    env = {"SLOWLEAK_CLICKHOUSE_URL": clickhouse_url, "SLOWLEAK_CLICKHOUSE_DATABASE": ch_database}
    first = run("schema", "apply", env=env)
    assert first.exit_code == 0
    assert first.output.startswith(
        f"applied {len(migrations())} migration(s) to {ch_database}: 0001_create_events"
    )
    assert run("schema", "apply", env=env).output == f"{ch_database} is up to date\n"

    table = run(
        "sql",
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND name != 'schema_migrations' ORDER BY name",
        env=env,
    )
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[2:] == [
        "alert_deliveries", "alerts", "cost_daily", "cost_daily_by_app", "cost_hourly",
        "cost_hourly_by_app", "cost_minutely", "cost_windows_1d", "cost_windows_1d_mv",
        "cost_windows_1h", "cost_windows_1h_mv", "cost_windows_1m", "dead_letters",
        "detector_stats", "events", "feedback", "guardrail_findings", "(17 rows)",
    ]  # fmt: skip
    as_json = run("sql", "--format", "json", env=env, input="SELECT 1 AS one, 'x' AS s")
    assert [json.loads(line) for line in as_json.output.splitlines()] == [{"one": 1, "s": "x"}]
    broken = run("sql", "SELECT nope FROM events", env=env)
    assert broken.exit_code == 1
    assert "Error:" in broken.output and "nope" in broken.output


# --- alert delivery -------------------------------------------------------------------------

STDOUT_RECEIVER = '[{"type": "stdout", "name": "log"}]'


def test_help_lists_delivery_commands() -> None:
    output = run("--help").output
    assert "  deliver " in output
    assert "  alerts " in output
    assert "  test " in run("alerts", "--help").output
    assert "--receiver" in run("alerts", "test", "--help").output


def test_alerts_test_to_stdout() -> None:
    result = run("alerts", "test", "--receiver", "log", env={"SLOWLEAK_RECEIVERS": STDOUT_RECEIVER})

    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith("ALERT firing info slowleak_test app=slowleak ")
    assert "TEST ALERT from `slowleak alerts test`" in first
    assert second.startswith("test alert slowleak_test-")
    assert " delivered to receiver 'log' (stdout) in " in second


def test_alerts_test_unknown_receiver() -> None:
    result = run(
        "alerts", "test", "--receiver", "pager", env={"SLOWLEAK_RECEIVERS": STDOUT_RECEIVER}
    )

    assert result.exit_code == 2
    assert "no receiver named 'pager' (receivers: log)" in result.output


def test_alerts_test_to_a_receiver_that_is_down() -> None:
    from slowleak.streams.localstack import free_port

    receivers = json.dumps(
        [{"type": "webhook", "name": "hook", "url": f"http://127.0.0.1:{free_port()}/x"}]
    )
    result = run("alerts", "test", "--receiver", "hook", env={"SLOWLEAK_RECEIVERS": receivers})

    assert result.exit_code == 1
    assert "to receiver 'hook' (webhook) failed (retryable): POST http://127.0.0.1:" in (
        result.output
    )


def test_deliver_needs_receivers() -> None:
    result = run("deliver", env={"SLOWLEAK_RECEIVERS": "[]"})

    assert result.exit_code == 2
    assert "no receivers configured" in result.output


def test_invalid_receivers_fail_at_start_naming_the_setting() -> None:
    result = run("deliver", env={"SLOWLEAK_RECEIVERS": '[{"type": "webhook", "name": "h"}]'})

    assert result.exit_code == 2
    assert "receivers.0.webhook.url: Field required" in result.output
