#!/usr/bin/env bash
# Subject export benchmark: `custos serve` holding SUBJECTS demo customers (one record each),
# each read three times first (a lookup by email by a support key, reads by id for billing and
# for support by two keys) so the audit log holds entries for every subject; then EXPORTS
# exports of random subjects, one at a time, through the API as JSON, and EXPORTS/4 as zip
# (crates/cli/examples/exportbench.rs, a second process). Prints p50/p90/p99, then checks the
# audit log.
#
#   bench/export.sh                                   # SQLite, SUBJECTS=100000, EXPORTS=1000
#   SUBJECTS=20000 EXPORTS=500 bench/export.sh        # quicker
#   bench/export.sh --backend postgres                # PostgreSQL (database custos_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBJECTS=${SUBJECTS:-100000}
EXPORTS=${EXPORTS:-1000}
CONCURRENCY=${CONCURRENCY:-32}
PG=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

backend=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
case "$backend" in sqlite|postgres) ;; *) echo "--backend is sqlite or postgres" >&2; exit 2 ;; esac

cargo build --release --quiet --bin custos --example exportbench
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
dir=$work/data
mkdir -p "$dir"
if [ "$backend" = postgres ]; then
  psql -q "$PG/test" -c "DROP DATABASE IF EXISTS custos_bench" -c "CREATE DATABASE custos_bench" >/dev/null 2>&1
  export CUSTOS_DATABASE_URL="$PG/custos_bench"
else
  unset CUSTOS_DATABASE_URL
fi

# Starts `custos serve` with extra flags; sets $base to its URL.
start() {
  target/release/custos --data-dir "$dir" serve --listen 127.0.0.1:0 "$@" >"$work/out" 2>"$work/log" &
  pid=$!
  until grep -q "custos listening on" "$work/log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.5
  done
  base=$(sed -n 's/.*custos listening on //p' "$work/log")
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB; backend $backend"
echo "loading $SUBJECTS synthetic customers..."
t0=$(date +%s)
start --demo --demo-records "$SUBJECTS" --retention-interval 0
echo "loaded in $(( $(date +%s) - t0 )) s"
admin=$(sed -n 's/.*(shown once): //p' "$work/out")
stop
support=$(target/release/custos --data-dir "$dir" apikey create --name bench-support --role support_agent 2>/dev/null)
billing=$(target/release/custos --data-dir "$dir" apikey create --name bench-billing --role billing_service 2>/dev/null)
start --retention-interval 0
target/release/examples/exportbench --base "$base" --admin "$admin" --support "$support" \
  --billing "$billing" --subjects "$SUBJECTS" --exports "$EXPORTS" --concurrency "$CONCURRENCY"
stop
if [ "$backend" = sqlite ]; then echo "database: $(du -sh "$dir" | cut -f1)"; fi
target/release/custos --data-dir "$dir" audit verify
