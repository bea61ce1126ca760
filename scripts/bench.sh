#!/usr/bin/env bash
# Reproduces every figure in docs/BENCHMARKS.md in one run, on one machine, so ratios are
# comparable despite noisy shared hardware. Prints one JSON object per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --workspace --all-targets
B="$GRIDLEDGER_BIN"
dir=$(mktemp -d)
trap 'kill $node 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
"$B/gridledger-node" dev --data-dir "$dir" --listen 127.0.0.1:0 --public-listen 127.0.0.1:0 >"$dir/node.out" 2>"$dir/node.err" &
node=$!
for _ in $(seq 1 120); do [ -f "$dir/endpoints.json" ] && break; sleep 0.5; done
export GRIDLEDGER_PROFILE="$dir/profile.toml"
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
"$B/gridledger" load --count 20000 --concurrency 64 --json >/dev/null   # warm-up
peak=0
for i in 1 2 3; do
  r=$("$B/gridledger" load --count 40000 --concurrency 64 --json); echo "unary64 $r"
  t=$(python3 -c "import json,sys; print(int(json.loads(sys.argv[1])['tx_per_s']))" "$r")
  [ "$t" -gt "$peak" ] && peak=$t
done
for i in 1 2 3; do echo "stream $("$B/gridledger" load --count 200000 --stream --concurrency 2 --json)"; done
half=$((peak / 2))
for i in 1 2 3 4 5 6; do echo "rate$half $("$B/gridledger" load --count $((half * 8)) --rate $half --json)"; done
echo "slow_blocks $(grep -c 'slow block' "$dir/node.err" || true)"
echo "proofs $("$B/gridledger-bench" proofs --leaves 1000000 --samples 10000)"
echo "sigs $("$B/gridledger-bench" sigs --count 40000)"
echo "tokens $("$B/gridledger-bench" tokens --count 20000 --passwords 20)"
