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
bash tests/setup/docker.sh >/dev/null   # the registry holding the task image below
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
trap 'kill -INT $SB 2>/dev/null; wait $SB 2>/dev/null || true; "$UNION" warm stop 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT/sandbox.log" && break; sleep 0.1; done
printf 'admin:\n  endpoint: dns:///127.0.0.1:%s\n  insecure: true\n' "$PORT" > "$OUT/config.yaml"
# An image that exists (images given as URIs are checked): the test base image.
IMAGE=localhost:30000/union/debian-python:bookworm

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mean() { local s=0; for x in "$@"; do s=$((s + x)); done; echo $((s / $#)); }
reg() { (cd "$OUT/proj" && "$UNION" register benchproj --config "$OUT/config.yaml" --version "$1" --image "$IMAGE" -q >/dev/null); }
# Cold: the warm interpreter off (as in CI, or with UNION_WARM=0).
# Default: outside CI, the first command leaves a warm interpreter that serves the next ones.
unset CI
"$UNION" warm stop 2>/dev/null || true
UNION_WARM=0 reg c0 # one untimed run of each, so that file caches are equally warm
(cd "$OUT/proj" && "$VENV/bin/pyflyte" -c "$OUT/config.yaml" register --version p0 --image "$IMAGE" benchproj >/dev/null 2>&1)
reg w0
sleep 3
declare -a C W P
for i in $(seq "$RUNS"); do
  t=$(date +%s%N); UNION_WARM=0 reg "c$i"; C+=("$(ms "$t")")
  t=$(date +%s%N); reg "w$i"; W+=("$(ms "$t")")
  t=$(date +%s%N)
  (cd "$OUT/proj" && "$VENV/bin/pyflyte" -c "$OUT/config.yaml" register --version "p$i" --image "$IMAGE" benchproj >/dev/null 2>&1)
  P+=("$(ms "$t")")
done
cm=$(mean "${C[@]}"); wm=$(mean "${W[@]}"); pm=$(mean "${P[@]}")
x() { awk "BEGIN{printf \"%.1fx\", $1/$2}"; }
echo "| job | union | pyflyte | speed-up |"
echo "|---|---|---|---|"
echo "| register 200 tasks + 50 workflows (300 specs), default (warm interpreter), mean of $RUNS | ${wm} ms (${W[*]}) | ${pm} ms (${P[*]}) | $(x "$pm" "$wm") |"
echo "| the same, cold (\`UNION_WARM=0\`, as in CI) | ${cm} ms (${C[*]}) | ${pm} ms | $(x "$pm" "$cm") |"

# Packaging the fixtures (no network), cold and default, mean of RUNS each.
for proj in hello typed pkgtree; do
  pkg=workflows; [ "$proj" = pkgtree ] && pkg=myproj
  pk() { (cd "python_fixtures/$proj" && "$UNION" package "$pkg" -o "$OUT/pk-u-$proj" -q --force --image "$IMAGE" >/dev/null); }
  pk; sleep 3 # leaves a warm interpreter for this directory
  declare -a PC=() PW=() PP=()
  for i in $(seq "$RUNS"); do
    t=$(date +%s%N); UNION_WARM=0 pk; PC+=("$(ms "$t")")
    t=$(date +%s%N); pk; PW+=("$(ms "$t")")
    t=$(date +%s%N)
    (cd "python_fixtures/$proj" && "$VENV/bin/pyflyte" -c "$OUT/config.yaml" --pkgs "$pkg" package --copy all --image "$IMAGE" -f -o "$OUT/pk-p-$proj.tgz" >/dev/null 2>&1)
    PP+=("$(ms "$t")")
  done
  c=$(mean "${PC[@]}"); w=$(mean "${PW[@]}"); p=$(mean "${PP[@]}")
  echo "| package python_fixtures/$proj: default (warm) / cold | ${w} ms / ${c} ms | ${p} ms | $(x "$p" "$w") / $(x "$p" "$c") |"
done
"$UNION" warm stop
