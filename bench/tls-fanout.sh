#!/usr/bin/env bash
# bench/tls-fanout.sh: a fan-out over TLS. The load tool speaks plain ws:// only, so a local
# nginx terminates nothing but opens one TLS connection to the server per client
# (ws:// -> nginx -> wss://): the server sees CLIENTS TLS connections and is measured as in
# bench/run.sh (server pinned to core SERVER_CPU, load tool and nginx to LOADGEN_CPU, server
# CPU per delivered draw from /proc). The certificate is a throwaway self-signed one.
#
# Usage: bash bench/tls-fanout.sh [SERVER_BINARY]   (default: target/release/smolcanvas)
#   CLIENTS [100] SENDERS [10] RATE [50] SECS [10]; PORT [18950] (nginx; the server PORT+1)
#   SERVER_CPU [0] LOADGEN_CPU [1]; OUT [bench/out/tls-DATE]
# Needs nginx and openssl (Debian: apt-get install nginx openssl); build first with
# cargo build --release && cargo build --release -p loadgen.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SERVER=${1:-target/release/smolcanvas}
: "${CLIENTS:=100}" "${SENDERS:=10}" "${RATE:=50}" "${SECS:=10}" "${PORT:=18950}"
: "${SERVER_CPU:=0}" "${LOADGEN_CPU:=1}" "${OUT:=bench/out/tls-$(date -u +%Y%m%d-%H%M%S)}"
for tool in nginx openssl; do command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }; done
for bin in "$SERVER" target/release/loadgen; do [ -x "$bin" ] || { echo "missing $bin: cargo build --release" >&2; exit 1; }; done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
DATA=$(mktemp -d)
SERVER_PID=""
NGINX_PID=""
cleanup() {
  [ -z "$SERVER_PID" ] || { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  [ -z "$NGINX_PID" ] || { kill -QUIT "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; }
  rm -rf "$DATA"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
cat >"$OUT/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $OUT;
  proxy_temp_path $OUT;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$PORT;
    location / {
      proxy_pass https://127.0.0.1:$((PORT + 1));
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$http_host;
      proxy_ssl_verify off;
      proxy_read_timeout 1h;
      proxy_buffering off;
    }
  }
}
EOF
taskset -c "$LOADGEN_CPU" nginx -c "$OUT/nginx.conf" -p "$OUT" 2>"$OUT/nginx.err" &
NGINX_PID=$!
taskset -c "$SERVER_CPU" "$SERVER" --listen "127.0.0.1:$((PORT + 1))" --data-dir "$DATA" --log-level warn \
  --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" 2>"$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + 1))") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
sleep 1
taskset -c "$LOADGEN_CPU" timeout -k 5 $((SECS + 60)) target/release/loadgen fanout --url "ws://127.0.0.1:$PORT/ws" \
  --clients "$CLIENTS" --senders "$SENDERS" --rate "$RATE" --secs "$SECS" --server-pid "$SERVER_PID" \
  >"$OUT/loadgen.txt" 2>"$OUT/loadgen.err" || true
echo "tls fanout clients=$CLIENTS senders=$SENDERS rate=$RATE secs=$SECS server=$SERVER"
grep -E '^(delivered|expected_deliveries|latency_p50_ms|latency_p99_ms|server_cpu_us_per_delivery|server_user_us_per_delivery|server_sys_us_per_delivery)=' \
  "$OUT/loadgen.txt"
