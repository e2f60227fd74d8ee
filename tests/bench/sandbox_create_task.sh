#!/usr/bin/env bash
# CreateTask/s against `union sandbox start` on loopback, with concurrent gRPC clients.
#
#   tests/bench/sandbox_create_task.sh [concurrency=64] [total=20000] [connections=8]
#
# Builds the binary and the load generator (examples/sandbox_create_task.rs) in release mode
# (PROFILE=dev for a quick run), starts a sandbox on a free port with a throwaway data dir, runs
# the load, prints the rate, and stops the sandbox with SIGTERM.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
profile="${PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-sandbox}"
cargo build --profile "$profile" --bin union --example sandbox_create_task >&2
dir="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")"

data="$(mktemp -d)"
out="$(mktemp)"
"$dir/union" sandbox start --port 0 --data-dir "$data" >"$out" 2>/dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$out"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
addr="$(sed -n 's/^union sandbox listening on \([^ ]*\).*/\1/p' "$out")"
[ -n "$addr" ] || { echo "sandbox did not start" >&2; exit 1; }

echo "machine: $(nproc) CPUs, $(uname -sr); sandbox at $addr" >&2
"$dir/examples/sandbox_create_task" "http://$addr" "${1:-64}" "${2:-20000}" "${3:-8}"
