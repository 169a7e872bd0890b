#!/usr/bin/env bash
# The project's one test command:  bash scripts/test.sh [pytest arguments]
#
# On a machine with python3, node/npm and access to PyPI and npm, it:
#   1. creates .venv (if missing) and installs the project with its test extras into it;
#   2. fetches the ClickHouse engine (libchdb.so, ~560 MB unpacked) into .slowleak/cache once;
#   3. starts a Tansu broker and a ClickHouse server on free ports, with fresh data, and an
#      Alertmanager (Debian's prometheus-alertmanager, installed with apt-get when missing; its
#      tests skip when it cannot be installed);
#   4. runs pytest with SLOWLEAK_TEST_KAFKA, SLOWLEAK_TEST_CLICKHOUSE_URL and
#      SLOWLEAK_TEST_ALERTMANAGER_URL pointing at them;
#   5. stops them, whatever happened, and exits with pytest's status.
# It runs ruff and mypy (strict) before the tests; SLOWLEAK_LINT=0 skips them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
STATE=$ROOT/.slowleak
CACHE=$STATE/cache
# One folder per run, so two runs in the same checkout do not share data or ports.
RUN_ROOT=$STATE/test-run
RUN=$RUN_ROOT/$$
# The pyproject.toml last installed into this venv; it goes away with the venv.
INSTALLED_STAMP=$VENV/slowleak-installed-pyproject.toml

say() { printf '== test.sh: %s\n' "$*" >&2; }

elapsed() { printf '%ss' "$((SECONDS - $1))"; }

# --- 1. virtualenv ----------------------------------------------------------------------------
if [[ ! -x $PY ]]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
mkdir -p "$STATE"
# Reinstall only when pyproject.toml changed: the install is editable, so code edits need none.
if ! cmp -s pyproject.toml "$INSTALLED_STAMP"; then
  say "installing slowleak[test] into $VENV (log: $STATE/pip-install.log)"
  if ! "$PY" -m pip install --disable-pip-version-check -e ".[test]" >"$STATE/pip-install.log" 2>&1
  then
    tail -n 40 "$STATE/pip-install.log" >&2
    say "pip install failed; the whole log is $STATE/pip-install.log"
    exit 1
  fi
  cp pyproject.toml "$INSTALLED_STAMP"
fi

# --- 2. lint (opt-in) -------------------------------------------------------------------------
if [[ ${SLOWLEAK_LINT:-1} == 1 ]]; then
  say "ruff check"
  "$VENV/bin/ruff" check streams models schemas tests benchmarks
  # The editable install maps slowleak.* onto these folders with an import hook that mypy
  # cannot follow; a folder of symlinks gives mypy the same package layout.
  TYPECHECK=$STATE/typecheck
  mkdir -p "$TYPECHECK/slowleak"
  for pkg in streams models schemas; do ln -sfn "$ROOT/$pkg" "$TYPECHECK/slowleak/$pkg"; done
  say "mypy slowleak.streams slowleak.models"
  MYPYPATH=$TYPECHECK "$VENV/bin/mypy" -p slowleak.streams -p slowleak.models
fi

# --- 3. services ------------------------------------------------------------------------------
"$PY" scripts/clickhouse_server.py fetch --cache "$CACHE" >&2

stop_alertmanager() {  # stop_alertmanager PIDFILE: a no-op without the pid file
  local pid
  [[ -f $1 ]] || return 0
  pid=$(<"$1")
  # Only a process that is still our Alertmanager (pids are reused).
  if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q alertmanager
  then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    say "alertmanager: stopped pid $pid"
  fi
  rm -f "$1"
}

stop_services() {  # stop_services RUN_DIR: each stop is a no-op without its pid file
  "$PY" -m slowleak.streams.localstack stop --pidfile "$1/tansu.pid" >&2 || true
  "$PY" scripts/clickhouse_server.py stop --pidfile "$1/clickhouse.pid" >&2 || true
  stop_alertmanager "$1/alertmanager.pid"
}

# Alertmanager, for the alert delivery tests: Debian's package, installed when missing.
ALERTMANAGER_PACKAGE=prometheus-alertmanager
find_alertmanager() {
  command -v prometheus-alertmanager 2>/dev/null || command -v alertmanager 2>/dev/null || true
}
ALERTMANAGER_BIN=$(find_alertmanager)
if [[ -z $ALERTMANAGER_BIN ]]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=(env DEBIAN_FRONTEND=noninteractive)
    if [[ $(id -u) != 0 ]]; then SUDO=(sudo -n "${SUDO[@]}"); fi
    APT_LOG=$STATE/apt-alertmanager.log
    say "installing $ALERTMANAGER_PACKAGE with apt-get (log: $APT_LOG)"
    if ! {
      "${SUDO[@]}" apt-get install -y --no-install-recommends "$ALERTMANAGER_PACKAGE" ||
        { "${SUDO[@]}" apt-get update &&
          "${SUDO[@]}" apt-get install -y --no-install-recommends "$ALERTMANAGER_PACKAGE"; }
    } >"$APT_LOG" 2>&1; then
      tail -n 5 "$APT_LOG" >&2
      say "could not install $ALERTMANAGER_PACKAGE (log: $APT_LOG): Alertmanager tests will skip"
    fi
    ALERTMANAGER_BIN=$(find_alertmanager)
  else
    say "apt-get is not available: install Alertmanager 0.25 ($ALERTMANAGER_PACKAGE on" \
      "Debian) to run the Alertmanager tests; they will skip"
  fi
fi

# Clear what earlier runs left (a run that was killed leaves its servers up), unless that run
# is still going.
for old in "$RUN_ROOT"/*/; do
  [[ -d $old ]] || continue
  if ! kill -0 "$(basename "$old")" 2>/dev/null; then
    stop_services "${old%/}"
    rm -rf "$old"
  fi
done
rm -rf "$RUN"
mkdir -p "$RUN"

on_exit() {
  local status=$?
  stop_services "$RUN"
  if [[ $status == 0 ]]; then
    rm -rf "$RUN"
  else
    say "logs and data kept in $RUN"
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r KAFKA_PORT CH_HTTP_PORT CH_TCP_PORT AM_PORT < <(
  "$PY" -m slowleak.streams.localstack free-ports 4
)

started=$SECONDS
"$PY" -m slowleak.streams.localstack broker \
  --port "$KAFKA_PORT" --pidfile "$RUN/tansu.pid" --log "$RUN/tansu.log" >&2
"$PY" scripts/clickhouse_server.py start \
  --cache "$CACHE" --data "$RUN/clickhouse" \
  --http-port "$CH_HTTP_PORT" --tcp-port "$CH_TCP_PORT" \
  --pidfile "$RUN/clickhouse.pid" --log "$RUN/clickhouse.log" >&2
if [[ -n $ALERTMANAGER_BIN ]]; then
  # A null receiver: alerts are kept and listed by the API, sent nowhere. No gossip.
  mkdir -p "$RUN/alertmanager"
  printf 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n' \
    >"$RUN/alertmanager/alertmanager.yml"
  "$ALERTMANAGER_BIN" --config.file="$RUN/alertmanager/alertmanager.yml" \
    --storage.path="$RUN/alertmanager/data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
    >"$RUN/alertmanager.log" 2>&1 &
  echo $! >"$RUN/alertmanager.pid"
  if "$PY" - "$AM_PORT" <<'PYTHON'
import sys, time, urllib.request
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/-/ready", timeout=1):
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PYTHON
  then
    export SLOWLEAK_TEST_ALERTMANAGER_URL=http://127.0.0.1:$AM_PORT
  else
    tail -n 20 "$RUN/alertmanager.log" >&2
    say "alertmanager did not become ready in 20 s: Alertmanager tests will skip"
    stop_alertmanager "$RUN/alertmanager.pid"
  fi
fi
say "services up in $(elapsed "$started")"

export SLOWLEAK_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export SLOWLEAK_TEST_CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP_PORT
# For tests that start (and stop) a ClickHouse server of their own: where the engine is cached.
export SLOWLEAK_TEST_CLICKHOUSE_CACHE=$CACHE

# --- 4. tests ---------------------------------------------------------------------------------
status=0
"$PY" -m pytest "$@" || status=$?
if [[ $status == 5 ]]; then
  say "pytest collected no tests: that is a failure here"
  status=1
fi
exit "$status"
