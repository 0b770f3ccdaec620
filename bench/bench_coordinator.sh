#!/usr/bin/env bash
# The coordinator under load, each figure with its baseline from the same run:
#   HTTP: GET /api/v1/jobs/{id} of a finished job (a store read per request) against GET /healthz
#         (no database), with wrk: keep-alive, 2 threads, 32 connections, DURATION seconds each;
#   ingestion: nurion-bench-coordinator (lineage rows/s through the ingester against a libpq COPY).
# The coordinator runs in local launcher mode on a database of its own, dropped at the end.
# Needs scripts/services up (NURION_BROKERS, NURION_DATABASE_URL) and wrk (scripts/deps).
#
#   bench/bench_coordinator.sh BUILD_DIR [DURATION_S] [EVENTS]
set -euo pipefail

build=${1:?usage: bench_coordinator.sh BUILD_DIR [DURATION_S] [EVENTS]}
secs=${2:-10}
events=${3:-100000}
: "${NURION_DATABASE_URL:?not set: scripts/services up, then . .cache/services.env}"
: "${NURION_BROKERS:?not set: scripts/services up, then . .cache/services.env}"
command -v wrk >/dev/null || { echo "wrk not found: run scripts/deps" >&2; exit 2; }

tmp=$(mktemp -d)
db=nubench_http_$$
base=${NURION_DATABASE_URL%/*}
coord=
cleanup() {
    if [ -n "$coord" ] && kill -0 "$coord" 2>/dev/null; then
        kill -TERM "$coord"
        wait "$coord" 2>/dev/null || true
    fi
    psql -q "$NURION_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

psql -q "$NURION_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
NURION_DATABASE_URL=$base/$db "$build/bin/nurion" coordinator --listen 127.0.0.1:0 \
    --set autoscale.enabled=false --set "launcher.exe=$build/bin/nurion" >"$tmp/coord.log" 2>&1 &
coord=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*comp=coordinator msg="listening" port=\([0-9]*\).*/\1/p' "$tmp/coord.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "the coordinator did not start:" >&2; cat "$tmp/coord.log" >&2; exit 1; }
url=http://127.0.0.1:$port

# A finished job to read: 1,000 rows through map into a file sink.
id=bench-http-$$
mkdir -p "$tmp/out"
curl -sf -o /dev/null -H 'Content-Type: application/json' -X POST "$url/api/v1/jobs" --data-binary @- <<EOF
{"job_id":"$id","stages":[
 {"id":"src","operator":"generate","partitions":2,"config":{"rows":1000,"split_rows":100}},
 {"id":"dbl","operator":"map","upstream":["src"],"partitions":2,"config":{"columns":{"y":"id * 2"}}},
 {"id":"out","operator":"file_sink","upstream":["dbl"],"partitions":2,
  "config":{"path":"$tmp/out","format":"jsonl"}}]}
EOF
state=
for _ in $(seq 1 600); do
    state=$(curl -sf "$url/api/v1/jobs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = succeeded ] && break
    sleep 0.2
done
[ "$state" = succeeded ] || { echo "the job did not finish: $state" >&2; exit 1; }

# requests/s and p99 latency of one endpoint, as "RPS P99"
load() {
    local out
    out=$(wrk -t2 -c32 -d"${secs}s" --latency "$url$1")
    printf '%s %s\n' "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")" \
        "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
read -r h_rps h_p99 < <(load /healthz)
read -r j_rps j_p99 < <(load "/api/v1/jobs/$id")

printf 'wrk, keep-alive, 2 threads, 32 connections, %s s per endpoint; the coordinator runs 4 HTTP threads.\n\n' "$secs"
printf '| endpoint | requests/s | p99 latency | vs baseline |\n|---|---:|---:|---:|\n'
printf '| GET /healthz (baseline, no database) | %.0f | %s | 1.00 |\n' "$h_rps" "$h_p99"
printf '| GET /api/v1/jobs/{id} (finished job, 3 stages) | %.0f | %s | %.2f |\n' "$j_rps" "$j_p99" \
    "$(awk -v a="$j_rps" -v b="$h_rps" 'BEGIN {print a / b}')"

curl -sf -o /dev/null -X DELETE "$url/api/v1/jobs/$id?topics=true" || true

printf '\nLineage ingestion (`nurion-bench-coordinator`):\n\n'
"$build/bin/nurion-bench-coordinator" "$events"
