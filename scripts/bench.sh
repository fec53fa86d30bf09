#!/usr/bin/env bash
# `make bench`: a release build installed into the system's Postgres, the benchmark's
# own tools (the ceiling client, s3s-fs), then bench/bench.py with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

echo "== building ai_loader (release) and installing it"
PG_CONFIG=$PG_CONFIG scripts/install.sh --release
echo "== building the ceiling client (bench/ceiling.rs) on the same build"
# The flags and features `cargo pgrx install` builds with (cargo-pgrx 0.18.1), so that
# every dependency is the one it just built.
cargo --config 'target.'"'"'cfg(all(target_family = "unix", not(target_os = "macos")))'"'"'.rustflags = ["-C", "link-arg=-Wl,--no-gc-sections"]' \
    build --release --bin ai-loader-bench --features "pg$PG_MAJOR" --no-default-features 2>&1 | tail -n 1
if [ ! -x target/bench-tools/bin/s3s-fs ]; then
    echo "== installing s3s-fs (an S3-compatible server in Rust) into target/bench-tools"
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root target/bench-tools 2>&1 | tail -n 1
fi
echo "== running bench/bench.py $*"
exec .venv/bin/python bench/bench.py "$@"
