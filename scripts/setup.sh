# Sourced by the other scripts: installs what a fresh Debian machine with a Rust
# toolchain lacks, and points cargo at a target directory outside the clone so repeated
# runs (and CI on the same machine) reuse the RocksDB build.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found. Install a Rust toolchain (1.95 or newer) first." >&2
    exit 1
fi

missing=()
# bindgen (librocksdb-sys) needs libclang; the independent verifier needs python3.
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# The tests use curl against the public listener, as a user would.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The tests check the OpenAPI document with an independent validator in a virtualenv
# (scripts/test.sh creates it).
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gridledger/target}"
export GRIDLEDGER_BIN="$CARGO_TARGET_DIR/debug"
