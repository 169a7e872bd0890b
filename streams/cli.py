"""The ``slowleak`` command."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from slowleak.models import Settings

CONFIG_HELP = "TOML file with settings (SLOWLEAK_* environment variables take precedence)."


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return Settings.load(config, **{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise click.UsageError("invalid settings:\n" + "\n".join(lines)) from None
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SLOWLEAK_CONFIG",
    help=CONFIG_HELP,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slowleak")
def main() -> None:
    """slowleak: watch production LLM calls for slow leaks (drift, cost, guardrails, outages).

    Services publish one event per model call to Kafka; the worker validates them, runs the
    detectors and writes rows to ClickHouse. Settings come from SLOWLEAK_* environment variables
    or a TOML file (--config).
    """


@main.command()
@config_option
@click.option("--apply-schema", is_flag=True, help="Apply ClickHouse migrations before starting.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Overrides the log_level setting.",
)
def worker(config: Path | None, apply_schema: bool, log_level: str | None) -> None:
    """Run the stream worker: Kafka topics in, ClickHouse rows and alerts out.

    Checks ClickHouse (tables present) and Kafka (topics, co-partitioning) first and stops with
    a message saying what to fix when something is wrong. Stop it with Ctrl-C or SIGTERM: it
    writes what it buffered and commits before it exits. Counters: GET /slowleak/stats/ on the
    web port (setting web_port).
    """
    from slowleak.streams.worker import StartupError, run_worker

    settings = _settings(config, log_level=log_level)
    try:
        run_worker(settings, apply_schema=apply_schema)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@config_option
def deliver(config: Path | None) -> None:
    """Run only alert delivery: alerts topic in, every configured receiver out.

    `slowleak worker` already does this in its own process when receivers are set; run this
    instead for delivery apart from detection. Each receiver reads the topic in its own consumer
    group ({app_id}.deliver.{name}) and commits after the receiver acknowledged, so a receiver
    that is down only delays its own alerts. Stop it with Ctrl-C or SIGTERM.
    """
    import asyncio
    import logging

    from slowleak.streams.delivery import run_delivery
    from slowleak.streams.worker import StartupError, ensure_topics

    settings = _settings(config)
    if not settings.receivers:
        raise click.UsageError(
            "no receivers configured: set receivers in the config file or "
            """SLOWLEAK_RECEIVERS='[{"type": "stdout", "name": "log"}]'"""
        )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        ensure_topics(settings)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    stats = asyncio.run(run_delivery(settings))
    click.echo(f"delivery stopped: {stats}", err=True)


@main.group()
def alerts() -> None:
    """Alerts: check that they reach the configured receivers."""


@alerts.command("test")
@config_option
@click.option("--receiver", "name", required=True, help="Name of a configured receiver.")
def alerts_test(config: Path | None, name: str) -> None:
    """Send one test alert (kind slowleak_test) straight to receiver NAME and print the result.

    The alert says it is a test; nothing goes through Kafka and nothing is retried. Exits 1 when
    the receiver did not accept it.
    """
    import asyncio

    from slowleak.streams.delivery import send_test_alert

    settings = _settings(config)
    try:
        receiver = settings.receiver(name)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    alert, seconds, error = asyncio.run(send_test_alert(settings, name))
    where = f"receiver {name!r} ({receiver.type})"
    if error:
        raise click.ClickException(f"test alert {alert.alert_id} to {where} {error}")
    click.echo(f"test alert {alert.alert_id} delivered to {where} in {seconds * 1000:.0f} ms")


@main.group()
def schema() -> None:
    """ClickHouse schema: tables and views from the numbered migrations in schemas/clickhouse."""


@schema.command("apply")
@config_option
def schema_apply(config: Path | None) -> None:
    """Create the database and apply the migrations not yet applied (idempotent)."""
    from slowleak.streams.clickhouse import MigrationError, apply_migrations, connect

    settings = _settings(config)
    try:
        client = connect(settings)
    except Exception as exc:
        raise click.ClickException(
            f"cannot reach ClickHouse at {settings.clickhouse_url}: {exc}"
        ) from None
    try:
        applied = apply_migrations(client, database=settings.clickhouse_database)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
    db = settings.clickhouse_database
    if applied:
        click.echo(f"applied {len(applied)} migration(s) to {db}: {', '.join(applied)}")
    else:
        click.echo(f"{db} is up to date")


@main.command()
@config_option
@click.argument("query", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def sql(config: Path | None, query: str | None, fmt: str) -> None:
    """Run a SQL QUERY against slowleak's ClickHouse database (or read it from stdin).

    \b
    Examples:
      slowleak sql "SELECT app, count() FROM events GROUP BY app"
      echo "SELECT * FROM dead_letters LIMIT 5" | slowleak sql --format json
    """
    from slowleak.streams.sqlcli import run_sql

    settings = _settings(config)
    text = query if query is not None else sys.stdin.read()
    if not text.strip():
        raise click.UsageError("no query: pass it as an argument or on stdin")
    try:
        click.echo(run_sql(settings, text, fmt=fmt), nl=False)
    except Exception as exc:
        raise click.ClickException(str(exc).strip().splitlines()[0]) from None


@main.command()
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--rows",
    "rows_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the cost-window and guardrail-finding rows the worker would write, one "
    "JSON line each (with its table), to this file.",
)
def replay(config: Path | None, file: str, rows_path: str | None) -> None:
    """Run the worker's logic over a JSONL FILE of events, offline (no Kafka, no ClickHouse).

    Lines are interaction and feedback events (told apart by "type"), in order. Each alert is
    printed to stdout as one JSON line; a summary (and each rejected line) goes to stderr.
    Use - for stdin.
    """
    from slowleak.streams.replay import replay_file

    settings = _settings(config)
    with click.open_file(file, "rb") as handle:
        if rows_path is None:
            summary = replay_file(handle, settings=settings, out=sys.stdout, err=sys.stderr)
        else:
            with open(rows_path, "w", encoding="utf-8") as rows_out:
                summary = replay_file(
                    handle, settings=settings, out=sys.stdout, err=sys.stderr, rows_out=rows_out
                )
    click.echo(summary.describe(), err=True)


@main.command()
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def guard(config: Path | None, file: str) -> None:
    """Scan each interaction event of a JSONL FILE with the guardrail detectors, offline.

    Prints one JSON line per event: {"event_id": ..., "violations": [{"detector", "kind",
    "score", "severity", "field", "spans", "evidence"}]}; evidence is masked. App profiles
    (configured secrets, off-task checks) come from the settings' apps. Use - for stdin.
    """
    from slowleak.streams.guard import guard_file

    settings = _settings(config)
    with click.open_file(file, "rb") as handle:
        summary = guard_file(
            handle, settings=settings, out=sys.stdout, err=sys.stderr, name=str(file)
        )
    click.echo(summary.describe(), err=True)


@main.command()
@click.option("--events", "n_events", default=5_000, show_default=True, help="Calls to simulate.")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".slowleak/demo"),
    show_default=True,
    help="Where the embedded ClickHouse keeps its data (wiped at start).",
)
@click.option(
    "--scenarios/--no-scenarios",
    default=True,
    show_default=True,
    help="Also send 7 apps x 40,000 calls in which each kind of drift, outage and attack "
    "campaign happens to one app and one app stays steady, then replay a sample through a fake "
    "challenger (a few minutes more).",
)
def demo(n_events: int, workdir: Path, scenarios: bool) -> None:
    """Start the embedded stack, send synthetic traffic, run the worker, query the results.

    Starts a Kafka-protocol broker (Tansu) on 127.0.0.1, runs `slowleak worker` against it with
    embedded ClickHouse, publishes calls from a few apps plus some malformed messages, waits
    until every message is accounted for (a row, or a dead letter with its reason), then shows
    SQL queries and their results.
    """
    from slowleak.streams.demo import run_demo

    sys.exit(run_demo(n_events=n_events, workdir=workdir, scenarios=scenarios))


_DATETIME = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


@main.command()
@config_option
@click.option("--app", required=True, help="The app whose recorded calls are replayed.")
@click.option(
    "--name", required=True, help="The challenger's name: the variant of its events (prompt-v15)."
)
@click.option(
    "--challenger",
    "challenger_spec",
    required=True,
    help="module:function of the challenger callable, or 'openai' (OpenAI-compatible HTTP, from "
    "SLOWLEAK_CHALLENGER_* variables) or 'fake' (a deterministic fake model).",
)
@click.option(
    "--evaluator",
    default="feedback",
    show_default=True,
    help="exact[:ATTRIBUTE], regex:PATTERN, json-schema:FILE, module:function, or feedback "
    "(outcomes arrive as feedback events).",
)
@click.option("--since", type=_DATETIME, help="Start of the recorded calls (UTC) [7 days ago].")
@click.option("--until", type=_DATETIME, help="End of the recorded calls (UTC) [now].")
@click.option("--intent", "intents", multiple=True, help="Only this intent (repeatable).")
@click.option("--size", default=1_000, show_default=True, help="Calls to sample at most.")
@click.option("--min-per-intent", default=50, show_default=True, help="Rare intents get this many.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample.")
@click.option("--concurrency", default=4, show_default=True, help="Challenger calls in flight.")
@click.option("--rate", "rate_per_s", type=float, help="At most this many calls per second.")
@click.option(
    "--spend-cap",
    "spend_cap_usd",
    type=float,
    required=True,
    help="Stop before the challenger's spend (USD) would pass this.",
)
@click.option(
    "--max-call-cost", "max_call_cost_usd", type=float, help="Upper bound of one call (USD)."
)
@click.option("--champion-name", help="The champion in the verdict [its prompt_version].")
@click.option(
    "--margin", default=0.01, show_default=True, help="Non-inferiority margin (0.01 = 1 point)."
)
@click.option("--alpha", default=0.05, show_default=True, help="Error rate of the verdict.")
@click.option(
    "--stop-when-decided/--run-all",
    default=True,
    show_default=True,
    help="Stop at a better or worse verdict.",
)
def challenge(
    config: Path | None, app: str, name: str, challenger_spec: str, evaluator: str,
    since: datetime | None, until: datetime | None, intents: tuple[str, ...], size: int,
    min_per_intent: int, seed: int, concurrency: int, rate_per_s: float | None,
    spend_cap_usd: float, max_call_cost_usd: float | None, champion_name: str | None,
    margin: float, alpha: float, stop_when_decided: bool,
) -> None:  # fmt: skip
    """Replay recorded production calls of an app through a challenger.

    Samples calls of --app from ClickHouse (seeded, stratified by intent so rare intents are
    present; calls this challenger already replayed are skipped), calls the challenger on each
    input and publishes its calls as events with env "test", variant --name and
    attributes.replay_of = the call replayed. The worker compares them with the champion and
    fires challenger_verdict; `slowleak compare` shows the table. A progress bar goes to stderr,
    the summary to stdout.
    """
    from slowleak.streams.challenge.command import ChallengeError, RunOptions, run_from_settings
    from slowleak.streams.challenge.sampling import SampleSpec

    settings = _settings(config)
    end = (until or datetime.now(UTC)).replace(tzinfo=UTC)
    start = since.replace(tzinfo=UTC) if since is not None else end - timedelta(days=7)
    try:
        sample = SampleSpec(
            app=app, start=start, end=end, size=size, seed=seed, intents=intents,
            min_per_intent=min_per_intent, exclude_replayed_by=name,
        )  # fmt: skip
        options = RunOptions(
            name=name, challenger=challenger_spec, evaluator=evaluator,
            champion_name=champion_name, concurrency=concurrency, rate_per_s=rate_per_s,
            spend_cap_usd=spend_cap_usd, max_call_cost_usd=max_call_cost_usd,
            stop_when_decided=stop_when_decided, margin=margin, alpha=alpha,
        )  # fmt: skip
        report = run_from_settings(settings, sample, options)
    except (ValueError, ChallengeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.describe())


@main.command()
@config_option
@click.option("--app", required=True, help="The app.")
@click.option("--challenger", required=True, help="The challenger's name (its variant).")
@click.option(
    "--margin", default=0.01, show_default=True, help="Non-inferiority margin (0.01 = 1 point)."
)
@click.option("--alpha", default=0.05, show_default=True, help="Error rate of the verdict.")
def compare(config: Path | None, app: str, challenger: str, margin: float, alpha: float) -> None:
    """Print how a challenger compares with its champion on the calls it replayed.

    Success rate, cost per call and per success, latency p50/p95, refusal and guardrail
    violation rates, the always-valid confidence interval on the success difference and the
    verdict (better, non_inferior, worse, undecided). The SQL is
    schemas/queries/challenger_comparison.sql.
    """
    from slowleak.streams.challenge.compare import read_comparison
    from slowleak.streams.clickhouse import connect

    settings = _settings(config)
    try:
        client = connect(settings, database=settings.clickhouse_database)
    except Exception as exc:
        raise click.ClickException(
            f"cannot reach ClickHouse at {settings.clickhouse_url}: {exc}"
        ) from None
    try:
        view = read_comparison(client, app=app, challenger=challenger, alpha=alpha, margin=margin)
    except Exception as exc:
        raise click.ClickException(str(exc).strip().splitlines()[0]) from None
    finally:
        client.close()
    click.echo(view.describe(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
