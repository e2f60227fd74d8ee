#!/usr/bin/env bash
# Registration benchmark: `union register` vs `pyflyte register` of the same generated project
# (200 tasks, 50 workflows, 300 specs with default launch plans) against the same `union sandbox`,
# side by side in one run; plus `union package` vs `pyflyte package` of the fixtures.
#
#   bash tests/bench/register.sh [RUNS=3]
#
# Each run registers a new version, so every entity is really created (no ALREADY_EXISTS path).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
bash tests/setup/python-env.sh
cargo build --release --locked -q
UNION="$PWD/target/release/union"
VENV="$PWD/.venv"
OUT="$PWD/target/bench/register"; rm -rf "$OUT"; mkdir -p "$OUT"
export VIRTUAL_ENV="$VENV"
# pyflyte must not try to build images or reach a Docker engine while packaging.
export DOCKER_HOST=unix:///nonexistent/docker.sock

"$VENV/bin/python" tests/bench/gen_project.py "$OUT/proj" 200 50 >/dev/null
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$UNION" sandbox start --port "$PORT" --data-dir "$OUT/sandbox" > "$OUT/sandbox.log" 2>&1 &
SB=$!
trap 'kill -INT $SB 2>/dev/null; wait $SB 2>/dev/null || true; pkill -f "union __warm-server" || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT/sandbox.log" && break; sleep 0.1; done
printf 'admin:\n  endpoint: dns:///127.0.0.1:%s\n  insecure: true\n' "$PORT" > "$OUT/config.yaml"
IMAGE=localhost:30000/bench/default:1

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
declare -a U P
for i in $(seq "$RUNS"); do
  t=$(date +%s%N)
  (cd "$OUT/proj" && "$UNION" register benchproj --config "$OUT/config.yaml" --version "u$i" --image "$IMAGE" -q >/dev/null)
  U+=("$(ms "$t")")
  t=$(date +%s%N)
  (cd "$OUT/proj" && "$VENV/bin/pyflyte" -c "$OUT/config.yaml" register --version "p$i" --image "$IMAGE" benchproj >/dev/null 2>&1)
  P+=("$(ms "$t")")
done
# The opt-in warm interpreter: a first run starts it, then each run is served warm.
(cd "$OUT/proj" && UNION_WARM=1 "$UNION" register benchproj --config "$OUT/config.yaml" --version w0 --image "$IMAGE" -q >/dev/null)
sleep 3
declare -a W
for i in $(seq "$RUNS"); do
  t=$(date +%s%N)
  (cd "$OUT/proj" && UNION_WARM=1 "$UNION" register benchproj --config "$OUT/config.yaml" --version "w$i" --image "$IMAGE" -q >/dev/null)
  W+=("$(ms "$t")")
done
mean() { local s=0; for x in "$@"; do s=$((s + x)); done; echo $((s / $#)); }
um=$(mean "${U[@]}"); pm=$(mean "${P[@]}")
echo "| job | union | pyflyte | speed-up |"
echo "|---|---|---|---|"
echo "| register 200 tasks + 50 workflows (300 specs), mean of $RUNS | ${um} ms (${U[*]}) | ${pm} ms (${P[*]}) | $(awk "BEGIN{printf \"%.1fx\", $pm/$um}") |"
wm=$(mean "${W[@]}")
echo "| the same with UNION_WARM=1 (warm interpreter) | ${wm} ms (${W[*]}) | ${pm} ms | $(awk "BEGIN{printf \"%.1fx\", $pm/$wm}") |"

# Packaging the fixtures (no network).
for proj in hello typed pkgtree; do
  pkg=workflows; [ "$proj" = pkgtree ] && pkg=myproj
  t=$(date +%s%N)
  (cd "python_fixtures/$proj" && "$UNION" package "$pkg" -o "$OUT/pk-u-$proj" -q --force --image "$IMAGE" >/dev/null)
  u=$(ms "$t")
  t=$(date +%s%N)
  (cd "python_fixtures/$proj" && "$VENV/bin/pyflyte" -c "$OUT/config.yaml" --pkgs "$pkg" package --copy all --image "$IMAGE" -f -o "$OUT/pk-p-$proj.tgz" >/dev/null 2>&1)
  p=$(ms "$t")
  echo "| package python_fixtures/$proj | ${u} ms | ${p} ms | $(awk "BEGIN{printf \"%.1fx\", $p/$u}") |"
done
