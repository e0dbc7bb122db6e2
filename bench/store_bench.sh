#!/usr/bin/env bash
# Durable append benchmark, as recorded in bench/RESULTS.md:
#   1. builds bench/store_bench in $BUILD_DIR (default build-bench/),
#   2. starts a private, DURABLE PostgreSQL 15 cluster (fsync, synchronous_commit
#      and full_page_writes on: an acknowledged commit is on disk),
#   3. for each concurrency C in $CONCURRENCY (default "1 8 64"):
#      - store_bench: C writer threads, each appending one event per unit of
#        work to its own subscription through the group-commit writer,
#      - store_bench --direct (unless DIRECT=0): the same appends, but each
#        thread commits alone on its own connection: what group commit saves,
#      - pgbench: C clients, each running one single-row INSERT per transaction
#        (bench/pgbench_insert.sql) against the same server,
#      each for $DURATION_S seconds (default 10) after a CHECKPOINT,
#   4. prints one JSON object per figure on stdout (progress goes to stderr),
#   5. stops the cluster and deletes its folder whatever happened.
# Usage: bash bench/store_bench.sh
#        DURATION_S=3 CONCURRENCY="1 64" bash bench/store_bench.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RECUR_ROOT"

BUILD_DIR="${BUILD_DIR:-build-bench}"
DURATION_S="${DURATION_S:-10}"
CONCURRENCY="${CONCURRENCY:-1 8 64}"
# Extra store_bench options, e.g. "--max-wait-us 0 --max-batch 256".
STORE_BENCH_ARGS="${STORE_BENCH_ARGS:-}"
# PROFILE=1 loads pg_stat_statements, so that store_bench reports the
# statements its role ran per batch (it costs a little on both sides).
PROFILE="${PROFILE:-0}"
DIRECT="${DIRECT:-1}"

log() { say "$@" >&2; }

log "building store_bench in $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRECUR_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" --target store_bench >&2

# Durable on purpose (these are also PostgreSQL's defaults). Room for pgbench's
# 64 clients plus the store's connections.
conf=("fsync = on" "synchronous_commit = on" "full_page_writes = on"
  "max_connections = 200")
if ((PROFILE)); then
  conf+=("shared_preload_libraries = 'pg_stat_statements'"
    "pg_stat_statements.track = all")
fi
log "a durable cluster for the benchmark"
pg_scratch_start recur-bench recur_bench "${conf[@]}"
scratch="$SCRATCH"
port="$PG_PORT"
db="$(pg_conninfo "$scratch/run" "$port" recur_bench)"
sql() { pg_sql "$scratch/run" "$port" recur_bench "$1"; }
sql "$(cat bench/pgbench_schema.sql)" >/dev/null
if ((PROFILE)); then sql "CREATE EXTENSION pg_stat_statements" >/dev/null; fi

settings="$(sql "SELECT string_agg(format('\"%s\":\"%s\"', name, setting), ',' ORDER BY name)
  FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes',
  'wal_sync_method','commit_delay','shared_buffers','max_connections',
  'shared_preload_libraries')")"
printf '{"bench":"server","version":"%s","nproc":%s,%s}\n' \
  "$(sql "SHOW server_version")" "$(nproc)" "$settings"

# pgbench is only a client: it runs as the caller, like store_bench.
# pgbench writes one line per transaction (…, latency_us, …) to its -l log;
# prints "<p50_ms> <p99_ms>" from those files.
latency_percentiles() {
  cat "$@" | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "null null"; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
      printf "%.3f %.3f\n", p50 / 1000, p99 / 1000
    }'
}

run_pgbench() {
  local clients="$1" threads out tps pct
  threads=$((clients < $(nproc) ? clients : $(nproc)))
  rm -rf "$scratch/pgbench_logs"
  mkdir "$scratch/pgbench_logs"
  out="$("$PG_BIN/pgbench" --host="$scratch/run" --port="$port" \
    --username=postgres --no-vacuum --protocol=prepared \
    --client="$clients" --jobs="$threads" --time="$DURATION_S" \
    --file="$RECUR_ROOT/bench/pgbench_insert.sql" \
    --log --log-prefix="$scratch/pgbench_logs/tx" recur_bench 2>&1)" \
    || { echo "$out" >&2; die "pgbench failed"; }
  tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")"
  read -r -a pct <<<"$(latency_percentiles "$scratch"/pgbench_logs/tx*)"
  printf '{"bench":"pgbench_insert","clients":%s,"seconds":%s,"tps":%.0f,"p50_ms":%s,"p99_ms":%s}\n' \
    "$clients" "$DURATION_S" "$tps" "${pct[0]}" "${pct[1]}"
}

for c in $CONCURRENCY; do
  log "store_bench: $c writers for ${DURATION_S}s"
  sql "CHECKPOINT" >/dev/null
  # shellcheck disable=SC2086 # STORE_BENCH_ARGS is a list of options
  "$BUILD_DIR/bench/store_bench" --db "$db" --writers "$c" \
    --duration-s "$DURATION_S" $STORE_BENCH_ARGS
  if ((DIRECT)); then
    log "store_bench --direct: $c writers for ${DURATION_S}s"
    sql "CHECKPOINT" >/dev/null
    "$BUILD_DIR/bench/store_bench" --db "$db" --writers "$c" \
      --duration-s "$DURATION_S" --direct
  fi
  log "pgbench: $c clients for ${DURATION_S}s"
  sql "CHECKPOINT" >/dev/null
  run_pgbench "$c"
done

if ((PROFILE)); then
  # Where the store's time went on the server, statement by statement.
  sql "SELECT json_build_object('bench', 'profile', 'calls', s.calls,
      'mean_ms', round(s.mean_exec_time::numeric, 4),
      'total_ms', round(s.total_exec_time::numeric),
      'query', left(regexp_replace(s.query, '\s+', ' ', 'g'), 100))
    FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
    WHERE r.rolname = 'recur_app' ORDER BY s.total_exec_time DESC LIMIT 8"
fi
