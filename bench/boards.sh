#!/usr/bin/env bash
# bench/boards.sh: what boards cost smolcanvas, measured with tools/loadgen against a release build.
#
#   1. A newcomer's sync and board.png on a board with a painted floor and a full undo window
#      (600 strokes of 20 segments: 100 painted into the floor, 500 live), 100 clients on it
#      (`loadgen board`).
#   2. Memory: RSS of the empty server; with that one board loaded and its clients gone; then
#      20 boards of 100 strokes each drawn one after another, RSS with all of them loaded, and
#      RSS 5 s after --board-unload-secs once every client left (all unloaded).
#
# Usage: bash bench/boards.sh        (builds the release server and loadgen first)
# Env: BIN=path (a smolcanvas binary to measure instead, e.g. the static musl build),
#      UNLOAD_SECS [60: the 20 boards are all loaded at once], PORT [18400].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UNLOAD_SECS=${UNLOAD_SECS:-60}
PORT=${PORT:-18400}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/smolcanvas
fi
cargo build --release --quiet -p loadgen
LOADGEN=target/release/loadgen

data=$(mktemp -d)
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$data" --board-unload-secs "$UNLOAD_SECS" --log-level warn &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

empty=$(rss)
echo "rss_empty_kib=$empty"

echo "# one board: 600 strokes x 20 segments, 100 clients, 20 newcomers and 20 board.png"
"$LOADGEN" board --url "ws://127.0.0.1:$PORT/b/bench/ws" --server-pid "$pid" --max-secs 240 | grep -v '^#'
# The board stays loaded for UNLOAD_SECS after its clients left.
one=$(rss)
echo "rss_one_board_loaded_kib=$one"
echo "one_board_over_empty_kib=$((one - empty))"
sleep $((UNLOAD_SECS + 5))
echo "rss_after_unload_kib=$(rss)"

echo "# 20 boards of 100 strokes x 20 segments, one after another"
for i in $(seq 20); do
  "$LOADGEN" board --url "ws://127.0.0.1:$PORT/b/mem$i/ws" --strokes 100 --clients 2 --rounds 1 \
    --settle-secs 0.1 --max-secs 60 >/dev/null
done
echo "rss_20_boards_kib=$(rss)"
sleep $((UNLOAD_SECS + 5))
after=$(rss)
echo "rss_20_boards_unloaded_kib=$after"
echo "unloaded_over_empty_percent=$(((after - empty) * 100 / empty))"
