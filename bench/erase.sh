#!/usr/bin/env bash
# Erasure by crypto-shredding: how long `erase_subject` takes for a subject of 1,000 records
# in a vault that holds other subjects too (goal: under 50 ms on SQLite). Prints the median.
# Usage: bench/erase.sh [--subjects N] [--records N] [--others N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example erase_bench -- "$@"
