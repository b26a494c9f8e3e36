#!/usr/bin/env bash
# bench/cluster.sh: what cluster mode (--redis) costs a draw, measured with tools/loadgen against
# a release build with the `redis` feature, in one run and on one board per phase:
#
#   single  one server, no Redis: the baseline.
#   redis1  one server with --redis: every draw is appended to the board's Redis stream and
#           relayed from there, even though sender and receiver share the server.
#   cross   two servers A and B with --redis on the same Redis: draws sent by clients of A,
#           received by clients of B (loadgen --send-url A --url B).
#
# Each phase has two loadgen runs: `latency` (one sender, one receiver: relay p50/p99, and the
# CPU a draw costs end to end) and `fanout` (FANOUT_CLIENTS clients, FANOUT_SENDERS of them
# sending FANOUT_RATE draws/s for FANOUT_SECS s; in `cross` the senders are on A and every
# other client on B; the latency reported is that of the receivers, B's clients in `cross`). CPU per delivered draw
# is utime + stime from /proc/PID/stat of every process that handles draws, read by loadgen at
# the same two instants and summed: the server (single), the server and redis-server (redis1),
# A, B and redis-server (cross); the table also gives each process's share.
#
# Every server-side process (smolcanvas and redis-server) is pinned to core SERVER_CPU and
# loadgen to LOADGEN_CPU, as in bench/run.sh, so in `cross` three processes share one core:
# what a small box running the whole cluster sees. Processes this script started are stopped
# by their PID; every loadgen run is bounded by `timeout` and --max-secs.
#
# Redis runs with appendonly yes and appendfsync everysec, not the `always` the cluster spec
# asks for when an acknowledged draw must never be lost: `always` adds an fsync of the
# append-only file to every append, so latency and redis-server's CPU would measure this
# machine's disk (here a virtual one) rather than the relay. FSYNC=always measures that
# setting instead.
#
# Usage: bash bench/cluster.sh    (builds smolcanvas --features redis and loadgen, release; the
#   single phase runs that same binary without --redis. target/release/smolcanvas is then the
#   redis build: `cargo build --release` makes the default one again for bench/run.sh)
# Env (defaults in brackets): BIN [build target/release/smolcanvas with --features redis];
#   REDIS_SERVER [redis-server]; FSYNC [everysec]; CLUSTER_FLAGS [none]: more smolcanvas flags for
#   the --redis phases, e.g. "--redis-append-batch 1"; DRAWS [5000] RATE [500] (latency runs);
#   FANOUT_CLIENTS [100] FANOUT_SENDERS [5] FANOUT_RATE [20] FANOUT_SECS [5];
#   BASE_PORT [18700] (free ports are searched from there); SERVER_CPU [0] LOADGEN_CPU [1];
#   OUT [bench/out/DATE-cluster]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${REDIS_SERVER:=redis-server}" "${FSYNC:=everysec}" "${DRAWS:=5000}" "${RATE:=500}"
: "${FANOUT_CLIENTS:=100}" "${FANOUT_SENDERS:=5}" "${FANOUT_RATE:=20}" "${FANOUT_SECS:=5}"
: "${BASE_PORT:=18700}" "${SERVER_CPU:=0}" "${LOADGEN_CPU:=1}"
: "${OUT:=bench/out/$(date -u +%Y%m%d-%H%M%S)-cluster}"
command -v "$REDIS_SERVER" >/dev/null || {
  echo "bench/cluster.sh: $REDIS_SERVER not found (Debian: apt-get install redis-server)" >&2
  exit 1
}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --features redis
  BIN=target/release/smolcanvas
fi
cargo build --release --quiet -p loadgen
LOADGEN=target/release/loadgen
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()
TMP=$(mktemp -d)
# stop PID: SIGTERM, then SIGKILL after 5 s.
stop() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop "$pid"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NEXT_PORT=$BASE_PORT
# free_port: sets PORT to the next port from NEXT_PORT that nothing listens on.
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

# wait_port PORT PID WHAT: until PORT accepts (at most 10 s) while PID lives.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench/cluster.sh: $3 did not start on port $1" >&2
  exit 1
}

free_port
REDIS_PORT=$PORT
mkdir "$TMP/redis"
taskset -c "$SERVER_CPU" "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" \
  --appendonly yes --appendfsync "$FSYNC" --save "" --daemonize no --logfile "" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT" "$REDIS_PID" redis-server
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
read -ra CLUSTER <<<"--redis $REDIS_URL ${CLUSTER_FLAGS:-}"

# server NAME [FLAGS...]: starts a smolcanvas on a free port; sets SPORT and SPID.
server() {
  local name=$1
  shift
  free_port
  mkdir "$TMP/$name"
  taskset -c "$SERVER_CPU" "$BIN" --listen "127.0.0.1:$PORT" --data-dir "$TMP/$name" --log-level warn "$@" \
    2>"$OUT/$name.log" &
  SPID=$!
  SPORT=$PORT
  PIDS+=("$SPID")
  wait_port "$SPORT" "$SPID" "smolcanvas $name (see $OUT/$name.log)"
}

# measure PHASE SEND_PORT RECEIVE_PORT PIDS: the latency and fanout runs of a phase on board
# bench-PHASE; output in $OUT/PHASE-latency.txt and $OUT/PHASE-fanout.txt.
measure() {
  local phase=$1 send=$2 receive=$3 pids=$4 path=/b/bench-$1/ws
  local urls=(--send-url "ws://127.0.0.1:$send$path" --url "ws://127.0.0.1:$receive$path" --server-pid "$pids")
  sleep 1 # let the servers settle (and, in a cluster, hear of each other)
  echo "  $phase latency" >&2
  taskset -c "$LOADGEN_CPU" timeout -k 5 $((DRAWS / RATE + 90)) "$LOADGEN" latency "${urls[@]}" \
    --draws "$DRAWS" --rate "$RATE" --max-secs $((DRAWS / RATE + 80)) >"$OUT/$phase-latency.txt" 2>&1 || true
  echo "  $phase fanout" >&2
  taskset -c "$LOADGEN_CPU" timeout -k 5 $((FANOUT_SECS + 120)) "$LOADGEN" fanout "${urls[@]}" \
    --clients "$FANOUT_CLIENTS" --senders "$FANOUT_SENDERS" --rate "$FANOUT_RATE" --secs "$FANOUT_SECS" \
    --max-secs $((FANOUT_SECS + 110)) >"$OUT/$phase-fanout.txt" 2>&1 || true
}

T0=$SECONDS
echo "== single: one server, no Redis" >&2
server single
measure single "$SPORT" "$SPORT" "$SPID"
stop "$SPID"

echo "== redis1: one server with --redis" >&2
server redis1 "${CLUSTER[@]}"
measure redis1 "$SPORT" "$SPORT" "$SPID,$REDIS_PID"
stop "$SPID"

echo "== cross: servers A and B with --redis, sent on A, received on B" >&2
server cross-a "${CLUSTER[@]}"
A_PORT=$SPORT A_PID=$SPID
server cross-b "${CLUSTER[@]}"
measure cross "$A_PORT" "$SPORT" "$A_PID,$SPID,$REDIS_PID"
stop "$A_PID"
stop "$SPID"

# kv PHASE RUN KEY: a value from a run's output ("?" when missing).
kv() {
  local v
  v=$(grep -m1 "^$3=" "$OUT/$1-$2.txt" 2>/dev/null | cut -d= -f2-)
  echo "${v:-?}"
}

# lat PHASE RUN p50|p99: the relay latency to the receivers, the clients of --url (loadgen's
# target1): in a fanout that leaves out the senders, which get each other's draws on A.
lat() {
  if [ "$2" = fanout ]; then kv "$1" "$2" "target1_latency_$3_ms"; else kv "$1" "$2" "latency_$3_ms"; fi
}

# share PHASE RUN: each process's CPU per delivered draw, in µs, "/"-separated.
share() {
  local each delivered
  each=$(kv "$1" "$2" server_cpu_secs_each)
  delivered=$(kv "$1" "$2" delivered)
  [ "$each" != "?" ] || each=$(kv "$1" "$2" server_cpu_secs)
  echo "$each" | awk -F, -v d="$delivered" '{ for (i = 1; i <= NF; i++) printf "%s%.1f", (i > 1 ? " / " : ""), (d > 0 ? 1e6 * $i / d : 0) }'
}

# round X: X to one decimal ("?" stays).
round() { if [ "$1" = "?" ]; then echo "?"; else printf '%.1f' "$1"; fi; }

PHASES=(single redis1 cross)
RUNS=(latency fanout)
echo "# cluster bench: DRAWS=$DRAWS RATE=$RATE FANOUT=$FANOUT_CLIENTS clients x $FANOUT_SENDERS senders x $FANOUT_RATE/s x ${FANOUT_SECS}s FSYNC=$FSYNC CLUSTER_FLAGS=${CLUSTER_FLAGS:-} BIN=$BIN"
for p in "${PHASES[@]}"; do
  for r in "${RUNS[@]}"; do
    for key in delivered expected_deliveries server_error_msgs; do echo "${p}_${r}_$key=$(kv "$p" "$r" "$key")"; done
    echo "${p}_${r}_latency_p50_ms=$(lat "$p" "$r" p50)"
    echo "${p}_${r}_latency_p99_ms=$(lat "$p" "$r" p99)"
    echo "${p}_${r}_cpu_us_per_delivery=$(kv "$p" "$r" server_cpu_us_per_delivery)"
    echo "${p}_${r}_cpu_secs_each=$(kv "$p" "$r" server_cpu_secs_each)"
  done
done

{
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $((SECONDS - T0)) s; Redis appendfsync $FSYNC${CLUSTER_FLAGS:+, cluster flags $CLUSTER_FLAGS}; raw output in $OUT"
  echo
  echo "| phase | run | delivered / expected | relay p50 / p99 | CPU per delivered draw | of which (per process) |"
  echo "|---|---|---|---|---|---|"
  for p in "${PHASES[@]}"; do
    case $p in
      single) procs="server" ;;
      redis1) procs="server / redis" ;;
      cross) procs="A / B / redis" ;;
    esac
    for r in "${RUNS[@]}"; do
      if [ "$r" = latency ]; then what="latency ($DRAWS draws at $RATE/s)"; else what="fanout to $FANOUT_CLIENTS"; fi
      echo "| $p | $what | $(kv "$p" "$r" delivered) / $(kv "$p" "$r" expected_deliveries) |" \
        "$(lat "$p" "$r" p50) / $(lat "$p" "$r" p99) ms | $(round "$(kv "$p" "$r" server_cpu_us_per_delivery)") µs |" \
        "$procs: $(share "$p" "$r") µs |"
    done
  done
} | tee "$OUT/table.md"

# Passes when every run delivered every draw and no error came back.
failed=0
for p in "${PHASES[@]}"; do
  for r in "${RUNS[@]}"; do
    if [ "$(kv "$p" "$r" delivered)" != "$(kv "$p" "$r" expected_deliveries)" ] || [ "$(kv "$p" "$r" delivered)" = "?" ] ||
      [ "$(kv "$p" "$r" server_error_msgs)" != 0 ]; then
      echo "bench/cluster.sh: $p $r lost draws or got errors (see $OUT/$p-$r.txt)" >&2
      failed=1
    fi
  done
done
exit $failed
