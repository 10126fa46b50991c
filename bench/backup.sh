#!/usr/bin/env bash
# Backups on SQLite: MB of snapshot per second for create, verify and restore (goal: at least
# 50 MB/s for create). Writes the customers, then backs up, verifies and restores --runs times.
# Usage: bench/backup.sh [--subjects N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p custos-cli --example backup_bench -- "$@"
