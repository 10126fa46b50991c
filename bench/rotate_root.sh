#!/usr/bin/env bash
# Root key rotation on SQLite: keys wrapped again per second (goal: at least 20,000 subject
# keys/s). Writes the customers, then rotates --runs times and prints the median rate.
# Usage: bench/rotate_root.sh [--subjects N] [--runs N] [--batch N] [--load TASKS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example rotate_bench -- "$@"
