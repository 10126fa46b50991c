#!/usr/bin/env bash
# Load benchmark: `custos serve` on SQLite holding RECORDS stored records, driven over HTTP by
# a second process (crates/cli/examples/loadgen.rs) at CONCURRENCY connections: writes for
# PHASE_SECONDS, then audited reads of the records written for PHASE_SECONDS. Prints the figures, then
# checks the audit log.
#
#   bench/load.sh                       # 100,000 records, 32 connections, 20 s per phase
#   RECORDS=10000 PHASE_SECONDS=5 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-100000}
SECONDS_PER_PHASE=${PHASE_SECONDS:-20}
CONCURRENCY=${CONCURRENCY:-32}

cargo build --release --quiet --bin custos --example loadgen
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "loading $RECORDS synthetic customers..."
t0=$(date +%s)
target/release/custos --data-dir "$dir/data" serve --demo --demo-records "$RECORDS" --listen 127.0.0.1:0 \
  >"$dir/out" 2>"$dir/log" &
pid=$!
until grep -q "custos listening on" "$dir/log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; exit 1; }
  sleep 0.5
done
echo "loaded in $(( $(date +%s) - t0 )) s"
base=$(sed -n 's/.*custos listening on //p' "$dir/log")
key=$(sed -n 's/.*(shown once): //p' "$dir/out")

echo "load: $CONCURRENCY connections, $SECONDS_PER_PHASE s per phase, SQLite, one instance"
target/release/examples/loadgen --base "$base" --key "$key" --seconds "$SECONDS_PER_PHASE" --concurrency "$CONCURRENCY"

kill "$pid"; wait "$pid" 2>/dev/null || true
echo "database: $(du -sh "$dir/data" | cut -f1)"
target/release/custos --data-dir "$dir/data" audit verify
