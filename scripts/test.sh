#!/usr/bin/env bash
# Installs what is missing and runs the whole test suite: format and lint checks, the
# independent verifier's self-test, unit, property and integration tests (real node
# processes over TLS on RocksDB).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
started=$(date +%s)
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Integration tests drive the binaries; build them (same profile as the tests).
cargo build --workspace --bins
python3 tests/verifier/gridledger_verify.py selftest | tail -n 1
cargo test --workspace
echo "scripts/test.sh: done in $(( $(date +%s) - started )) s" >&2
