#!/usr/bin/env bash
# HTTP benchmark of recurd with wrk on loopback, as recorded in
# bench/RESULTS.md (issue 5: ≥ 20,000 GET/s and ≥ 5,000 durable commands/s
# with p99 < 20 ms on 2 cores, wrk on the same machine):
#   1. installs wrk (Debian package) if it is missing,
#   2. builds recurd in $BUILD_DIR (default build-bench/, RelWithDebInfo),
#   3. starts a private, DURABLE PostgreSQL 15 cluster (fsync and
#      synchronous_commit on) and recurd on it, with the per-tenant rate limit
#      off (--rate-limit 0) and --kafka $KAFKA (default none: see below),
#   4. creates a live tenant, a plan without trial, $CUSTOMERS customers with
#      pm_card_visa and $SUBSCRIPTIONS subscriptions through the API, and waits
#      until every subscription is active (first invoice paid),
#   5. runs wrk (bench/wrk/*.lua) for $DURATION_S seconds each:
#      - get:   GET /v1/subscriptions/{id}, round robin, $GET_CONNECTIONS
#               connections,
#      - pause_resume: POST …/pause and …/resume alternating per
#               subscription ($CMD_CONNECTIONS connections; each subscription
#               in flight on one connection at a time, see pause_resume.lua),
#               each answered after its events are durably committed,
#   6. prints one JSON object per figure on stdout (requests, rps, p50/p90/
#      p99/max ms, non-2xx answers, socket errors, the load average before
#      the run); progress, wrk's own report and profiles go to stderr,
#   7. stops recurd and the cluster and deletes their folder whatever
#      happened.
# A figure with non_2xx > 0 or socket errors is not a result.
#
# --kafka none by default: the figures are the API's and the durable commit
# path's; the relay publishes after the reply, off the request path, and the
# embedded mock cluster would run inside recurd and take CPU from it on a
# 2-core machine. KAFKA=embedded measures with it.
#
# Usage: bash bench/http_bench.sh
#        BUILD_DIR=build-h3b DURATION_S=5 PROFILE=top bash bench/http_bench.sh
# Environment:
#   BUILD_DIR (build-bench), BUILD (1: build recurd first; 0: use it as is),
#   DURATION_S (10), WRK_THREADS (2), GET_CONNECTIONS (64),
#   CMD_CONNECTIONS (64), SUBSCRIPTIONS (max(256, 2 × CMD_CONNECTIONS)),
#   CUSTOMERS (16), KAFKA (none | embedded), BENCHES ("get pause_resume"),
#   PROFILE (none | top: recurd's threads and the busiest processes sampled
#   over 5 s mid-run | perf: `perf record -a -g` for 5 s mid-run, reported
#   as CPU per command name and recurd's hottest symbols),
#   RECURD_ARGS (extra recurd options).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RECUR_ROOT"

BUILD_DIR="${BUILD_DIR:-build-bench}"
BUILD="${BUILD:-1}"
DURATION_S="${DURATION_S:-10}"
WRK_THREADS="${WRK_THREADS:-2}"
GET_CONNECTIONS="${GET_CONNECTIONS:-64}"
CMD_CONNECTIONS="${CMD_CONNECTIONS:-64}"
SUBSCRIPTIONS="${SUBSCRIPTIONS:-$((2 * CMD_CONNECTIONS > 256 ? 2 * CMD_CONNECTIONS : 256))}"
CUSTOMERS="${CUSTOMERS:-16}"
KAFKA="${KAFKA:-none}"
BENCHES="${BENCHES:-get pause_resume}"
PROFILE="${PROFILE:-none}"
RECURD_ARGS="${RECURD_ARGS:-}"

log() { say "$@" >&2; }

# -- wrk ------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if ((EUID == 0)); then
    log "installing wrk (Debian package)"
    apt-get update -q >&2 && apt-get install -y -q wrk >&2
  elif command -v sudo >/dev/null; then
    sudo apt-get update -q >&2 && sudo apt-get install -y -q wrk >&2
  else
    die "wrk is missing: apt-get install wrk (as root)"
  fi
fi
command -v curl >/dev/null || die "curl is missing: apt-get install curl"

# -- recurd -----------------------------------------------------------------------
if ((BUILD)); then
  log "building recurd in $BUILD_DIR/"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null
  cmake --build "$BUILD_DIR" --target recurd >&2
fi
recurd_bin="$BUILD_DIR/api/recurd"
[[ -x "$recurd_bin" ]] || die "no recurd at $recurd_bin"

log "a durable cluster for the benchmark"
pg_scratch_start recur-httpbench recur_bench "fsync = on" \
  "synchronous_commit = on" "full_page_writes = on" "max_connections = 100"
scratch="$SCRATCH"
db="$(pg_conninfo "$scratch/run" "$PG_PORT" recur_bench)"

recurd_pid=""
stop_recurd() {
  if [[ -n "$recurd_pid" ]] && kill -0 "$recurd_pid" 2>/dev/null; then
    kill -TERM "$recurd_pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$recurd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$recurd_pid" 2>/dev/null || true
  fi
}
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
  local rc=$?
  set +e
  stop_recurd
  (exit "$rc") # _pg_scratch_cleanup exits with the status it finds in $?
  _pg_scratch_cleanup
}
trap cleanup EXIT

port="$(pick_free_port)"
base="http://127.0.0.1:$port"
admin_key="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
log "starting recurd on 127.0.0.1:$port (--kafka $KAFKA, --rate-limit 0)"
# shellcheck disable=SC2086 # RECURD_ARGS is a list of words
RECUR_ADMIN_KEY="$admin_key" "$recurd_bin" --db "$db" \
  --listen "127.0.0.1:$port" --kafka "$KAFKA" --rate-limit 0 $RECURD_ARGS \
  >"$scratch/recurd.log" 2>&1 &
recurd_pid=$!
for _ in $(seq 200); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$recurd_pid" 2>/dev/null \
    || { tail -n 20 "$scratch/recurd.log" >&2; die "recurd exited"; }
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || die "recurd does not answer /healthz"

# -- data ----------------------------------------------------------------------------
# api <method> <path> <body> [key]: prints the body; fails on non-2xx.
api() {
  curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer ${4:-$key}" \
    -H "Content-Type: application/json" ${3:+--data "$3"}
}
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

log "creating a tenant, a plan, $CUSTOMERS customers, $SUBSCRIPTIONS subscriptions"
key="$(api POST /v1/tenants '{"name":"Bench"}' "$admin_key" | json_field api_key)"
[[ -n "$key" ]] || die "no API key from POST /v1/tenants"
api POST /v1/plans '{"id":"bench","currency":"USD","interval":{"unit":"month","count":1},"trial_days":0,"base":{"kind":"flat","flat_amount":1000}}' >/dev/null
for ((c = 0; c < CUSTOMERS; c++)); do
  api POST /v1/customers "{\"id\":\"cus_b$c\",\"email\":\"b$c@bench.io\",\"name\":\"B$c\",\"payment_method\":\"pm_card_visa\",\"currency\":\"USD\"}" >/dev/null
done
ids="$scratch/subscriptions.txt"
: >"$ids"
for ((s = 0; s < SUBSCRIPTIONS; s++)); do
  api POST /v1/subscriptions "{\"id\":\"sub_b$s\",\"customer\":\"cus_b$((s % CUSTOMERS))\",\"plan\":\"bench\",\"trial_days\":0}" >/dev/null
  echo "sub_b$s" >>"$ids"
done
# Each first invoice is paid by the sandbox gateway shortly after.
log "waiting until every subscription is active"
deadline=$((SECONDS + 60))
while read -r id; do
  until api GET "/v1/subscriptions/$id" | grep -q '"status":"active"'; do
    ((SECONDS < deadline)) || die "$id is not active after 60 s"
    sleep 0.05
  done
done <"$ids"

# -- runs ----------------------------------------------------------------------------
profile_mid_run() {
  local name="$1"
  sleep $((DURATION_S / 3))
  case "$PROFILE" in
    top)
      {
        echo "--- $name: recurd threads (top -H, 5 s sample)"
        top -H -b -d 5 -n 2 -p "$recurd_pid" | awk '/^top -/{n++} n==2' | head -n 25
        echo "--- $name: busiest processes (top, 5 s sample)"
        top -b -d 5 -n 2 | awk '/^top -/{n++} n==2' | head -n 20
      } >&2
      ;;
    perf)
      # Whole machine: the split between recurd, postgres, wrk and whatever
      # else runs (other builds) says how much of the 2 cores was ours.
      perf record -q -a -g -o "$scratch/$name.perf" -- sleep 5 \
        >/dev/null 2>&1 || true
      {
        echo "--- $name: CPU by command, whole machine (perf -a, 5 s)"
        perf report -q -i "$scratch/$name.perf" --sort comm --stdio \
          -g none 2>/dev/null | head -n 12
        echo "--- $name: recurd's hottest symbols"
        perf report -q -i "$scratch/$name.perf" --comm recurd --no-children \
          --sort sym --stdio -g none --percent-limit 0.5 2>/dev/null \
          | cut -c1-160 | head -n 30
      } >&2 || true
      ;;
  esac
}

run_wrk() {
  local name="$1" script="$2" connections="$3" load out line profiler=""
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  log "$name: wrk -t$WRK_THREADS -c$connections -d${DURATION_S}s (load $load)"
  if [[ "$PROFILE" != none ]]; then
    profile_mid_run "$name" &
    profiler=$!
  fi
  out="$(RECUR_BENCH_KEY="$key" RECUR_BENCH_IDS="$ids" \
    RECUR_BENCH_NAME="$name" RECUR_BENCH_THREADS="$WRK_THREADS" \
    RECUR_BENCH_WRK_DIR="$RECUR_ROOT/bench/wrk" \
    wrk -t"$WRK_THREADS" -c"$connections" -d"${DURATION_S}s" --timeout 10s \
    --latency -s "bench/wrk/$script" "$base")"
  if [[ -n "$profiler" ]]; then wait "$profiler" || true; fi
  printf '%s\n' "$out" | grep -v '^{"bench"' >&2
  line="$(printf '%s\n' "$out" | grep '^{"bench"')"
  printf '%s\n' "${line%\}},\"connections\":$connections,\"wrk_threads\":$WRK_THREADS,\"subscriptions\":$SUBSCRIPTIONS,\"kafka\":\"$KAFKA\",\"nproc\":$(nproc),\"load_before\":\"$load\",\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
}

for bench in $BENCHES; do
  case "$bench" in
    get) run_wrk get get_subscription.lua "$GET_CONNECTIONS" ;;
    pause_resume)
      ((SUBSCRIPTIONS >= CMD_CONNECTIONS)) \
        || die "SUBSCRIPTIONS must be at least CMD_CONNECTIONS"
      run_wrk pause_resume pause_resume.lua "$CMD_CONNECTIONS"
      ;;
    *) die "unknown bench '$bench' (get, pause_resume)" ;;
  esac
done
if grep -q 'level=error' "$scratch/recurd.log"; then
  log "recurd logged errors:"
  grep 'level=error' "$scratch/recurd.log" | tail -n 5 >&2
fi
