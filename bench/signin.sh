#!/usr/bin/env bash
# Sign-in code requests: is an address on file told apart from one not on file by the time
# the answer takes? Starts `custos serve --demo` (release build, SQLite), creates addresses on
# file through the API, and times N requests of each kind, interleaved (bench/signin.py).
#
#   bench/signin.sh            # N=40
#   N=100 bench/signin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-40}
cargo build --release --quiet --bin custos
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/release/custos serve --demo --demo-records 100 --data-dir "$work/data" \
  --listen "127.0.0.1:$port" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 120); do
  grep -q "Demo admin API key" "$work/out" 2>/dev/null && grep -q listening "$work/err" && break
  sleep 0.5
done
key=$(sed -n 's/^Demo admin API key (shown once): //p' "$work/out")
[ -n "$key" ] || { echo "the server did not start:" >&2; cat "$work/err" >&2; exit 1; }
echo "custos $(git rev-parse --short HEAD), $(nproc) cores, SQLite, N=$N per kind"
python3 bench/signin.py "http://127.0.0.1:$port" "$key" "$N"
