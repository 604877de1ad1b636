#!/usr/bin/env bash
# Instructions per account_check request of two builds, counted by callgrind: a figure that
# does not move with the machine's load (a busy or noisy VM changes wall-clock rates, not
# instruction counts), for comparing a refactor against its parent when timing is unreliable.
# Counts only the requests: instrumentation is switched on after start-up and the index load.
#
#   bench/instructions.sh OLD/target/release/timacct target/release/timacct
set -euo pipefail
cd "$(dirname "$0")/.."

A=${1:?usage: bench/instructions.sh BINARY_A BINARY_B}
B=${2:?usage: bench/instructions.sh BINARY_A BINARY_B}
ACCOUNTS=${ACCOUNTS:-100000}
SECS=${SECS:-20}
APP=1400000000
KEY=bench-key
PORT=${PORT:-18193}
WORK=$(mktemp -d /tmp/timacct-ir.XXXXXX)
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
cargo build --release -q -p timacct-bench
BENCH=target/release/timacct-bench
printf '[[apps]]\nsdkappid = %s\nkey = "%s"\nrate_limits = "off"\n' $APP $KEY > "$WORK/cfg.toml"
SIG=$($BENCH sig --sdkappid $APP --key $KEY)
$BENCH populate --data-dir "$WORK/data" --sdkappid $APP --accounts "$ACCOUNTS" >/dev/null

measure() { # label binary
  rm -f "$WORK/cg.out"*
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn,timacct_store=info valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$WORK/cg.out" "$2" serve --config "$WORK/cfg.toml" --data-dir "$WORK/data" \
    --listen 127.0.0.1:$PORT > "$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  until grep -q "account index loaded" "$WORK/server.out" 2>/dev/null; do sleep 0.2; done
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"; do sleep 0.2; done
  before=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^timacct_requests_total\{api="account_check",code="0"\}/ {print $2}')
  callgrind_control -i on "$SERVER_PID" >/dev/null
  $BENCH load --addr 127.0.0.1:$PORT --mode check --usersig "$SIG" --accounts "$ACCOUNTS" \
    --connections 4 --duration "$SECS" --label "$1" > "$WORK/load.out"
  callgrind_control -i off "$SERVER_PID" >/dev/null
  after=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^timacct_requests_total\{api="account_check",code="0"\}/ {print $2}')
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  ir=$(cat "$WORK"/cg.out* | awk '/^(summary|totals):/ {s += $2} END {print s+0}')
  n=$(( ${after:-0} - ${before:-0} ))
  echo "$1: $n requests, $ir instructions, $(( ir / (n > 0 ? n : 1) )) per request"
  # KEEP=DIR keeps each build's profile for callgrind_annotate.
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cat "$WORK"/cg.out* > "$KEEP/callgrind.$1"; fi
}
measure A "$A"
measure B "$B"
