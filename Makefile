# ai_loader's front door: the same targets for a person and for CI.
PG_MAJOR ?= 15
PG_CONFIG ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config

.PHONY: setup demo test bench unit pg-test install regress upgrade e2e lint upgrade-script

## setup: install what building and testing need (idempotent; seconds when done)
setup:
	scripts/setup.sh

## demo: set up, build in release mode and install, then vectorize sample documents
## from a local S3 with the in-process model and answer questions (KEEP=1 leaves it
## running)
demo: setup
	PG_CONFIG=$(PG_CONFIG) scripts/install.sh --release
	.venv/bin/python demo/demo.py $(if $(KEEP),--keep)

## test: set up, then run every tier: unit, #[pg_test], pg_regress, end-to-end (the
## server tiers use a debug build and put back the build installed before)
test: setup
	scripts/test.sh

## bench: build in release mode and measure the worker: documents/s, chunks/s, latency,
## memory, against the S3 server's and the model's own ceilings (ARGS="--docs 10000 …")
bench: setup
	scripts/bench.sh $(ARGS)

## install: build in release mode and install into $(PG_CONFIG)'s Postgres (the library,
## its SQL files, and the parser program beside the library)
install: setup
	PG_CONFIG=$(PG_CONFIG) scripts/install.sh --release

# The tiers, one at a time (after make setup).
unit:
	scripts/test.sh unit

pg-test:
	scripts/test.sh pg-test

regress:
	scripts/test.sh regress

upgrade:
	scripts/test.sh upgrade

e2e:
	scripts/test.sh e2e

## upgrade-script: write sql/ai_loader--<release>--<current>.sql from src/sql/ and the
## library's functions (after any change to the SQL surface; make test checks it)
upgrade-script:
	cargo pgrx schema pg$(PG_MAJOR) --out target/ai_loader-install.sql
	python3 scripts/upgrade_script.py target/ai_loader-install.sql

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
