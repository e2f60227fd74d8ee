#!/usr/bin/env bash
# Create ./.venv with the pinned flytekit/union environment the fixtures and tests use.
#
# The venv is made from the same Python installation that `union` links against (pyo3 builds
# against .venv/bin/python, see .cargo/config.toml), so the two always match. That installation
# must ship a shared libpython (pyenv and python.org builds do; set UNION_BASE_PYTHON to pick one).
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE="${UNION_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
BASE="$("$BASE" -c 'import sys; print(sys.executable)')"
read -r VERSION SHARED LIBDIR < <("$BASE" -c 'import sys, sysconfig; print("%d.%d" % sys.version_info[:2], sysconfig.get_config_var("Py_ENABLE_SHARED") or 0, sysconfig.get_config_var("LIBDIR"))')
if [ "$SHARED" != "1" ]; then
  echo "error: $BASE has no shared libpython; union embeds Python and needs one" >&2
  echo "hint: use a pyenv or python.org build of Python 3.11, or set UNION_BASE_PYTHON" >&2
  exit 1
fi
if [ "$VERSION" != "3.11" ]; then
  echo "warning: $BASE is Python $VERSION; the fixtures are pinned for 3.11" >&2
fi

if [ -x .venv/bin/python ]; then
  HOME_LINE="$(grep '^home' .venv/pyvenv.cfg | sed 's/^home *= *//')"
  if [ "$(cd "$HOME_LINE" && pwd -P)" != "$(cd "$(dirname "$BASE")" && pwd -P)" ]; then
    echo "recreating .venv: it was made from $HOME_LINE, not $(dirname "$BASE")" >&2
    rm -rf .venv
  fi
fi
[ -x .venv/bin/python ] || "$BASE" -m venv .venv

# Skip pip entirely when everything pinned is already installed (fast re-runs, CI cache).
STAMP=.venv/.union-requirements.sha256
WANT="$(cat python_fixtures/requirements.txt python_fixtures/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check \
    -r python_fixtures/requirements.txt -c python_fixtures/constraints.txt
  echo "$WANT" > "$STAMP"
fi
echo "python env: $(pwd)/.venv ($(.venv/bin/python -c 'import flytekit; print("flytekit", flytekit.__version__)'))" >&2
