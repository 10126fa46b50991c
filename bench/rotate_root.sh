#!/usr/bin/env bash
# Root key rotation on SQLite: keys wrapped again per second (goal: at least 20,000 subject
# keys/s). Writes the customers, then rotates --runs times and prints the median rate.
# With --token the root key is in a SoftHSM2 token made here (apt-get install softhsm2), and
# every key is unwrapped and wrapped inside it.
# Usage: bench/rotate_root.sh [--subjects N] [--runs N] [--batch N] [--load TASKS] [--token]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --token "* ]]; then
    hsm=$(mktemp -d)
    trap 'rm -rf "$hsm"' EXIT
    mkdir "$hsm/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm" > "$hsm/softhsm2.conf"
    export SOFTHSM2_CONF="$hsm/softhsm2.conf"
    export CUSTOS_BENCH_TOKEN_PIN="bench-pin-$RANDOM$RANDOM"
    softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin "$CUSTOS_BENCH_TOKEN_PIN" >/dev/null
fi
cargo run --release -q -p custos-cli --example rotate_bench -- "$@"
