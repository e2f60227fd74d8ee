#!/usr/bin/env bash
# Start-up and local-run benchmark: union vs pyflyte, side by side in one run (hyperfine).
#
#   bash tests/bench/startup.sh            # prints a markdown table; raw JSON in target/bench/
#
# Needs: tests/setup/python-env.sh done, hyperfine (apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
bash tests/setup/python-env.sh
cargo build --release --locked -q
UNION="$PWD/target/release/union"
VENV="$PWD/.venv"
OUT="$PWD/target/bench"; mkdir -p "$OUT"
# pyflyte needs a config file when `union` is installed, even for local runs.
CFG="$OUT/pyflyte-config.yaml"
printf 'admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n' > "$CFG"
export VIRTUAL_ENV="$VENV"
HELLO=python_fixtures/hello/workflows/hello.py
CALC=python_fixtures/typed/workflows/calc.py

hyperfine -N --warmup 3 --runs 30 --export-json "$OUT/help.json" \
  -n "union --help" "$UNION --help" \
  -n "pyflyte --help" "$VENV/bin/pyflyte --help"

# Cold: the warm interpreter off (as in CI, or with UNION_WARM=0): every run imports flytekit.
UNION_WARM=0 hyperfine -N --warmup 2 --runs 10 --export-json "$OUT/run.json" \
  -n 'python -c "import flytekit"' "$VENV/bin/python -c 'import flytekit'" \
  -n "UNION_WARM=0 union run hello" "$UNION run $HELLO hello_world_wf --name Alice" \
  -n "pyflyte run hello" "$VENV/bin/pyflyte -c $CFG run $HELLO hello_world_wf --name Alice" \
  -n "UNION_WARM=0 union run calc" "$UNION run $CALC calc_wf --xs [1,2,3,4,5] --factor 2 --threshold 4.5" \
  -n "pyflyte run calc" "$VENV/bin/pyflyte -c $CFG run $CALC calc_wf --xs [1,2,3,4,5] --factor 2 --threshold 4.5"

# The default: the first run (cold) leaves a warm interpreter, and every later run is served by it.
env -u UNION_WARM -u CI "$UNION" run $HELLO hello_world_wf --name Alice >/dev/null
sleep 3
env -u UNION_WARM -u CI hyperfine -N --warmup 2 --runs 10 --export-json "$OUT/warm.json" \
  -n "union run hello (default: warm)" "$UNION run $HELLO hello_world_wf --name Alice" \
  -n "union run calc (default: warm)" "$UNION run $CALC calc_wf --xs [1,2,3,4,5] --factor 2 --threshold 4.5"
"$UNION" warm stop

"$VENV/bin/python" - "$OUT/help.json" "$OUT/run.json" "$OUT/warm.json" <<'PY'
import json, sys
print("| command | mean | stddev | min |")
print("|---|---|---|---|")
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print(f"| `{r['command']}` | {r['mean']*1000:.1f} ms | ±{r['stddev']*1000:.1f} ms | {r['min']*1000:.1f} ms |")
PY
