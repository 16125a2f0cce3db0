#!/usr/bin/env bash
# Browser end-to-end tests for Lianxin.
#
#   bash e2e/run.sh [path/to/lianxin]      (default: <repo>/target/debug/lianxin)
#
# Starts `lianxin demo` on 127.0.0.1:$E2E_PORT (default 18089) with a fresh temp
# data dir, waits for /readyz, runs `node --test` on e2e/tests/, then stops the
# server and removes the temp dir. Exits with node's exit code.
# Uses the system Chromium (/usr/bin/chromium, or $CHROMIUM_PATH); never downloads a browser.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/.." && pwd)"

BIN="${1:-$REPO_ROOT/target/debug/lianxin}"
# Resolve a relative path against the caller's working directory.
case "$BIN" in
  /*) ;;
  *) BIN="$(pwd)/$BIN" ;;
esac
PORT="${E2E_PORT:-18089}"
BASE="http://127.0.0.1:$PORT"

if [[ ! -x "$BIN" ]]; then
  echo "run.sh: no executable lianxin binary at $BIN (build it with: cargo build -p lianxin)" >&2
  exit 2
fi
if [[ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]]; then
  echo "run.sh: Chromium not found at ${CHROMIUM_PATH:-/usr/bin/chromium} (apt-get install chromium)" >&2
  exit 2
fi

cd "$E2E_DIR"
if [[ ! -d node_modules ]]; then
  echo "run.sh: installing e2e dependencies (npm ci)" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

# Refuse to test whatever else may already be listening on the port.
if curl -s -o /dev/null --max-time 2 "$BASE/readyz"; then
  echo "run.sh: something already answers on $BASE; set E2E_PORT to a free port" >&2
  exit 2
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lianxin-e2e.XXXXXX")"
LOG="$(mktemp "${TMPDIR:-/tmp}/lianxin-e2e-server.XXXXXX.log")"
SERVER_PID=""
STATUS=1

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "$STATUS" -ne 0 && -f "$LOG" ]]; then
    echo "---- last 40 lines of the server log ($LOG) ----" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
  rm -rf "$TMP"
  rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "run.sh: starting $BIN demo on $BASE (data dir $TMP)" >&2
"$BIN" demo --listen "127.0.0.1:$PORT" --data-dir "$TMP" >"$LOG" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 240); do   # 240 x 0.5 s = 120 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: the server exited before it was ready" >&2
    exit 1
  fi
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/readyz" || true)"
  if [[ "$code" == "200" ]]; then
    ready=1
    break
  fi
  sleep 0.5
done
if [[ "$ready" -ne 1 ]]; then
  echo "run.sh: $BASE/readyz did not answer 200 within 120 s" >&2
  exit 1
fi
echo "run.sh: server ready; running the browser tests" >&2

set +e
# E2E_ONLY=gate runs only tests/gate.test.mjs (a quicker loop on one page).
TESTS="tests/"
if [[ -n "${E2E_ONLY:-}" ]]; then TESTS="tests/$E2E_ONLY.test.mjs"; fi
LIANXIN_URL="$BASE" node --test --test-concurrency=1 "$TESTS"
STATUS=$?
set -e
exit "$STATUS"
