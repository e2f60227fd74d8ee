#!/usr/bin/env bash
# The sandbox's execution overhead, against the test engine (tests/setup/docker.sh):
#   1. a one-task workflow (python_fixtures/exec hello_wf), RUNS times in a row:
#      CreateExecution -> SUCCEEDED as a client sees it (polling GetExecution every 10 ms), minus
#      the container's own run time (engine `start` -> `die` events of its container);
#   2. the 20-node fan-out (fanout_wf): wall time, and the CPU time the sandbox process itself
#      used (utime+stime from /proc, containers excluded);
#   3. a 100-element map task (mapped.py map_wf): wall time, how busy the machine's cores were
#      (/proc/stat) and how many containers ran at once on average (engine events), and the
#      sandbox's own CPU time per task.
#
#   tests/bench/sandbox_exec.sh [runs=10]
#
# PROFILE=dev for a debug build. Needs .venv (pyflyte) and the engine at /run/union-test/docker.sock.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
runs="${1:-10}"
profile="${PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-exec}"
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/union-test/docker.sock}"
# The client is not what is measured here: no warm interpreter.
export UNION_WARM=0
cargo build --profile "$profile" --bin union >&2
bin="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/union"
py="$root/.venv/bin/python"

tmp="$(mktemp -d /tmp/union-bench-exec-XXXX)"
data="$tmp/data"
out="$tmp/sandbox.out"
"$bin" sandbox start --port 0 --data-dir "$data" >"$out" 2>"$tmp/sandbox.err" &
pid=$!
events_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
addr="$(sed -n 's/^union sandbox listening on \([^ ]*\).*/\1/p' "$out")"
[ -n "$addr" ] || { echo "sandbox did not start" >&2; exit 1; }
echo "machine: $(nproc) CPUs, $(uname -sr); sandbox ($profile) at $addr" >&2

image="$(cd python_fixtures/hello && UNION_BASE_IMAGE=localhost:30000/union/debian-python:bookworm "$bin" build --quiet workflows | cut -f1)"
printf 'admin:\n  endpoint: dns:///%s\n  insecure: true\n' "$addr" >"$tmp/config.yaml"
(cd python_fixtures/exec && env -u UNION_CONFIG HOME="$tmp" NO_PROXY='*' \
  "$root/.venv/bin/pyflyte" -c "$tmp/config.yaml" register --image "$image" --version bench workflows >/dev/null)

work_root="$(cd "$data" && pwd -P)/executions"
docker events --filter "label=io.union.sandbox=$work_root" --filter event=start --filter event=die \
  --format '{{.Action}} {{.TimeNano}}' >"$tmp/events.txt" &
events_pid=$!
sleep 0.5

"$py" - "$addr" "$runs" "$pid" "$tmp/events.txt" <<'EOF'
import sys, time, statistics
import grpc
from flyteidl.admin import execution_pb2, common_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.service import admin_pb2_grpc

addr, runs, pid, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stub = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(addr))
TERMINAL = {4, 6, 7, 8}  # SUCCEEDED, FAILED, ABORTED, TIMED_OUT

def run(lp, inputs):
    lp_id = identifier_pb2.Identifier(resource_type=identifier_pb2.LAUNCH_PLAN, project="flytesnacks",
                                      domain="development", name=lp, version="bench")
    t0 = time.perf_counter()
    resp = stub.CreateExecution(execution_pb2.ExecutionCreateRequest(
        project="flytesnacks", domain="development",
        spec=execution_pb2.ExecutionSpec(launch_plan=lp_id), inputs=inputs))
    while True:
        e = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=resp.id))
        if e.closure.phase in TERMINAL:
            break
        time.sleep(0.01)
    dt = time.perf_counter() - t0
    assert e.closure.phase == 4, e.closure
    return dt

def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / __import__("os").sysconf("SC_CLK_TCK")

name = literals_pb2.LiteralMap(literals={"name": literals_pb2.Literal(scalar=literals_pb2.Scalar(
    primitive=literals_pb2.Primitive(string_value="Bench")))})
run("workflows.hello.hello_wf", name)  # warm-up: page cache, image already local
time.sleep(1)
totals = []
for _ in range(runs):
    totals.append(run("workflows.hello.hello_wf", name))
time.sleep(1.5)
lines = [l.split() for l in open(events) if l.strip()]
starts = [int(t) for a, t in lines if a == "start"]
dies = [int(t) for a, t in lines if a == "die"]
container = [(d - s) / 1e9 for s, d in zip(starts, dies)][-runs:]
overhead = [t - c for t, c in zip(totals, container)]
print(f"one-task workflow, {runs} runs: create->SUCCEEDED median {statistics.median(totals)*1000:.0f} ms, "
      f"container run median {statistics.median(container)*1000:.0f} ms, "
      f"sandbox overhead median {statistics.median(overhead)*1000:.0f} ms "
      f"(min {min(overhead)*1000:.0f}, max {max(overhead)*1000:.0f})")

c0 = cpu()
t = run("workflows.fanout.fanout_wf", literals_pb2.LiteralMap())
c1 = cpu()
print(f"20-node fan-out + fan-in (21 containers): {t:.1f} s wall, sandbox process CPU {c1 - c0:.2f} s")

def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)

time.sleep(1.5)
seen = len([l for l in open(events) if l.strip()])
c0, (b0, t0) = cpu(), busy()
start_ns = time.time_ns()
t = run("workflows.mapped.map_wf", literals_pb2.LiteralMap())
end_ns = time.time_ns()
c1, (b1, t1) = cpu(), busy()
time.sleep(1.5)
lines = [l.split() for l in open(events) if l.strip()][seen:]
spans, open_at = [], {}
for i, (a, ts) in enumerate(lines):
    ts = int(ts)
    if a == "start":
        open_at[i] = ts
    elif open_at:
        # Pair each death with the earliest start still open: durations, not identities, matter.
        k = min(open_at, key=open_at.get)
        spans.append((open_at.pop(k), ts))
in_window = sum(max(0, min(d, end_ns) - max(s, start_ns)) for s, d in spans) / 1e9
print(f"100-element map task + 2 tasks (102 containers): {t:.1f} s wall, cores busy {100 * (b1 - b0) / (t1 - t0):.0f}% "
      f"(/proc/stat, {__import__('os').cpu_count()} cores), containers running at once on average {in_window / t:.2f}, "
      f"sandbox process CPU {c1 - c0:.2f} s ({(c1 - c0) / 102 * 1000:.0f} ms per task)")
EOF
