"""Hostile input through the pure core, at volume: the processor never raises; every record is
exactly one of accepted (one row) or rejected (one dead letter whose reason names the field);
an event re-sent by a retrying producer keeps its row's dedup key, so it counts once."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slowleak.models import DeadLetter
from slowleak.models.events import TS_MAX, TS_MIN, UINT32_MAX
from slowleak.streams.core import Output, Processor, Record
from slowleak.streams.core.rows import EVENT_COLUMNS

from .hostile import BAD_KINDS, NOW, Hostile, Message, display_name

TOLERANCE_S = 300.0
N_MESSAGES = 100_000
BATCH = 2_000
TIME_LIMIT_S = 60.0
#: The sorting key of ``events`` (a ReplacingMergeTree): rows equal on it are one row after merge.
DEDUP_KEY = ("app", "env", "model", "ts", "event_id")
_COL = {name: i for i, name in enumerate(EVENT_COLUMNS)}


def _processor() -> Processor:
    return Processor(clock=lambda: NOW, future_tolerance_s=TOLERANCE_S)


def _run(
    processor: Processor, messages: list[Message]
) -> tuple[dict[int, Any], dict[int, DeadLetter]]:
    """Feed ``messages`` in batches (offset = index); rows and dead letters by offset."""
    rows: dict[int, Any] = {}
    letters: dict[int, DeadLetter] = {}
    out = Output()
    for start in range(0, len(messages), BATCH):
        records = [
            Record("slowleak.events", 0, offset, b"k", m.raw)
            for offset, m in enumerate(messages[start : start + BATCH], start)
        ]
        out.clear()
        processor.interactions(records, out)
        for row in out.events:
            offset = row[_COL["kafka_offset"]]
            assert offset not in rows and offset not in letters
            rows[offset] = row
        for letter, raw in out.dead_letters:
            assert letter.offset not in rows and letter.offset not in letters
            assert raw == messages[letter.offset].raw
            letters[letter.offset] = letter
    return rows, letters


def _error_fields(letter: DeadLetter) -> set[str]:
    return {str(e["loc"][0]) for e in letter.errors if e.get("loc")}


def _names_field(reason: str, field: str) -> bool:
    shown = display_name(field)
    return any(
        part.startswith((f"{shown}:", f"{shown}.", f"{shown} (")) for part in reason.split("; ")
    )


def _check(messages: list[Message], rows: dict[int, Any], letters: dict[int, DeadLetter]) -> None:
    assert len(rows) + len(letters) == len(messages)
    for offset, m in enumerate(messages):
        if m.ok:
            assert offset in rows, (m.kind, letters[offset].reason)
            assert rows[offset][_COL["event_id"]] == m.event_id
            continue
        assert offset in letters, (m.kind, m.field, m.raw[:300] if m.raw else m.raw)
        letter = letters[offset]
        assert letter.reason and len(letter.reason) < 2_000, (m.kind, letter.reason[:300])
        if m.field is None:  # the message as a whole: not UTF-8, not JSON, too large, ...
            assert _error_fields(letter) == set(), (m.kind, letter.reason)
        else:
            assert _error_fields(letter) == {m.field}, (m.kind, m.field, letter.reason)
            assert _names_field(letter.reason, m.field), (m.kind, m.field, letter.reason)


def test_hundred_thousand_hostile_messages() -> None:
    hostile = Hostile(seed=7)
    started = time.perf_counter()
    messages = list(hostile.stream(N_MESSAGES, bad_share=0.5, duplicate_share=0.03))
    built_s = time.perf_counter() - started
    processor = _processor()

    started = time.perf_counter()
    rows, letters = _run(processor, messages)
    processed_s = time.perf_counter() - started

    _check(messages, rows, letters)
    kinds = Counter(m.kind for m in messages)
    good = [m for m in messages if m.ok]
    assert processor.stats.interactions == len(good) == len(rows)
    assert processor.stats.rejected == len(messages) - len(good) == len(letters)
    assert processor.stats.feedback == 0
    # Every hostile kind was tried, the costly ones included (10 MB and 1,000,001 characters).
    assert set(BAD_KINDS) <= set(kinds), set(BAD_KINDS) - set(kinds)
    assert kinds["oversize"] == N_MESSAGES // 20_000 and kinds["duplicate"] > 2_000
    # A retry is the same bytes: its row has the same dedup key, so ClickHouse keeps one.
    keys = {tuple(row[_COL[c]] for c in DEDUP_KEY) for row in rows.values()}
    assert len(keys) == len({m.event_id for m in good}) == len(good) - kinds["duplicate"]
    print(
        f"\nfuzz: {len(messages):,} messages ({len(good):,} good of which "
        f"{kinds['duplicate']:,} re-sent, {len(letters):,} rejected) processed in "
        f"{processed_s:.1f} s ({len(messages) / processed_s:,.0f}/s); built in {built_s:.1f} s"
    )
    assert built_s + processed_s < TIME_LIMIT_S


def test_each_hostile_kind_alone() -> None:
    hostile = Hostile(seed=11)
    messages = [hostile.bad(kind) for kind in BAD_KINDS for _ in range(3)]
    rows, letters = _run(_processor(), messages)
    assert rows == {}
    _check(messages, rows, letters)


def test_ten_megabyte_message_is_rejected_by_size_before_parsing() -> None:
    message = Hostile(seed=1).bad("oversize")
    assert message.raw is not None and len(message.raw) > 10_000_000
    _, letters = _run(_processor(), [message])
    assert letters[0].reason.startswith(f"message is {len(message.raw):,} bytes, over the limit")


def test_future_ts_reason_names_ts_and_the_tolerance() -> None:
    ahead = NOW + timedelta(seconds=TOLERANCE_S + 3_600)
    event = {**Hostile(seed=2).event(), "ts": ahead.isoformat()}
    at_limit = {**Hostile(seed=3).event(), "ts": (NOW + timedelta(seconds=TOLERANCE_S)).isoformat()}
    messages = [
        Message("future", json.dumps(event).encode(), ok=False, field="ts"),
        Message("at_limit", json.dumps(at_limit).encode(), ok=True, event_id=at_limit["event_id"]),
    ]
    rows, letters = _run(_processor(), messages)
    _check(messages, rows, letters)
    assert letters[0].reason == (
        f"ts: {ahead.isoformat()} is 3,900 s in the future; the tolerance is 300 s (setting "
        "future_tolerance_s): fix the producer's clock, and send ts with its offset"
    )
    assert letters[0].errors[0]["type"] == "ts_in_future"


# --- property based: arbitrary values per field, judged by an independent oracle -------------

OFFSETS = (None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11)))
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_NAMES = st.text(max_size=3) | st.text(min_size=250, max_size=260) | _SCALARS
_TS = (
    st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        st.sampled_from(OFFSETS),
    )
    | st.builds(
        lambda s: (NOW + timedelta(seconds=s)).isoformat(),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    )
    | _SCALARS
)
_TOKENS = st.integers(min_value=-10, max_value=UINT32_MAX + 10) | st.integers() | _SCALARS
_FLOATS = st.floats() | st.integers(min_value=-(10**400), max_value=10**400) | _SCALARS
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _NAMES,
    "ts": _TS,
    "app": _NAMES,
    "model": _NAMES,
    "input_tokens": _TOKENS,
    "output_tokens": _TOKENS,
    "latency_ms": _FLOATS,
    "status": st.sampled_from(("ok", "error", "timeout", "OK", "")) | _SCALARS,
}
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "tenant": _NAMES,
    "cached_input_tokens": _TOKENS,
    "score": _FLOATS,
    "outcome": _SCALARS,
    "attributes": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers())
    | _SCALARS,
}


def _is_name(v: Any, *, optional: bool = False) -> bool:
    return (v is None and optional) or (isinstance(v, str) and 1 <= len(v) <= 256)


def _is_number(v: Any, low: float, high: float = math.inf) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        x = float(v)
    except OverflowError:
        return False
    return math.isfinite(x) and low <= x <= high


def _is_tokens(v: Any, *, optional: bool = False) -> bool:
    if v is None:
        return optional
    return type(v) is int and 0 <= v <= UINT32_MAX


def _ts(v: Any) -> datetime | None:
    """The contract's reading of ``v``: an aware time in range, else None."""
    if not isinstance(v, str) or "T" not in v:
        return None
    try:
        ts = datetime.fromisoformat(v)
    except ValueError:
        return None
    if ts.tzinfo is None or not TS_MIN <= ts < TS_MAX:
        return None
    return ts


def _invalid_fields(event: dict[str, Any]) -> set[str]:
    """Fields that break the contract, judged without pydantic."""
    checks = {
        "event_id": _is_name(event["event_id"]),
        "ts": _ts(event["ts"]) is not None,
        "app": _is_name(event["app"]),
        "model": _is_name(event["model"]),
        "input_tokens": _is_tokens(event["input_tokens"]),
        "output_tokens": _is_tokens(event["output_tokens"]),
        "latency_ms": _is_number(event["latency_ms"], 0.0),
        "status": event["status"] in ("ok", "error", "timeout"),
    }
    if "tenant" in event:
        checks["tenant"] = _is_name(event["tenant"], optional=True)
    if "cached_input_tokens" in event:
        checks["cached_input_tokens"] = _is_tokens(event["cached_input_tokens"], optional=True)
    if "score" in event:
        checks["score"] = event["score"] is None or _is_number(event["score"], 0.0, 1.0)
    if "outcome" in event:
        checks["outcome"] = event["outcome"] is None or isinstance(event["outcome"], bool)
    if "attributes" in event:
        attrs = event["attributes"]
        checks["attributes"] = isinstance(attrs, dict) and all(
            _is_name(k) and isinstance(v, str) for k, v in attrs.items()
        )
    return {name for name, ok in checks.items() if not ok}


_EVENTS = st.fixed_dictionaries(FIELDS, optional=OPTIONAL)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_EVENTS, min_size=1, max_size=40))
def test_arbitrary_field_values_against_an_oracle(events: list[dict[str, Any]]) -> None:
    raws = [json.dumps(e, allow_nan=True).encode() for e in events]
    messages = [Message("hypothesis", raw, ok=False) for raw in raws]
    processor = _processor()
    rows, letters = _run(processor, messages)

    assert len(rows) + len(letters) == len(events)
    assert processor.stats.interactions + processor.stats.rejected == len(events)
    horizon = NOW + timedelta(seconds=TOLERANCE_S)
    for offset, event in enumerate(events):
        invalid = _invalid_fields(event)
        ts = _ts(event["ts"])
        if not invalid and ts is not None and ts > horizon:
            invalid = {"ts"}  # the clock rule, checked once the event is valid
        if not invalid:
            assert offset in rows, (event, letters[offset].reason)
            continue
        assert offset in letters, (event, invalid)
        letter = letters[offset]
        assert _error_fields(letter) == invalid, (event, letter.reason)
        first = str(letter.errors[0]["loc"][0])
        assert _names_field(letter.reason, first), letter.reason


# --- the clock rule ---------------------------------------------------------------------------


def _one(processor: Processor, raw: bytes, *, feedback: bool = False) -> Output:
    out = Output()
    record = Record("slowleak.feedback" if feedback else "slowleak.events", 0, 0, b"a", raw)
    (processor.feedback if feedback else processor.interactions)([record], out)
    return out


def test_clock_rule_reads_the_injected_clock_once_per_chunk() -> None:
    now = [NOW]
    processor = Processor(clock=lambda: now[0], future_tolerance_s=60.0)
    raw = json.dumps({**Hostile(seed=4).event(), "ts": "2026-11-25T12:05:00+00:00"}).encode()

    early = _one(processor, raw)
    now[0] = NOW + timedelta(minutes=4)  # the event is now 60 s ahead: at the limit
    late = _one(processor, raw)

    assert [letter.reason for letter, _ in early.dead_letters] == [
        "ts: 2026-11-25T12:05:00+00:00 is 300 s in the future; the tolerance is 60 s (setting "
        "future_tolerance_s): fix the producer's clock, and send ts with its offset"
    ]
    assert early.events == [] and len(late.events) == 1 and late.dead_letters == []
    assert (processor.stats.interactions, processor.stats.rejected) == (1, 1)


def test_clock_rule_applies_to_feedback() -> None:
    feedback = (
        b'{"type":"feedback","event_id":"e","ts":"2027-01-01T00:00:00Z","app":"a","outcome":true}'
    )
    out = _one(_processor(), feedback, feedback=True)
    assert out.feedback == [] and [d.errors for d, _ in out.dead_letters] == [
        [{"type": "ts_in_future", "loc": ("ts",), "msg": out.dead_letters[0][0].reason[4:]}]
    ]


def test_without_a_tolerance_any_ts_the_contract_allows_is_accepted() -> None:
    raw = json.dumps({**Hostile(seed=5).event(), "ts": "2099-12-31T23:59:59Z"}).encode()
    assert len(_one(Processor(clock=lambda: NOW), raw).events) == 1


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="future_tolerance_s must be 0 or more"):
        Processor(future_tolerance_s=-1.0)
