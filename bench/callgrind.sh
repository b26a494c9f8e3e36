#!/usr/bin/env bash
# bench/callgrind.sh: instructions the server executes per delivered draw, counted by
# valgrind's callgrind for a fixed fan-out from the load tool. Unlike CPU time this count
# barely moves between runs on a busy machine, so a regression in the relay path shows up
# as a number. The server runs under callgrind with instruction counting switched on only
# for the fan-out itself (after the clients connected, zeroed with callgrind_control;
# dumped when the load tool reports), so startup, joins and shutdown are not counted.
#
# Usage: bash bench/callgrind.sh [--top N]
#   CLIENTS [100] SENDERS [5] RATE [10] SECS [4]: the fan-out (CLIENTS-1 deliveries a draw)
#   PORT [18990]; OUT [bench/out/callgrind-DATE]
#   --top N: also print the N functions with the most instructions (self cost)
# Needs valgrind (apt-get install valgrind). Builds the `profiling` profile (release with
# symbols) of smolcanvas and the release load tool.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOP=0
[ "${1:-}" = --top ] && TOP=${2:?--top N}
: "${CLIENTS:=100}" "${SENDERS:=5}" "${RATE:=10}" "${SECS:=4}" "${PORT:=18990}"
: "${OUT:=bench/out/callgrind-$(date -u +%Y%m%d-%H%M%S)}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
cargo build --quiet --profile profiling --bin smolcanvas
cargo build --quiet --release -p loadgen
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
DATA=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -z "$SERVER_PID" ] || { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  rm -rf "$DATA"
}
trap cleanup EXIT

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  target/profiling/smolcanvas --listen "127.0.0.1:$PORT" --data-dir "$DATA" --log-level warn \
  2>"$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server did not start (see $OUT/server.log)" >&2; exit 1; }
  sleep 0.1
done

# The load tool's stdout is line-buffered: zero the counters once the ramp is over, dump
# them once the deliveries are counted (usually before it exits and its clients disconnect).
target/release/loadgen fanout --url "ws://127.0.0.1:$PORT/ws" --clients "$CLIENTS" --senders "$SENDERS" \
  --rate "$RATE" --secs "$SECS" --drain-secs 20 --max-secs 300 >"$OUT/loadgen.txt" 2>"$OUT/loadgen.err" &
LOADGEN=$!
zeroed=0
dumped=0
while kill -0 "$LOADGEN" 2>/dev/null; do
  if [ $zeroed = 0 ] && grep -q '^open_after_ramp=' "$OUT/loadgen.txt"; then
    callgrind_control --zero "$SERVER_PID" >/dev/null
    zeroed=1
  fi
  if [ $dumped = 0 ] && grep -q '^delivered=' "$OUT/loadgen.txt"; then
    callgrind_control --dump=fanout "$SERVER_PID" >/dev/null
    dumped=1
  fi
  sleep 0.05
done
wait "$LOADGEN" || true
grep -q '^delivered=' "$OUT/loadgen.txt" && [ $zeroed = 1 ] || { echo "the fan-out did not run (see $OUT/loadgen.txt)" >&2; exit 1; }
# The load tool may exit between two polls: then its clients' disconnects are counted too
# (a few hundred thousand instructions, the same every run).
[ $dumped = 1 ] || callgrind_control --dump=fanout "$SERVER_PID" >/dev/null
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

dump=$(grep -l '^desc: Trigger: .*fanout' "$OUT"/callgrind.out.* | head -1 || true)
[ -n "$dump" ] || dump=$(ls "$OUT"/callgrind.out.*.1 | head -1)
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
delivered=$(grep -m1 '^delivered=' "$OUT/loadgen.txt" | cut -d= -f2)
expected=$(grep -m1 '^expected_deliveries=' "$OUT/loadgen.txt" | cut -d= -f2)
echo "fanout clients=$CLIENTS senders=$SENDERS rate=$RATE secs=$SECS"
echo "delivered=$delivered expected=$expected"
echo "instructions=$ir"
awk -v ir="$ir" -v d="$delivered" 'BEGIN { printf "instructions_per_delivery=%.0f\n", ir / (d > 0 ? d : 1) }'
if [ "$TOP" -gt 0 ]; then
  echo "# top $TOP functions by self instructions ($dump)"
  callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -n "$TOP"
fi
