"""Size and encoding time of a large detector state, and of storing it in parts.

An app's cost windows hold a cell per open minute, env, model, tenant and prompt version: the
state grows with the tenants active in the open minutes (three of them with the default
``window_grace_s``). The worker encodes a changed state once per chunk (JSON, zlib from 1 KiB
on) and, when it is larger than the producer takes in one record, stores it in parts
(``split_record``); a restarted worker reads it back once (``read_state``). For each number of
cells: the state's JSON and stored sizes, its parts at the default 1 MB request limit, and the
median time of each step over ``--repeats`` runs. Calls have random token counts and latencies
(seeded), which compress as real ones do rather than as repeated values would.

    .venv/bin/python benchmarks/bench_state_size.py
    .venv/bin/python benchmarks/bench_state_size.py --cells 2000 20000 --repeats 7
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
from faust.serializers import codecs

from slowleak.models import InteractionEvent
from slowleak.streams.core.cost import CostWindows
from slowleak.streams.publisher import RECORD_OVERHEAD_BYTES
from slowleak.streams.state_codec import STATE_CODEC, read_state, split_record

#: faust's default ``producer_max_request_size``, less the framing the worker allows for.
LIMIT = 1_000_000 - RECORD_OVERHEAD_BYTES
KEY = "cost_windows/wide-bot"


def window_state(cells: int, seed: int) -> dict[str, object]:
    """The stored state of one app's cost windows after ``cells`` calls, each of its own
    tenant, two models, all in one open minute."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    windows = CostWindows()
    windows.on_interactions(
        [
            InteractionEvent(
                event_id=f"e{i}",
                ts=start + timedelta(milliseconds=i * 50_000 // cells),
                app="wide-bot",
                model=("gpt-4o", "gpt-4o-mini")[i % 2],
                tenant=f"tenant-{i:06d}",
                input_tokens=rng.randint(20, 4_000),
                output_tokens=rng.randint(5, 1_500),
                latency_ms=rng.lognormvariate(6.5, 0.6),
                status="ok",
            )
            for i in range(cells)
        ]
    )
    return windows.dump(windows.obj("wide-bot")) | {"v": windows.version}


def median_ms(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(cells: int, seed: int, repeats: int) -> str:
    """One line of the table for a state of ``cells`` cells."""
    state = window_state(cells, seed)
    raw = bytes(codecs.dumps(STATE_CODEC, state))
    records = split_record(KEY, raw, limit=LIMIT, gen=0) if len(raw) > LIMIT else []
    stored = {key: codecs.loads(STATE_CODEC, record) for key, record in records}

    def read() -> object:
        if stored:
            return read_state(KEY, stored[KEY], stored.get)
        return codecs.loads(STATE_CODEC, raw)

    assert read() == orjson.loads(orjson.dumps(state))
    encode_ms = median_ms(lambda: codecs.dumps(STATE_CODEC, state), repeats)
    split_ms = median_ms(lambda: split_record(KEY, raw, limit=LIMIT, gen=0), repeats)
    read_ms = median_ms(read, repeats)
    return (
        f"{cells:<9,} {len(orjson.dumps(state)):>12,} {len(raw):>15,} "
        f"{max(1, len(records) - 1):>6} {encode_ms:>10.1f} {split_ms:>9.2f} {read_ms:>13.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"seed={args.seed} repeats={args.repeats} record limit={LIMIT:,} bytes")
    print("cells     JSON bytes    stored bytes  parts  encode ms  split ms  read back ms")
    for cells in args.cells:
        print(measure(cells, args.seed, args.repeats))


if __name__ == "__main__":
    main()
