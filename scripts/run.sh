#!/usr/bin/env bash
# Runs Recur locally: installs missing Debian packages, builds recurd in
# build/ (as scripts/test.sh does), keeps an embedded PostgreSQL 15 cluster under
# var/pg/ (created once, kept across runs), creates database `recur` and an
# admin key (var/admin_key) once, then runs recurd in the foreground. Ctrl-C
# stops recurd, then the cluster.
#
# Environment: RECUR_LISTEN (default 127.0.0.1:8080), RECUR_PG_PORT (default
# 5432; the cluster listens only on its socket in var/pg/run, so this names
# the socket and cannot clash with another server).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RECUR_ROOT"

listen="${RECUR_LISTEN:-127.0.0.1:8080}"
pg_port="${RECUR_PG_PORT:-5432}"
# The same build as scripts/test.sh (build/, RelWithDebInfo: -O2 -g), so
# the recurd that runs is compiled exactly as the one the suite tested, and
# a run after the tests builds nothing.
build_dir="build"
var_dir="$RECUR_ROOT/var"
pg_dir="$var_dir/pg"

ensure_packages

say "building recurd in $build_dir/"
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target recurd

owner="$(pg_owner)"
mkdir -p "$pg_dir"
if ((EUID == 0)); then chown "$owner:" "$pg_dir"; fi
pg_check_reachable "$pg_dir"
as_pg mkdir -p -m 700 "$pg_dir/run" "$pg_dir/log"

if [[ ! -f "$pg_dir/data/PG_VERSION" ]]; then
  say "creating the PostgreSQL 15 cluster in var/pg/data (once)"
  # Built aside and renamed, so an interrupted initdb leaves no half cluster.
  as_pg rm -rf "$pg_dir/data.init"
  pg_init "$pg_dir/data.init"
  as_pg mv "$pg_dir/data.init" "$pg_dir/data"
fi

pg_started_here=0
# shellcheck disable=SC2317 # reached through the trap
stop_cluster() {
  local rc=$?
  if ((pg_started_here)); then
    say "stopping PostgreSQL"
    pg_stop "$pg_dir/data" || true
  fi
  exit "$rc"
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if pg_is_running "$pg_dir/data"; then
  # Someone else started it (another run.sh?): use it on its own port.
  pg_port="$(as_pg sed -n 4p "$pg_dir/data/postmaster.pid")"
  say "PostgreSQL already running (var/pg/data, port $pg_port); leaving it up"
else
  say "starting PostgreSQL 15 as $owner: socket var/pg/run, port $pg_port"
  pg_write_conf "$pg_dir/data" "$pg_dir/run" "$pg_port"
  pg_started_here=1
  pg_start "$pg_dir/data" "$pg_dir/log/postgres.log"
fi

if [[ -z "$(pg_sql "$pg_dir/run" "$pg_port" postgres \
  "SELECT 1 FROM pg_database WHERE datname = 'recur'")" ]]; then
  say "creating database recur (once)"
  pg_sql "$pg_dir/run" "$pg_port" postgres "CREATE DATABASE recur"
fi

if [[ ! -s "$var_dir/admin_key" ]]; then
  say "generating the admin key (once) into var/admin_key"
  (umask 077 && openssl rand -hex 32 >"$var_dir/admin_key")
fi
chmod 600 "$var_dir/admin_key"

db="$(pg_conninfo "$pg_dir/run" "$pg_port" recur)"
cat <<INFO
==> admin key (var/admin_key): $(cat "$var_dir/admin_key")
==> recurd on http://$listen  (database: $db)
    The REST API (GET /openapi.json lists every route), gateway webhooks
    and domain events to the embedded Kafka mock cluster (its bootstrap
    address is logged as event=kafka_embedded); the web console arrives
    with a later issue.
    Try: curl -s -X POST http://$listen/v1/tenants \
           -H "Authorization: Bearer $(cat "$var_dir/admin_key")" \
           -H "Content-Type: application/json" \
           -d '{"name":"acme","test_mode":true}'
    Stop: Ctrl-C
INFO

"$build_dir/api/recurd" --db "$db" --listen "$listen" \
  --admin-key-file "$var_dir/admin_key"
