#!/usr/bin/env bash
# Blind-index key rotation on SQLite: records indexed again per second under a new key
# (including the finish and deleting the old key's entries). Writes the customers, then
# rotates the blind-index key --runs times and prints the median rate.
# Usage: bench/rotate_index.sh [--subjects N] [--runs N] [--batch N] [--load TASKS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example reindex_bench -- "$@"
