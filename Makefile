# ai_loader's front door: the same targets for a person and for CI.
PG_MAJOR ?= 15
PG_CONFIG ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config

.PHONY: setup demo test bench unit pg-test install install-debug regress e2e lint

## setup: install what building and testing need (idempotent; seconds when done)
setup:
	scripts/setup.sh

## demo: set up, build and install, then vectorize sample documents from a local S3
## with the in-process model and answer questions (KEEP=1 leaves it running)
demo: setup
	cargo pgrx install --pg-config $(PG_CONFIG) | grep -v '^\s*$$' | tail -n 1
	.venv/bin/python demo/demo.py $(if $(KEEP),--keep)

## test: set up, then run every tier: unit, #[pg_test], pg_regress, end-to-end
test: setup
	scripts/test.sh

## bench: build in release mode and measure the worker: documents/s, chunks/s, latency,
## memory, against the S3 server's and the model's own ceilings (ARGS="--docs 10000 …")
bench: setup
	scripts/bench.sh $(ARGS)

## install: build in release mode and install into $(PG_CONFIG)'s Postgres
install: setup
	cargo pgrx install --release --pg-config $(PG_CONFIG)

# The tiers, one at a time (after make setup).
unit:
	cargo test --workspace --exclude ai_loader

pg-test:
	scripts/test.sh pg-test

install-debug:
	cargo pgrx install --pg-config $(PG_CONFIG)

regress: install-debug
	scripts/regress.sh

e2e: install-debug
	.venv/bin/pytest -q tests

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
