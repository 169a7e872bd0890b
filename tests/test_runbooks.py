"""The runbooks in ``docs/runbooks``: their sections, and every ``sql`` block runs against the real
ClickHouse server with the parameters of a real alert of its kind and returns rows.

The data and the alerts come from slowleak's own code: the demo scenarios
(``scenario_traffic``) through the core ``Processor`` with the default detectors, and the rows it
builds inserted into a fresh database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from slowleak.models import Alert
from slowleak.streams.clickhouse import apply_migrations
from slowleak.streams.core import Processor
from slowleak.streams.core.decode import Record
from slowleak.streams.core.detectors import default_detectors
from slowleak.streams.core.processor import Output
from slowleak.streams.core.rows import (
    ALERT_COLUMNS,
    DETECTOR_STATS_COLUMNS,
    EVENT_COLUMNS,
    alert_row,
)
from slowleak.streams.scenarios import SCENARIOS, scenario_traffic

RUNBOOKS = Path(__file__).resolve().parent.parent / "docs" / "runbooks"
KINDS = ("accuracy_drift", "metric_drift", "model_change", "availability", "fallback_rate")
SECTIONS = (
    "## What it means",
    "## How sure",
    "## Evidence",
    "## Usual causes",
    "## What to do",
    "## How to tell it resolved",
)
#: Top-level fields of an alert a query may take as parameters (besides the keys of details).
TOP_LEVEL = ("alert_id", "kind", "severity", "status", "ts", "event_id", "app", "model")

_FENCE = re.compile(r"^```sql[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_PARAM = re.compile(r"\{(\w+):[^{}]+\}")


def sql_blocks(markdown: str) -> list[str]:
    """The contents of the ```sql fences of a markdown text, in order."""
    return [block.strip() for block in _FENCE.findall(markdown)]


def query_params(sql: str) -> set[str]:
    """Names of the ``{name:Type}`` query parameters of ``sql``."""
    return {m.group(1) for m in _PARAM.finditer(sql)}


def alert_params(alert: Alert) -> dict[str, Any]:
    """What an alert offers a runbook query, as the alert's JSON has it (strings for times):
    its top-level fields and the scalar values of its details (nested ones and nulls are not
    parameters)."""
    data = alert.model_dump(mode="json")
    params = {k: data[k] for k in TOP_LEVEL if data.get(k) is not None}
    for key, value in data["details"].items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            params[key] = value
    return params


def test_sql_block_parsing() -> None:
    text = (
        "x\n```sql\nSELECT {a:String}, {b:DateTime64(3)}\n```\n"
        "```bash\nno\n```\n```sql \nSELECT 1\n```\n"
    )
    blocks = sql_blocks(text)
    assert blocks == ["SELECT {a:String}, {b:DateTime64(3)}", "SELECT 1"]
    assert query_params(blocks[0]) == {"a", "b"}


@pytest.mark.parametrize("kind", KINDS)
def test_runbook_has_its_sections_and_queries(kind: str) -> None:
    text = (RUNBOOKS / f"{kind}.md").read_text()
    missing = [s for s in SECTIONS if s not in text]
    assert not missing, f"{kind}.md lacks {missing}"
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions), f"{kind}.md: sections out of order"
    assert sql_blocks(text), f"{kind}.md has no sql block"
    assert f"({kind}.md)" in (RUNBOOKS / "README.md").read_text(), "README does not link it"


def _replay(calls: list[dict[str, Any]]) -> Output:
    processor = Processor(detectors=default_detectors())
    out = Output()
    records = [Record("replay", -1, i, None, orjson.dumps(c)) for i, c in enumerate(calls)]
    for start in range(0, len(records), 2_000):
        processor.interactions(records[start : start + 2_000], out)
    return out


@pytest.mark.integration
def test_every_runbook_query_returns_rows_for_real_alerts(ch_client: Any, ch_database: str) -> None:
    apply_migrations(ch_client, database=ch_database)
    # Every scenario app but the steady one: between them they fire each kind. 36,000 calls
    # per app, the incident from call 32,000 (after the 30,000-outcome warm-up of the success
    # rate), leave time for the burn-rate ticket to escalate to a page.
    scenarios = tuple(s for s in SCENARIOS if s.expect)
    calls = list(
        scenario_traffic(
            start=datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
            calls_per_app=36_000,
            change_at=32_000,
            scenarios=scenarios,
        )
    )
    out = _replay(calls)
    ch_client.insert("events", out.events, column_names=list(EVENT_COLUMNS))
    ch_client.insert("detector_stats", out.stats, column_names=list(DETECTOR_STATS_COLUMNS))
    ch_client.insert("alerts", [alert_row(a) for a in out.alerts], column_names=list(ALERT_COLUMNS))

    firing = [a for a in out.alerts if a.status == "firing"]
    by_kind: dict[str, list[Alert]] = {k: [a for a in firing if a.kind == k] for k in KINDS}
    assert all(by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    # Both flavours of model_change, and both conditions of availability, are exercised.
    assert {"silent" in a.details for a in by_kind["model_change"]} == {True, False}
    assert {a.labels["condition"] for a in by_kind["availability"]} == {"outage", "burn_rate"}

    failures: list[str] = []
    ran = 0
    for name in (*KINDS, "README"):
        candidates = firing if name == "README" else by_kind[name]
        for number, sql in enumerate(sql_blocks((RUNBOOKS / f"{name}.md").read_text()), 1):
            needed = query_params(sql)
            usable = [a for a in candidates if needed <= alert_params(a).keys()]
            if not usable:
                failures.append(f"{name}.md query {number}: no alert has {sorted(needed)}")
                continue
            # Every alert of the kind that has the query's parameters (README: the first one).
            for alert in usable[:1] if name == "README" else usable:
                params = {k: v for k, v in alert_params(alert).items() if k in needed}
                try:
                    rows = ch_client.query(sql, parameters=params).result_rows
                except Exception as exc:  # report every broken query at once
                    failures.append(f"{name}.md query {number} ({alert.labels}): {exc}")
                    continue
                ran += 1
                if not rows:
                    failures.append(f"{name}.md query {number} ({alert.labels}): no rows")
    assert not failures, "\n".join(failures)
    assert ran >= 40
