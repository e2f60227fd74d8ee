"""Comparison of what `pyflyte run` (local) and `union run --remote --wait` (sandbox) print.

Pure Python, no flytekit: tests/conformance/test_compare.py exercises it.

Both CLIs print a workflow's result as text: pyflyte `str()` of the returned value, union the
outputs the way pyflyte --remote does (one value alone; several as `name: value` lines). Both texts
are parsed into one normalized form:

- a Python-literal-like value (ast): numbers, strings, lists, dicts, `Name(k=v, ...)` constructors
  (dataclasses, NamedTuples, pydantic models), bare names;
- several outputs become {output name: value}, whether printed as a NamedTuple
  `DefaultNamedTupleOutput(o0=..., o1=...)`, a tuple `(a, b)` or `name: value` lines (either
  side may print either form);
- a path to a file or directory, or a dataframe's location, is replaced by a digest of its content
  when the content can be read (local: recorded by local_run.py when pyflyte printed it; sandbox:
  the sandbox keeps blobs on disk under its data directory), so two outputs with equal content
  at different places compare equal ("same (paths differ)");
- floats compare exactly (no tolerance): both sides run the same Python code on the same numbers.
"""

import ast
import hashlib
import json
import os
import re

OPAQUE_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def strip_trailing_newline(s):
    return (s or "").rstrip("\n")


def error_summary(stderr, limit=300):
    """The most telling line of an error output: for a failed sandbox execution the failing node's
    error (`  [n1] ...` after `error: execution NAME failed`, with the exception line of its
    traceback); else the last exception line or `error:` line."""
    lines = [ln.rstrip() for ln in (stderr or "").splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if re.match(r"^error: execution \S+ failed", ln):
            block = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("hint:"):
                    break
                block.append(nxt.strip())
            if block:
                node = block[0]
                exc = [b for b in block[1:] if re.match(r"^[A-Z]\w*(Error|Exception)\b", b)]
                text = node + (" — " + exc[-1] if exc and exc[-1] not in node else "")
                text = re.sub(r"\s+", " ", text)
                return text if len(text) <= limit else text[: limit - 1] + "…"
    # the last exception line, with its continuation lines (rich wraps long messages)
    clean = [ln.strip().strip("│").strip() for ln in lines]
    clean = [ln for ln in clean if ln and not set(ln) <= set("╭╮╰╯─ ")]
    start = None
    for i in range(len(clean) - 1, -1, -1):
        if re.match(r"^(error:|[A-Z]\w*(Error|Exception|Exit)\b)", clean[i]):
            start = i
            break
    if start is not None:
        pick = " ".join(clean[start:start + 6])
    else:
        pick = clean[-1] if clean else "no output"
    pick = re.sub(r"\s+", " ", pick)
    return pick if len(pick) <= limit else pick[: limit - 1] + "…"


def last_running_nodes(stderr):
    """Nodes `union run --wait` last reported as running (which were never reported done)."""
    state = {}
    for ln in (stderr or "").splitlines():
        m = re.match(r"\s*node (\S+): (\w+)", ln)
        if m:
            state[m.group(1)] = m.group(2)
    running = [n for n, s in state.items() if s in ("RUNNING", "QUEUED", "WAITING")]
    return ("still running: " + ", ".join(running)) if running else ""


# ----------------------------------------------------------------------------------------- parsing


class Sym(str):
    """A bare name or dotted name in printed output (e.g. an enum member)."""


def _conv(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_conv(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {json.dumps(_conv(k), sort_keys=True, default=str): _conv(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _conv(node.operand)
        if isinstance(v, (int, float)):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name):
        return Sym(node.id)
    if isinstance(node, ast.Attribute):
        return Sym(ast.unparse(node))
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        d = {"__type__": name.split(".")[-1]}
        for i, a in enumerate(node.args):
            d[f"__arg{i}__"] = _conv(a)
        for kw in node.keywords:
            d[kw.arg] = _conv(kw.value)
        return d
    raise ValueError(ast.unparse(node))


PATHLIKE = re.compile(r"(?<![\w'\"])((?:file://)?/[^\s,()'\"]+)")


def quote_bare_paths(text):
    """flytekit prints FlyteFile/FlyteDirectory fields unquoted (`file=/tmp/x`): quote them so the
    text parses."""
    return PATHLIKE.sub(lambda m: repr(m.group(1)), text)


KW_AT_TOP = re.compile(r"[A-Za-z_]\w*=(?!=)")


def pydantic_str_to_call(text):
    """pydantic's str() of a model is `x=30 y='a' z={1: 2}` (no class name, spaces between
    fields): rewrite it as `__model__(x=30, y='a', z={1: 2})`, or None if it is not of that form."""
    if not KW_AT_TOP.match(text):
        return None
    out, depth, quote, i = [], 0, None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                out.append(text[i:i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == " " and depth == 0 and KW_AT_TOP.match(text, i + 1):
            out.append(", ")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "__model__(" + "".join(out) + ")"


def parse_value(text):
    """Parse printed output into a normalized value; text that does not parse stays text."""
    t = text.strip()
    candidates = [t, quote_bare_paths(t)]
    model = pydantic_str_to_call(quote_bare_paths(t))
    if model:
        candidates.append(model)
    for candidate in candidates:
        try:
            return _conv(ast.parse(candidate, mode="eval").body)
        except (SyntaxError, ValueError, RecursionError):
            continue
    return {"__text__": t}


def parse_local(text, outputs):
    """pyflyte's printed result: one value, or several outputs as a (named) tuple."""
    v = parse_value(text)
    if len(outputs) > 1:
        if isinstance(v, dict) and "__type__" in v and all(o in v for o in outputs):
            return {o: v[o] for o in outputs}
        if isinstance(v, list) and len(v) == len(outputs):
            return dict(zip(outputs, v))
    if not outputs:
        return None if text.strip() in ("", "None") else v
    return v


def parse_remote(text, outputs):
    """union's printed outputs: one value alone, or `name: value` lines (a value may span lines)."""
    if len(outputs) <= 1:
        if not outputs:
            return None if text.strip() in ("", "None") else parse_value(text)
        return parse_value(text)
    parts = split_printed_outputs(text, outputs)
    if set(parts) != set(outputs):
        # not `name: value` lines: printed as a local run prints them (a NamedTuple)
        return parse_local(text, outputs)
    return {o: parse_value(parts[o]) for o in outputs}


# ----------------------------------------------------------------------------------------- blobs


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def df_digest(df):
    """A pandas DataFrame's content (columns, values), not its bytes on disk."""
    payload = df.reset_index(drop=True).to_json(orient="split", date_format="iso", double_precision=15)
    return "df:" + hashlib.sha256(payload.encode()).hexdigest()


def parquet_digest(path):
    """Parquet files written by different pyarrow versions differ in bytes (the writer's version is
    in the metadata): digest the table they hold. None when pandas cannot read it."""
    try:
        import pandas as pd

        return df_digest(pd.read_parquet(path))
    except Exception:  # noqa: BLE001
        return None


def file_entry_digest(path):
    if path.endswith(".parquet") or path.endswith("/00000"):
        d = parquet_digest(path)
        if d:
            return d
    return _file_digest(path)


def content_digest(path):
    """Digest of a file's or directory's content (local_run.py uses the same function); parquet
    files digest as the table they hold."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    if os.path.isfile(path):
        return "file:" + file_entry_digest(path)
    if os.path.isdir(path):
        files = {}
        for dirpath, _, names in os.walk(path):
            for n in names:
                full = os.path.join(dirpath, n)
                files[os.path.relpath(full, path)] = file_entry_digest(full)
        return "dir:" + hashlib.sha256(json.dumps(dict(sorted(files.items()))).encode()).hexdigest()
    return None


def dataframe_dir_digest(uri, fmt="parquet"):
    """A StructuredDataset's dataframe, from its location (a file or a directory of files)."""
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    try:
        import pandas as pd

        if fmt == "csv":
            files = [uri] if os.path.isfile(uri) else sorted(os.path.join(uri, n) for n in os.listdir(uri))
            df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        else:
            df = pd.read_parquet(uri)
        return df_digest(df)
    except Exception:  # noqa: BLE001
        return None


def remote_dataframe_uris(get_execution_text, printed, outputs):
    """The dataframes in `union get execution NAME` output (`Output:     o0 = <json>`), in output
    order, as (uri, format): a StructuredDataset inside a dataclass is `{"uri": ..., "file_format":
    ...}`; one that is an output by itself is just its uri (a JSON string), recognised by what
    `union run` printed for that output (`StructuredDataset(uri=None, file_format='csv')`)."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            if "file_format" in v and isinstance(v.get("uri"), str):
                found.append((v["uri"], v["file_format"] or "parquet"))
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    per_output = split_printed_outputs(printed, outputs)
    for ln in (get_execution_text or "").splitlines():
        m = re.match(r"^Output:\s+(\w+) = (.*)$", ln)
        if not m:
            continue
        try:
            v = json.loads(m.group(2))
        except ValueError:
            continue
        if isinstance(v, str):
            text = per_output.get(m.group(1), "")
            sd = re.match(r"^StructuredDataset\(.*file_format='(\w*)'", text.strip())
            if sd:
                found.append((v, sd.group(1) or "parquet"))
        else:
            walk(v)
    return found


def split_printed_outputs(text, outputs):
    """{output name: printed text} from `union run --wait` stdout."""
    if len(outputs) <= 1:
        return {outputs[0]: text} if outputs else {}
    parts, cur = {}, None
    for ln in (text or "").splitlines():
        m = re.match(r"^(\w+): ?(.*)$", ln)
        if m and m.group(1) in outputs and m.group(1) not in parts:
            cur = m.group(1)
            parts[cur] = [m.group(2)]
        elif cur is not None:
            parts[cur].append(ln)
    return {k: "\n".join(v) for k, v in parts.items()}


def substitute_paths(v, digests, seen):
    """Replace strings that are paths with {"__blob__": digest} (digests: known path → digest;
    else read from disk). `seen` collects the paths replaced."""
    if isinstance(v, dict) and set(v) == {"__text__"} and v["__text__"] in digests:
        v = v["__text__"]  # a relative path printed alone (`output.txt`) does not parse as a value
    if isinstance(v, str) and v in digests:  # a path local_run.py recorded, relative ones included
        seen.append(v)
        return {"__blob__": digests[v]}
    if isinstance(v, dict):
        return {k: substitute_paths(x, digests, seen) for k, x in v.items()}
    if isinstance(v, list):
        return [substitute_paths(x, digests, seen) for x in v]
    if isinstance(v, str) and not isinstance(v, Sym) and (v.startswith("/") or v.startswith("file://")):
        key = v[len("file://"):] if v.startswith("file://") else v
        d = digests.get(v) or digests.get(key) or content_digest(v)
        if d:
            seen.append(v)
            return {"__blob__": d}
    return v


def describe_diff(a, b, path="$"):
    """First difference between two normalized values, as text."""
    if type(a) is not type(b):  # strict: 1 and 1.0, or a name and a string, are different values
        return f"{path}: {short_repr(a)} vs {short_repr(b)}"
    if isinstance(a, dict):
        if a.get("__type__") == "__model__" or b.get("__type__") == "__model__":
            # a pydantic model printed by str() carries no class name: compare the fields only
            a = {k: v for k, v in a.items() if k != "__type__"}
            b = {k: v for k, v in b.items() if k != "__type__"}
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}: only on the {'sandbox' if k not in a else 'local'} side"
            d = describe_diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = describe_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b:
        return f"{path}: {short_repr(a)} vs {short_repr(b)}"
    return None


def equal(a, b):
    return describe_diff(a, b) is None


def short_repr(v, n=60):
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def nondeterministic(text):
    """Reasons a printed value cannot be compared at all (e.g. an object's address)."""
    m = OPAQUE_REPR.search(text or "")
    if m:
        return f"the printed value is an object's default repr (`<{m.group(1)} object at 0x…>`): it names a memory address, not a value"
    return None


# ----------------------------------------------------------------------------------------- verdict


# Rows where the local run is the one that is wrong: Flyte's answer, and why. The verdict follows
# Flyte (the sandbox is held to what a Flyte cluster answers) and the table says so.
LOCAL_IS_WRONG = {
    "subworkflow.launch_plan": (
        "-7.5",
        "local pyflyte ignores the launch plan's `default_inputs` (val=7) and runs regression_line_wf with "
        "the workflow's own default val=5 (-4.5); Flyte runs a launch plan with its defaults: -1.5*7+3 = -7.5",
    ),
}


def dataframe_check(local, remote):
    """(ok, note) comparing the dataframes' contents both sides hold (ok None: not compared)."""
    ld, rd = local.get("dataframes") or [], remote.get("dataframes") or []
    if not ld and not rd:
        return None, ""
    if any(str(x).startswith("unreadable") for x in ld + rd) or len(ld) != len(rd):
        return None, f"dataframe contents not compared (local {len(ld)}, sandbox {len(rd)} readable: {ld + rd})"
    if ld == rd:
        return True, f"{len(ld)} dataframe(s) read on both sides: equal content"
    return False, f"dataframe content differs ({sum(1 for a, b in zip(ld, rd) if a != b)} of {len(ld)})"


def verdict(case, local, remote, sandbox_dir=None):
    """(verdict, why) for one row: same / different / failed."""
    v, why = _verdict(case, local, remote)
    if v == "same":
        ok, note = dataframe_check(local, remote)
        if ok is False:
            return "different", "; ".join(x for x in (why, note) if x)
        if note:
            why = "; ".join(x for x in (why, note) if x)
    return v, why


def _verdict(case, local, remote):
    if not local.get("ok") and case.get("flyte_error"):
        expected = case["flyte_error"]
        note = f" ({case['flyte_note']})" if case.get("flyte_note") else ""
        if remote.get("ok"):
            return "different", f"Flyte fails with `{expected}`{note}; the sandbox answers {short_repr(strip_trailing_newline(remote['text']))}"
        got = (remote.get("why") or "") + "\n" + (remote.get("stderr") or "")
        if expected in got:
            return "same", (f"fails as Flyte does: `{expected}`{note}; the local `pyflyte run` fails too "
                            f"({short_repr(local.get('why'), 90)})")
        return "different", f"Flyte fails with `{expected}`{note}; the sandbox: {remote.get('why')}"
    if not local.get("ok") and case.get("flyte") is not None:
        lead = (f"compared with Flyte's answer {case['flyte']} (worked out from the code): the local `pyflyte run` "
                f"fails ({short_repr(local.get('why'), 110)})")
        if not remote.get("ok"):
            return "failed", f"sandbox: {remote.get('why') or 'failed'}; {lead}"
        rt = strip_trailing_newline(remote["text"])
        if equal(parse_remote(rt, case.get("outputs") or []), parse_value(case["flyte"])):
            return "same", lead
        return "different", f"{lead}; the sandbox answers {short_repr(rt)}"
    if not remote.get("ok"):
        return "failed", "sandbox: " + (remote.get("why") or "failed")
    lt, rt = strip_trailing_newline(local["text"]), strip_trailing_newline(remote["text"])
    outputs = case.get("outputs") or []
    known = LOCAL_IS_WRONG.get(case.get("id"))
    if known and lt != rt:
        flyte, reason = known
        if equal(parse_remote(rt, outputs), parse_value(flyte)):
            return "same", f"follows Flyte, not the local run: {reason}; the sandbox answers {rt}"
        return "different", f"Flyte answers {flyte} ({reason}); the sandbox answers {rt}"
    if lt == rt:
        nd = nondeterministic(lt)
        if nd:
            return "same", f"same text, but only the type is compared: {nd}"
        return "same", ""
    nd = nondeterministic(lt) or nondeterministic(rt)
    if nd:
        lo = OPAQUE_REPR.sub(lambda m: f"<{m.group(1)} object>", lt)
        ro = OPAQUE_REPR.sub(lambda m: f"<{m.group(1)} object>", rt)
        if lo == ro:
            return "same", f"same text except the object address ({nd})"
        return "different", f"{nd}; local `{short_repr(lt)}` vs sandbox `{short_repr(rt)}`"
    lv = parse_local(lt, outputs)
    rv = parse_remote(rt, outputs)
    if equal(lv, rv):
        return "same", "same values, printed differently: local `" + short_repr(lt, 50) + "`, sandbox `" + short_repr(rt, 50) + "`"
    lseen, rseen = [], []
    lv2 = substitute_paths(lv, local.get("blobs") or {}, lseen)
    rv2 = substitute_paths(rv, {}, rseen)
    if equal(lv2, rv2) and (lseen or rseen):
        return "same", "same (paths differ): file/directory contents equal"
    d = describe_diff(lv2, rv2)
    return "different", d or f"local `{short_repr(lt)}` vs sandbox `{short_repr(rt)}`"
