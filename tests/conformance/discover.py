"""Discovery and input resolution for one flytesnacks example module (run in a subprocess).

Usage: python discover.py PROJECT_ROOT MODULE_FILE   → one JSON document on stdout.

Imports MODULE_FILE as `pyflyte run` does (the project root on sys.path, the module named by its
path below the root) and lists the workflows and launch plans bound at the module's top level by
the module itself (a `def`, a decorated function or an assignment; names it only imports are the
defining module's rows). For each: its inputs (type, whether a default exists), its outputs, and the
input values the module's own `if __name__ == "__main__":` blocks call it with (the first call),
evaluated by a small interpreter that understands assignments, `for` loops (first iteration) and
literal expressions, never by running the block.
"""

import ast
import dataclasses
import enum
import importlib
import io
import json
import os
import sys
import typing

# Calls the main-block interpreter may evaluate in an expression (pure builtins).
SAFE_CALLS = {"enumerate", "range", "list", "tuple", "dict", "zip", "str", "int", "float", "bool", "len"}


class Unsupported(Exception):
    pass


def check_expr(node):
    """Refuse expressions that could run example code (calls other than SAFE_CALLS, lambdas...)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if not (isinstance(sub.func, ast.Name) and sub.func.id in SAFE_CALLS):
                raise Unsupported(f"call in expression: {ast.unparse(sub)}")
        elif isinstance(sub, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            raise Unsupported(ast.unparse(sub))


def eval_expr(node, env, module_globals):
    check_expr(node)
    code = compile(ast.Expression(node), "<main-block>", "eval")
    scope = dict(module_globals)
    scope.update(env)
    return eval(code, scope)  # noqa: S307 - checked above: literals, names, attributes, safe builtins


def bind(target, value, env):
    if isinstance(target, ast.Name):
        env[target.id] = value
    elif isinstance(target, (ast.Tuple, ast.List)):
        values = list(value)
        if len(values) != len(target.elts):
            raise Unsupported("unpacking mismatch")
        for t, v in zip(target.elts, values):
            bind(t, v, env)
    else:
        raise Unsupported(f"assignment target {ast.unparse(target)}")


def main_block_calls(tree, module_globals, names):
    """First call of each name in `names` found in the module's __main__ blocks: {name: {kw: value}}
    or {name: {"__error__": why}}."""
    found = {}
    env = {}

    def visit_stmts(stmts):
        for st in stmts:
            visit_stmt(st)

    def record_calls(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in names:
                name = sub.func.id
                if name in found:
                    continue
                try:
                    if sub.args:
                        raise Unsupported("positional arguments")
                    kwargs = {}
                    for kw in sub.keywords:
                        if kw.arg is None:
                            raise Unsupported("**kwargs")
                        kwargs[kw.arg] = eval_expr(kw.value, env, module_globals)
                    found[name] = {"kwargs": kwargs, "source": ast.unparse(sub)}
                except Exception as e:  # noqa: BLE001 - reported in the table
                    found[name] = {"__error__": f"cannot evaluate `{ast.unparse(sub)}`: {e}"}

    def visit_stmt(st):
        if isinstance(st, ast.Assign):
            record_calls(st.value)
            try:
                v = eval_expr(st.value, env, module_globals)
                for t in st.targets:
                    bind(t, v, env)
            except Exception:  # noqa: BLE001 - the value is a workflow call or unsupported
                pass
        elif isinstance(st, ast.For):
            record_calls(st.iter)
            try:
                it = iter(eval_expr(st.iter, env, module_globals))
                first = next(it)
                bind(st.target, first, env)
            except Exception:  # noqa: BLE001
                pass
            visit_stmts(st.body)
        elif isinstance(st, ast.If):
            visit_stmts(st.body)
        elif isinstance(st, ast.Try):
            visit_stmts(st.body)
        elif isinstance(st, ast.With):
            visit_stmts(st.body)
        else:
            record_calls(st)

    for st in tree.body:
        if isinstance(st, ast.If) and "__main__" in ast.unparse(st.test) and "__name__" in ast.unparse(st.test):
            visit_stmts(st.body)
    return found


def top_level_names(tree):
    """Names bound at module level by the module itself, in source order (imports excluded)."""
    out = []
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(st.name)
        elif isinstance(st, ast.Assign):
            for t in st.targets:
                if isinstance(t, ast.Name):
                    out.append(t.id)
        elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            out.append(st.target.id)
    seen = set()
    return [n for n in out if not (n in seen or seen.add(n))]


def type_name(t):
    try:
        return typing._type_repr(t)  # noqa: SLF001 - what typing itself prints
    except Exception:  # noqa: BLE001
        return repr(t)


def to_jsonable(v):
    if isinstance(v, enum.Enum):
        return v.value
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: to_jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if hasattr(v, "model_dump"):
        return to_jsonable(v.model_dump(mode="json"))
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def cli_args(values, input_types):
    """`pyflyte run` flags for {input: python value}: bools as switches, collections and
    dataclasses as JSON, enums by value, everything else by str()."""
    args = []
    for name, v in values.items():
        t = input_types.get(name)
        if t is bool or isinstance(v, bool):
            args.append(f"--{name}" if v else f"--no_{name}")
            continue
        if isinstance(v, enum.Enum):
            s = str(v.value)
        elif isinstance(v, str):
            s = v
        elif isinstance(v, (int, float)):
            s = repr(v)
        else:
            s = json.dumps(to_jsonable(v))
        args += [f"--{name}", s]
    return args


def describe(root, path):
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    rel = os.path.relpath(path, root)
    modname = rel[: -len(".py")].replace(os.sep, ".")
    with open(path, encoding="utf-8") as f:
        src = f.read()
    tree = ast.parse(src)
    names = top_level_names(tree)
    sys.path.insert(0, root)
    os.chdir(root)
    # The module's own prints on import (launch_plan.py runs workflows at import) must not reach
    # our JSON on stdout.
    real_stdout = sys.stdout
    sys.stdout = io.StringIO()
    try:
        module = importlib.import_module(modname)
    finally:
        sys.stdout = real_stdout

    entities = []
    for name in names:
        o = module.__dict__.get(name)
        if isinstance(o, WorkflowBase):
            iface = o.python_interface
            types = dict(iface.inputs)
            defaults = set(iface.default_inputs_as_kwargs.keys())
            required = [n for n in types if n not in defaults]
            kind = "workflow"
            outputs = list(iface.outputs.keys())
            lp_name = None
        elif isinstance(o, LaunchPlan):
            iface = o.python_interface
            types = {n: t for n, t in iface.inputs.items() if n in o.parameters.parameters}
            required = [n for n, p in o.parameters.parameters.items() if p.required]
            kind = "launch_plan"
            outputs = list(iface.outputs.keys())
            lp_name = o.name
        elif type(o).__name__ == "EagerAsyncPythonFunctionTask":
            # @eager: a task in flytekit 1.16, a workflow in Flyte's docs and in this table
            iface = o.python_interface
            types = dict(iface.inputs)
            defaults = set(iface.default_inputs_as_kwargs.keys())
            required = [n for n in types if n not in defaults]
            kind = "eager"
            outputs = list(iface.outputs.keys())
            lp_name = None
        else:
            continue
        entities.append(
            {
                "attr": name,
                "kind": kind,
                "launch_plan_name": lp_name,
                "inputs": {n: type_name(t) for n, t in types.items()},
                "bool_inputs": [n for n, t in types.items() if t is bool],
                "required": required,
                "outputs": outputs,
                "_types": types,
            }
        )

    calls = main_block_calls(tree, module.__dict__, {e["attr"] for e in entities})
    for e in entities:
        types = e.pop("_types")
        c = calls.get(e["attr"])
        e["main_call"] = None
        if c is None:
            continue
        if "__error__" in c:
            e["main_call"] = {"error": c["__error__"]}
            continue
        e["main_call"] = {"source": c["source"], "args": cli_args(c["kwargs"], types)}
    return {"module": modname, "file": rel, "entities": entities}


if __name__ == "__main__":
    root, path = sys.argv[1], sys.argv[2]
    try:
        doc = describe(os.path.abspath(root), os.path.abspath(path))
    except BaseException as e:  # noqa: BLE001 - the import error is the row's reason
        import traceback

        tb = traceback.format_exception(type(e), e, e.__traceback__)
        doc = {"error": f"{type(e).__name__}: {e}", "traceback": "".join(tb[-6:])}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    os._exit(0)  # flytekit may leave threads behind
