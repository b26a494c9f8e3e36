#!/usr/bin/env bash
# bench/run.sh: measures smolcanvas, the Go + gorilla/websocket peer and the
# Node + ws peer the same way with the repository's load tool (loadgen) and
# prints the README's Performance table side by side. Each phase starts a
# fresh server pinned to core 0 (loadgen on core 1), talks to 127.0.0.1 only,
# is bounded by `timeout`, and stops the server it started by its PID.
# Build first: bash bench/build.sh
#
# Usage: bash bench/run.sh [--quick | --check] [SERVER...]
#   SERVER: floor go-gorilla node-ws smolcanvas (default: all four)
#   --quick  small N and short runs (about 2 minutes for all three)
#   --check  protocol check only: relay (loadgen latency) and a peer sync (loadgen join)
# Environment (defaults in brackets, quick values after the slash):
#   IDLE_N [5000/500] connections held; HOLD_SECS [5/2]; FANOUT_SECS [10/3];
#   JOIN_N [1000/1000] peers+newcomer; JOIN_ROUNDS [50/10];
#   BASE_PORT [18800]; SERVER_CPU [0]; LOADGEN_CPU [1]; OUT [bench/out/DATE-MODE];
#   PROFILE [release]: which cargo build of smolcanvas and loadgen (debug is enough for --check)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

MODE=full
SERVERS=()
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    --check) MODE=check ;;
    floor | go-gorilla | node-ws | smolcanvas) SERVERS+=("$arg") ;;
    *) echo "usage: bash bench/run.sh [--quick | --check] [floor] [go-gorilla] [node-ws] [smolcanvas]" >&2; exit 2 ;;
  esac
done
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(floor go-gorilla node-ws smolcanvas)

if [ "$MODE" = quick ]; then
  : "${IDLE_N:=500}" "${HOLD_SECS:=2}" "${FANOUT_SECS:=3}" "${JOIN_ROUNDS:=10}"
else
  : "${IDLE_N:=5000}" "${HOLD_SECS:=5}" "${FANOUT_SECS:=10}" "${JOIN_ROUNDS:=50}"
fi
: "${JOIN_N:=1000}" "${BASE_PORT:=18800}" "${SERVER_CPU:=0}" "${LOADGEN_CPU:=1}" "${PROFILE:=release}"
: "${OUT:=bench/out/$(date -u +%Y%m%d-%H%M%S)-$MODE}"
LOADGEN=$ROOT/target/$PROFILE/loadgen
SMOLCANVAS=$ROOT/target/$PROFILE/smolcanvas
mkdir -p "$OUT"

for bin in "$LOADGEN" "$SMOLCANVAS" bench/peers/go-gorilla/go-gorilla bench/peers/node-ws/node_modules/ws \
  bench/peers/floor/target/release/floor; do
  [ -e "$bin" ] || { echo "missing $bin: run bash bench/build.sh first" >&2; exit 1; }
done
# Both sides hold N sockets; raise the open-file limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SERVER_PID=""
DATA_DIR=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  [ -z "$DATA_DIR" ] || rm -rf "$DATA_DIR"
  DATA_DIR=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# start_server NAME PORT LOG: a fresh server on core SERVER_CPU; waits (at most 10 s) for the port.
start_server() {
  local name=$1 port=$2 log=$3
  case "$name" in
    smolcanvas)
      DATA_DIR=$(mktemp -d)
      # --sync peers: newcomers are synced by a peer, as the other servers do (the
      # default, --sync server, answers from the server's own picture).
      taskset -c "$SERVER_CPU" "$SMOLCANVAS" --listen "127.0.0.1:$port" --data-dir "$DATA_DIR" \
        --sync peers --log-level warn 2>"$log" &
      ;;
    go-gorilla) taskset -c "$SERVER_CPU" bench/peers/go-gorilla/go-gorilla "127.0.0.1:$port" 2>"$log" & ;;
    floor) taskset -c "$SERVER_CPU" bench/peers/floor/target/release/floor "127.0.0.1:$port" 2>"$log" & ;;
    node-ws) taskset -c "$SERVER_CPU" node bench/peers/node-ws/server.js "127.0.0.1:$port" 2>"$log" & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      sleep 1 # let it settle before the first RSS sample
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start on port $port (see $log)" >&2
  stop_server
  return 1
}

PORT=$BASE_PORT
# phase SERVER NAME SECS LOADGEN-ARGS...: one loadgen run against a fresh server; output in $OUT/SERVER-NAME.txt.
phase() {
  local server=$1 name=$2 secs=$3
  shift 3
  local out=$OUT/$server-$name.txt
  PORT=$((PORT + 1))
  : >"$out"
  start_server "$server" "$PORT" "$OUT/$server-$name.log" || return 0
  echo "  $server $name" >&2
  taskset -c "$LOADGEN_CPU" timeout -k 5 "$secs" "$LOADGEN" "$@" --url "ws://127.0.0.1:$PORT/ws" \
    --server-pid "$SERVER_PID" --max-secs "$((secs - 5))" >"$out" 2>"$OUT/$server-$name.err" || true
  stop_server
}

# kv SERVER PHASE KEY: a value from a phase's output ("?" when missing).
kv() {
  local v
  v=$(grep -m1 "^$3=" "$OUT/$1-$2.txt" 2>/dev/null | cut -d= -f2-)
  echo "${v:-?}"
}

T0=$SECONDS
for s in "${SERVERS[@]}"; do
  echo "== $s" >&2
  phase "$s" check 60 latency --draws 200 --rate 200
  phase "$s" sync 60 join --clients 3 --rounds 3 --png-kib 10
  [ "$MODE" = check ] && continue
  # Opening N connections costs N²/2 clientCount frames at a server that does not coalesce them.
  phase "$s" idle $((60 + IDLE_N / 10)) idle --conns "$IDLE_N" --hold-secs "$HOLD_SECS"
  phase "$s" fanout100 120 fanout --clients 100 --senders 10 --rate 50 --secs "$FANOUT_SECS"
  phase "$s" fanout1000 120 fanout --clients 1000 --senders 5 --rate 20 --secs "$FANOUT_SECS"
  phase "$s" join 120 join --clients "$JOIN_N" --rounds "$JOIN_ROUNDS"
done

# The protocol check passes when every draw arrived, no error came back and
# every newcomer got its board from a peer.
failed=0
check_cell() {
  local s=$1
  if [ "$(kv "$s" check delivered)" = 200 ] && [ "$(kv "$s" check server_error_msgs)" = 0 ] &&
    [ "$(kv "$s" sync syncs_peer)" = 3 ] && [ "$(kv "$s" sync server_error_msgs)" = 0 ]; then
    echo "pass"
  else
    echo "FAIL"
  fi
}

label() {
  case "$1" in go-gorilla) echo "gorilla" ;; node-ws) echo "Node ws" ;; *) echo "$1" ;; esac
}

# row TITLE TEMPLATE: one table row; TEMPLATE is evaluated per server with $s set.
row() {
  local line="| $1 |" s
  for s in "${SERVERS[@]}"; do line+=" $(eval "echo \"$2\"") |"; done
  echo "$line"
}

{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), mode $MODE, $((SECONDS - T0)) s; raw output in $OUT"
  echo
  header="| |"
  rule="|---|"
  for s in "${SERVERS[@]}"; do header+=" $(label "$s") |"; rule+="---|"; done
  echo "$header"
  echo "$rule"
  row "protocol check (relay 200 draws, 3 peer syncs)" '$(check_cell "$s")'
  if [ "$MODE" != check ]; then
    row "RSS before any connection" '$(kv "$s" idle server_rss_start_kib) KiB'
    row "RSS per idle connection ($IDLE_N held)" '$(kv "$s" idle kib_per_conn) KiB'
    row "open $IDLE_N connections (clientCount storm included)" '$(kv "$s" idle ramp_secs) s'
    for n in 100 1000; do
      f=fanout$n
      if [ $n = 100 ]; then t="fan-out to 100 (10 senders x 50/s, ${FANOUT_SECS} s)"; else t="fan-out to 1000 (5 senders x 20/s, ${FANOUT_SECS} s)"; fi
      row "$t: relay p50 / p99" '$(kv "$s" '$f' latency_p50_ms) / $(kv "$s" '$f' latency_p99_ms) ms'
      row "fan-out to $n: server CPU per delivered draw" '$(kv "$s" '$f' server_cpu_us_per_delivery) µs'
      row "fan-out to $n: of which user / system" '$(kv "$s" '$f' server_user_us_per_delivery) / $(kv "$s" '$f' server_sys_us_per_delivery) µs'
      row "fan-out to $n: delivered / expected" '$(kv "$s" '$f' delivered) / $(kv "$s" '$f' expected_deliveries)'
    done
    row "newcomer to $((JOIN_N - 1)) peers: connect to canvasState p50 / p99" '$(kv "$s" join join_to_state_p50_ms) / $(kv "$s" join join_to_state_p99_ms) ms'
    row "newcomer: synced from a peer / rounds" '$(kv "$s" join syncs_peer) / $JOIN_ROUNDS'
  fi
} | tee "$OUT/table.md"

for s in "${SERVERS[@]}"; do [ "$(check_cell "$s")" = pass ] || failed=1; done
exit $failed
