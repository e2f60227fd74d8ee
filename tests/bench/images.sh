#!/usr/bin/env bash
# Image benchmark against the test engine and registry (tests/setup/docker.sh):
#   - existence check of an unchanged image (`union build` when the image exists),
#   - a cold build and push of the hello image (fresh tag: a salted copy of its requirements,
#     empty BuildKit cache for it is not guaranteed: see the note printed),
#   - a code-only change: `union register --dry-run`-style check shows nothing to build.
#
#   bash tests/bench/images.sh
#
# flytekit's own default builder cannot run on this machine (its Dockerfile pulls
# ghcr.io/astral-sh/uv and mambaorg/micromamba, and public registries are unreachable), so it is
# not timed side by side here; see docs/benchmarks.md for the reference figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/setup/python-env.sh
bash tests/setup/docker.sh >/dev/null
cargo build --release --locked -q
UNION="$PWD/target/release/union"
export VIRTUAL_ENV="$PWD/.venv"
export DOCKER_HOST=unix:///run/union-test/docker.sock
export UNION_BASE_IMAGE=localhost:30000/union/debian-python:bookworm
# Cold commands (every one imports flytekit), as recorded in docs/benchmarks.md.
export UNION_WARM=0
OUT="$PWD/target/bench/images"; rm -rf "$OUT"; mkdir -p "$OUT"
cp -r python_fixtures/hello "$OUT/hello"
echo "# bench salt $(date +%s%N)" >> "$OUT/hello/requirements.txt"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

t=$(date +%s%N); (cd "$OUT/hello" && "$UNION" build -q workflows >/dev/null); cold=$(ms "$t")
t=$(date +%s%N); (cd "$OUT/hello" && "$UNION" build -q workflows >/dev/null); warm=$(ms "$t")
# The existence check alone, without Python start-up: a YAML spec of the same image.
printf 'name: say-hello-image\nregistry: localhost:30000\nrequirements: requirements.txt\n' > "$OUT/hello/spec.yaml"
(cd "$OUT/hello" && "$UNION" build -q spec.yaml >/dev/null)
best=999999
for _ in 1 2 3 4 5; do
  t=$(date +%s%N); (cd "$OUT/hello" && "$UNION" build -q spec.yaml >/dev/null); e=$(ms "$t")
  [ "$e" -lt "$best" ] && best=$e
done
sed -i 's/Hello, {name}!/Hi, {name}!/' "$OUT/hello/workflows/hello.py"
t=$(date +%s%N); out=$(cd "$OUT/hello" && "$UNION" register workflows --dry-run 2>&1); codeonly=$(ms "$t")
echo "| job | union |"
echo "|---|---|"
echo "| cold build and push of the hello image (new tag) | ${cold} ms |"
echo "| unchanged image, from the Python code (import + tag + check) | ${warm} ms |"
echo "| unchanged image, existence check alone (YAML spec, best of 5) | ${best} ms |"
echo "| code-only change: images to build | $(echo "$out" | grep -c 'would build' || true) (dry run ${codeonly} ms) |"
