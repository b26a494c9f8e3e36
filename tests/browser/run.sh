#!/usr/bin/env bash
# Browser end-to-end test of smolcanvas: makes sure Chromium and the npm
# dependencies are present, builds the server, and runs the node test.
# Never downloads a browser build: Chromium comes from Debian's packages.
# SMOLCANVAS_BIN=path skips the cargo build and tests that binary instead.
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

if [ -z "${SMOLCANVAS_BIN:-}" ]; then
  (cd "$root" && cargo build)
fi

cd "$here"
# Every *.test.mjs file, one at a time (each starts its own servers); or the files given as arguments.
[ "$#" -gt 0 ] || set -- *.test.mjs
exec node --test --test-concurrency=1 --test-reporter=spec "$@"
