"""Fixtures for tests against the real broker and ClickHouse server.

``bash scripts/test.sh`` starts both and exports where they listen:

- ``SLOWLEAK_TEST_KAFKA``: ``host:port`` of a Kafka-protocol broker (Tansu, memory only).
- ``SLOWLEAK_TEST_CLICKHOUSE_URL``: ``http://host:port`` of a ClickHouse HTTP server.
- ``SLOWLEAK_TEST_ALERTMANAGER_URL``: ``http://host:port`` of a Prometheus Alertmanager.

Without them, tests that use these fixtures are skipped. Every test gets its own topics and
its own database, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from clickhouse_connect import get_client
from clickhouse_connect.driver.client import Client
from kafka.admin import KafkaAdminClient

KAFKA_ENV = "SLOWLEAK_TEST_KAFKA"
CLICKHOUSE_ENV = "SLOWLEAK_TEST_CLICKHOUSE_URL"
ALERTMANAGER_ENV = "SLOWLEAK_TEST_ALERTMANAGER_URL"

NewTopicFactory = Callable[..., str]


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _clickhouse_client(url: str, database: str | None = None) -> Client:
    parts = urlsplit(url)
    return get_client(
        interface=parts.scheme or "http",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8123,
        database=database,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the test broker."""
    value = os.environ.get(KAFKA_ENV)
    if not value:
        pytest.skip("integration: run via bash scripts/test.sh, which starts the broker")
    return value


@pytest.fixture(scope="session")
def clickhouse_url() -> str:
    """``http://host:port`` of the test ClickHouse server."""
    value = os.environ.get(CLICKHOUSE_ENV)
    if not value:
        pytest.skip("integration: run via bash scripts/test.sh, which starts ClickHouse")
    return value


@pytest.fixture(scope="session")
def alertmanager_url() -> str:
    """``http://host:port`` of the test Alertmanager (shared by the tests: use unique labels)."""
    value = os.environ.get(ALERTMANAGER_ENV)
    if not value:
        pytest.skip(
            "integration: run via bash scripts/test.sh, which starts Alertmanager "
            "(Debian package prometheus-alertmanager)"
        )
    return value


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[NewTopicFactory]:
    """Factory: ``new_topic(name_prefix="t", partitions=1)`` makes a fresh topic, returns its name.

    The broker keeps topics in memory only, and a new one is started for each test run, so
    topics are not deleted afterwards.
    """
    admin: KafkaAdminClient | None = None

    def create(name_prefix: str = "t", partitions: int = 1) -> str:
        nonlocal admin
        if admin is None:
            admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="slowleak-tests")
        name = _unique_name(name_prefix)
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
        return name

    yield create
    if admin is not None:
        admin.close()


@pytest.fixture(scope="session")
def _clickhouse_admin(clickhouse_url: str) -> Iterator[Client]:
    client = _clickhouse_client(clickhouse_url)
    yield client
    client.close()


@pytest.fixture
def ch_database(_clickhouse_admin: Client) -> Iterator[str]:
    """Name of a fresh, empty ClickHouse database, dropped after the test."""
    name = _unique_name("test")
    _clickhouse_admin.command(f"CREATE DATABASE {name}")
    yield name
    _clickhouse_admin.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def ch_client(clickhouse_url: str, ch_database: str) -> Iterator[Client]:
    """A clickhouse-connect client whose default database is ``ch_database``."""
    client = _clickhouse_client(clickhouse_url, ch_database)
    yield client
    client.close()
