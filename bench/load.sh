#!/usr/bin/env bash
# Load benchmark: `custos serve` holding RECORDS stored records, driven over HTTP by a second
# process (crates/cli/examples/loadgen.rs) at CONCURRENCY connections: writes for PHASE_SECONDS,
# then audited reads by id of the records written, then audited lookups by email. Prints the
# figures, then checks the audit log.
#
#   bench/load.sh                                  # SQLite, one instance
#   bench/load.sh --backend postgres               # PostgreSQL, one instance
#   bench/load.sh --backend postgres --instances 2 # two servers on one PostgreSQL database
#   bench/load.sh --peer                           # the hand-rolled pgcrypto path, no Custos
#   bench/load.sh --compare                        # all four above, one after the other
#   RECORDS=10000 PHASE_SECONDS=5 bench/load.sh --compare
#
# PostgreSQL runs use a fresh database `custos_bench` (the peer: `custos_peer`) on the server at
# BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432), created through its `test`
# database.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-100000}
PHASE=${PHASE_SECONDS:-20}
CONCURRENCY=${CONCURRENCY:-32}
PG=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

backend=sqlite instances=1 mode=one
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    --peer) mode=peer; shift ;;
    --compare) mode=compare; shift ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
case "$backend" in sqlite|postgres) ;; *) echo "--backend is sqlite or postgres" >&2; exit 2 ;; esac
if [ "$backend" = sqlite ] && [ "$instances" != 1 ]; then
  echo "several instances share a PostgreSQL database: use --backend postgres" >&2; exit 2
fi

cargo build --release --quiet --bin custos --example loadgen --example pgcrypto_peer
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fresh_database() {
  psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1
}

# Starts `custos serve` on the data directory $1 with extra flags; sets $base to its URL.
start() {
  local dir=$1 n=$2; shift 2
  target/release/custos --data-dir "$dir" serve --listen 127.0.0.1:0 "$@" \
    >"$work/out$n" 2>"$work/log$n" &
  pids+=($!)
  until grep -q "custos listening on" "$work/log$n"; do
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/log$n" >&2; exit 1; }
    sleep 0.5
  done
  base=$(sed -n 's/.*custos listening on //p' "$work/log$n")
}

run_custos() {
  local backend=$1 instances=$2 dir
  dir=$work/data-$backend-$instances
  mkdir -p "$dir"
  if [ "$backend" = postgres ]; then
    fresh_database custos_bench
    export CUSTOS_DATABASE_URL="$PG/custos_bench"
  else
    unset CUSTOS_DATABASE_URL
  fi
  echo
  echo "== Custos, $backend, $instances instance(s): loading $RECORDS synthetic customers..."
  local t0 bases key
  t0=$(date +%s)
  start "$dir" 1 --demo --demo-records "$RECORDS"
  bases=$base
  echo "loaded in $(( $(date +%s) - t0 )) s"
  key=$(sed -n 's/.*(shown once): //p' "$work/out1")
  for n in $(seq 2 "$instances"); do
    start "$dir" "$n"
    bases="$bases,$base"
  done
  echo "load: $CONCURRENCY connections over $instances instance(s), $PHASE s per phase"
  target/release/examples/loadgen --base "$bases" --key "$key" --seconds "$PHASE" --concurrency "$CONCURRENCY"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  if [ "$backend" = sqlite ]; then echo "database: $(du -sh "$dir" | cut -f1)"; fi
  target/release/custos --data-dir "$dir" audit verify
}

run_peer() {
  fresh_database custos_peer
  echo
  echo "== hand-rolled pgcrypto (no Custos, no audit): $RECORDS customers, $CONCURRENCY connections, $PHASE s per phase"
  target/release/examples/pgcrypto_peer --url "$PG/custos_peer" --records "$RECORDS" \
    --seconds "$PHASE" --concurrency "$CONCURRENCY"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB"
case "$mode" in
  one) run_custos "$backend" "$instances" ;;
  peer) run_peer ;;
  compare)
    run_custos sqlite 1
    run_custos postgres 1
    run_custos postgres 2
    run_peer
    ;;
esac
