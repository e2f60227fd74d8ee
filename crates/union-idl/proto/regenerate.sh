#!/usr/bin/env bash
# Regenerate the descriptor sets the wire types are generated from, from packages installed in a
# Python environment, and record their versions:
#
#   flyteidl.fds / flyteidl.version   the `flyteidl` package (export_flyteidl.py)
#   union.fds / union.version         union's image builder types and their imports, from the
#                                     `union` package (export_union.py)
#
#   bash crates/union-idl/proto/regenerate.sh [PYTHON]     (default: the repository's .venv)
#
# Commit all four files: the build compiles them and needs no Python. flytekit 1.16 speaks
# flyteidl 1.16.8 (python_fixtures/requirements.txt pins it); union 0.1.204 is the reference.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${1:-$root/.venv/bin/python}"
[ -x "$python" ] || { echo "regenerate.sh: no python at $python (bash tests/setup/python-env.sh makes .venv)" >&2; exit 1; }
out="$("$python" "$here/export_flyteidl.py" "$here/flyteidl.fds")"
version="$(printf '%s\n' "$out" | sed -n 's/^version //p')"
printf '%s\n' "$version" > "$here/flyteidl.version"
echo "flyteidl $version -> $here/flyteidl.fds ($(wc -c < "$here/flyteidl.fds") bytes)"
out="$("$python" "$here/export_union.py" "$here/union.fds")"
version="$(printf '%s\n' "$out" | sed -n 's/^version //p')"
printf '%s\n' "$version" > "$here/union.version"
echo "union $version -> $here/union.fds ($(wc -c < "$here/union.fds") bytes)"
