"""Generate a synthetic flytekit project for registration benchmarks.

Usage: python gen_project.py OUT_DIR [TASKS=200] [WORKFLOWS=50]

Writes OUT_DIR/benchproj/ (a package) with TASKS tasks spread over modules of 20, and WORKFLOWS
workflows, each chaining 4 tasks. Deterministic: the same arguments give the same files.
"""

import os
import sys

out = sys.argv[1]
n_tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 200
n_wfs = int(sys.argv[3]) if len(sys.argv) > 3 else 50
pkg = os.path.join(out, "benchproj")
os.makedirs(pkg, exist_ok=True)
open(os.path.join(pkg, "__init__.py"), "w").close()

per_module = 20
for m in range(0, n_tasks, per_module):
    lines = ["from flytekit import task", ""]
    for t in range(m, min(m + per_module, n_tasks)):
        lines += [
            "",
            "@task",
            f"def t{t}(x: int, label: str = \"t{t}\") -> int:",
            f"    \"\"\"Task {t}.\"\"\"",
            f"    return x + {t}",
            "",
        ]
    with open(os.path.join(pkg, f"tasks_{m // per_module:02d}.py"), "w") as f:
        f.write("\n".join(lines))

lines = ["from flytekit import workflow", ""]
for m in range(0, n_tasks, per_module):
    lines.insert(0, f"from benchproj.tasks_{m // per_module:02d} import *  # noqa")
for w in range(n_wfs):
    ts = [(w * 4 + k) % n_tasks for k in range(4)]
    body = [f"    a = t{ts[0]}(x=x)"]
    for i, t in enumerate(ts[1:]):
        body.append(f"    {'bcd'[i]} = t{t}(x={'abc'[i]})")
    lines += ["", "@workflow", f"def wf{w}(x: int = {w}) -> int:"] + body + ["    return d", ""]
with open(os.path.join(pkg, "workflows.py"), "w") as f:
    f.write("\n".join(lines))
print(pkg)
