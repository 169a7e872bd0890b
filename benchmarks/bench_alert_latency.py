"""Event-to-page latency: from a threshold-crossing event acknowledged by Kafka to the receiver.

Starts a Tansu broker, a ClickHouse server and ``slowleak worker`` (default settings, one webhook
receiver pointing at an HTTP server in this process). A background thread publishes synthetic
calls at ``--rate`` events/s (default 2,000) for the whole run. Every ``--every`` seconds a probe
call is published for app ``latency-probe`` with a ``system_fingerprint`` never seen before, which
the declared ``model_change`` detector turns into an alert on that very event. A probe's latency
is the time from the broker's acknowledgement of its send to the webhook request carrying its
``event_id`` arriving here (one clock: everything runs on this machine). Prints p50/p90/p99/max
over the probes (after ``--warmup`` seconds), the background rate actually achieved, and how many
probes never arrived (a failure).

    .venv/bin/python benchmarks/bench_alert_latency.py               # ~90 s
    .venv/bin/python benchmarks/bench_alert_latency.py --probes 300 --rate 4000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
import bench_e2e as e2e

from slowleak.streams.localstack import TansuBroker, free_port
from slowleak.streams.synthetic import TrafficGenerator
from slowleak.streams.worker import fetch_stats

TARGET_P99_S = 1.0


class Inbox:
    """Arrival times of webhook requests, by the event_id of the alert they carry."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    def server(self, port: int) -> ThreadingHTTPServer:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                alert = orjson.loads(body)
                with inbox.lock:
                    inbox.arrived.setdefault(alert["event_id"], now)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def background(bootstrap: str, rate: float, stop: threading.Event, sent: list[int]) -> None:
    """Publish synthetic calls at ``rate`` per second until ``stop``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    gen = TrafficGenerator(seed=11, start=datetime.now(UTC), calls_per_second=rate)
    started = time.monotonic()
    n = 0
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate)
        while n < due:
            event = gen.interaction(with_text=False)
            producer.send(e2e.EVENTS_TOPIC, key=event["app"].encode(), value=orjson.dumps(event))
            n += 1
        time.sleep(0.005)
    producer.flush(30)
    producer.close()
    sent.append(n)


def probe_event(i: int) -> dict[str, Any]:
    return {
        "event_id": f"probe-{uuid.uuid4().hex[:12]}-{i}",
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "app": "latency-probe",
        "model": "gpt-4o",
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_ms": 100.0,
        "status": "ok",
        "system_fingerprint": f"fp_probe_{i}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2_000.0, help="background events/s")
    parser.add_argument("--probes", type=int, default=120)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before probes count")
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()

    from kafka import KafkaProducer

    workdir = Path(tempfile.mkdtemp(prefix="slowleak-latency-"))
    inbox = Inbox()
    hook_port = free_port()
    server = inbox.server(hook_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with (
        TansuBroker(log_path=workdir / "broker.log") as broker,
        e2e.clickhouse("server", workdir) as ch,
    ):
        bootstrap = broker.bootstrap_servers
        e2e.create_topics(bootstrap, args.partitions)
        ns = argparse.Namespace(partitions=args.partitions, worker_env=[])
        env = e2e.worker_env(run=0, args=ns, bootstrap=bootstrap, ch=ch, database="latency")
        web_port = free_port()
        env |= {
            "SLOWLEAK_WEB_PORT": str(web_port),
            "SLOWLEAK_DATA_DIR": str(workdir / "worker"),
            "SLOWLEAK_RECEIVERS": json.dumps(
                [{"type": "webhook", "name": "bench", "url": f"http://127.0.0.1:{hook_port}/"}]
            ),
        }
        log_path = workdir / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "slowleak.streams.cli", "worker", "--apply-schema"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + e2e.WORKER_READY_TIMEOUT_S
            while fetch_stats(web_port) is None:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{e2e.log_tail(log_path)}")
                time.sleep(0.2)
            stop, sent = threading.Event(), []
            feeder = threading.Thread(target=background, args=(bootstrap, args.rate, stop, sent))
            feeder.start()
            probes = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
            probes.send(
                e2e.EVENTS_TOPIC, key=b"latency-probe", value=orjson.dumps(probe_event(-1))
            ).get(30)  # the first fingerprint is the reference, not a change
            started = time.monotonic()
            first_stats = fetch_stats(web_port) or {}
            acked: dict[str, float] = {}
            i = sent_probes = 0
            while i < args.probes:
                sent_probes += 1  # every probe, warm-up ones too, has a new fingerprint
                event = probe_event(sent_probes)
                probes.send(e2e.EVENTS_TOPIC, key=b"latency-probe", value=orjson.dumps(event)).get(
                    30
                )
                if time.monotonic() - started >= args.warmup:
                    acked[event["event_id"]] = time.time()
                    i += 1
                time.sleep(args.every)
            time.sleep(3.0)  # stragglers
            last_stats = fetch_stats(web_port) or {}
            elapsed = time.monotonic() - started
            stop.set()
            feeder.join()
            probes.close()
        finally:
            e2e.stop_process(worker)
            server.shutdown()
    latencies = sorted(inbox.arrived[k] - t for k, t in acked.items() if k in inbox.arrived)
    missing = len(acked) - len(latencies)
    processed = last_stats.get("interactions", 0) - first_stats.get("interactions", 0)
    print(f"background: {sent[0]:,} events published, worker processed {processed / elapsed:,.0f}"
          f" events/s over {elapsed:.0f} s (target {args.rate:,.0f}/s)")  # fmt: skip
    if not latencies:
        print(f"no probe alert arrived; worker log: {log_path}")
        return 1
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    p50, p90, p99 = q[49], q[89], q[98]
    print(f"probes: {len(latencies)} delivered, {missing} missing")
    if missing:
        lost = [k for k in acked if k not in inbox.arrived]
        print(f"  missing: {', '.join(lost)}; alerts that did arrive for other events: "
              f"{len(inbox.arrived) - len(latencies)}")  # fmt: skip
    print(f"event-to-webhook latency: p50 {p50 * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    ok = missing == 0 and p99 < TARGET_P99_S
    print(f"target p99 < {TARGET_P99_S:.0f} s with nothing missing: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
