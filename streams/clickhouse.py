"""ClickHouse connections and migrations (``slowleak schema apply``)."""

from __future__ import annotations

import logging
import re
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from slowleak.models import Settings
from slowleak.schemas import Migration, migrations

__all__ = [
    "MigrationError",
    "apply_migrations",
    "clickhouse_tls_options",
    "connect",
    "split_statements",
]

log = logging.getLogger(__name__)

_MIGRATIONS_TABLE = "schema_migrations"


class MigrationError(RuntimeError):
    """The database and the migration files disagree; the message says how."""


def connect(settings: Settings, *, database: str | None = None, **kwargs: Any) -> Client:
    """A clickhouse-connect client for ``settings.clickhouse_url`` (server or embedded)."""
    target = settings.clickhouse
    if target.embedded:
        assert target.path is not None
        target.path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(
            interface="chdb", path=str(target.path.resolve()), database=database, **kwargs
        )
    return clickhouse_connect.get_client(
        interface=target.interface,
        host=target.host,
        port=target.port,
        username=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value()
        if settings.clickhouse_password is not None
        else "",
        database=database,
        **clickhouse_tls_options(settings),
        **kwargs,
    )


def clickhouse_tls_options(settings: Settings) -> dict[str, Any]:
    """TLS options of clickhouse-connect for an ``https://`` ``clickhouse_url`` (none else)."""
    if settings.clickhouse.interface != "https":
        return {}
    options: dict[str, Any] = {"verify": settings.clickhouse_verify}
    if settings.clickhouse_ca_file is not None:
        options["ca_cert"] = str(settings.clickhouse_ca_file)
    return options


def split_statements(sql: str) -> list[str]:
    """Split a migration file into statements: ``;`` ends one; ``--`` comment lines are dropped."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", "\n".join(lines)) if s.strip()]


def apply_migrations(
    client: Client, *, database: str, files: list[Migration] | None = None
) -> list[str]:
    """Create ``database`` and apply the migrations not yet applied; return their names.

    Idempotent: a second run applies nothing. A migration file edited after it was applied is an
    error (migrations are never edited; add a new one).
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise MigrationError(f"database name {database!r} must be a plain identifier")
    pending = migrations() if files is None else files
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.{_MIGRATIONS_TABLE} "
        "(number UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY number"
    )
    rows = client.query(
        f"SELECT name, checksum FROM `{database}`.{_MIGRATIONS_TABLE} FINAL"
    ).result_rows
    applied = {name: checksum for name, checksum in rows}
    done: list[str] = []
    previous = client.database
    client.database = database
    try:
        for migration in pending:
            if migration.name in applied:
                if applied[migration.name] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} was edited after it was applied to "
                        f"{database}; restore the file and add a new numbered migration instead"
                    )
                continue
            for statement in split_statements(migration.sql):
                client.command(statement)
            client.insert(
                _MIGRATIONS_TABLE,
                [(migration.number, migration.name, migration.checksum)],
                column_names=["number", "name", "checksum"],
            )
            log.info("migration applied database=%s name=%s", database, migration.name)
            done.append(migration.name)
    finally:
        client.database = previous
    return done
