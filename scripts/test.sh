#!/usr/bin/env bash
# Every test tier, fastest first. `scripts/test.sh TIER` runs one: unit, pg-test,
# regress, upgrade, e2e. The server tiers install the debug build into pg_config's Postgres for
# the duration of the run; what was installed before (the release build of `make
# install`) is put back when the run ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
. scripts/cluster.sh
. scripts/installed.sh

tier() { printf '\n== %s\n' "$*"; }

unit() {
  tier "unit tests (no Postgres)"
  cargo test --workspace --exclude ai_loader
}

pg_test() {
  tier "#[pg_test] tests (cargo pgrx test, as user postgres)"
  local data
  data=$(mktemp -d /tmp/ai_loader_pgrx.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$data"
  chmod 755 "$data"
  local status=0
  env -u RUST_LIB_BACKTRACE cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$data/data" || status=$?
  rm -rf "$data"
  return $status
}

install_debug() {
  tier "installing the extension (debug build)"
  PG_CONFIG=$PG_CONFIG scripts/install.sh
}

regress() {
  tier "pg_regress suite (regress/)"
  scripts/regress.sh
}

upgrade() {
  tier "upgrade scripts and upgrades (tests/test_upgrade.py)"
  .venv/bin/pytest -q tests/test_upgrade.py
}

e2e() {
  tier "end-to-end tests (tests/)"
  .venv/bin/pytest -q tests --ignore tests/test_upgrade.py
}

case "${1:-all}" in
  pg-test | regress | upgrade | e2e | all) keep_installed "$PG_CONFIG" target/installed-before ;;
esac
case "${1:-all}" in
  unit) unit ;;
  pg-test) pg_test ;;
  regress) install_debug && regress ;;
  upgrade) install_debug && upgrade ;;
  e2e) install_debug && e2e ;;
  all) unit && pg_test && install_debug && regress && upgrade && e2e ;;
  *) echo "usage: $0 [unit|pg-test|regress|upgrade|e2e]" >&2; exit 2 ;;
esac
