"""The demo's champion-challenger scenario: replay a sample of what the demo recorded through the
fake challenger and print the verdict.

It reads from the ClickHouse the demo's worker wrote and keeps the challenger's events in memory
(the comparison is the worker's own detector, run in this process), so it needs neither the
broker nor the worker; pass ``publish`` to send the events to Kafka as well.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

from slowleak.models import InteractionEvent
from slowleak.models.events import TS_MAX, TS_MIN
from slowleak.streams.challenge.evaluators import RegexMatch
from slowleak.streams.challenge.fake import FakeModel
from slowleak.streams.challenge.runner import ChallengeReport, Progress, run_challenge
from slowleak.streams.challenge.sampling import SampleSpec, read_sample

__all__ = ["DEMO_CHALLENGER", "demo_challenge"]

DEMO_CHALLENGER = "prompt-v15"
#: The fake challenger keeps 97% of what the champion got right and fixes 25% of the rest.
DEMO_KEEP = 0.97
DEMO_FIX = 0.25
#: The demo's challenger is a longer prompt: each call costs 8% more than the champion's.
DEMO_COST_VS_CHAMPION = 1.08

_BUSIEST_APP = """
SELECT app FROM events
WHERE env = 'prod' AND variant = 'champion' AND input_text IS NOT NULL AND outcome IS NOT NULL
GROUP BY app ORDER BY count() DESC, app LIMIT 1
"""


def demo_challenge(
    client: Any, *, app: str | None = None, size: int = 20_000, seed: int = 7,
    say: Callable[[str], object] = print,
    publish: Callable[[InteractionEvent], object] | None = None,
) -> ChallengeReport | None:  # fmt: skip
    """Replay up to ``size`` recorded calls of ``app`` (default: the one with the most calls
    with a text and an outcome) through :class:`FakeModel`; print and return what it decided.
    None (and a line saying why) when there is nothing to replay."""
    if app is None:
        rows = client.query(_BUSIEST_APP).result_rows
        if not rows:
            say("   no recorded calls with an input text and an outcome: nothing to replay")
            return None
        app = str(rows[0][0])
    spec = SampleSpec(app=app, start=TS_MIN, end=TS_MAX, size=size, seed=seed, min_per_intent=50)
    calls = read_sample(client, spec)
    if not calls:
        say(f"   {app} has no recorded calls with an input text and an outcome to replay")
        return None
    # What the sample would cost the challenger, with room: the cap is shown working, not hit.
    spend_cap = round(1.25 * DEMO_COST_VS_CHAMPION * sum(c.cost_usd or 0.0 for c in calls), 2)
    spend_cap = max(spend_cap, 1.0)
    say(
        f"   replaying {len(calls):,} recorded calls of {app} (sampled by intent, seed {seed}) "
        f"through the fake challenger {DEMO_CHALLENGER}, a prompt that costs "
        f"{100 * (DEMO_COST_VS_CHAMPION - 1):.0f}% more per call; spend cap ${spend_cap:,.2f}"
    )
    events: list[InteractionEvent] = []

    def keep(event: InteractionEvent) -> None:
        events.append(event)
        if publish is not None:
            publish(event)

    progress_out = io.StringIO()
    report = asyncio.run(
        run_challenge(
            calls, FakeModel(
                seed=seed, keep=DEMO_KEEP, fix=DEMO_FIX, cost_vs_champion=DEMO_COST_VS_CHAMPION
            ),
            name=DEMO_CHALLENGER,
            publish=keep, evaluator=RegexMatch("^ANSWER: correct"), concurrency=8,
            spend_cap_usd=spend_cap, stop_when_decided=True, margin=0.01,
            progress=Progress(total=len(calls), label=f"   {DEMO_CHALLENGER}", stream=progress_out),
        )
    )  # fmt: skip
    say(progress_out.getvalue().rstrip("\n").splitlines()[-1])
    for line in report.describe().splitlines():
        say(f"   {line}")
    if not report.verdicts:
        say("   no verdict yet: the difference is too small to tell on this many calls")
    return report
