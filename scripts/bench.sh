#!/usr/bin/env bash
# `make bench`: a release build installed into the system's Postgres, the benchmark's
# own tools (the ceiling client, s3s-fs), then bench/bench.py with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

echo "== building ai_loader (release) and installing it"
cargo pgrx install --release --pg-config "$PG_CONFIG" | grep -v '^\s*$' | tail -n 1
echo "== building the ceiling client"
cargo build --release -p ai-loader-bench 2>&1 | tail -n 1
if [ ! -x target/bench-tools/bin/s3s-fs ]; then
    echo "== installing s3s-fs (an S3-compatible server in Rust) into target/bench-tools"
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root target/bench-tools 2>&1 | tail -n 1
fi
echo "== running bench/bench.py $*"
exec .venv/bin/python bench/bench.py "$@"
