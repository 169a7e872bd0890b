"""``slowleak challenge``: sample from ClickHouse, run the challenger, publish to Kafka."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import IO

from slowleak.models import Settings
from slowleak.streams.challenge.challengers import resolve_challenger
from slowleak.streams.challenge.evaluators import resolve_evaluator
from slowleak.streams.challenge.runner import ChallengeReport, Progress, run_challenge
from slowleak.streams.challenge.sampling import SampleSpec, read_sample

__all__ = ["ChallengeError", "RunOptions", "run_from_settings"]

log = logging.getLogger(__name__)

#: Waiting for the broker to acknowledge the published events, at most.
PUBLISH_TIMEOUT_S = 30.0


class ChallengeError(RuntimeError):
    """The challenge cannot run; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run the challenger (see :func:`~slowleak.streams.challenge.run_challenge`)."""

    name: str
    challenger: str
    evaluator: str = "feedback"
    champion_name: str | None = None
    concurrency: int = 4
    rate_per_s: float | None = None
    spend_cap_usd: float | None = None
    max_call_cost_usd: float | None = None
    stop_when_decided: bool = True
    margin: float = 0.01
    alpha: float = 0.05
    timeout_s: float = 120.0


def run_from_settings(
    settings: Settings, sample: SampleSpec, options: RunOptions, *, err: IO[str] | None = None
) -> ChallengeReport:
    """Read the sample from ``settings``' ClickHouse, replay it, publish to its events topic."""
    from slowleak.streams.clickhouse import connect
    from slowleak.streams.publisher import Publisher

    err = err if err is not None else sys.stderr
    try:
        challenger = resolve_challenger(options.challenger, seed=sample.seed)
        evaluator = resolve_evaluator(options.evaluator)
    except ValueError as exc:
        raise ChallengeError(str(exc)) from None
    client = connect(settings, database=settings.clickhouse_database)
    try:
        calls = read_sample(client, sample)
    finally:
        client.close()
    if not calls:
        raise ChallengeError(
            f"no calls of app {sample.app!r} (env {sample.env}, variant {sample.variant}) between "
            f"{sample.start:%Y-%m-%d %H:%M} and {sample.end:%Y-%m-%d %H:%M} UTC with an input text"
            + (" and a known outcome" if sample.require_outcome else "")
            + ": widen the time range or check the app name"
        )
    publisher = Publisher(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        events_topic=settings.events_topic,
        producer_config=settings.kafka_client_options(),
    )
    try:
        report = asyncio.run(
            run_challenge(
                calls, challenger, name=options.name, publish=publisher.publish,
                evaluator=evaluator, champion_name=options.champion_name,
                concurrency=options.concurrency, rate_per_s=options.rate_per_s,
                spend_cap_usd=options.spend_cap_usd, max_call_cost_usd=options.max_call_cost_usd,
                stop_when_decided=options.stop_when_decided, margin=options.margin,
                alpha=options.alpha, timeout_s=options.timeout_s,
                progress=Progress(total=len(calls), label=options.name, stream=err),
            )
        )  # fmt: skip
    finally:
        publisher.close(PUBLISH_TIMEOUT_S)
    stats = publisher.stats()
    if stats.dropped:
        raise ChallengeError(
            f"{report.describe()}\nbut {sum(stats.dropped.values()):,} events were not published "
            f"({stats.dropped}); check Kafka at {settings.kafka_bootstrap_servers} and run "
            "again with the same --seed: calls already replayed are skipped"
        )
    log.info(
        "challenge done app=%s challenger=%s calls=%d spend_usd=%.6f stopped=%s",
        sample.app, options.name, report.calls, report.spend_usd, report.stopped,
    )  # fmt: skip
    return report
