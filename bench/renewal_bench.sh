#!/usr/bin/env bash
# Renewal benchmark (issue 4), as recorded in bench/RESULTS.md: builds
# bench/renewal_bench in $BUILD_DIR (default build-bench/), runs it on the
# in-memory store, then on a private durable PostgreSQL 15 cluster (fsync and
# synchronous_commit on), and prints one JSON line per run.
#
# Usage: bash bench/renewal_bench.sh
#        N=20000 PG_N=5000 bash bench/renewal_bench.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RECUR_ROOT"

BUILD_DIR="${BUILD_DIR:-build-bench}"
N="${N:-100000}"
PG_N="${PG_N:-$N}"

log() { say "$@" >&2; }
log "building renewal_bench in $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRECUR_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" --target renewal_bench >&2

"$BUILD_DIR/bench/renewal_bench" --store memory --n "$N" --writer actor
"$BUILD_DIR/bench/renewal_bench" --store memory --n "$N" --writer inline
"$BUILD_DIR/bench/renewal_bench" --store memory --n "$N" --writer group

log "a durable cluster for the benchmark"
pg_scratch_start recur-renewal recur_bench "fsync = on" \
  "synchronous_commit = on" "full_page_writes = on" "max_connections = 200"
db="$(pg_conninfo "$SCRATCH/run" "$PG_PORT" recur_bench)"
# The durable settings of bench/RESULTS.md: activations read PostgreSQL on
# the scheduler threads, hence 16 threads (sharing: idle ones block instead
# of polling) and 16 connections; four group-commit lanes; claims at
# half-window refills rather than every millisecond; and ANALYZE after the
# set-up, which loads N subscriptions faster than autovacuum's first pass.
#
# Also prints {"server_cpu_s", "bench_cpu_s", "load_at_start"} for that run:
# the CPU (user + system) of the cluster's processes and of the benchmark
# process over the run and its set-up, and the 1-minute load average before.
server_cpu_ticks() {
  local pm child
  pm="$(head -n 1 "$PG_DATA/postmaster.pid")"
  {
    # The postmaster's own time and that of its children that exited ...
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
    # ... and of those still running (backends, walwriter, autovacuum).
    for child in $(cat "/proc/$pm/task/"*/children 2>/dev/null); do
      awk '{ print $14 + $15 }' "/proc/$child/stat" 2>/dev/null || true
    done
  } | awk '{ s += $1 } END { print s }'
}
load_at_start="$(cut -d ' ' -f 1 /proc/loadavg)"
server_before="$(server_cpu_ticks)"
bench_cpu="$SCRATCH/bench_cpu"
/usr/bin/time -o "$bench_cpu" -f '%U %S' \
  "$BUILD_DIR/bench/renewal_bench" --store pg --db "$db" --n "$PG_N" \
  --writer group --threads 16 --policy sharing --pool 16 --lanes 4 \
  --poll-ms 50 --after-setup "$(printf '%q ' "$PG_BIN/psql" "$db" -qXc ANALYZE)"
sleep 1 # the benchmark's backends exit and are reaped: their time moves
        # to the postmaster's children total
server_after="$(server_cpu_ticks)"
read -r bench_user bench_sys < <(tail -n 1 "$bench_cpu")
awk -v b="$server_before" -v a="$server_after" -v hz="$(getconf CLK_TCK)" \
  -v u="$bench_user" -v s="$bench_sys" -v load="$load_at_start" 'BEGIN {
    printf "{\"server_cpu_s\":%.1f,\"bench_cpu_s\":%.1f,\"load_at_start\":%s}\n",
      (a - b) / hz, u + s, load }'
