"""The least-privilege roles in ``schemas/roles/create_roles.sql``, against a real ClickHouse.

The test server (ClickHouse's engine run as clickhouse-local, see scripts/clickhouse_server.py)
keeps users in ``users.xml`` only and has no storage for ``CREATE ROLE``. So each role's GRANTs
are given, as written in the file, to a user defined in ``users.xml``: what is checked is what
the role allows. That the file's statements are valid ClickHouse SQL is checked by the server's
parser (``formatQuery``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from clickhouse_connect import get_client
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from slowleak.models import Settings
from slowleak.streams.clickhouse import apply_migrations
from slowleak.streams.core import Output, Processor, Record
from slowleak.streams.core.rows import EVENT_COLUMNS
from slowleak.streams.localstack import free_port
from slowleak.streams.worker import check_clickhouse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
ROLES_SQL = ROOT / "schemas" / "roles" / "create_roles.sql"
LIB = ROOT / ".slowleak" / "cache" / "libchdb.so"
ROLES = ("slowleak_analyst", "slowleak_writer")
PASSWORD = "test-password"
#: Tables the worker never writes (so the writer role has no grant on them), and why.
NOT_WRITTEN = {"schema_migrations": "written by `slowleak schema apply`, run by an administrator"}
#: Tables the writer may read, and why: the materialized views on them run as the inserting user.
WRITER_READS = {"cost_windows_1m"}

_GRANT = re.compile(
    r"^GRANT (?P<what>[A-Z ,()a-z_]+) ON slowleak\.(?P<on>\*|[a-z0-9_]+) TO (?P<role>\w+)$"
)


def _statements() -> list[str]:
    lines = [ln for ln in ROLES_SQL.read_text().splitlines() if not ln.lstrip().startswith("--")]
    return [" ".join(s.split()) for s in "\n".join(lines).split(";") if s.strip()]


def _grants(database: str) -> dict[str, list[str]]:
    """Role -> its GRANT statements for ``database``, without ``TO role`` (users.xml's form)."""
    grants: dict[str, list[str]] = {role: [] for role in ROLES}
    for statement in _statements():
        if statement.startswith("CREATE ROLE IF NOT EXISTS "):
            assert statement.split()[-1] in ROLES
            continue
        match = _GRANT.match(statement)
        assert match, f"unexpected statement in {ROLES_SQL.name}: {statement}"
        grants[match["role"]].append(f"GRANT {match['what']} ON {database}.{match['on']}")
    return grants


def _users_xml(database: str) -> str:
    def user(name: str, body: str) -> str:
        return (
            f"<{name}><password>{escape(PASSWORD if name in ROLES else '')}</password>"
            "<networks><ip>127.0.0.1</ip></networks><profile>default</profile>"
            f"<quota>default</quota>{body}</{name}>"
        )

    users = [user("default", "<access_management>1</access_management>")]
    for role, grants in _grants(database).items():
        queries = "".join(f"<query>{escape(g)}</query>" for g in grants)
        users.append(user(role, f"<grants>{queries}</grants>"))
    return (
        f"<clickhouse><users>{''.join(users)}</users>"
        "<profiles><default/></profiles><quotas><default/></quotas></clickhouse>"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(url, database)`` of a ClickHouse server whose users hold the roles' grants."""
    if not LIB.is_file():
        pytest.skip(f"{LIB} is missing: run via bash scripts/test.sh, which fetches it")
    folder = tmp_path_factory.mktemp("clickhouse_roles")
    database = f"roles_{uuid.uuid4().hex[:8]}"
    (folder / "config.xml").write_text(
        "<clickhouse><user_directories><users_xml><path>users.xml</path></users_xml>"
        "</user_directories></clickhouse>"
    )
    (folder / "users.xml").write_text(_users_xml(database))
    http_port, tcp_port = free_port(), free_port()
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, str(ROOT / "scripts" / "clickhouse_server.py"), "serve",
                f"--lib={LIB}", f"--data={folder / 'data'}",
                f"--http-port={http_port}", f"--tcp-port={tcp_port}",
            ],
            cwd=folder,  # clickhouse-local reads config.xml from the working folder
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (folder / "server.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "ClickHouse did not answer /ping in 60 s"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url, database
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _client(url: str, user: str, database: str | None = None) -> Client:
    port = int(url.rsplit(":", 1)[1])
    password = PASSWORD if user in ROLES else ""
    return get_client(
        host="127.0.0.1", port=port, username=user, password=password, database=database
    )


@pytest.fixture(scope="module")
def admin(server: tuple[str, str]) -> Iterator[Client]:
    url, database = server
    client = _client(url, "default")
    apply_migrations(client, database=database)
    yield client
    client.close()


def _denied(client: Client, sql: str) -> str:
    with pytest.raises(DatabaseError) as exc_info:
        client.command(sql)
    message = str(exc_info.value)
    assert "ACCESS_DENIED" in message or "Not enough privileges" in message, message
    return message


def _event_rows() -> list[tuple[object, ...]]:
    event = {
        "event_id": "e-1",
        "ts": datetime.now(UTC).isoformat(),
        "app": "a",
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 2,
        "latency_ms": 3.0,
        "status": "ok",
    }
    raw = json.dumps(event).encode()
    out = Output()
    Processor().interactions(
        [Record("slowleak.events", 0, 0, b"a", raw), Record("slowleak.events", 0, 1, b"a", b"{")],
        out,
    )
    assert len(out.events) == 1 and len(out.dead_letters) == 1
    return out.events


def test_role_file_parses_as_clickhouse_sql(admin: Client) -> None:
    statements = _statements()
    assert [s for s in statements if s.startswith("CREATE ROLE")] == [
        "CREATE ROLE IF NOT EXISTS slowleak_analyst",
        "CREATE ROLE IF NOT EXISTS slowleak_writer",
    ]
    for statement in statements:
        formatted = admin.command("SELECT formatQuery({q:String})", parameters={"q": statement})
        assert " ".join(str(formatted).split()) == statement


def test_analyst_reads_everything_and_changes_nothing(
    server: tuple[str, str], admin: Client
) -> None:
    url, database = server
    admin.insert(f"{database}.events", _event_rows(), column_names=list(EVENT_COLUMNS))
    analyst = _client(url, "slowleak_analyst", database)
    try:
        tables = [r[0] for r in admin.query(f"SHOW TABLES FROM {database}").result_rows]
        for table in tables:
            analyst.query(f"SELECT * FROM {table} LIMIT 1")
        assert analyst.command("SELECT count() FROM events") == 1
        _denied(analyst, "INSERT INTO events (event_id) VALUES ('x')")
        _denied(analyst, "ALTER TABLE events ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0")
        _denied(analyst, "ALTER TABLE events DELETE WHERE 1")
        _denied(analyst, "TRUNCATE TABLE events")
        _denied(analyst, "DROP TABLE events")
        _denied(analyst, f"CREATE TABLE {database}.scratch (x UInt8) ENGINE = Memory")
        _denied(analyst, f"DROP DATABASE {database}")
    finally:
        analyst.close()


def test_writer_appends_to_the_worker_tables_only(server: tuple[str, str], admin: Client) -> None:
    url, database = server
    writer = _client(url, "slowleak_writer", database)
    try:
        tables = set(
            admin.query(
                "SELECT name FROM system.tables WHERE database = {db:String} "
                "AND engine NOT IN ('View', 'MaterializedView')",
                parameters={"db": database},
            ).result_columns[0]
        )
        writer_grants = [g.split() for g in _grants(database)["slowleak_writer"]]
        granted = {on.split(".")[1] for _, what, _, on in writer_grants if what == "INSERT"}
        reads = {on.split(".")[1] for _, what, _, on in writer_grants if what == "SELECT"}
        assert reads == WRITER_READS
        # A table added by a migration is either written by the worker (grant it in the role
        # file) or listed in NOT_WRITTEN.
        assert granted == tables - set(NOT_WRITTEN)

        writer.insert("events", _event_rows(), column_names=list(EVENT_COLUMNS))
        for table in sorted(granted):  # a row of defaults; materialized views carry it on
            writer.command(f"INSERT INTO {table} FORMAT JSONEachRow {{}}")
        _denied(writer, "SELECT count() FROM events")
        _denied(
            writer, "INSERT INTO schema_migrations (number, name, checksum) VALUES (99, 'x', 'y')"
        )
        _denied(writer, "ALTER TABLE events ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0")
        _denied(writer, "ALTER TABLE events DELETE WHERE 1")
        _denied(writer, "TRUNCATE TABLE events")
        _denied(writer, "DROP TABLE events")
        _denied(writer, f"CREATE TABLE {database}.scratch (x UInt8) ENGINE = Memory")
    finally:
        writer.close()


def test_worker_startup_check_passes_as_the_writer(server: tuple[str, str], admin: Client) -> None:
    url, database = server
    settings = Settings(
        clickhouse_url=url,
        clickhouse_user="slowleak_writer",
        clickhouse_password=PASSWORD,
        clickhouse_database=database,
    )
    check_clickhouse(settings)  # EXISTS TABLE for each required table, no SELECT
