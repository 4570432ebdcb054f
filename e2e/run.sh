#!/usr/bin/env bash
# End-to-end test of the ops dashboard in a real browser:
#   builds Onsite, starts it in embedded mode (SQLite + in-process Redis) on a
#   free port with a throw-away data directory, waits for /readyz, runs the
#   browser tests (node --test e2e/), stops the server. Exit code = the tests'.
# Needs Go, Node ≥ 20 and Chromium (/usr/bin/chromium, or CHROMIUM_PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${ONSITE_E2E_BIN:-/tmp/onsite-e2e}"
password="e2e-secret-password"

cd "$root"
echo "e2e: building $bin"
go build -o "$bin" ./cmd/onsite

data="$(mktemp -d -t onsite-e2e.XXXXXX)"
log="$data/server.log"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"

# The server refuses unknown ONSITE_* variables: give it only its own.
env -u ONSITE_URL -u ONSITE_OPS_NAME -u ONSITE_E2E_BIN \
  ONSITE_ADDR="127.0.0.1:$port" ONSITE_DATA_DIR="$data" ONSITE_OPS_PASSWORD="$password" \
  "$bin" serve >"$log" 2>&1 &
pid=$!

stop() {
  local rc=$?
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "e2e: failed ($rc); last lines of the server log:"
    tail -n 40 "$log" || true
  fi
  rm -rf "$data"
  exit "$rc"
}
trap stop EXIT INT TERM

echo "e2e: waiting for $base/readyz"
ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "e2e: the server exited"
    exit 1
  fi
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$base/readyz"; then
    ready=1
    break
  fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "e2e: $base is not ready after 60 s"; exit 1; }

if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "e2e: npm ci"
  (cd "$here" && npm ci --no-audit --no-fund)
fi

echo "e2e: running the browser tests against $base"
ONSITE_URL="$base" ONSITE_OPS_NAME="e2e-dispatcher" ONSITE_OPS_PASSWORD="$password" \
  node --test --test-concurrency=1 "$here/"
