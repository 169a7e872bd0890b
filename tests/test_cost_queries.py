"""The cost windows' tables, views and the analysts' queries in ``schemas/queries``, against
the ClickHouse server started by ``scripts/test.sh``, with windows built by ``CostWindows`` from
calls whose sums are worked out by hand.

Prices are powers of two (USD per token), so every cost and every sum of costs is exact in
floating point, whatever order ClickHouse adds them in: the numbers compare with ``==``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from slowleak.models import FeedbackEvent, InteractionEvent
from slowleak.streams.core.cost import (
    WINDOW_COLUMNS,
    WINDOW_TABLE,
    CostWindows,
    PriceBook,
    latency_quantile_ms,
)
from slowleak.streams.core.rows import (
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    Row,
    event_row,
    feedback_row,
)

pytestmark = pytest.mark.integration

#: Yesterday, midnight UTC: the tables' TTLs drop older rows on insert.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
K = 2.0**-10  # USD: 1,024 input tokens of m1, or 512 output tokens
PRICES = PriceBook(
    table={"m1": {"input_cost_per_token": 2.0**-20, "output_cost_per_token": 2.0**-19}}
)
COST_MIGRATION = 8
QUERIES = ("spend_over_time", "top_cost_drivers", "cost_per_success_by_prompt_version",
           "cost_per_success_with_feedback", "unknown_price_models")  # fmt: skip


def _at(hour: int, minute: int, second: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute, seconds=second)


def _call(n: int, ts: datetime, **fields: Any) -> InteractionEvent:
    base: dict[str, Any] = {
        "event_id": f"e{n}", "ts": ts, "app": "bot", "model": "m1", "input_tokens": 1024,
        "output_tokens": 0, "latency_ms": 100.0, "status": "ok",
    }  # fmt: skip
    return InteractionEvent(**(base | fields))


def _calls() -> list[InteractionEvent]:
    acme = {"tenant": "acme", "prompt_version": "v1"}
    globex = {"tenant": "globex", "prompt_version": "v2"}
    return [
        # 09:00, before the queried hours: the previous period of top_cost_drivers (2K).
        _call(0, _at(9, 10), input_tokens=1024, output_tokens=512, outcome=True, **acme),
        # 10:05: three calls of 2K each, latencies 100, 200, 400 ms.
        _call(1, _at(10, 5, 1), input_tokens=2048, outcome=True, **acme),
        _call(2, _at(10, 5, 2), input_tokens=2048, latency_ms=200.0, outcome=False, **acme),
        _call(3, _at(10, 5, 3), input_tokens=2048, latency_ms=400.0, status="error", **acme),
        # 10:30: two calls of 3K each (1,024 input and 1,024 output tokens).
        _call(4, _at(10, 30), output_tokens=1024, outcome=True, **globex),
        _call(5, _at(10, 30, 1), output_tokens=1024, outcome=True, **globex),
        # Late: 10:06 arrives after 10:30 (grace 120 s): a delta row of K for 10:06.
        _call(6, _at(10, 6), latency_ms=800.0, **acme),
        # 11:15: four calls of a model without a price; 11:20: two calls of another app that
        # sent their cost.
        *(_call(7 + i, _at(11, 15, i), model="m2", prompt_version="v2") for i in range(4)),
        *(_call(11 + i, _at(11, 20, i), app="search", cost_usd=0.25) for i in range(2)),
    ]


def _rows() -> list[Row]:
    windows = CostWindows(prices=PRICES)
    windows.on_interactions(_calls())
    windows.flush_open()
    rows: list[Row] = []
    windows.window_rows(rows)
    return rows


def _insert(client: Client, rows: list[Row], **settings: Any) -> None:
    client.insert(WINDOW_TABLE, rows, column_names=list(WINDOW_COLUMNS), settings=settings)


def _query(client: Client, name: str, **parameters: Any) -> list[tuple[Any, ...]]:
    sql = resources.files("slowleak.schemas").joinpath("queries", f"{name}.sql").read_text()
    return [tuple(r) for r in client.query(sql, parameters=parameters).result_rows]


@pytest.fixture
def cost_db(ch_client: Client, ch_database: str) -> Client:
    from slowleak.schemas import migrations
    from slowleak.streams.clickhouse import apply_migrations

    # The schema as 0008 made it (later migrations are additive, and tested on their own).
    upto = [m for m in migrations() if m.number <= COST_MIGRATION]
    apply_migrations(ch_client, database=ch_database, files=upto)
    _insert(ch_client, _rows())
    return ch_client


HOURS = {"start": _at(10, 0), "end": _at(12, 0)}


def test_the_cost_queries_are_there() -> None:
    folder = resources.files("slowleak.schemas").joinpath("queries")
    names = {e.name.removesuffix(".sql") for e in folder.iterdir() if e.name.endswith(".sql")}
    assert set(QUERIES) <= names


def test_spend_over_time(cost_db: Client) -> None:
    rows = _query(cost_db, "spend_over_time", app="", **HOURS)

    h10, h11 = _at(10, 0).replace(tzinfo=None), _at(11, 0).replace(tzinfo=None)
    assert [r[:6] for r in rows] == [
        (h10, "bot", "m1", "acme", 4, 7 * K),  # 3 x 2K + the late K
        (h10, "bot", "m1", "globex", 2, 6 * K),
        (h11, "search", "m1", "", 2, 0.5),
        (h11, "bot", "m2", "", 4, 0.0),
    ]
    assert rows[0][6:] == (7 * K / 4, 7 * K / 7168 * 1000)
    assert rows[1][6:] == (3 * K, 6 * K / 4096 * 1000)
    assert _query(cost_db, "spend_over_time", app="search", **HOURS) == [rows[2]]


def test_top_cost_drivers(cost_db: Client) -> None:
    rows = _query(cost_db, "top_cost_drivers", top=2, **HOURS)

    total = 0.5 + 13 * K
    assert rows == [
        ("search", "m1", "", "", 2, 0.5, 0.5 / total, 0.0, 0.5, 1024.0, 0.0, 0.25),
        ("bot", "m1", "acme", "v1", 4, 7 * K, 7 * K / total, 2 * K, 5 * K, 7168 / 4, 0.0,
         7 * K / 4),
    ]  # fmt: skip


def test_cost_per_success_by_prompt_version(cost_db: Client) -> None:
    rows = _query(cost_db, "cost_per_success_by_prompt_version", app="", **HOURS)

    assert rows == [
        ("bot", "v1", 4, 7 * K, 2, 1, 0.5, 7 * K),
        ("bot", "v2", 6, 6 * K, 2, 2, 1.0, 3 * K),
        ("search", "", 2, 0.5, 0, 0, None, None),
    ]


def _judged(n: int, ts: datetime, outcome: bool, app: str = "bot") -> FeedbackEvent:
    return FeedbackEvent(type="feedback", event_id=f"e{n}", ts=ts, app=app, outcome=outcome)


def test_cost_per_success_with_feedback(cost_db: Client) -> None:
    """Judgements that come after the call count, the latest of a call winning over the outcome
    sent with it; those of calls before the hours, or of no call, do not."""
    events = [event_row(c, partition=0, offset=i) for i, c in enumerate(_calls())]
    cost_db.insert("events", events, column_names=list(EVENT_COLUMNS))
    judgements = [
        _judged(2, _at(10, 20), False),
        _judged(2, _at(10, 40), True),  # e2 was sent as a failure: its latest judgement wins
        _judged(3, _at(10, 50), True),  # the error call, judged
        _judged(8, _at(12, 30), False),  # a call of m2 (v2), judged after the hours
        _judged(0, _at(10, 15), True),  # a call of 09:10: outside the hours
        _judged(99, _at(10, 15), True),  # no such call
        _judged(11, _at(11, 30), True, app="search"),
    ]
    feedback = [feedback_row(f, partition=0, offset=i) for i, f in enumerate(judgements)]
    cost_db.insert("feedback", feedback, column_names=list(FEEDBACK_COLUMNS))

    rows = _query(cost_db, "cost_per_success_with_feedback", app="", **HOURS)

    assert rows == [
        ("bot", "v1", 4, 7 * K, 3, 3, 1.0, 7 * K / 3),  # e1 sent, e2 and e3 judged; e6 unknown
        ("bot", "v2", 6, 6 * K, 3, 2, 2 / 3, 3 * K),  # e4, e5 sent; e8 judged a failure
        ("search", "", 2, 0.5, 1, 1, 1.0, 0.5),
    ]
    assert _query(cost_db, "cost_per_success_with_feedback", app="search", **HOURS) == [rows[2]]
    # Without the judgements, the outcomes sent with the calls, as the windows count them.
    assert [r[:2] + r[4:6] for r in _query(cost_db, "cost_per_success_by_prompt_version",
                                           app="", **HOURS)] == [
        ("bot", "v1", 2, 1), ("bot", "v2", 2, 2), ("search", "", 0, 0),
    ]  # fmt: skip


def test_unknown_price_models(cost_db: Client) -> None:
    rows = _query(cost_db, "unknown_price_models", **HOURS)

    h11 = _at(11, 0).replace(tzinfo=None)
    assert rows == [("bot", "prod", "m2", 4, h11, h11, 0.4)]


def test_hourly_view_matches_the_minutes(cost_db: Client) -> None:
    """The hour of bot/acme/v1: four calls from two minute rows and a late delta row; p50 and
    p95 from the summed histogram, as the Python function computes them."""
    [row] = cost_db.query(
        "SELECT calls, errors, late_calls, cost_usd, outcomes, successes, cost_per_success_usd,"
        " cost_per_1k_tokens, p50_latency_ms, p95_latency_ms, latency_hist FROM cost_hourly"
        " WHERE app = 'bot' AND tenant = 'acme' AND hour = {h:DateTime}",
        parameters={"h": _at(10, 0)},
    ).result_rows
    calls, errors, late, cost, outcomes, successes, per_success, per_1k, p50, p95, hist = row

    assert (calls, errors, late, cost, outcomes, successes) == (4, 1, 1, 7 * K, 2, 1)
    assert (per_success, per_1k) == (7 * K, 7 * K / 7168 * 1000)
    assert sum(hist) == 4
    assert p50 == pytest.approx(latency_quantile_ms(hist, 0.5), rel=1e-12)
    assert p95 == pytest.approx(latency_quantile_ms(hist, 0.95), rel=1e-12)
    assert 190 < p50 < 210 and 760 < p95 < 840  # 200 ms and 800 ms, within a bucket


def test_app_views_sum_each_app(cost_db: Client) -> None:
    rows = cost_db.query(
        "SELECT hour, app, calls, cost_usd FROM cost_hourly_by_app ORDER BY hour, app"
    ).result_rows
    daily = cost_db.query(
        "SELECT day, app, calls, late_calls, cost_usd FROM cost_daily_by_app ORDER BY app"
    ).result_rows

    hour = [_at(h, 0).replace(tzinfo=None) for h in (9, 10, 11)]
    assert [tuple(r) for r in rows] == [
        (hour[0], "bot", 1, 2 * K), (hour[1], "bot", 6, 13 * K), (hour[2], "bot", 4, 0.0),
        (hour[2], "search", 2, 0.5),
    ]  # fmt: skip
    day = T0.date()
    assert [tuple(r) for r in daily] == [(day, "bot", 11, 1, 15 * K), (day, "search", 2, 0, 0.5)]


def _blocks(chunk: int) -> list[tuple[str, list[Row]]]:
    """The window blocks of the test calls fed ``chunk`` at a time, through a restart (state
    saved and restored) after every chunk."""
    store: dict[str, Any] = {}
    blocks: list[tuple[str, list[Row]]] = []
    calls = _calls()
    for start in range(0, len(calls), chunk):
        windows = CostWindows(store=store, prices=PRICES)
        windows.on_interactions(calls[start : start + chunk])
        store.update(windows.dirty_states())
        windows.window_blocks(blocks)
    windows.flush_open(apps=["bot", "search"])
    windows.window_blocks(blocks)
    return sorted(blocks, key=lambda block: block[0])


def test_a_block_sent_again_counts_once(cost_db: Client) -> None:
    """Re-sent rows collapse in the minutes (ReplacingMergeTree, read with FINAL); a block
    inserted with its token is dropped by the rollups too when it comes again, even from a
    run chunked otherwise (as after a crash)."""
    settings = {"deduplicate_blocks_in_dependent_materialized_views": 1}
    first, again = _blocks(len(_calls())), _blocks(3)
    assert [token for token, _ in first] == [token for token, _ in again]
    for token, block in [*first, *again]:
        _insert(cost_db, block, insert_deduplication_token=token, **settings)

    minutes = cost_db.query("SELECT sum(calls), sum(cost_usd) FROM cost_minutely").result_rows
    hours = cost_db.query("SELECT sum(calls), sum(cost_usd) FROM cost_hourly").result_rows
    assert tuple(minutes[0]) == (13, 15 * K + 0.5)
    # The fixture's insert had no token: the hours count the calls twice (once from it, once
    # from the first tokened blocks), not three times.
    assert tuple(hours[0]) == (26, 2 * (15 * K + 0.5))
