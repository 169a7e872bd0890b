"""End to end: events pre-loaded on a Kafka topic -> ``slowleak worker`` -> rows in ClickHouse.

Starts a Tansu broker and a ClickHouse server (``scripts/clickhouse_server.py``, or embedded
chdb with ``--clickhouse chdb``), creates the events topic with ``--partitions`` partitions and
pre-loads ``--events`` synthetic calls (no text fields) onto it. Then, ``--repeats`` times,
alternating:

(a) baseline: a bare ``AIOKafkaConsumer`` (fresh group) in this process, ``getmany`` up to 5,000
    records + ``json.loads`` per record until every event is read; events/s from the first
    record to the last;
(b) the worker, ``python -m slowleak.streams.cli worker --apply-schema``, with a fresh consumer
    group and a fresh ClickHouse database; its stats page is polled every 50 ms and events/s is
    N / (first poll showing a processed event -> first poll showing N event rows written and
    nothing pending); ``SELECT count() FROM events`` must then equal N.

Everything started here is stopped at the end, also on error or Ctrl-C.

    .venv/bin/python benchmarks/bench_e2e.py                       # server, 200k events, 3 repeats
    .venv/bin/python benchmarks/bench_e2e.py --clickhouse chdb
    .venv/bin/python benchmarks/bench_e2e.py --py-spy /tmp/prof    # also profile each worker run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from slowleak.streams.localstack import TansuBroker, free_port, free_ports
from slowleak.streams.synthetic import TrafficGenerator
from slowleak.streams.worker import fetch_stats

ROOT = Path(__file__).resolve().parent.parent
CLICKHOUSE_SCRIPT = ROOT / "scripts" / "clickhouse_server.py"
CLICKHOUSE_CACHE = ROOT / ".slowleak" / "cache"
TARGET_RATIO = 0.5
POLL_S = 0.05
GETMANY_MAX_RECORDS = 5_000
WORKER_READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 40
EVENTS_TOPIC = "bench.events"
TOPICS = {
    "SLOWLEAK_EVENTS_TOPIC": EVENTS_TOPIC,
    "SLOWLEAK_FEEDBACK_TOPIC": "bench.feedback",
    "SLOWLEAK_ALERTS_TOPIC": "bench.alerts",
    "SLOWLEAK_DLQ_TOPIC": "bench.dlq",
}


def say(text: str) -> None:
    print(text, flush=True)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` (and its reaped children), from /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# --- ClickHouse ----------------------------------------------------------------------------------


@dataclass
class ClickHouse:
    """Where rows go: a server (``http://``) or a fresh embedded folder per run (``chdb://``)."""

    mode: str
    workdir: Path
    http_port: int = 0
    pid: int | None = None

    def url(self, run: int) -> str:
        if self.mode == "chdb":
            return f"chdb://{self.workdir / f'chdb-run{run}'}"
        return f"http://127.0.0.1:{self.http_port}"

    def count(self, run: int, database: str) -> tuple[int, int]:
        """``count()`` and ``uniqExact(event_id)`` of the run's events table."""
        query = f"SELECT count(), uniqExact(event_id) FROM `{database}`.events"
        if self.mode == "server":
            import clickhouse_connect

            client = clickhouse_connect.get_client(host="127.0.0.1", port=self.http_port)
            try:
                rows, uniq = client.query(query).result_rows[0]
            finally:
                client.close()
            return int(rows), int(uniq)
        # chdb allows one data folder per process: ask from a fresh process (after the worker).
        code = (
            "import clickhouse_connect, json, sys\n"
            "c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1])\n"
            "print(json.dumps(list(c.query(sys.argv[2]).result_rows[0])))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(self.workdir / f"chdb-run{run}"), query],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows, uniq = json.loads(out.strip().splitlines()[-1])
        return int(rows), int(uniq)


@contextmanager
def clickhouse(mode: str, workdir: Path) -> Iterator[ClickHouse]:
    ch = ClickHouse(mode, workdir)
    if mode == "chdb":
        yield ch
        return
    ch.http_port, tcp_port = free_ports(2)
    pidfile, log = workdir / "clickhouse.pid", workdir / "clickhouse.log"
    started = subprocess.run(
        [
            sys.executable,
            str(CLICKHOUSE_SCRIPT),
            "start",
            "--cache",
            str(CLICKHOUSE_CACHE),
            "--data",
            str(workdir / "clickhouse-data"),
            "--http-port",
            str(ch.http_port),
            "--tcp-port",
            str(tcp_port),
            "--pidfile",
            str(pidfile),
            "--log",
            str(log),
        ],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError(f"ClickHouse did not start:\n{started.stdout}{started.stderr}")
    ch.pid = int(pidfile.read_text().strip())
    say(f"clickhouse server on http://127.0.0.1:{ch.http_port} (pid {ch.pid})")
    try:
        yield ch
    finally:
        subprocess.run(
            [sys.executable, str(CLICKHOUSE_SCRIPT), "stop", "--pidfile", str(pidfile)],
            capture_output=True,
        )


# --- Kafka ---------------------------------------------------------------------------------------


def make_events(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``n`` calls without text fields, dated in the last few hours."""
    gen = TrafficGenerator(
        seed=seed, start=datetime.now(UTC) - timedelta(hours=3), calls_per_second=100.0
    )
    out = []
    for _ in range(n):
        event = gen.interaction(with_text=False)
        out.append((event["app"].encode(), orjson.dumps(event)))
    return out


def create_topics(bootstrap: str, partitions: int) -> None:
    """All of the worker's topics, so that workers started together do not race to create them."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        admin.create_topics(
            {
                name: {"num_partitions": partitions, "replication_factor": 1}
                for name in TOPICS.values()
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()


async def preload(bootstrap: str, events: list[tuple[bytes, bytes]], partitions: int) -> float:
    """Produce ``events`` round-robin over the partitions (key = app); return seconds taken.

    Multi-record batches make Tansu's end offsets wrong (lag, seek_to_end); nothing here uses
    them: readers start from the earliest offset of a fresh group.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks=1,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for i, (key, value) in enumerate(events):
            pending.append(
                await producer.send(EVENTS_TOPIC, value, key=key, partition=i % partitions)
            )
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending = []
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def baseline(bootstrap: str, n: int, timeout_s: float) -> float:
    """Events/s of a bare consumer: getmany + json.loads per record, first record to last."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        EVENTS_TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"bench-base-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=2_000,
    )
    await consumer.start()
    try:
        read, first = 0, None
        deadline = time.monotonic() + timeout_s
        loads = json.loads
        while read < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline read {read:,} of {n:,} events in {timeout_s:.0f} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=GETMANY_MAX_RECORDS)
            for records in batches.values():
                if first is None and records:
                    first = time.perf_counter()
                for record in records:
                    loads(record.value)
                read += len(records)
        last = time.perf_counter()
    finally:
        await consumer.stop()
    if read != n:
        raise RuntimeError(f"baseline read {read:,} events, expected {n:,}")
    assert first is not None
    return n / (last - first)


# --- the worker ----------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    events_per_s: float
    seconds: float
    read_seconds: float  # first event -> every event processed (the rest is the final writes)
    worker_cpu: float | None
    clickhouse_cpu: float | None
    rows: int
    unique_ids: int


stats = fetch_stats


def combined(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The stats pages of all workers of a run, summed (``settled`` when all are)."""
    total: dict[str, Any] = {"interactions": 0, "rejected": 0, "failed_writes": 0, "events": 0}
    for page in pages:
        for key in ("interactions", "rejected", "failed_writes"):
            total[key] += page.get(key, 0)
        total["events"] += page.get("rows_written", {}).get("events", 0)
    total["settled"] = len(pages) > 0 and all(page.get("settled") for page in pages)
    return total


def start_profiler(args: argparse.Namespace, pid: int, name: str) -> subprocess.Popen[bytes]:
    """py-spy record of one worker from now until SIGINT (started at the first event)."""
    args.py_spy.mkdir(parents=True, exist_ok=True)
    suffix = "txt" if args.py_spy_raw else "svg"
    cmd = [
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
        "-o", str(args.py_spy / f"{name}.{suffix}"), "--rate", "200", "--threads",
    ]  # fmt: skip
    if args.py_spy_raw:
        cmd += ["--format", "raw"]
    cmd += shlex.split(args.py_spy_args)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    """py-spy writes its output on SIGINT."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        stop_profiler(profiler)


def worker_env(
    *, run: int, args: argparse.Namespace, bootstrap: str, ch: ClickHouse, database: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOWLEAK_")}
    env.update(TOPICS)
    env.update(
        {
            "SLOWLEAK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SLOWLEAK_CLICKHOUSE_URL": ch.url(run),
            "SLOWLEAK_CLICKHOUSE_DATABASE": database,
            "SLOWLEAK_APP_ID": f"bench_worker_{run}_{uuid.uuid4().hex[:8]}",
            "SLOWLEAK_TOPIC_PARTITIONS": str(args.partitions),
        }
    )
    for item in args.worker_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def run_worker(
    *, run: int, args: argparse.Namespace, bootstrap: str, ch: ClickHouse, workdir: Path
) -> WorkerRun:
    """Start ``args.workers`` worker processes (one consumer group), time them, stop them."""
    n = args.events
    database = f"bench_{run}_{uuid.uuid4().hex[:8]}"
    env = worker_env(run=run, args=args, bootstrap=bootstrap, ch=ch, database=database)
    command = [sys.executable, "-m", "slowleak.streams.cli"]
    if args.workers > 1:  # one schema apply up front, not several racing ones
        subprocess.run([*command, "schema", "apply"], env=env, check=True, capture_output=True)
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    logs: list[Path] = []
    profilers: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        for k in range(args.workers):
            name = f"worker-run{run}" + (f"-{k}" if args.workers > 1 else "")
            ports.append(free_port())
            logs.append(workdir / f"{name}.log")
            proc_env = {
                **env,
                "SLOWLEAK_WEB_PORT": str(ports[-1]),
                "SLOWLEAK_DATA_DIR": str(workdir / name),
            }
            with open(logs[-1], "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [*command, "worker", "--apply-schema"],
                        env=proc_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=workdir,
                    )
                )
            stack.callback(stop_process, procs[-1])
        stack.callback(stop_profilers, profilers)
        trace = (
            stack.enter_context(open(workdir / f"worker-run{run}-stats.jsonl", "w"))
            if args.trace
            else None
        )
        try:
            result = _measure(
                run=run,
                args=args,
                ch=ch,
                procs=procs,
                ports=ports,
                profilers=profilers,
                trace=trace,
            )
        except BaseException:
            for proc, log_path in zip(procs, logs, strict=True):
                stop_process(proc)
                say(f"worker log tail ({log_path}):\n{log_tail(log_path)}")
            raise
    # Every worker is stopped here: an embedded ClickHouse folder is free to open.
    rows, unique = ch.count(run, database)
    if rows != n or unique != n:
        raise RuntimeError(f"ClickHouse has {rows:,} rows ({unique:,} event_ids), expected {n:,}")
    result.rows, result.unique_ids = rows, unique
    return result


def _measure(
    *,
    run: int,
    args: argparse.Namespace,
    ch: ClickHouse,
    procs: list[subprocess.Popen[bytes]],
    ports: list[int],
    profilers: list[subprocess.Popen[bytes]],
    trace: IO[str] | None,
) -> WorkerRun:
    n = args.events

    def check_running() -> None:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker pid {proc.pid} exited with status {proc.returncode}")

    def cpu() -> float | None:
        values = [cpu_seconds(p.pid) for p in procs]
        return None if None in values else sum(v for v in values if v is not None)

    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while any(stats(port) is None for port in ports):
        check_running()
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker stats pages not up in {WORKER_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    first = read_all = None
    cpu0 = ch_cpu0 = None
    deadline = time.monotonic() + args.timeout
    pages: list[dict[str, Any]] = [{} for _ in ports]
    while True:
        now = time.monotonic()
        pages = [stats(port) or page for port, page in zip(ports, pages, strict=True)]
        current = combined(pages)
        if trace is not None:
            trace.write(json.dumps({"t": round(now, 3), **current, "workers": pages}) + "\n")
        check_running()
        if first is None and current["interactions"] > 0:
            first = now
            cpu0, ch_cpu0 = cpu(), cpu_seconds(ch.pid)
            deadline = now + args.timeout
            if args.py_spy:
                for k, proc in enumerate(procs):
                    profilers.append(start_profiler(args, proc.pid, f"worker-run{run}-{k}"))
        if read_all is None and current["interactions"] >= n:
            read_all = now
        if current["events"] >= n and current["settled"]:
            end = now
            break
        if now > deadline:
            raise RuntimeError(f"worker not done in {args.timeout:.0f} s: {current}")
        time.sleep(POLL_S)
    cpu1, ch_cpu1 = cpu(), cpu_seconds(ch.pid)
    if current["interactions"] != n or current["rejected"] or current["failed_writes"]:
        raise RuntimeError(f"worker counters are off: {current}")
    assert first is not None and read_all is not None
    seconds = end - first
    return WorkerRun(
        events_per_s=n / seconds,
        seconds=seconds,
        read_seconds=read_all - first,
        worker_cpu=None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / seconds,
        clickhouse_cpu=(
            None if ch_cpu0 is None or ch_cpu1 is None else (ch_cpu1 - ch_cpu0) / seconds
        ),
        rows=0,
        unique_ids=0,
    )


# --- main ----------------------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clickhouse", choices=["server", "chdb"], default="server")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the group (server only)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per measured run"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the worker, e.g. SLOWLEAK_SINK_BATCH_ROWS=50000",
    )
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="record each worker run with py-spy into DIR"
    )
    parser.add_argument(
        "--py-spy-raw", action="store_true", help="collapsed stacks (text) instead of a flame graph"
    )
    parser.add_argument(
        "--py-spy-args",
        default="",
        metavar="ARGS",
        help='more py-spy record options, e.g. "--idle" (wall time) or "--gil" (GIL holders)',
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and data here (default: temp)")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="write every stats poll to WORKDIR/worker-runN-stats.jsonl (with --workdir)",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    if args.workers > 1 and args.clickhouse == "chdb":
        parser.error("--workers > 1 needs --clickhouse server (chdb: one process per folder)")
    signal.signal(signal.SIGTERM, _raise_interrupt)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="slowleak-bench-e2e-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    base_rates: list[float] = []
    worker_runs: list[WorkerRun] = []
    ok = False
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(TansuBroker(log_path=workdir / "broker.log"))
            say(f"tansu on {broker.bootstrap_servers} (pid {broker.pid}); workdir {workdir}")
            ch = stack.enter_context(clickhouse(args.clickhouse, workdir))
            create_topics(broker.bootstrap_servers, args.partitions)
            events = make_events(args.events, args.seed)
            size = statistics.mean(len(v) for _, v in events)
            seconds = asyncio.run(preload(broker.bootstrap_servers, events, args.partitions))
            del events
            say(
                f"pre-loaded {args.events:,} events ({size:.0f} B avg) on {EVENTS_TOPIC} "
                f"({args.partitions} partitions) in {seconds:.1f} s"
            )
            for run in range(args.repeats):
                rate = asyncio.run(baseline(broker.bootstrap_servers, args.events, args.timeout))
                base_rates.append(rate)
                say(f"run {run + 1}/{args.repeats} baseline  {rate:>10,.0f} events/s")
                result = run_worker(
                    run=run, args=args, bootstrap=broker.bootstrap_servers, ch=ch, workdir=workdir
                )
                worker_runs.append(result)
                cpu = f"worker CPU {result.worker_cpu:.2f}" if result.worker_cpu is not None else ""
                if result.clickhouse_cpu is not None:
                    cpu += f", clickhouse CPU {result.clickhouse_cpu:.2f}"
                say(
                    f"run {run + 1}/{args.repeats} worker    {result.events_per_s:>10,.0f} "
                    f"events/s ({result.seconds:.2f} s, all read after {result.read_seconds:.2f} s;"
                    f" {cpu} cores; count() = {result.rows:,})"
                )
            ok = True
    except KeyboardInterrupt:
        say("interrupted; everything started here is stopped")
        return 130
    finally:
        if ok and args.workdir is None and not args.py_spy:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            say(f"logs kept in {workdir}")

    base = statistics.median(base_rates)
    work = statistics.median(r.events_per_s for r in worker_runs)
    ratio = work / base
    pairs = [w.events_per_s / b for w, b in zip(worker_runs, base_rates, strict=True)]
    say(
        f"\nbench_e2e: {args.events:,} events, {args.partitions} partitions, "
        f"clickhouse {args.clickhouse}, {args.workers} worker(s), {args.repeats} repeats, "
        f"{os.cpu_count()} CPUs"
    )
    say(f"{'':<22} {'median ev/s':>12} {'min':>10} {'max':>10}")
    say(f"{'bare consumer':<22} {base:>12,.0f} {min(base_rates):>10,.0f} {max(base_rates):>10,.0f}")
    rates = [r.events_per_s for r in worker_runs]
    say(f"{'worker -> ClickHouse':<22} {work:>12,.0f} {min(rates):>10,.0f} {max(rates):>10,.0f}")
    say(
        f"ratio worker/baseline {ratio:.2f} (per pair: {', '.join(f'{p:.2f}' for p in pairs)}); "
        f"target >= {TARGET_RATIO}: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"
    )
    if args.json:
        say(
            json.dumps(
                {
                    "benchmark": "e2e",
                    "events": args.events,
                    "partitions": args.partitions,
                    "clickhouse": args.clickhouse,
                    "workers": args.workers,
                    "repeats": args.repeats,
                    "worker_env": args.worker_env,
                    "baseline_events_per_s": [round(r) for r in base_rates],
                    "worker_events_per_s": [round(r) for r in rates],
                    "worker_read_s": [round(r.read_seconds, 2) for r in worker_runs],
                    "worker_cpu": [r.worker_cpu and round(r.worker_cpu, 2) for r in worker_runs],
                    "clickhouse_cpu": [
                        r.clickhouse_cpu and round(r.clickhouse_cpu, 2) for r in worker_runs
                    ],
                    "median_baseline": round(base),
                    "median_worker": round(work),
                    "ratio": round(ratio, 3),
                    "target_ratio": TARGET_RATIO,
                    "pass": ratio >= TARGET_RATIO,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
