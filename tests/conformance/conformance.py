"""Flytesnacks conformance: every workflow of three flytesnacks example packages, run locally with the
real `pyflyte run` and in `union sandbox` with `union run --remote --wait`, outputs compared.

Entry point: tests/conformance/run.sh (see docs/conformance.md). Run directly with the venv's python:

    python tests/conformance/conformance.py CHECKOUT [--out FILE] [--only REGEX] ...

CHECKOUT is a flytesnacks checkout or a git directory of one (the examples are extracted with
`git archive`). Nothing is written into CHECKOUT: the examples are copied to a scratch directory.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import compare  # noqa: E402

PACKAGES = ["basics", "advanced_composition", "data_types_and_io"]
BASE_IMAGE = "localhost:30000/union/debian-python:bookworm"
REGISTRY = "localhost:30000"
# Requirements of the examples that are not installed, locally or in the image: large ML frameworks.
HEAVY = {"torch", "tensorflow"}
# Pinned in the image to the versions in the local virtualenv, so both sides run the same code.
PINNED = ["flytekit", "union", "pandas", "pyarrow", "numpy", "pydantic", "mashumaro"]

STOP = threading.Event()
CURRENT = {"proc": None}


def log(msg):
    print(f"conformance: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- processes


def run_proc(cmd, cwd, env, timeout, on_timeout=None, stdin_text=None):
    """Run cmd in its own session (so that Ctrl-C is ours to forward), capturing stdout/stderr.
    Returns (exit code or None if timed out, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    CURRENT["proc"] = p
    try:
        out, err = p.communicate(input=stdin_text, timeout=timeout)
        return p.returncode, out, err, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        if on_timeout:
            on_timeout(p)
        stop_group(p)
        out, err = p.communicate()
        return None, out, err, time.monotonic() - t0
    finally:
        CURRENT["proc"] = None


def stop_group(p, grace=10):
    """SIGINT the process group (union and pyflyte stop cleanly on it), then SIGKILL."""
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(text, n=12):
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(lines[-n:])


# ----------------------------------------------------------------------------------------- checkout


def prepare_examples(src, dest):
    """Copy the three example packages from a checkout (or extract them from a git directory) into
    dest/examples; returns the flytesnacks commit (or "unknown")."""
    os.makedirs(dest, exist_ok=True)
    is_gitdir = not os.path.isdir(os.path.join(src, "examples")) and os.path.exists(os.path.join(src, "HEAD"))
    if is_gitdir:
        git = ["git", f"--git-dir={src}"]
        paths = [f"examples/{p}" for p in PACKAGES]
        arch = subprocess.run(git + ["archive", "HEAD", "--"] + paths, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", dest], input=arch.stdout, check=True)
    else:
        git = ["git", "-C", src]
        for p in PACKAGES:
            s = os.path.join(src, "examples", p)
            if not os.path.isdir(s):
                raise SystemExit(f"conformance: error: {s} does not exist: is {src} a flytesnacks checkout?")
            shutil.copytree(s, os.path.join(dest, "examples", p), ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True)
    commit = r.stdout.strip() if r.returncode == 0 else "unknown"
    # The examples' ImageSpecs push to ghcr.io/flyteorg, which this machine cannot push to (nor pull
    # from): in the scratch copy only, they push to the local registry instead. Nothing else changes.
    rewritten = []
    for p in PACKAGES:
        pkg = os.path.join(dest, "examples", p, p)
        for name in sorted(os.listdir(pkg)):
            if not name.endswith(".py"):
                continue
            path = os.path.join(pkg, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            new = text.replace('registry="ghcr.io/flyteorg"', f'registry="{REGISTRY}"')
            if new != text:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
                rewritten.append(f"{p}/{name}")
    return commit, rewritten


# ----------------------------------------------------------------------------------------- discovery


def discover(examples, env, python):
    cases = []
    import_errors = []
    for pkg in PACKAGES:
        root = os.path.join(examples, pkg)
        for name in sorted(os.listdir(os.path.join(root, pkg))):
            if not name.endswith(".py") or name == "__init__.py":
                continue
            rel = f"{pkg}/{name}"
            code, out, err, _ = run_proc(
                [python, os.path.join(HERE, "discover.py"), root, os.path.join(root, pkg, name)],
                cwd=root,
                env=env,
                timeout=180,
            )
            if STOP.is_set():
                return cases, import_errors
            try:
                doc = json.loads(out.strip().splitlines()[-1])
            except Exception:  # noqa: BLE001
                doc = {"error": f"discovery failed (exit {code}): {tail(err, 3)}"}
            if "error" in doc:
                import_errors.append({"package": pkg, "file": rel, "error": doc["error"]})
                continue
            for e in doc["entities"]:
                modshort = doc["module"].split(".")[-1]
                cases.append(
                    {
                        "id": f"{modshort}.{e['attr']}",
                        "package": pkg,
                        "root": root,
                        "file": rel,
                        "module": doc["module"],
                        **e,
                    }
                )
    return cases, import_errors


def decide_inputs(case, extra):
    x = extra.get(case["id"]) or {}
    # Flyte's answer, for a row whose local run fails (then compared with it, and counted apart)
    case["flyte"] = x.get("flyte")
    case["flyte_error"] = x.get("flyte_error")
    case["flyte_note"] = x.get("note")
    if not case["required"]:
        case["args"] = []
        case["inputs_from"] = "defaults"
        return True
    mc = case.get("main_call")
    if mc and "args" in mc and not x.get("override"):
        case["args"] = mc["args"]
        case["inputs_from"] = f"`__main__`: `{mc['source']}`"
        return True
    if x.get("args") is not None:
        case["args"] = x["args"]
        case["inputs_from"] = "extra_inputs.json: `" + " ".join(x["args"]) + "`" + (" (instead of `__main__`'s: " + x["note"] + ")" if x.get("override") else "")
        case["extra"] = True
        case["stdin"] = x.get("stdin")
        case["signals"] = x.get("signals")
        return True
    if mc and "error" in mc:
        case["skip"] = f"needs inputs ({', '.join(case['required'])}); its `__main__` call: {mc['error']}"
    else:
        case["skip"] = f"needs inputs ({', '.join(case['required'])}) and no `__main__` call gives them"
    return False


# ----------------------------------------------------------------------------------------- environment


def base_env(work, venv):
    env = {k: v for k, v in os.environ.items() if not (k.startswith("FLYTE") or k.startswith("UNION_") or k.startswith("PYFLYTE"))}
    env.pop("VIRTUAL_ENV", None)
    env["HOME"] = os.path.join(work, "home")
    os.makedirs(env["HOME"], exist_ok=True)
    env["VIRTUAL_ENV"] = venv
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["UNION_WARM"] = "0"  # no background interpreter left behind
    env["UNION_BASE_IMAGE"] = BASE_IMAGE
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("DOCKER_HOST", "unix:///run/union-test/docker.sock")
    return env


def requirements(examples):
    reqs = []
    for pkg in PACKAGES:
        path = os.path.join(examples, pkg, "requirements.in")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.split("#")[0].strip()
                    if line and line not in reqs:
                        reqs.append(line)
    return reqs


def req_name(req):
    return re.split(r"[<>=!~\[; ]", req, 1)[0].strip().lower()


def installed_version(python, env, name):
    r = subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True, text=True, env=env,
    )
    return r.stdout.strip() if r.returncode == 0 else None


def overlay_requirements(reqs, python, env, overlay):
    """Install, into an overlay directory on PYTHONPATH for the local runs only, the examples'
    requirements the virtualenv lacks (never the HEAVY ones). Returns (installed, skipped, failed)."""
    missing = [r for r in reqs if req_name(r) not in HEAVY and installed_version(python, env, req_name(r)) is None]
    skipped = [r for r in reqs if req_name(r) in HEAVY]
    if not missing:
        return [], skipped, []
    os.makedirs(overlay, exist_ok=True)
    r = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--target", overlay] + missing,
        capture_output=True, text=True, env=env, timeout=600,
    )
    if r.returncode != 0:
        return [], skipped, [(m, tail(r.stderr, 3)) for m in missing]
    return missing, skipped, []


# ----------------------------------------------------------------------------------------- local


def run_local(case, python, env, config, timeout, work):
    result_path = os.path.join(work, "local", case["id"] + ".json")
    os.makedirs(os.path.dirname(result_path), exist_ok=True)
    cmd = [python, os.path.join(HERE, "local_run.py"), result_path, "-c", config, "run", case["file"], case["attr"]] + case["args"]
    # Gate nodes prompt on stdin in a local run; without answers, stdin is closed.
    code, out, err, secs = run_proc(cmd, cwd=case["root"], env=env, timeout=timeout, stdin_text=case.get("stdin"))
    res = {"cmd": "pyflyte run " + " ".join(cmd[5:]), "secs": secs, "stdout": out, "stderr": err}
    if code is None:
        res.update(ok=False, why=f"timed out after {timeout} s")
        return res
    doc = {}
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            doc = json.load(f)
    if code != 0 or not doc.get("echoed"):
        # pyflyte prints a failing task's traceback on stdout, its own errors on stderr
        res.update(ok=False, why=f"exit {code}: " + compare.error_summary((err or "") + "\n" + (out or "")))
        return res
    res.update(ok=True, text=doc["text"], blobs=doc.get("blobs", {}), dataframes=doc.get("dataframes", []), type=doc.get("type"))
    return res


# ----------------------------------------------------------------------------------------- images


def build_image(union, env, work, python):
    """One image for the tasks without an ImageSpec: flytekit, union and the examples' installable
    requirements, pinned to the local virtualenv's versions."""
    pkgs = []
    for name in PINNED:
        v = installed_version(python, env, name)
        pkgs.append(f"{name}=={v}" if v else name)
    for r in requirements(os.path.join(work, "examples")):
        n = req_name(r)
        if n in HEAVY or n in PINNED:
            continue
        v = installed_version(python, env, n)
        pkgs.append(f"{n}=={v}" if v else r)
    spec = os.path.join(work, "image-spec.yaml")
    with open(spec, "w", encoding="utf-8") as f:
        f.write("name: flytesnacks-conformance\n")
        f.write('python_version: "3.11"\n')
        f.write(f"registry: {REGISTRY}\n")
        f.write(f"base_image: {BASE_IMAGE}\n")
        f.write("packages:\n")
        for p in pkgs:
            f.write(f'  - "{p}"\n')
    code, out, err, secs = run_proc([union, "build", "--quiet", spec], cwd=work, env=env, timeout=1800)
    line = (out or "").strip().splitlines()[:1]
    if code != 0 or not line:
        return None, pkgs, f"`union build` failed (exit {code}): {tail(err, 5)}", secs
    return line[0].split("\t")[0], pkgs, None, secs


def build_example_images(union, env, cases):
    """Build (once, up front) the examples' own ImageSpecs, so that a slow first build is not
    counted in one workflow's time limit. Failures are reported by the runs themselves."""
    by_root = {}
    for c in cases:
        path = os.path.join(c["root"], c["file"])
        with open(path, encoding="utf-8") as f:
            if "ImageSpec(" in f.read():
                by_root.setdefault(c["root"], set()).add(c["file"])
    notes = []
    for root, files in sorted(by_root.items()):
        code, out, err, secs = run_proc([union, "build", "--quiet"] + sorted(files), cwd=root, env=env, timeout=1800)
        notes.append((sorted(files), code, (out or "").strip(), tail(err, 5), secs))
    return notes


# ----------------------------------------------------------------------------------------- sandbox


class Sandbox:
    def __init__(self, union, env, data_dir):
        self.union, self.env, self.data_dir = union, env, data_dir
        self.proc = None
        self.endpoint = None
        self.log_path = os.path.join(os.path.dirname(data_dir), "sandbox.log")

    def start(self, timeout=120):
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [self.union, "sandbox", "start", "--port", "0", "--data-dir", self.data_dir],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        found = {}

        def read():
            for line in self.proc.stdout:
                m = re.search(r"listening on (\S+)", line)
                if m and "addr" not in found:
                    found["addr"] = m.group(1)
            self.proc.stdout.close()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "addr" not in found and self.proc.poll() is None and not STOP.is_set():
            time.sleep(0.1)
        if "addr" not in found:
            raise RuntimeError(f"the sandbox did not start (see {self.log_path})")
        self.endpoint = found["addr"]
        return self.endpoint

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.remove_containers()

    def remove_containers(self):
        """Containers this sandbox started and left (label io.union.sandbox = a path under data_dir).
        A start request the sandbox sent just before it stopped can still complete in the engine:
        look again until a pass finds none."""
        removed = 0
        for _ in range(4):
            n = self._remove_containers_once()
            removed += n
            if n == 0 and _ > 0:
                break
            time.sleep(1.5)
        return removed

    def _remove_containers_once(self):
        try:
            r = subprocess.run(
                ["docker", "ps", "-aq", "--filter", "label=io.union.sandbox", "--format", '{{.ID}} {{.Label "io.union.sandbox"}}'],
                capture_output=True, text=True, env=self.env, timeout=30,
            )
        except Exception:  # noqa: BLE001 - no docker CLI: nothing we can do
            return 0
        ids = [ln.split(" ", 1)[0] for ln in r.stdout.splitlines() if " " in ln and ln.split(" ", 1)[1].startswith(self.data_dir)]
        if ids:
            subprocess.run(["docker", "rm", "-f"] + ids, capture_output=True, env=self.env, timeout=60)
        return len(ids)


def run_remote(case, idx, union, env, config, image, timeout, python):
    name = f"cf{idx:03d}-{os.urandom(2).hex()}"
    cmd = [union, "run", "--remote", "--wait", "--config", config, "--image", image, "--name", name, case["file"], case["attr"]] + case["args"]
    answerer = None
    if case.get("signals"):
        # Gate nodes wait for a human: answer them as one would, through FlyteRemote's signal API.
        answerer = subprocess.Popen(
            [python, os.path.join(HERE, "signals.py"), config, name, json.dumps(case["signals"])],
            cwd=case["root"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            start_new_session=True, text=True,
        )
    try:
        code, out, err, secs = run_proc(cmd, cwd=case["root"], env=env, timeout=timeout)
    finally:
        signals_log = ""
        if answerer is not None:
            stop_group(answerer, grace=2)
            signals_log = answerer.stderr.read()
    res = {"cmd": "union " + " ".join(cmd[1:]), "secs": secs, "stdout": out, "stderr": err, "execution": name}
    if signals_log:
        res["signals_log"] = signals_log
    if code is None:
        # union stopped following on SIGINT (the execution goes on): terminate it.
        subprocess.run([union, "terminate", name, "--config", config, "--cause", "conformance: time limit"],
                       cwd=case["root"], env=env, capture_output=True, timeout=60)
        waiting = compare.last_running_nodes(err)
        sig = ""
        if signals_log:
            sig = "; signals: " + "; ".join(dict.fromkeys(ln.replace("signals: ", "") for ln in signals_log.splitlines()))[:200]
        res.update(ok=False, why=f"timed out after {timeout} s" + (f" ({waiting})" if waiting else "") + sig + "; execution terminated")
        return res
    if code != 0:
        res.update(ok=False, why=f"exit {code}: " + compare.error_summary(err))
        return res
    res.update(ok=True, text=compare.strip_trailing_newline(out))
    # The printed outputs show a dataframe as `StructuredDataset(uri=None, ...)`: its location, to
    # compare content, comes from `union get execution` (outputs as JSON, with uris).
    if "StructuredDataset(" in out or "DataFrame" in out:
        g = subprocess.run([union, "get", "execution", name, "--config", config], cwd=case["root"], env=env,
                           capture_output=True, text=True, timeout=60)
        res["get_execution"] = g.stdout
        res["dataframes"] = [
            compare.dataframe_dir_digest(u, fmt) or f"unreadable: {u}"
            for u, fmt in compare.remote_dataframe_uris(g.stdout, out, case["outputs"])
        ]
    return res


# ----------------------------------------------------------------------------------------- report


def md_cell(s):
    s = (s or "").replace("|", "\\|").replace("\n", "<br>")
    return s


def short(s, n=90):
    s = (s or "").strip()
    s = s.replace("\n", " ⏎ ")
    return s if len(s) <= n else s[: n - 1] + "…"


def code_cell(s):
    return s if s == "(no outputs)" else "`" + s.replace("`", "'") + "`"


def union_label(union):
    """`union --version`, the commit it was built from, and the binary's digest and date.
    The commit: $CONFORMANCE_UNION_COMMIT, else this repository's HEAD when the binary is its own
    target/release/union."""
    import hashlib

    version = subprocess.run([union, "--version"], capture_output=True, text=True).stdout.strip()
    commit = os.environ.get("CONFORMANCE_UNION_COMMIT")
    if not commit and union.startswith(os.path.join(REPO, "target")):
        r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True)
        commit = r.stdout.strip() or None
    h = hashlib.sha256()
    with open(union, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(union)))
    return f"{version}" + (f" at {commit}" if commit else "") + f" (binary sha256 {h.hexdigest()[:12]}, {built})"


def report(cases, import_errors, meta):
    lines = []
    counted = [c for c in cases if c.get("verdict") in ("same", "different", "failed")]
    target = [c for c in counted if not c.get("extra")]
    same = [c for c in target if c["verdict"] == "same"]
    extra = [c for c in counted if c.get("extra")]
    extra_same = [c for c in extra if c["verdict"] == "same"]
    lines.append(f"flytesnacks {meta['flytesnacks']}, {meta['union']}, flytekit {meta['flytekit']}, "
                 f"measured {meta['date']} in {meta['elapsed']}.")
    if meta.get("union_changed"):
        lines.append("")
        lines.append(f"**Warning:** the binary changed during the run (at the end: {meta['union_changed']}); "
                     f"rows ran with either build.")
    lines.append("")
    lines.append(f"**{len(same)} of {len(target)} same**: the workflows and launch plans whose inputs all have defaults "
                 f"or come from the example's `__main__` block, and that succeed locally.")
    if extra:
        lines.append("")
        lines.append(f"Counted apart: **{len(extra_same)} of {len(extra)} same** for the rows that take their inputs, or "
                     f"Flyte's answer when the local run fails, from `tests/conformance/extra_inputs.json`.")
    lines.append("")
    lines.append(f"Not counted: {len(cases) - len(counted)} rows that need inputs nobody gives or that fail locally"
                 f"{', and modules that fail to import' if import_errors else ''}.")
    lines.append("")
    for pkg in PACKAGES:
        rows = [c for c in cases if c["package"] == pkg]
        errs = [e for e in import_errors if e["package"] == pkg]
        if not rows and not errs:
            continue
        lines.append(f"### `examples/{pkg}`")
        lines.append("")
        lines.append("| workflow | inputs | local | sandbox | verdict | why |")
        lines.append("|---|---|---|---|---|---|")
        for c in rows:
            local = c.get("local", {})
            remote = c.get("remote", {})
            lcell = (short(local.get("text"), 60) or "(no outputs)") if local.get("ok") else ("—" if not local else "fails")
            rcell = (short(remote.get("text"), 60) or "(no outputs)") if remote.get("ok") else ("—" if not remote else "fails")
            inputs = c.get("inputs_from", "—")
            lines.append(
                f"| `{c['id']}`{' (launch plan)' if c['kind'] == 'launch_plan' else ' (eager)' if c['kind'] == 'eager' else ''} "
                f"| {md_cell(inputs)} | {md_cell(code_cell(lcell) if local.get('ok') else lcell)} "
                f"| {md_cell(code_cell(rcell) if remote.get('ok') else rcell)} "
                f"| **{c['verdict']}** | {md_cell(c.get('why', ''))} |"
            )
        for e in errs:
            why = short(e["error"], 200)
            m = re.search(r"No module named '(\w+)'", e["error"])
            if m and m.group(1) in HEAVY:
                why += f" ({m.group(1)} is one of the examples' heavy requirements, installed neither locally nor in the image)"
            lines.append(f"| `{e['file']}` (module) | — | fails | — | **import fails** | {md_cell(why)} |")
        lines.append("")
    lines.append(f"Summary: {len(same)} of {len(target)} same" + (f" (and {len(extra_same)} of {len(extra)} with extra inputs)." if extra else "."))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkout", help="flytesnacks checkout, or its git directory")
    ap.add_argument("--out", help="write the markdown table here too")
    ap.add_argument("--json", help="write every result (commands, outputs, logs) here")
    ap.add_argument("--union", default=os.environ.get("UNION_BIN") or os.path.join(REPO, "target", "release", "union"))
    ap.add_argument("--only", help="regex: only rows whose id (module.attr) matches")
    ap.add_argument("--local-timeout", type=int, default=300)
    ap.add_argument("--remote-timeout", type=int, default=int(os.environ.get("CONFORMANCE_TIMEOUT", "300")))
    ap.add_argument("--gate-timeout", type=int, default=120, help="limit for rows that wait on gate nodes (signals)")
    ap.add_argument("--no-extra-inputs", action="store_true", help="only the issue's rows: no inputs from extra_inputs.json")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (printed at the end)")
    args = ap.parse_args()

    union = os.path.abspath(args.union)
    if not os.access(union, os.X_OK):
        raise SystemExit(f"conformance: error: no union binary at {union} (set UNION_BIN or --union)")
    python = sys.executable
    venv = sys.prefix
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="union-conformance-")
    log(f"scratch directory {work}")
    env = base_env(work, venv)
    sandbox = None
    cases, import_errors = [], []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    def on_signal(signum, frame):
        p = CURRENT.get("proc")
        if p is not None:
            threading.Thread(target=stop_group, args=(p, 5), daemon=True).start()
        if STOP.is_set():
            return  # already stopping: let the cleanup (sandbox, containers) finish
        STOP.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        commit, rewritten = prepare_examples(os.path.abspath(args.checkout), work)
        examples = os.path.join(work, "examples")
        meta["flytesnacks"] = commit[:8]
        meta["union"] = union_label(union)
        meta["flytekit"] = installed_version(python, env, "flytekit")
        log(f"flytesnacks {commit}; {meta['union']} ({union}); ImageSpec registries rewritten in {rewritten}")

        reqs = requirements(examples)
        installed, skipped, failed = overlay_requirements(reqs, python, env, os.path.join(work, "overlay"))
        local_env = dict(env)
        if installed:
            local_env["PYTHONPATH"] = os.path.join(work, "overlay")
        meta["requirements"] = {"installed_for_local": installed, "skipped": skipped, "failed": failed}
        log(f"requirements: {reqs}; installed for the local runs: {installed}; not installed (heavy): {skipped}; failed: {failed}")

        sandbox = Sandbox(union, env, os.path.join(work, "sandbox"))
        endpoint = sandbox.start()
        config = os.path.join(work, "config.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"admin:\n  endpoint: dns:///{endpoint}\n  insecure: true\n")
        log(f"sandbox on {endpoint}")

        cases, import_errors = discover(examples, local_env, python)
        if args.only:
            cases = [c for c in cases if re.search(args.only, c["id"])]
            import_errors = [e for e in import_errors if re.search(args.only, e["file"])]
        log(f"{len(cases)} workflows and launch plans; {len(import_errors)} modules fail to import")

        extra = {}
        if not args.no_extra_inputs:
            with open(os.path.join(HERE, "extra_inputs.json"), encoding="utf-8") as f:
                extra = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
        runnable = [c for c in cases if decide_inputs(c, extra)]
        for c in cases:
            if "skip" in c:
                c["verdict"] = "not run"
                c["why"] = c["skip"]

        for i, c in enumerate(runnable):
            if STOP.is_set():
                break
            c["local"] = run_local(c, python, local_env, config, args.local_timeout, work)
            log(f"local  [{i + 1}/{len(runnable)}] {c['id']}: {'ok' if c['local']['ok'] else 'FAILED'} ({c['local']['secs']:.1f} s)")
            if not c["local"]["ok"]:
                c["verdict"] = "local fails"
                c["why"] = "local `pyflyte run` fails: " + c["local"]["why"]
                if c.get("flyte") is not None or c.get("flyte_error"):
                    c["extra"] = True  # compared with Flyte's answer instead: counted apart

        # Rows whose local run fails are compared with Flyte's answer when extra_inputs.json gives it.
        to_remote = [c for c in runnable if c.get("local", {}).get("ok") or c.get("flyte") is not None or c.get("flyte_error")]
        image, pkgs, build_err, build_secs = (None, [], None, 0.0)
        if to_remote and not STOP.is_set():
            log("building the image for tasks without an ImageSpec")
            image, pkgs, build_err, build_secs = build_image(union, env, work, python)
            meta["image"] = {"name": image, "packages": pkgs, "error": build_err, "secs": round(build_secs, 1)}
            log(f"image: {image or build_err} ({build_secs:.0f} s)")
            if image:
                meta["example_images"] = [
                    {"files": f, "exit": code, "out": out, "err": err, "secs": round(s, 1)}
                    for f, code, out, err, s in build_example_images(union, env, to_remote)
                ]
                for e in meta["example_images"]:
                    log(f"example images for {e['files']}: exit {e['exit']} ({e['secs']:.0f} s) {e['out'] or e['err']}")

        for i, c in enumerate(to_remote):
            if STOP.is_set():
                break
            if not image:
                c["remote"] = {"ok": False, "why": build_err}
            else:
                limit = args.gate_timeout if c.get("signals") else args.remote_timeout
                c["remote"] = run_remote(c, i, union, env, config, image, limit, python)
            r = c["remote"]
            verdict, why = compare.verdict(c, c["local"], r, sandbox.data_dir)
            c["verdict"], c["why"] = verdict, why
            log(f"remote [{i + 1}/{len(to_remote)}] {c['id']}: {verdict} ({r.get('secs', 0):.1f} s) {why}")
    except KeyboardInterrupt:
        STOP.set()
        log("interrupted: stopping")
    except BaseException:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if sandbox is not None:
            sandbox.stop()
            sandbox = None
        raise
    finally:
        if sandbox is not None:
            log("stopping the sandbox")
            sandbox.stop()
    if meta.get("union") and os.path.exists(union):
        now = union_label(union)
        if now != meta["union"]:
            meta["union_changed"] = now
            log(f"warning: {union} changed during the run: now {now}")
    elapsed = time.monotonic() - t_start
    meta["elapsed"] = f"{int(elapsed // 60)} min {int(elapsed % 60)} s"
    for c in cases:
        c.setdefault("verdict", "not run" if STOP.is_set() else "failed")
        c.setdefault("why", "interrupted" if STOP.is_set() else "")
    if cases or import_errors:
        text = report(cases, import_errors, meta)
        print(text)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
            log(f"table written to {args.out}")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"meta": meta, "cases": cases, "import_errors": import_errors}, f, indent=1, default=str)
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if STOP.is_set():
        sys.exit(130)


if __name__ == "__main__":
    main()
