from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from slowleak.models import InteractionEvent
from slowleak.streams.clickhouse import apply_migrations
from slowleak.streams.core.guardrails import GUARDRAIL_FINDING_COLUMNS, Scanner, finding_row


@pytest.mark.integration
def test_finding_rows_insert_and_collapse(ch_client: Client, ch_database: str) -> None:
    apply_migrations(ch_client, database=ch_database)
    event = InteractionEvent(
        event_id="e-42",
        ts=datetime.now(UTC).replace(microsecond=0),  # inside the table's 90-day TTL
        app="shop",
        model="m",
        input_tokens=1,
        output_tokens=1,
        latency_ms=1.0,
        status="ok",
        output_text="Card 4539 1488 0343 6467, key AKIAZ7Q3LM2XN4KP5WTR.",
    )
    rows = [finding_row(event, f) for f in Scanner().scan(event)]
    assert len(rows) == 2

    for _ in range(2):  # a re-sent event writes the same findings again
        ch_client.insert("guardrail_findings", rows, column_names=list(GUARDRAIL_FINDING_COLUMNS))
    stored = ch_client.query(
        "SELECT detector, kind, spans, evidence FROM guardrail_findings FINAL ORDER BY kind"
    ).result_rows

    assert [(r[0], r[1], [tuple(s) for s in r[2]]) for r in stored] == [
        ("secret_leak", "aws_access_key", [(30, 50)]),
        ("pii_leak", "card", [(5, 24)]),
    ]
    assert all("AKIAZ7Q3LM2XN4KP5WTR" not in r[3] and "4539" not in r[3] for r in stored)
