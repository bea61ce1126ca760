#!/usr/bin/env bash
# Installs what is missing and runs the whole test suite: format and lint checks, the
# independent verifier's self-test, unit, property and integration tests (real node
# processes over TLS on RocksDB).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# An independent OpenAPI validator (openapi-spec-validator, from PyPI) for the tests only,
# so running a node never needs PyPI.
export GRIDLEDGER_VENV="${GRIDLEDGER_VENV:-$HOME/.cache/gridledger/venv}"
if [ ! -x "$GRIDLEDGER_VENV/bin/openapi-spec-validator" ]; then
    python3 -m venv "$GRIDLEDGER_VENV" >/dev/null
    "$GRIDLEDGER_VENV/bin/pip" install -q "openapi-spec-validator>=0.7,<0.9" >&2
fi
started=$(date +%s)
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Integration tests drive the binaries; build them with the same profile and target
# selection as clippy and the tests, so dependencies (and RocksDB's C++) build once.
cargo build --workspace --all-targets
# The repo carries its own copy of the shared vectors (core/testdata).
verifier=$(GRIDLEDGER_SHARED_TESTDATA="${GRIDLEDGER_SHARED_TESTDATA:-$PWD/core/testdata}" python3 tests/verifier/gridledger_verify.py selftest | tail -n 1)
echo "independent verifier self-test: $verifier"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo's last line is the last crate's doc-test summary (often "0 passed"); close with
# the real totals over every test binary.
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { printf "%d passed, %d failed", p, f }' "$log")
echo "scripts/test.sh: done in $(( $(date +%s) - started )) s" >&2
echo "rust: $totals"
exit "$status"
