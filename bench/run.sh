#!/usr/bin/env bash
# The timacct benchmark: populates a store, drives the real server over HTTP, runs the
# baselines in the same run (nginx serving the same response bytes; a bare rusqlite insert
# loop; pgbench running timacct's own statements on PostgreSQL), and prints every figure
# with its ratio. Server and nginx on core 0, load on core 1. Any error answer fails the run.
#
#   bench/run.sh            # full run (1M accounts, scale to 10M, PostgreSQL section)
#   QUICK=1 bench/run.sh    # short run (skips the 10M scale step)
#   PG=0 bench/run.sh       # without the PostgreSQL section
#   ONLY_PG=1 bench/run.sh  # only the PostgreSQL section
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
CONNS=${CONNS:-64}
APP=1400000000
KEY=bench-key
PORT=${PORT:-18181}
NGINX_PORT=${NGINX_PORT:-18182}
WORK=$(mktemp -d /tmp/timacct-bench.XXXXXX)
# nginx's workers run as an unprivileged user: they must be able to read the files served.
chmod 755 "$WORK"
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
# pgbench ships with Debian's PostgreSQL server package (postgresql-15), not the client.
if [ "${PG:-1}" != 0 ]; then need pgbench postgresql-15; need psql postgresql-client-15; fi

cargo build --release -q -p timacct-cli -p timacct-bench
BIN=target/release/timacct
BENCH=target/release/timacct-bench

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${PG_PIDS:-}" ] && kill "${PG_PIDS[@]}" 2>/dev/null || true
  [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/cfg.toml" <<CFG
[[apps]]
sdkappid = $APP
key = "$KEY"
rate_limits = "off"
CFG

SIG=$($BENCH sig --sdkappid $APP --key $KEY)
QS="sdkappid=$APP&identifier=administrator&usersig=$SIG&random=1&contenttype=json"

# BUSY_POLL_US=200 bench/run.sh measures the server with busy polling (--busy-poll-us).
start_server() { # data dir
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn,timacct_store=info taskset -c $SERVER_CPU $BIN serve --config "$WORK/cfg.toml" \
    --data-dir "$1" --listen 127.0.0.1:$PORT --busy-poll-us "${BUSY_POLL_US:-0}" > "$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS" -d '{"CheckItem":[{"UserID":"u00000000"}]}'; do sleep 0.01; done
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
rss_kib() { ps -o rss= -p "$SERVER_PID" | tr -d ' '; }
wrk_rps() { # url body-file
  BODY_FILE="$2" taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DUR}s -s "$WORK/post.lua" "$1" | awk '/Requests\/sec/ {print int($2)}'
}
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.body = f:read("*a")
f:close()
LUA
# Many bodies sent in turn (BODIES: one per line), each request built once at start-up. With
# PATH_FMT (e.g. "/r%d.json") body i goes to that path with i, so that nginx answers each
# body with its own response bytes; without it, to the URL given to wrk.
cat > "$WORK/bodies.lua" <<'LUA'
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local fmt = os.getenv("PATH_FMT")
local reqs = {}
local n = 0
init = function(args)
  for i, b in ipairs(bodies) do
    local path = wrk.path
    if fmt and fmt ~= "" then path = string.format(fmt, i - 1) end
    reqs[i] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, b)
  end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
LUA
wrk_bodies_rps() { # url [path-format]
  BODIES="$WORK/bodies.txt" PATH_FMT="${2:-}" taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DUR}s -s "$WORK/bodies.lua" "$1" | awk '/Requests\/sec/ {print int($2)}'
}
# Fail the run on any error answer: every envelope is an HTTP 200, so wrk cannot tell, but the
# server's own counters can (any timacct_requests_total with a code other than 0), and the
# load generator counts answers without ErrorCode 0 (errors=N).
assert_no_error_answers() { # port what
  curl -s "http://127.0.0.1:$1/metrics" | grep '^timacct_requests_total' > "$WORK/counts.txt"
  if grep -v 'code="0"' "$WORK/counts.txt" | grep -v ' 0$' | grep -q .; then
    echo "FAIL: $2 answered errors:"; cat "$WORK/counts.txt"; exit 1
  fi
}
assert_no_errors() { # load-generator line
  if ! grep -q ' errors=0' <<<"$1"; then echo "FAIL: error answers: $1"; exit 1; fi
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%F)"

if [ -z "${ONLY_PG:-}" ]; then
echo "== populate 1,000,000 accounts"
$BENCH populate --data-dir "$WORK/data" --sdkappid $APP --accounts 1000000

# The bodies: 1,024 of 100 pseudo-random IDs each, half imported, half not, sent in turn
# (the load generator's own, so wrk and it send the same requests), and the old fixed body,
# measured too so that the two figures can be told apart.
$BENCH bodies --accounts 1000000 > "$WORK/bodies.txt"
python3 - "$WORK/check.json" <<'PY'
import sys
items = []
for k in range(100):
    uid = "u%08d" % ((k * 7919) % 1000000) if k % 2 == 0 else "u%08d" % (900000000 + k)
    items.append('{"UserID":"%s"}' % uid)
open(sys.argv[1], "w").write('{"CheckItem":[%s]}' % ",".join(items))
PY

echo "== machine noise: clock gaps a spinning thread sees on each core, idle machine"
for cpu in $SERVER_CPU $LOAD_CPU; do echo "core $cpu: $(taskset -c $cpu $BENCH hiccups --seconds 5)"; done

echo "== read path: account_check of 100 IDs against 1M accounts"
start_server "$WORK/data"
mkdir -p "$WORK/www"
curl -s "http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS" --data-binary @"$WORK/check.json" > "$WORK/www/check.json"
grep -q '"AccountStatus":"Imported"' "$WORK/www/check.json"
# Each body's answer, for nginx to serve as that body's response bytes.
python3 - "$WORK/bodies.txt" "$WORK/www" "$PORT" "/v4/im_open_login_svc/account_check?$QS" <<'PY'
import http.client, sys
bodies, www, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
for i, body in enumerate(open(bodies).read().splitlines()):
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    answer = conn.getresponse().read()
    assert b'"ErrorCode":0' in answer and b'"Imported"' in answer, answer[:200]
    open("%s/r%d.json" % (www, i), "wb").write(answer)
PY
TIMACCT_FIXED_RPS=$(wrk_rps "http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS" "$WORK/check.json")
TIMACCT_RPS=$(wrk_bodies_rps "http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS")
assert_no_error_answers $PORT account_check
HALF=$((TIMACCT_RPS / 2))
# Closed-loop latency with 2 connections: wrk paces itself on the answers, so this shows
# the server's own per-request latency (not at a set load: see the open loop below).
wrk_lat() { # url body-file
  BODY_FILE="$2" taskset -c $LOAD_CPU wrk -t1 -c2 -d${DUR}s --latency -s "$WORK/post.lua" "$1" |
    awk '/Requests\/sec/ {r=int($2)} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print "rps=" r " p50=" p50 " p99=" p99}'
}
WRK_LAT=$(wrk_lat "http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS" "$WORK/check.json")

cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000000;
  # Tuned to be as fast as nginx gets at this: the strictest floor.
  open_file_cache max=2048 inactive=60s;
  open_file_cache_valid 60s;
  sendfile on;
  tcp_nodelay on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    # Answer the POST from the file, as for a GET.
    location / { error_page 405 =200 \$uri; }
  }
}
NGX
# timacct stays up, idle, while nginx is measured (an idle server costs nothing): the open
# loop below alternates between the two.
taskset -c $SERVER_CPU nginx -c "$WORK/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 500); do curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$NGINX_PORT/check.json" && break; sleep 0.01; done
cmp <(curl -s -X POST --data-binary @"$WORK/check.json" "http://127.0.0.1:$NGINX_PORT/check.json") "$WORK/www/check.json"
cmp <(curl -s -X POST --data-binary "$(sed -n 8p "$WORK/bodies.txt")" "http://127.0.0.1:$NGINX_PORT/r7.json") "$WORK/www/r7.json"
NGINX_FIXED_POST=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/check.json" "$WORK/check.json")
# The floor for the varied bodies: each body POSTed to the file holding its own answer.
NGINX_POST=$(wrk_bodies_rps "http://127.0.0.1:$NGINX_PORT/r0.json" "/r%d.json")
# A plain GET of the file (no request body) is nginx's fastest case: the floor is the
# faster of the two.
cat > "$WORK/get.lua" <<'LUA'
wrk.method = "GET"
LUA
NGINX_GET=$(taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DUR}s -s "$WORK/get.lua" "http://127.0.0.1:$NGINX_PORT/check.json" | awk '/Requests\/sec/ {print int($2)}')
NGINX_WRK_LAT=$(wrk_lat "http://127.0.0.1:$NGINX_PORT/check.json" "$WORK/check.json")
NGINX_RPS=$NGINX_POST

# Open loop, in ROUNDS rounds that alternate between timacct and nginx (same rate, same
# generator), so that both meet the same spells of this VM's noise: one stall of a few
# milliseconds (see "machine noise" above) decides a whole run's p99. The median run of
# each is the figure; every run is printed. Two rates, because "half that load" reads two
# ways: half of timacct's measured throughput (the stricter), and half of the throughput
# target (50% of the nginx floor, so a quarter of the floor).
ROUNDS=${ROUNDS:-5}
LAT_DUR=${LAT_DUR:-$DUR}
TARGET_HALF=$((NGINX_RPS / 4))
for RATE in $HALF $TARGET_HALF; do
  : > "$WORK/lat.timacct.$RATE"; : > "$WORK/lat.nginx.$RATE"
  for k in $(seq $ROUNDS); do
    LINE=$(taskset -c $LOAD_CPU $BENCH load --addr 127.0.0.1:$PORT --mode check --usersig "$SIG" \
      --connections $CONNS --duration $LAT_DUR --rate $RATE --label "timacct-$k")
    assert_no_errors "$LINE"; echo "$LINE" >> "$WORK/lat.timacct.$RATE"
    taskset -c $LOAD_CPU $BENCH load --addr 127.0.0.1:$NGINX_PORT --mode static --path /check.json \
      --connections $CONNS --duration $LAT_DUR --rate $RATE --label "nginx-$k" >> "$WORK/lat.nginx.$RATE"
  done
done
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
assert_no_error_answers $PORT "account_check (open loop)"
stop_server
median_p99() { python3 -c '
import re, sys
runs = sorted(open(sys.argv[1]).read().splitlines(), key=lambda l: int(re.search(r"p99_us=(\d+)", l).group(1)))
print(runs[len(runs) // 2])' "$1"; }
p99_of() { sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$1"; }

echo "one fixed body (the old figure, look-ups from cache):"
echo "  nginx same bytes, POST:                         $NGINX_FIXED_POST req/s"
echo "  timacct account_check:                          $TIMACCT_FIXED_RPS req/s"
python3 -c "print('  ratio timacct/nginx:                            %.2f' % ($TIMACCT_FIXED_RPS / $NGINX_FIXED_POST))"
echo "1,024 bodies in turn (cold look-ups; the figure):"
echo "  nginx, each body's own response bytes, POST:    $NGINX_POST req/s"
echo "  nginx, plain GET of one response:               $NGINX_GET req/s (not the floor: one file, no body)"
echo "  timacct account_check:                          $TIMACCT_RPS req/s ($((TIMACCT_RPS * 100)) look-ups/s)"
python3 -c "print('  ratio timacct/nginx:                            %.2f (target 0.75)' % ($TIMACCT_RPS / $NGINX_POST))"
for RATE in $HALF $TARGET_HALF; do
  if [ $RATE = $HALF ]; then WHAT="half of timacct's throughput"; else WHAT="half of the target (floor/4)"; fi
  echo "open loop at $RATE req/s ($WHAT), every run (alternating):"
  paste -d '\n' "$WORK/lat.timacct.$RATE" "$WORK/lat.nginx.$RATE" | sed 's/^/  /'
  LAT=$(median_p99 "$WORK/lat.timacct.$RATE")
  NGINX_LAT=$(median_p99 "$WORK/lat.nginx.$RATE")
  echo "  timacct, median run of $ROUNDS: $LAT"
  echo "  nginx,   median run of $ROUNDS: $NGINX_LAT"
  echo "  p99 at $RATE req/s: timacct $(p99_of "$LAT") us, nginx $(p99_of "$NGINX_LAT") us (target: under 2000 us)"
done
echo "closed loop, 2 connections (wrk): timacct         $WRK_LAT"
echo "closed loop, 2 connections (wrk): nginx           $NGINX_WRK_LAT"

echo "== write path: multiaccount_import, 100 new accounts per call, fsync before every answer"
# Two pairs, so that batching is not mistaken for speed: timacct with one client against the
# one-thread baseline at 100 rows per transaction (the same rows per commit), and timacct with
# $CONNS clients, whose writer folds up to $CONNS calls into one commit, against the baseline
# with $CONNS x 100 rows per transaction (as many rows per commit as timacct can reach).
start_server "$WORK/data"
IMP1=$(taskset -c $LOAD_CPU $BENCH load --addr 127.0.0.1:$PORT --mode import --usersig "$SIG" --connections 1 --duration $DUR --import-base 100000000 --label import-1-client)
IMP=$(taskset -c $LOAD_CPU $BENCH load --addr 127.0.0.1:$PORT --mode import --usersig "$SIG" --connections $CONNS --duration $DUR --import-base 200000000 --label import-$CONNS-clients)
assert_no_errors "$IMP1"; assert_no_errors "$IMP"; assert_no_error_answers $PORT multiaccount_import
stop_server
IMP1_RPS=$(echo "$IMP1" | sed -E 's/.*rps=([0-9]+).*/\1/')
IMP_RPS=$(echo "$IMP" | sed -E 's/.*rps=([0-9]+).*/\1/')
BASE1=$(taskset -c $SERVER_CPU $BENCH sqlite-baseline --db "$WORK/baseline.db" --rows 30000 --batch 100)
BASE=$(taskset -c $SERVER_CPU $BENCH sqlite-baseline --db "$WORK/baseline.db" --rows 640000 --batch $((CONNS * 100)))
BASE1_RATE=$(echo "$BASE1" | sed -E 's/.*rows_per_sec=([0-9]+).*/\1/')
BASE_RATE=$(echo "$BASE" | sed -E 's/.*rows_per_sec=([0-9]+).*/\1/')
echo "$IMP1"; echo "$BASE1"; echo "$IMP"; echo "$BASE"
echo "1 client:      timacct $((IMP1_RPS * 100)) accounts/s, bare rusqlite $BASE1_RATE rows/s (100 rows a transaction)"
python3 -c "print('               ratio %.2f' % ($IMP1_RPS * 100 / $BASE1_RATE))"
echo "$CONNS clients:     timacct $((IMP_RPS * 100)) accounts/s, bare rusqlite $BASE_RATE rows/s ($((CONNS * 100)) rows a transaction)"
python3 -c "print('               ratio %.2f' % ($IMP_RPS * 100 / $BASE_RATE))"

echo "== auth cost on the hot path"
# A cost probe inside the server crate: authentication is not public API.
TIMACCT_RPS="$TIMACCT_RPS" cargo test --release -q -p timacct-server --lib cost_of_auth -- --ignored --nocapture 2>/dev/null | grep '^auth ' 
echo "== metrics cost per request"
# Also a probe inside the server crate: the metrics are not public API either.
cargo test --release -q -p timacct-server --lib cost_of_recording_a_request -- --ignored --nocapture 2>/dev/null | grep '^metrics '

fi

if [ "${PG:-1}" != 0 ]; then
  # PostgreSQL mode: timacct instances on one database against a bare client running the
  # same statements (pgbench), alternating, ROUNDS rounds each; the median of each is the
  # figure. The database server is not pinned (it is the machine's own service), timacct on
  # core 0, pgbench and the load generator on core 1.
  PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
  PG_BASE=${PG_ADMIN%/*}
  PG_URL="$PG_BASE/timacct_bench"
  PG_ACCOUNTS=${PG_ACCOUNTS:-200000}
  PG_PORT=${PG_PORT:-18191}
  ROUNDS=${ROUNDS:-5}
  PSQL=(psql -q -X -v ON_ERROR_STOP=1)
  echo "== PostgreSQL: $PG_ACCOUNTS accounts in $PG_URL; timacct against pgbench, $ROUNDS alternating rounds"
  "${PSQL[@]}" "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS timacct_bench' -c 'CREATE DATABASE timacct_bench'
  $BENCH populate --database "$PG_URL" --sdkappid $APP --accounts $PG_ACCOUNTS
  # Fresh statistics for both sides (autovacuum would get there, at a moment of its choosing).
  "${PSQL[@]}" "$PG_URL" -c 'ANALYZE' -c 'CREATE SEQUENCE bench_ids INCREMENT 100'
  # The bare check: timacct's own statement, 100 IDs (50 stored, 50 not), new ones each time.
  python3 - "$WORK/pg_check.sql" $PG_ACCOUNTS $APP <<'PY'
import sys
out, accounts, app = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines, ids = [], []
for k in range(100):
    if k % 2 == 0:
        lines.append("\\set a%d random(0, %d)" % (k, accounts - 1))
        ids.append("'u' || lpad(:a%d::text, 8, '0')" % k)
    else:
        lines.append("\\set a%d random(900000000, 900999999)" % k)
        ids.append("'u' || :a%d" % k)
lines.append("SELECT user_id FROM accounts WHERE sdkappid = %s AND user_id = ANY(ARRAY[%s]);" % (app, ", ".join(ids)))
open(out, "w").write("\n".join(lines) + "\n")
PY
  # The bare import: one transaction per call of 100 new accounts, with timacct's statements
  # for one call, under the same per-app advisory lock (0x74696d61 = "tima", the SDKAppID).
  cat > "$WORK/pg_import.sql" <<SQL
SELECT nextval('bench_ids') AS base \gset
BEGIN;
SELECT pg_advisory_xact_lock(1953066337, $APP);
SELECT accounts, seq FROM app_stats WHERE sdkappid = $APP;
SELECT user_id FROM accounts WHERE sdkappid = $APP AND user_id = ANY(ARRAY(SELECT 'p' || (:base + g) FROM generate_series(0, 99) g));
INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at, seq) SELECT $APP, 'p' || (:base + g), '', '', 1, 0 FROM generate_series(0, 99) g;
DELETE FROM tombstones WHERE sdkappid = $APP AND user_id = ANY(ARRAY(SELECT 'p' || (:base + g) FROM generate_series(0, 99) g));
UPDATE app_stats SET accounts = accounts + 100 WHERE sdkappid = $APP;
COMMIT;
SQL
  pgbench_tps() { # script clients
    taskset -c $LOAD_CPU pgbench -n -M prepared -c "$2" -j 1 -T $DUR -f "$1" "$PG_URL" 2>&1 |
      awk '/^tps/ {print int($3)} /failed transactions: [1-9]/ {print "FAIL"}'
  }
  PG_PIDS=()
  start_pg() { # instances
    PG_ADDRS=
    for n in $(seq "$1"); do
      TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c $SERVER_CPU $BIN serve --config "$WORK/cfg.toml" \
        --data-dir "$WORK/pg$n" --database "$PG_URL" --listen 127.0.0.1:$((PG_PORT + n)) > "$WORK/pg$n.out" 2>&1 &
      PG_PIDS+=($!)
      PG_ADDRS="${PG_ADDRS:+$PG_ADDRS,}127.0.0.1:$((PG_PORT + n))"
    done
    for n in $(seq "$1"); do
      until curl -sf -o /dev/null "http://127.0.0.1:$((PG_PORT + n))/healthz"; do sleep 0.01; done
    done
  }
  stop_pg() {
    for n in $(seq ${#PG_PIDS[@]}); do assert_no_error_answers $((PG_PORT + n)) "PostgreSQL instance $n"; done
    kill "${PG_PIDS[@]}"; wait "${PG_PIDS[@]}" 2>/dev/null || true; PG_PIDS=()
  }
  median() { python3 -c 'import sys; v = sorted(float(x) for x in sys.argv[1:]); print(int(v[len(v) // 2]))' "$@"; }
  rps_of() { sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$1"; }
  IMPORT_BASE=300000000
  for INST in 1 2; do
    echo "-- $INST instance(s) on one database"
    # Measured from the first request after a fresh start: the first second is printed too.
    start_pg $INST
    TI=(); TC=(); BI=(); BC=(); FIRST=
    for k in $(seq $ROUNDS); do
      LINE=$(taskset -c $LOAD_CPU $BENCH load --addr "$PG_ADDRS" --mode import --usersig "$SIG" --connections 32 \
        --duration $DUR --import-base $IMPORT_BASE --timeline --label "timacct-import-$INST-$k")
      IMPORT_BASE=$((IMPORT_BASE + 10000000)); assert_no_errors "$LINE"; echo "  $LINE"
      [ -z "$FIRST" ] && FIRST=$(sed -E 's/.*timeline=([0-9]+).*/\1/' <<<"$LINE")
      TI+=($(( $(rps_of "$LINE") * 100 )))
      T=$(pgbench_tps "$WORK/pg_import.sql" 32); [ "$T" = FAIL ] && { echo "FAIL: pgbench import"; exit 1; }
      echo "  pgbench-import-$k tps=$T rows_per_sec=$((T * 100))"; BI+=($((T * 100)))
    done
    for k in $(seq $ROUNDS); do
      LINE=$(taskset -c $LOAD_CPU $BENCH load --addr "$PG_ADDRS" --mode check --usersig "$SIG" --connections 64 \
        --accounts $PG_ACCOUNTS --duration $DUR --label "timacct-check-$INST-$k")
      assert_no_errors "$LINE"; echo "  $LINE"; TC+=($(rps_of "$LINE"))
      T=$(pgbench_tps "$WORK/pg_check.sql" 16); [ "$T" = FAIL ] && { echo "FAIL: pgbench check"; exit 1; }
      echo "  pgbench-check-$k tps=$T"; BC+=($T)
    done
    MI=$(median "${TI[@]}"); MBI=$(median "${BI[@]}"); MC=$(median "${TC[@]}"); MBC=$(median "${BC[@]}")
    # p99 at half of each maximum, open loop (no coordinated omission).
    HALF_C=$((MC / 2)); HALF_I=$((MI / 200))
    LC=$(taskset -c $LOAD_CPU $BENCH load --addr "$PG_ADDRS" --mode check --usersig "$SIG" --connections 64 \
      --accounts $PG_ACCOUNTS --duration $DUR --rate $HALF_C --label "check-open-loop-$HALF_C/s")
    LI=$(taskset -c $LOAD_CPU $BENCH load --addr "$PG_ADDRS" --mode import --usersig "$SIG" --connections 32 \
      --duration $DUR --rate $HALF_I --import-base $IMPORT_BASE --label "import-open-loop-$HALF_I-calls/s")
    IMPORT_BASE=$((IMPORT_BASE + 10000000))
    assert_no_errors "$LC"; assert_no_errors "$LI"
    stop_pg
    echo "  $LC"; echo "  $LI"
    echo "PostgreSQL, $INST instance(s): account_check $MC checks/s, pgbench same SELECT (16 connections) $MBC/s: ratio $(python3 -c "print('%.2f' % ($MC / $MBC))") (target 2)"
    echo "PostgreSQL, $INST instance(s): multiaccount_import $MI accounts/s, pgbench one transaction per call (32 connections) $MBI rows/s: ratio $(python3 -c "print('%.2f' % ($MI / $MBI))") (target 2)"
    echo "PostgreSQL, $INST instance(s): first second after start $((FIRST * 100)) accounts/s ($(python3 -c "print('%.2f' % ($FIRST * 100 / $MI))") of the median)"
    echo "PostgreSQL, $INST instance(s): p99 at half load: check $(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$LC") us at $HALF_C/s, import $(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$LI") us at $HALF_I calls/s"
  done
  echo "== correctness under load: two instances, imports, deletes and checks of overlapping UserIDs, ${MIXED_SECONDS:-60} s"
  "${PSQL[@]}" "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS timacct_bench_mixed' -c 'CREATE DATABASE timacct_bench_mixed'
  $BENCH mixed --database "$PG_BASE/timacct_bench_mixed" --seconds "${MIXED_SECONDS:-60}"
  "${PSQL[@]}" "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS timacct_bench_mixed' -c 'DROP DATABASE IF EXISTS timacct_bench'
fi

if [ -z "${QUICK:-}" ] && [ -z "${ONLY_PG:-}" ]; then
  echo "== scale: start-up time and memory"
  # A data dir of its own: the one above also holds every account the write path imported.
  # Each step adds accounts up to N, and the count printed is the one the server loaded.
  for N in 1000000 5000000 10000000; do
    $BENCH populate --data-dir "$WORK/scale" --sdkappid $APP --accounts $N >/dev/null 2>&1
    T0=$(date +%s.%N)
    start_server "$WORK/scale"
    T1=$(date +%s.%N)
    # Wait until account_check is served from memory, then read RSS.
    until grep -q 'index loaded' "$WORK/server.out" 2>/dev/null || [ $(python3 -c "print(int($(date +%s.%N) - $T0 > 60))") = 1 ]; do sleep 0.05; done
    T2=$(date +%s.%N)
    LOADED=$(sed -nE 's/.*index loaded accounts=([0-9]+).*/\1/p' "$WORK/server.out")
    echo "accounts=$LOADED first_answer_s=$(python3 -c "print('%.2f' % ($T1 - $T0))") index_ready_s=$(python3 -c "print('%.2f' % ($T2 - $T0))") rss_mib=$(( $(rss_kib) / 1024 ))"
    stop_server
  done
fi
