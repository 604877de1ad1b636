#!/usr/bin/env bash
# A/B of two builds of timacct on the read path, in one run: account_check of 100 IDs
# against the same 1M accounts (1,024 bodies of random IDs sent in turn, as bench/run.sh), the two servers measured in alternating rounds (so both meet
# the same spells of machine noise), beside nginx serving the same response bytes. Prints
# every round, the median of each, and the ratios. For a change that must not slow the hot
# path (a refactor): build the old commit into its own target dir, then
#
#   bench/ab.sh OLD/target/release/timacct target/release/timacct
#
# Server on core 0, load on core 1 (SERVER_CPU, LOAD_CPU), ROUNDS rounds of DUR seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

A=${1:?usage: bench/ab.sh BINARY_A BINARY_B}
B=${2:?usage: bench/ab.sh BINARY_A BINARY_B}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
APP=1400000000
KEY=bench-key
PORT=${PORT:-18191}
NGINX_PORT=${NGINX_PORT:-18192}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=$(mktemp -d /tmp/timacct-ab.XXXXXX)
chmod 755 "$WORK"

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light

cargo build --release -q -p timacct-bench
BENCH=target/release/timacct-bench

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

printf '[[apps]]\nsdkappid = %s\nkey = "%s"\nrate_limits = "off"\n' $APP $KEY > "$WORK/cfg.toml"
SIG=$($BENCH sig --sdkappid $APP --key $KEY)
QS="sdkappid=$APP&identifier=administrator&usersig=$SIG&random=1&contenttype=json"
URL="http://127.0.0.1:$PORT/v4/im_open_login_svc/account_check?$QS"

echo "== populate 1,000,000 accounts"
$BENCH populate --data-dir "$WORK/data" --sdkappid $APP --accounts 1000000 >/dev/null
$BENCH bodies --accounts 1000000 > "$WORK/bodies.txt"
head -1 "$WORK/bodies.txt" > "$WORK/check.json"
# Body i goes to the URL given (timacct) or, with PATH_FMT, to that path with i (nginx: the
# file holding body i's answer), as in bench/run.sh.
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
wrk_rps() { BODIES="$WORK/bodies.txt" PATH_FMT="${2:-}" taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DUR}s -s "$WORK/bodies.lua" "$1" | awk '/Requests\/sec/ {print int($2)}'; }
answers() { # directory: each body's answer, r<i>.json
  mkdir -p "$1"
  python3 - "$WORK/bodies.txt" "$1" "$PORT" "/v4/im_open_login_svc/account_check?$QS" <<'PY'
import http.client, sys
bodies, out, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
for i, body in enumerate(open(bodies).read().splitlines()):
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    open("%s/r%d.json" % (out, i), "wb").write(conn.getresponse().read())
PY
}

start() { # binary
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn,timacct_store=info taskset -c $SERVER_CPU "$1" serve --config "$WORK/cfg.toml" \
    --data-dir "$WORK/data" --listen 127.0.0.1:$PORT > "$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  # Ready once the index has loaded: the check answers from memory from then on.
  until grep -q "account index loaded" "$WORK/server.out" 2>/dev/null &&
    curl -sf -o /dev/null "$URL" --data-binary @"$WORK/check.json"; do sleep 0.05; done
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# Both builds must answer the same bytes, for every body; nginx serves A's.
start "$A"; answers "$WORK/www"; stop
start "$B"; answers "$WORK/b-answers"; stop
diff -rq "$WORK/www" "$WORK/b-answers"
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
  open_file_cache max=2048 inactive=60s;
  sendfile on;
  tcp_nodelay on;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; location / { error_page 405 =200 \$uri; } }
}
NGX

: > "$WORK/a"; : > "$WORK/b"; : > "$WORK/n"
for k in $(seq "$ROUNDS"); do
  start "$A"; R=$(wrk_rps "$URL"); stop; echo "$R" >> "$WORK/a"; echo "round $k  A: $R req/s"
  start "$B"; R=$(wrk_rps "$URL"); stop; echo "$R" >> "$WORK/b"; echo "round $k  B: $R req/s"
  taskset -c $SERVER_CPU nginx -c "$WORK/nginx.conf" & NGINX_PID=$!
  for _ in $(seq 500); do curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$NGINX_PORT/r0.json" && break; sleep 0.01; done
  R=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/r0.json" "/r%d.json"); echo "$R" >> "$WORK/n"; echo "round $k  nginx: $R req/s"
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
done
python3 - "$WORK/a" "$WORK/b" "$WORK/n" <<'PY'
import statistics, sys
a, b, n = (statistics.median(int(x) for x in open(p).read().split()) for p in sys.argv[1:4])
print(f"median A {a:.0f} req/s, B {b:.0f} req/s, nginx {n:.0f} req/s")
print(f"ratio A/nginx {a / n:.2f}, B/nginx {b / n:.2f}, B/A {b / a:.2f}")
PY
