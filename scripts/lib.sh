# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/run.sh (sourced, not run): the Debian
# packages Recur needs, and helpers to run a private PostgreSQL 15 cluster.

# shellcheck disable=SC2034 # used by the scripts that source this file
RECUR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Everything the build, the tests and the run need, all from Debian bookworm.
RECUR_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libgtest-dev libgmock-dev
  libcaf-dev
  libpqxx-dev libpq-dev postgresql-15
  librdkafka-dev
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libssl-dev openssl
  libgoogle-perftools-dev
)

PG_BIN="/usr/lib/postgresql/15/bin"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs whatever in RECUR_PACKAGES is missing; does nothing (and needs no
# network or root) when everything is already there.
ensure_packages() {
  local missing=() pkg
  for pkg in "${RECUR_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    say "system packages: all ${#RECUR_PACKAGES[@]} present"
    return
  fi
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null \
      || die "missing packages (${missing[*]}); run as root or install sudo, or: apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  say "installing missing packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# PostgreSQL refuses to run as root, so a root caller hands the cluster to the
# `postgres` account (created by the postgresql package; created here if not).
pg_owner() {
  if ((EUID != 0)); then
    id -un
    return
  fi
  if ! id -u postgres >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \
      postgres
  fi
  echo postgres
}

# Runs a command as the cluster owner, from / so that PostgreSQL's tools never
# trip over a working directory that account cannot read: pass absolute paths.
as_pg() {
  if ((EUID != 0)); then
    (cd / && "$@")
  elif command -v runuser >/dev/null; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
  fi
}

# Fails clearly when the cluster owner cannot reach a directory (e.g. a
# checkout under /root, which is mode 700).
pg_check_reachable() {
  local dir="$1"
  as_pg test -w "$dir" \
    || die "the PostgreSQL owner ($(pg_owner)) cannot write to $dir; put the checkout where that user can reach it (e.g. under /srv or /tmp)"
}

# Quotes a libpq connection-string value when it needs it: '...' with \ and '
# escaped.
pg_quote() {
  if [[ -n "$1" && "$1" != *[[:space:]\\\']* ]]; then
    printf '%s' "$1"
    return
  fi
  local v="${1//\\/\\\\}"
  printf "'%s'" "${v//\'/\\\'}"
}

# Quotes a postgresql.conf string value: '...' with ' doubled.
pg_conf_quote() {
  printf "'%s'" "${1//\'/\'\'}"
}

# A TCP port in 20000-59999 that nothing on 127.0.0.1 listens on. The cluster
# itself only listens on its private socket; the port names that socket.
pick_free_port() {
  local port _
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free TCP port found"
}

# Creates a cluster in <data dir> owned by the cluster owner, with superuser
# `postgres`, trust auth (only reachable through a private socket directory)
# and an `include` of recur.conf, which pg_write_conf rewrites at each start.
pg_init() {
  local data="$1"
  as_pg "$PG_BIN/initdb" --pgdata="$data" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "include = 'recur.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
}

# Writes <data>/recur.conf: unix socket only, in <socket dir>, on <port>,
# plus any extra "name = value" lines given.
pg_write_conf() {
  local data="$1" socket_dir="$2" port="$3"
  shift 3
  {
    echo "# Written by scripts/lib.sh at each start; edits are overwritten."
    echo "listen_addresses = ''"
    echo "unix_socket_directories = $(pg_conf_quote "$socket_dir")"
    echo "port = $port"
    printf '%s\n' "$@"
  } | as_pg tee "$data/recur.conf" >/dev/null
}

pg_start() {
  local data="$1" logfile="$2"
  as_pg "$PG_BIN/pg_ctl" --pgdata="$data" --log="$logfile" --wait \
    --timeout=60 start >/dev/null \
    || { tail -n 20 "$logfile" >&2 || true; die "PostgreSQL did not start (log: $logfile)"; }
}

pg_stop() {
  local data="$1"
  as_pg "$PG_BIN/pg_ctl" --pgdata="$data" --mode=fast --wait stop >/dev/null
}

pg_is_running() {
  as_pg "$PG_BIN/pg_ctl" --pgdata="$1" status >/dev/null 2>&1
}

# Runs SQL as the superuser through the socket; prints unaligned rows.
pg_sql() {
  local socket_dir="$1" port="$2" db="$3" sql="$4"
  as_pg "$PG_BIN/psql" --host="$socket_dir" --port="$port" --username=postgres \
    --dbname="$db" --no-psqlrc --quiet --tuples-only --no-align \
    --set=ON_ERROR_STOP=1 --command="$sql"
}

pg_conninfo() {
  local socket_dir="$1" port="$2" db="$3"
  printf 'host=%s port=%s dbname=%s user=postgres' \
    "$(pg_quote "$socket_dir")" "$port" "$db"
}

# Starts a throw-away cluster in a new scratch folder and creates database
# <db>. Sets SCRATCH, PG_DATA, PG_SOCK and PG_PORT, and installs an EXIT trap
# that stops the cluster and deletes the folder whatever happened, keeping the
# exit status. Extra arguments are postgresql.conf lines.
# Usage: pg_scratch_start <folder name prefix> <db> [conf lines...]
pg_scratch_start() {
  local prefix="$1" db="$2" owner
  shift 2
  SCRATCH="$(mktemp -d -t "$prefix.XXXXXX")"
  PG_DATA="$SCRATCH/data"
  PG_SOCK="$SCRATCH/run"
  _pg_scratch_started=0
  trap _pg_scratch_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  owner="$(pg_owner)"
  if ((EUID == 0)); then chown "$owner:" "$SCRATCH"; fi
  as_pg mkdir -m 700 "$PG_SOCK"
  PG_PORT="$(pick_free_port)"
  say "starting PostgreSQL 15 as $owner: socket $PG_SOCK, port $PG_PORT" >&2
  pg_init "$PG_DATA"
  pg_write_conf "$PG_DATA" "$PG_SOCK" "$PG_PORT" "$@"
  _pg_scratch_started=1
  pg_start "$PG_DATA" "$SCRATCH/postgres.log"
  pg_sql "$PG_SOCK" "$PG_PORT" postgres "CREATE DATABASE $db"
}

# shellcheck disable=SC2317 # reached through the trap
_pg_scratch_cleanup() {
  local rc=$?
  if ((_pg_scratch_started)); then
    pg_stop "$PG_DATA" || true
  fi
  rm -rf "$SCRATCH"
  say "stopped PostgreSQL and removed $SCRATCH" >&2
  exit "$rc"
}
