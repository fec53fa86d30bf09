#!/usr/bin/env bash
# The pg_regress suite (regress/sql, regress/expected) against a throwaway cluster with
# ai_loader preloaded. The extension must be installed: `make regress` installs the debug
# build first (`make install`, the release build, serves too).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh

work=$(mktemp -d /tmp/ai_loader_regress.XXXXXX)
trap 'cluster_stop "$work"; rm -rf "$work"' EXIT
# The suite checks the SQL surface; the workers (tested end to end in tests/) are kept
# from racing it for the queues: none is started.
cluster_start "$work" "shared_preload_libraries = 'ai_loader'" "ai_loader.max_workers = 0"

pg_regress="$(dirname "$("$PG_BIN/pg_config" --pgxs)")/../test/regress/pg_regress"
tests=$(sed -n 's/^test: //p' regress/schedule | tr '\n' ' ')
mkdir -p "$work/out"
cp -r regress/sql regress/expected "$work/out/"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$work/out"
status=0
as_postgres "$pg_regress" --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --inputdir="$work/out" --outputdir="$work/out" --dbname=ai_loader_regress $tests || status=$?
if [ $status -ne 0 ]; then
  cp "$work/out/regression.diffs" regress/regression.diffs 2>/dev/null || true
  mkdir -p regress/results && cp "$work/out/results/"*.out regress/results/ 2>/dev/null || true
  cat regress/regression.diffs 2>/dev/null | head -200
  echo "regress: FAILED (diffs in regress/regression.diffs, outputs in regress/results/)"
fi
exit $status
