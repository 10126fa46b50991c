#!/usr/bin/env bash
# Customers' data-key rotation on SQLite: customers rekeyed per second (each key replaced and
# the customer's fields sealed again under the new one). Writes the customers, then rotates
# every key --runs times and prints the median rate.
# Usage: bench/rotate_subjects.sh [--subjects N] [--runs N] [--batch N] [--load TASKS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example rekey_bench -- "$@"
