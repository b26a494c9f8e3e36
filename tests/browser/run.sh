#!/usr/bin/env bash
# Browser end-to-end test of smolcanvas: makes sure Chromium and the npm
# dependencies are present, builds the server, and runs the node test.
# Never downloads a browser build: Chromium comes from Debian's packages.
# SMOLCANVAS_BIN=path skips the cargo build and tests that binary instead.
# cluster.test.mjs (two servers with --redis, one redis-server) also needs a server built
# with `--features redis` (SMOLCANVAS_REDIS_BIN, else target/debug/smolcanvas-redis, built
# here when SMOLCANVAS_BIN is not set; else SMOLCANVAS_BIN if built with it) and
# redis-server (REDIS_SERVER, else the one on PATH): without them it is skipped with a
# message, or, when SMOLCANVAS_REQUIRE_REDIS is set, run.sh fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ ! -x /usr/bin/chromium ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

command -v node >/dev/null || { echo "run.sh: Node.js (>= 20) and npm are required" >&2; exit 1; }

if [ ! -d "$here/node_modules" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

cd "$here"
# Every *.test.mjs file, one at a time (each starts its own servers); or the files given as arguments.
[ "$#" -gt 0 ] || set -- *.test.mjs

cluster=no
for f in "$@"; do [ "$(basename "$f")" = cluster.test.mjs ] && cluster=yes; done
has_redis_feature() { sed -n '/^\[features\]/,/^\[/p' "$root/Cargo.toml" | grep -Eq '^redis *='; }
# Whether binary $1 was built with the redis feature. Every build knows the flag; one without
# the feature refuses it (exit code 2, naming it) before trying to reach Redis.
takes_redis() {
  [ -x "$1" ] || return 1
  local dir out rc=0
  dir=$(mktemp -d)
  out=$(timeout 10 "$1" --redis redis://127.0.0.1:1/ --listen 127.0.0.1:0 --data-dir "$dir" --log-level error 2>&1) || rc=$?
  rm -rf "$dir"
  ! { [ "$rc" = 2 ] && grep -qi redis <<<"$out"; }
}

if [ "$cluster" = yes ] && [ -z "${SMOLCANVAS_REDIS_BIN:-}" ]; then
  if [ -z "${SMOLCANVAS_BIN:-}" ] && has_redis_feature; then
    # Built first and copied aside, so that the plain build below is what the other tests run.
    (cd "$root" && cargo build --features redis && cp target/debug/smolcanvas target/debug/smolcanvas-redis)
    export SMOLCANVAS_REDIS_BIN="$root/target/debug/smolcanvas-redis"
  elif [ -n "${SMOLCANVAS_BIN:-}" ] && takes_redis "$SMOLCANVAS_BIN"; then
    export SMOLCANVAS_REDIS_BIN="$SMOLCANVAS_BIN"
  fi
fi

if [ -z "${SMOLCANVAS_BIN:-}" ]; then
  (cd "$root" && cargo build)
fi

if [ "$cluster" = yes ]; then
  missing=()
  [ -n "${SMOLCANVAS_REDIS_BIN:-}" ] && [ -x "$SMOLCANVAS_REDIS_BIN" ] ||
    missing+=("a smolcanvas built with --features redis (${SMOLCANVAS_REDIS_BIN:-none})")
  : "${REDIS_SERVER:=$(command -v redis-server || true)}"
  [ -n "$REDIS_SERVER" ] && [ -x "$REDIS_SERVER" ] || missing+=("redis-server (${REDIS_SERVER:-none on PATH}; apt-get install redis-server)")
  export REDIS_SERVER
  if [ ${#missing[@]} -gt 0 ]; then
    if [ -n "${SMOLCANVAS_REQUIRE_REDIS:-}" ]; then
      printf 'run.sh: SMOLCANVAS_REQUIRE_REDIS is set and cluster.test.mjs needs %s\n' "${missing[@]}" >&2
      exit 1
    fi
    printf 'run.sh: skipping cluster.test.mjs, it needs %s\n' "${missing[@]}" >&2
    kept=()
    for f in "$@"; do [ "$(basename "$f")" = cluster.test.mjs ] || kept+=("$f"); done
    [ ${#kept[@]} -gt 0 ] || exit 0
    set -- "${kept[@]}"
  fi
fi

exec node --test --test-concurrency=1 --test-reporter=spec "$@"
