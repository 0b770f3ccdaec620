#!/usr/bin/env bash
# bench_pg.sh — file_source (JSON Lines) -> filter -> postgres_sink through `nurion run` on the
# real broker and PostgreSQL, end to end, against a baseline in the same run: the same rows,
# filtered by awk, COPYed straight into PostgreSQL by psql.
#
#   bench/bench_pg.sh NURION_BIN [ROWS]     (default 1000000 rows; needs NURION_BROKERS and
#                                            NURION_DATABASE_URL)
#
# Prints a Markdown table: rows read, rows written, seconds and rows/s (of the input) for each.
set -euo pipefail

nurion=${1:?usage: bench_pg.sh NURION_BIN [ROWS]}
rows=${2:-1000000}
: "${NURION_BROKERS:?}" "${NURION_DATABASE_URL:?}"

id="bench-pg-$$-$(date +%s)"
table="bench_pg_$$_$(date +%s)"
dir=$(mktemp -d)
cleanup() {
    psql -q "$NURION_DATABASE_URL" -c "DROP TABLE IF EXISTS $table, ${table}_copy" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

now() { date +%s.%N; }

# ~75 bytes a row; score = (id * 7919 % 1000) / 10, so "score >= 50" keeps exactly half
mkdir -p "$dir/in"
awk -v n="$rows" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"id\":%d,\"name\":\"name-%d\",\"score\":%.1f,\"cat\":\"c%d\"}\n",
               i, i, (i * 7919 % 1000) / 10, i % 10
}' >"$dir/in/rows.jsonl"
want=$((rows / 2))

cat >"$dir/job.json" <<EOF
{"job_id": "$id", "format": "avro", "stages": [
 {"id": "src", "operator": "file_source", "partitions": 2, "config": {
   "paths": "$dir/in/*.jsonl", "format": "jsonl", "split_bytes": 4194304, "split_rows": 10000,
   "columns": [["id", "int64"], ["name", "string"], ["score", "double"], ["cat", "string"]]}},
 {"id": "keep", "operator": "filter", "upstream": ["src"], "config": {"where": "score >= 50.0"}},
 {"id": "pg", "operator": "postgres_sink", "upstream": ["keep"],
  "config": {"table": "$table", "create": true}}]}
EOF

t0=$(now)
"$nurion" run --quiet --cleanup "$dir/job.json" >"$dir/run.log" 2>&1 || {
    echo "nurion run failed:" >&2
    tail -n 20 "$dir/run.log" >&2
    exit 1
}
t1=$(now)
got=$(psql -qtA "$NURION_DATABASE_URL" -c "SELECT count(*) FROM $table")

psql -q "$NURION_DATABASE_URL" -c \
    "CREATE TABLE ${table}_copy (id bigint NOT NULL, name text NOT NULL, score double precision NOT NULL, cat text NOT NULL)"
t2=$(now)
awk -F'[:,}]' '$6 + 0 >= 50.0 {
    gsub(/"/, "", $4); gsub(/"/, "", $8); print $2 "\t" $4 "\t" $6 "\t" $8
}' "$dir/in/rows.jsonl" |
    psql -q "$NURION_DATABASE_URL" -c "COPY ${table}_copy FROM STDIN"
t3=$(now)
got_copy=$(psql -qtA "$NURION_DATABASE_URL" -c "SELECT count(*) FROM ${table}_copy")

[ "$got" = "$want" ] || echo "warning: nurion wrote $got rows, expected $want" >&2
[ "$got_copy" = "$want" ] || echo "warning: COPY wrote $got_copy rows, expected $want" >&2

awk -v rows="$rows" -v got="$got" -v gotc="$got_copy" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
    -v t3="$t3" 'BEGIN {
    a = t1 - t0
    b = t3 - t2
    print "| pipeline | rows read | rows written | seconds | rows/s (read) |"
    print "| --- | ---: | ---: | ---: | ---: |"
    printf "| `nurion run`: file_source (jsonl) -> filter -> postgres_sink | %d | %d | %.2f | %.0f |\n",
           rows, got, a, rows / a
    printf "| baseline: awk filter -> psql COPY | %d | %d | %.2f | %.0f |\n", rows, gotc, b, rows / b
    printf "\nnurion end to end (topics, plan, 3 stages, ledger) takes %.1fx the time of the bare COPY.\n", a / b
}'
