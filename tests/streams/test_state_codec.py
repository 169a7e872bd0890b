from __future__ import annotations

import doctest
import zlib
from pathlib import Path

import orjson
import pytest
from faust.serializers import codecs

from slowleak.models import Settings
from slowleak.streams import state_codec
from slowleak.streams.app import PRODUCER_BUFFER_RECORDS, create_app
from slowleak.streams.publisher import RECORD_OVERHEAD_BYTES
from slowleak.streams.state_codec import COMPRESS_FROM, STATE_CODEC, manifest_gen, split_record


def _window_state(tenants: int) -> dict[str, object]:
    """About the shape of an app's cost windows: a cell per minute, model and tenant."""
    cells = [
        [29_000_000 + m, "prod", model, f"tenant-{t}", "", "litellm", 0, 0, 12, 6_000, 2_400, 0.031]
        for m in range(3)
        for model in ("gpt-4o", "gpt-4o-mini")
        for t in range(tenants)
    ]
    return {"v": 3, "windows": cells}


def test_small_states_are_plain_json() -> None:
    state = {"v": 1, "n": 3}

    raw = codecs.dumps(STATE_CODEC, state)

    assert raw == codecs.dumps("json", state)
    assert codecs.loads(STATE_CODEC, raw) == state


def test_large_states_are_compressed_and_read_back() -> None:
    state = _window_state(2_500)
    plain = codecs.dumps("json", state)
    assert len(plain) > 1_000_000  # over the producer's default max_request_size

    raw = codecs.dumps(STATE_CODEC, state)

    assert raw[:1] == b"x" and len(raw) < len(plain) / 5
    assert codecs.loads(STATE_CODEC, raw) == orjson.loads(plain)


def test_records_written_as_plain_json_before_still_read() -> None:
    state = _window_state(20)
    old = codecs.dumps("json", state)
    assert len(old) >= COMPRESS_FROM and old[:1] == b"{"

    assert codecs.loads(STATE_CODEC, old) == orjson.loads(old)
    assert codecs.loads(STATE_CODEC, zlib.compress(old, 9)) == orjson.loads(old)


def test_the_worker_stores_states_with_it_and_within_the_producers_limit(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), producer_max_request_size=4_000_000)

    assert app.states.value_serializer == STATE_CODEC
    assert app.states.changelog_topic.value_serializer == STATE_CODEC
    assert app.runtime.max_state_bytes == 4_000_000 - RECORD_OVERHEAD_BYTES
    # A chunk's states go out together: no "producer buffer full" wait at faust's 100 records.
    assert app.producer.buffer.max_messages == PRODUCER_BUFFER_RECORDS
    big = _window_state(2_500)
    assert codecs.loads(STATE_CODEC, app.states.dump(big)) == orjson.loads(orjson.dumps(big))


def test_the_worker_reads_a_state_stored_in_parts_as_restored_from_its_changelog(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    state = _window_state(400)
    raw = app.states.dump(state)
    records = split_record("cost_windows/a", raw, limit=len(raw) // 3, gen=1)
    assert len(records) == 5  # four parts, then the manifest
    for key, record in records:  # what recovery does with each changelog record
        app.states.data[key] = codecs.loads(STATE_CODEC, record)

    assert app.states.get("cost_windows/a") == orjson.loads(orjson.dumps(state))
    assert manifest_gen(app.states.stored("cost_windows/a")) == 1
    assert app.states.get("cost_windows/b") is None


def test_a_part_is_kept_as_bytes_and_no_json_reads_as_one() -> None:
    assert codecs.loads(STATE_CODEC, codecs.dumps(STATE_CODEC, b"x{\0")) == b"x{\0"
    for value in ({"v": 1}, _window_state(20), 7, "position"):
        assert codecs.dumps(STATE_CODEC, value)[:1] != b"\0"


def test_a_record_limit_too_small_for_any_part_is_refused() -> None:
    with pytest.raises(ValueError, match="no room for a part"):
        split_record("cost_windows/a", b"x" * 100, limit=20, gen=0)


def test_doctest() -> None:
    assert doctest.testmod(state_codec).failed == 0
