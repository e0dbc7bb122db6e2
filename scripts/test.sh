#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#   1. installs missing Debian packages (nothing when all are present),
#   2. configures and builds in $BUILD_DIR (default build/),
#   3. starts a throw-away PostgreSQL 15 cluster in a scratch folder and exports
#      RECUR_TEST_DB, RECUR_TEST_PG_BIN, RECUR_TEST_PG_DATA,
#   4. runs ctest (all labels); extra arguments go to ctest, e.g.
#        bash scripts/test.sh -R recurd
#   5. stops the cluster and deletes the folder whatever happened, and exits
#      with ctest's status.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RECUR_ROOT"

BUILD_DIR="${BUILD_DIR:-build}"

ensure_packages

say "configuring $BUILD_DIR/ (CMake, Ninja)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DRECUR_BUILD_TESTS=ON >/dev/null
say "building"
cmake --build "$BUILD_DIR"

# Durability buys nothing for a cluster that is deleted at exit.
pg_scratch_start recur-pg recur_test \
  "fsync = off" "synchronous_commit = off" "full_page_writes = off"

RECUR_TEST_DB="$(pg_conninfo "$PG_SOCK" "$PG_PORT" recur_test)"
export RECUR_TEST_DB
export RECUR_TEST_PG_BIN="$PG_BIN"
export RECUR_TEST_PG_DATA="$PG_DATA"
say "RECUR_TEST_DB=$RECUR_TEST_DB"

say "running ctest --output-on-failure -j2 $*"
set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
rc=$?
set -e
exit "$rc"
