#!/usr/bin/env bash
# bench/build.sh: builds what bench/run.sh measures: smolcanvas and loadgen
# (cargo, release), the Go + gorilla/websocket peer (Debian packages, offline
# GOPATH build), the Node + ws peer (npm ci) and the floor peer (cargo, its own
# workspace: one send per receiver and nothing else, the least any server can do). Installs missing Debian
# packages with apt-get when run as root.
# Usage: bash bench/build.sh [peers]   (peers: only the two peers, no cargo build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || need+=(golang-github-gorilla-websocket-dev)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  [ "$(id -u)" = 0 ] || { echo "bench/build.sh: run as root or install ${need[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ "${1:-}" != peers ]; then
  echo "== cargo build --release (smolcanvas, loadgen)"
  cargo build --release
  cargo build --release -p loadgen
fi

echo "== go-gorilla ($(go version | cut -d' ' -f3))"
(cd bench/peers/go-gorilla && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="${GOCACHE:-/tmp/smolcanvas-bench-gocache}" go build -o go-gorilla .)

echo "== node-ws (node $(node --version))"
(cd bench/peers/node-ws && npm ci --no-audit --no-fund --loglevel=error)

echo "== floor (cargo build --release in bench/peers/floor)"
(cd bench/peers/floor && cargo build --release --quiet)

echo "bench/build.sh: done"
