#!/usr/bin/env bash
# The blast radius of a leaked key on a large audit log (goal: under 2 s on 1,000,000
# entries, SQLite). Builds the log through real audited reads, then prints the medians.
# Usage: bench/blast_radius.sh [--subjects N] [--entries N] [--leaked PER_MILLE] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example blast_bench -- "$@"
