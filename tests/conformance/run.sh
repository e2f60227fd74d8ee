#!/usr/bin/env bash
# Flytesnacks conformance: run every workflow of flytesnacks' examples/basics,
# examples/advanced_composition and examples/data_types_and_io locally (pyflyte run) and in
# `union sandbox` (union run --remote --wait), and compare the outputs. See docs/conformance.md.
#
# Usage: tests/conformance/run.sh FLYTESNACKS [OUT.md] [-- driver options]
#   FLYTESNACKS  a flytesnacks checkout, or a git directory of one (e.g. a bare mirror)
#   OUT.md       where the markdown table goes (default: conformance-results.md in the current dir);
#                the full results (commands, outputs, logs) go beside it as OUT.json
# Environment:
#   UNION_BIN    the union binary to test (default: target/release/union of this repository)
#   CONFORMANCE_TIMEOUT  per-workflow limit for the sandbox run, seconds (default 300)
#   DOCKER_HOST  the engine the sandbox runs tasks with (default: the test engine that
#                tests/setup/docker.sh starts, unix:///run/union-test/docker.sock)
# Needs: the pinned virtualenv (.venv, tests/setup/python-env.sh) and a Docker engine with the
# registry on localhost:30000 and the offline base image (bash tests/setup/docker.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
checkout=$1; shift
[ -d "$checkout" ] || { echo "run.sh: error: $checkout is not a directory (a flytesnacks checkout or its git directory)" >&2; exit 2; }
out=conformance-results.md
if [ $# -gt 0 ] && [ "$1" != -- ]; then out=$1; shift; fi
[ "${1:-}" = -- ] && shift

venv=${CONFORMANCE_VENV:-$repo/.venv}
python=$venv/bin/python
[ -x "$python" ] || { echo "run.sh: error: no virtualenv at $venv (bash tests/setup/python-env.sh)" >&2; exit 1; }
export UNION_BIN=${UNION_BIN:-$repo/target/release/union}
[ -x "$UNION_BIN" ] || { echo "run.sh: error: no union binary at $UNION_BIN (cargo build --release, or set UNION_BIN)" >&2; exit 1; }
if [ -z "${DOCKER_HOST:-}" ] && [ -S /run/union-test/docker.sock ]; then
  export DOCKER_HOST=unix:///run/union-test/docker.sock
fi
[ -n "${DOCKER_HOST:-}" ] || { echo "run.sh: error: no Docker engine: run bash tests/setup/docker.sh (or set DOCKER_HOST)" >&2; exit 1; }
curl -sf --max-time 5 http://127.0.0.1:30000/v2/ >/dev/null \
  || { echo "run.sh: error: no registry on localhost:30000: run bash tests/setup/docker.sh" >&2; exit 1; }

# exec: Ctrl-C reaches the driver directly, which stops the command in flight and the sandbox.
exec "$python" "$here/conformance.py" "$checkout" --out "$out" --json "${out%.md}.json" "$@"
