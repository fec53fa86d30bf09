#!/usr/bin/env bash
# Builds ai_loader and installs it into PG_CONFIG's Postgres: the library with its
# control and SQL files (cargo pgrx install), and beside the library the parser program
# the worker starts for each document. `scripts/install.sh [--release]`.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
profile=debug
release=()
if [ "${1:-}" = --release ]; then
  profile=release
  release=(--release)
fi

cargo pgrx install "${release[@]}" --pg-config "$PG_CONFIG" | grep -v '^\s*$' | tail -n 1
# With the flags `cargo pgrx install` builds with (cargo-pgrx 0.18.1), so that the
# dependencies it just built are not built again.
cargo --config 'target.'"'"'cfg(all(target_family = "unix", not(target_os = "macos")))'"'"'.rustflags = ["-C", "link-arg=-Wl,--no-gc-sections"]' \
  build "${release[@]}" -p ai-loader-parser --bin ai_loader_parse 2>&1 | tail -n 1
lib=$("$PG_CONFIG" --pkglibdir)
# Replaced by renaming: a parser running now keeps the file it started from.
install -m 755 "target/$profile/ai_loader_parse" "$lib/.ai_loader_parse.tmp"
mv -f "$lib/.ai_loader_parse.tmp" "$lib/ai_loader_parse"
echo "installed $lib/ai_loader.so and $lib/ai_loader_parse ($profile)"
