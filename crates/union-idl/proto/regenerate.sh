#!/usr/bin/env bash
# Regenerate flyteidl.fds (the schema the Flyte wire types are generated from) from the `flyteidl`
# package installed in a Python environment, and record its version in flyteidl.version.
#
#   bash crates/union-idl/proto/regenerate.sh [PYTHON]     (default: the repository's .venv)
#
# Commit both files: the build compiles them and needs no Python. flytekit 1.16 speaks
# flyteidl 1.16.8 (python_fixtures/requirements.txt pins it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${1:-$root/.venv/bin/python}"
[ -x "$python" ] || { echo "regenerate.sh: no python at $python (bash tests/setup/python-env.sh makes .venv)" >&2; exit 1; }
out="$("$python" "$here/export_flyteidl.py" "$here/flyteidl.fds")"
version="$(printf '%s\n' "$out" | sed -n 's/^version //p')"
printf '%s\n' "$version" > "$here/flyteidl.version"
echo "flyteidl $version -> $here/flyteidl.fds ($(wc -c < "$here/flyteidl.fds") bytes)"
