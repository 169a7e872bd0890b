#!/usr/bin/env bash
# The project's one test command:  bash scripts/test.sh [pytest arguments]
#
# On a machine with python3, node/npm and access to PyPI and npm, it:
#   1. creates .venv (if missing) and installs the project with its test extras into it;
#   2. fetches the ClickHouse engine (libchdb.so, ~560 MB unpacked) into .slowleak/cache once;
#   3. starts a Tansu broker and a ClickHouse server on free ports, with fresh data;
#   4. runs pytest with SLOWLEAK_TEST_KAFKA and SLOWLEAK_TEST_CLICKHOUSE_URL pointing at them;
#   5. stops both, whatever happened, and exits with pytest's status.
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

stop_services() {  # stop_services RUN_DIR: both stops are no-ops without a pid file
  "$PY" -m slowleak.streams.localstack stop --pidfile "$1/tansu.pid" >&2 || true
  "$PY" scripts/clickhouse_server.py stop --pidfile "$1/clickhouse.pid" >&2 || true
}

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

read -r KAFKA_PORT CH_HTTP_PORT CH_TCP_PORT < <("$PY" -m slowleak.streams.localstack free-ports 3)

started=$SECONDS
"$PY" -m slowleak.streams.localstack broker \
  --port "$KAFKA_PORT" --pidfile "$RUN/tansu.pid" --log "$RUN/tansu.log" >&2
"$PY" scripts/clickhouse_server.py start \
  --cache "$CACHE" --data "$RUN/clickhouse" \
  --http-port "$CH_HTTP_PORT" --tcp-port "$CH_TCP_PORT" \
  --pidfile "$RUN/clickhouse.pid" --log "$RUN/clickhouse.log" >&2
say "services up in $(elapsed "$started")"

export SLOWLEAK_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export SLOWLEAK_TEST_CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP_PORT

# --- 4. tests ---------------------------------------------------------------------------------
status=0
"$PY" -m pytest "$@" || status=$?
if [[ $status == 5 ]]; then
  say "pytest collected no tests: that is a failure here"
  status=1
fi
exit "$status"
