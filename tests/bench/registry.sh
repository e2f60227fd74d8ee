#!/usr/bin/env bash
# Push and pull through the sandbox's built-in registry and through CNCF distribution (the test
# suite's registry on localhost:30000, Debian's docker-registry), in turns, with the same Docker
# engine: a fresh single-layer image of random bytes each time, so nothing is already there.
#
#   bash tests/bench/registry.sh [RUNS] [MIB]      (defaults: 5 runs of a 64 MiB layer)
#
# Needs the test engine and registry (bash tests/setup/docker.sh) and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
MIB=${2:-64}
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/union-test/docker.sock}
BIN=${UNION_BIN:-target/release/union}

work=$(mktemp -d)
sb=
cleanup() {
  [ -n "$sb" ] && kill -INT "$sb" 2>/dev/null && wait "$sb" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" sandbox start --port 0 --data-dir "$work/data" --no-image-builder >"$work/out" 2>"$work/err" &
sb=$!
for _ in $(seq 200); do grep -q "listening on" "$work/out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\) .*/\1/p' "$work/out")
[ -n "$port" ] || { echo "the sandbox did not start:" >&2; cat "$work/err" >&2; exit 1; }

millis() {
  local start
  start=$(date +%s%N)
  "$@" >/dev/null
  echo $((($(date +%s%N) - start) / 1000000))
}

echo "# ${MIB} MiB layer, $RUNS runs each, in turns; milliseconds"
for run in $(seq "$RUNS"); do
  for target in "sandbox localhost:$port" "distribution localhost:30000"; do
    set -- $target
    head -c "${MIB}M" /dev/urandom >"$work/layer.bin"
    image="$2/bench/layer:r$run-$$-$RANDOM"
    tar -C "$work" -c layer.bin | docker import - "$image" >/dev/null
    push=$(millis docker push "$image")
    docker rmi "$image" >/dev/null
    pull=$(millis docker pull "$image")
    docker rmi "$image" >/dev/null
    echo "$1 push $push"
    echo "$1 pull $pull"
  done
done >"$work/results"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%-14s %10s %10s %10s\n' registry op median min-max
for who in sandbox distribution; do
  for op in push pull; do
    vals=$(awk -v w="$who" -v o="$op" '$1 == w && $2 == o {print $3}' "$work/results")
    printf '%-14s %10s %10s %10s\n' "$who" "$op" "$(echo "$vals" | median)" \
      "$(echo "$vals" | sort -n | head -1)-$(echo "$vals" | sort -n | tail -1)"
  done
done
