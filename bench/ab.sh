#!/usr/bin/env bash
# A/B of two builds of timacct on the read path, in one run: account_check of 100 IDs
# against the same 1M accounts, the two servers measured in alternating rounds (so both meet
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
python3 - "$WORK/check.json" <<'PY'
import sys
items = []
for k in range(100):
    uid = "u%08d" % ((k * 7919) % 1000000) if k % 2 == 0 else "u%08d" % (900000000 + k)
    items.append('{"UserID":"%s"}' % uid)
open(sys.argv[1], "w").write('{"CheckItem":[%s]}' % ",".join(items))
PY
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.body = f:read("*a")
f:close()
LUA
wrk_rps() { BODY_FILE="$WORK/check.json" taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DUR}s -s "$WORK/post.lua" "$1" | awk '/Requests\/sec/ {print int($2)}'; }

start() { # binary
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn,timacct_store=info taskset -c $SERVER_CPU "$1" serve --config "$WORK/cfg.toml" \
    --data-dir "$WORK/data" --listen 127.0.0.1:$PORT > "$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  # Ready once the index has loaded: the check answers from memory from then on.
  until grep -q "account index loaded" "$WORK/server.out" 2>/dev/null &&
    curl -sf -o /dev/null "$URL" --data-binary @"$WORK/check.json"; do sleep 0.05; done
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# Both builds must answer the same bytes.
start "$A"; curl -s "$URL" --data-binary @"$WORK/check.json" > "$WORK/a.json"; stop
start "$B"; curl -s "$URL" --data-binary @"$WORK/check.json" > "$WORK/b.json"; stop
cmp "$WORK/a.json" "$WORK/b.json"
mkdir -p "$WORK/www"; cp "$WORK/a.json" "$WORK/www/check.json"
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
  open_file_cache max=16 inactive=60s;
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
  for _ in $(seq 500); do curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$NGINX_PORT/check.json" && break; sleep 0.01; done
  R=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/check.json"); echo "$R" >> "$WORK/n"; echo "round $k  nginx: $R req/s"
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
done
python3 - "$WORK/a" "$WORK/b" "$WORK/n" <<'PY'
import statistics, sys
a, b, n = (statistics.median(int(x) for x in open(p).read().split()) for p in sys.argv[1:4])
print(f"median A {a:.0f} req/s, B {b:.0f} req/s, nginx {n:.0f} req/s")
print(f"ratio A/nginx {a / n:.2f}, B/nginx {b / n:.2f}, B/A {b / a:.2f}")
PY
