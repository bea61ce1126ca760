#!/usr/bin/env bash
# Installs what is missing, builds, and runs a development node with a demo consortium.
# Usage: ./scripts/dev.sh [extra `gridledger-node dev` flags]   (data in ./.dev)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The same target selection as scripts/test.sh: a different one changes the feature set
# of shared dependencies and would rebuild RocksDB's C++ (12 minutes) a second time.
cargo build --workspace --all-targets
echo "CLI: export PATH=\"$GRIDLEDGER_BIN:\$PATH\"" >&2
exec "$GRIDLEDGER_BIN/gridledger-node" dev --data-dir "${GRIDLEDGER_DEV_DIR:-.dev}" "$@"
