# The Python half of union's bridge. It runs inside the interpreter that `union` embeds, with the
# user's own flytekit. Every function called from Rust takes and returns plain text (JSON): no
# Python object ever crosses into Rust. Errors in user code come back as structured data carrying
# the user's traceback, never as a raw exception.
import dataclasses
import enum
import importlib
import inspect
import json
import os
import sys
import traceback
import typing

_SITE_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


class UserError(Exception):
    """An error whose message is meant for the user as is (kind + message + optional traceback)."""

    def __init__(self, kind, message, tb=None, **extra):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb
        self.extra = extra


def _ok(value):
    text = json.dumps({"ok": value}, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: a file-name byte that is not UTF-8, as os.fsdecode represents it. Rust
        # strings cannot hold one, so such names are shown with U+FFFD (paths that must survive
        # the trip travel as bytes instead, see _fs_paths).
        import re

        text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    return text


def _fs_paths(paths):
    """Paths as base64 of their file-system bytes, so that none is mangled on its way to Rust."""
    import base64

    return [base64.b64encode(os.fsencode(p)).decode() for p in paths]


def _err(e: UserError):
    d = {"kind": e.kind, "message": e.message, "traceback": e.tb}
    d.update(e.extra)
    return json.dumps({"error": d})


def _guard(fn):
    def wrapper(*args):
        try:
            return _ok(fn(*args))
        except UserError as e:
            return _err(e)
        except KeyboardInterrupt:
            return json.dumps({"error": {"kind": "interrupted", "message": "interrupted", "traceback": None}})
        except BaseException as e:  # noqa: B902 - anything else is a bug on our side; report it whole
            return _err(UserError("internal", f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e))))

    wrapper.__name__ = fn.__name__
    return wrapper


# ---------------------------------------------------------------------------------------------
# Tracebacks that show the user's code, not flytekit's plumbing.


def _is_user_frame(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    if any(m in filename for m in _SITE_MARKERS):
        return False
    for p in {sys.prefix, sys.base_prefix, getattr(sys, "exec_prefix", sys.prefix)}:
        if p and filename.startswith(p + os.sep) and "lib" in filename[len(p) :].split(os.sep)[1:2]:
            return False
    return True


def _root_cause(e: BaseException) -> BaseException:
    """flytekit wraps a task's exception in its own ones; find the user's original exception."""
    seen = set()
    cur = e
    while id(cur) not in seen:
        seen.add(id(cur))
        nxt = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
        # flytekit's FlyteUserRuntimeException keeps the user's exception as `.value`
        val = getattr(cur, "value", None)
        if isinstance(val, BaseException) and val is not cur:
            nxt = val
        if nxt is None:
            break
        cur = nxt
    return cur


def format_user_traceback(e: BaseException) -> str:
    root = _root_cause(e)
    frames = traceback.extract_tb(root.__traceback__)
    user = [f for f in frames if _is_user_frame(f.filename)]
    lines = []
    if user:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(user))
    lines.extend(traceback.format_exception_only(type(root), root))
    return "".join(lines)


def _format_import_error(e: BaseException) -> str:
    # SyntaxError carries file/line/caret in format_exception_only; for other errors show the user frames.
    if isinstance(e, SyntaxError):
        return "".join(traceback.format_exception_only(type(e), e))
    return format_user_traceback(e)


# ---------------------------------------------------------------------------------------------
# Loading user modules and finding entities


def _take_signals_back():
    """flytekit installs its own SIGINT handler when imported (and user code may install others);
    union owns SIGINT/SIGTERM (see process.rs). `_own_signals` is provided by the Rust side."""
    own = globals().get("_own_signals")
    if own is not None:
        own()


def _flytekit():
    try:
        import flytekit  # noqa: F401
        from flytekit.core.base_task import PythonTask  # noqa: F401
    except SystemExit:
        # Only flytekit's SIGINT handler exits during its import: Ctrl-C arrived mid-import.
        raise KeyboardInterrupt
    except Exception as e:  # ImportError or a broken install
        raise UserError(
            "flytekit_missing",
            f"flytekit cannot be imported in {sys.prefix}: {type(e).__name__}: {e}",
        )
    finally:
        _take_signals_back()
    return flytekit


def environment_info():
    """What the embedded interpreter sees (used by error messages and `union --debug` diagnostics)."""
    info = {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "version": "%d.%d.%d" % sys.version_info[:3],
    }
    try:
        import flytekit

        info["flytekit"] = flytekit.__version__
    except Exception as e:
        info["flytekit_error"] = f"{type(e).__name__}: {e}"
    return info


def _import_modules(root: str, modules):
    _flytekit()
    if root not in sys.path:
        sys.path.insert(0, root)
    from flytekit.core import context_manager

    for name in modules:
        try:
            # pyflyte imports user modules inside a fresh context builder; so do we.
            with context_manager.FlyteContextManager.with_context(
                context_manager.FlyteContextManager.current_context().new_builder()
            ):
                importlib.import_module(name)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            if isinstance(e, SystemExit):
                msg = f"importing module `{name}` called exit({e.code})"
            else:
                msg = f"importing module `{name}` failed: {type(e).__name__}: {e}"
            raise UserError("import", msg, _format_import_error(e), module=name)
        finally:
            _take_signals_back()


def _type_text(t) -> str:
    if t is type(None):
        return "None"
    if isinstance(t, type) and not typing.get_args(t):
        if t.__module__ in ("builtins",) or t.__module__.startswith("flytekit."):
            return t.__qualname__
        return f"{t.__module__}.{t.__qualname__}"
    text = repr(t)
    return text.replace("typing.", "")


def _default_text(v):
    if v is None:
        return None
    if isinstance(v, enum.Enum):
        return str(v.value)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        try:
            return json.dumps(dataclasses.asdict(v), default=str)
        except Exception:
            return repr(v)
    if hasattr(v, "model_dump_json"):
        try:
            return v.model_dump_json()
        except Exception:
            return repr(v)
    if isinstance(v, (list, dict)):
        try:
            return json.dumps(v, default=str)
        except Exception:
            return repr(v)
    return str(v)


def _inputs_with_defaults(entity):
    """The inputs a command line offers for `entity`, as pyflyte's run command computes them."""
    from flytekit.core.launch_plan import LaunchPlan

    final = dict(entity.python_interface.inputs_with_defaults)
    if isinstance(entity, LaunchPlan):
        all_inputs = entity.python_interface.inputs_with_defaults
        default_inputs = entity.saved_inputs
        final = {}
        for name in entity.parameters.parameters.keys():
            _type, v = all_inputs[name]
            if name in default_inputs:
                v = default_inputs[name]
            final[name] = (_type, v)
    return final


def _is_optional(t) -> bool:
    import types as _types

    return typing.get_origin(t) in (typing.Union, getattr(_types, "UnionType", typing.Union)) and type(
        None
    ) in typing.get_args(t)


def _converter(entity, name, python_type):
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.interaction.click_types import FlyteLiteralConverter

    literal_var = entity.interface.inputs.get(name)
    return FlyteLiteralConverter(
        FlyteContextManager.current_context(),
        literal_type=literal_var.type,
        python_type=python_type,
        is_remote=False,
    )


def _interface(entity):
    inputs = []
    for name, (python_type, default) in _inputs_with_defaults(entity).items():
        var = entity.interface.inputs.get(name)
        try:
            is_bool = _converter(entity, name, python_type).is_bool()
        except Exception:
            is_bool = python_type is bool
        if is_bool and not default:
            default = False
        required = type(None) not in typing.get_args(python_type) and default is None
        inputs.append(
            {
                "name": name,
                "type": _type_text(python_type),
                "default": _default_text(default),
                "required": bool(required),
                "is_bool": bool(is_bool),
                "description": (var.description if var is not None else "") or "",
            }
        )
    outputs = []
    for name, python_type in entity.python_interface.outputs.items():
        outputs.append({"name": name, "type": _type_text(python_type)})
    return {"inputs": inputs, "outputs": outputs}


def _json_value(v):
    """ImageSpec field values as JSON: lists, dicts, scalars; tuples become lists; enums their name."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    from flytekit.image_spec.image_spec import ImageSpec

    if isinstance(v, ImageSpec):
        return image_spec_to_json(v)
    return str(v)


def image_spec_to_json(spec):
    """Every dataclass field of an ImageSpec, in declaration order, plus the force-push flag."""
    out = {}
    for f in dataclasses.fields(spec):
        out[f.name] = _json_value(getattr(spec, f.name))
    out["_is_force_push"] = bool(getattr(spec, "_is_force_push", False))
    return out


def _container_image(entity):
    from flytekit.image_spec.image_spec import ImageSpec

    img = getattr(entity, "container_image", None)
    if img is None:
        return None
    if isinstance(img, ImageSpec):
        return {"kind": "spec", "spec": image_spec_to_json(img)}
    return {"kind": "image", "uri": str(img)}


def _kind(entity):
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    # The real type only: isinstance() would also ask obj.__class__, and on a lazily-loaded
    # module (a user's `import pandas as pd` under flytekit's lazy loader) that imports it.
    t = type(entity)
    if issubclass(t, PythonTask):
        return "task"
    if issubclass(t, WorkflowBase):
        return "workflow"
    if issubclass(t, LaunchPlan):
        return "launch_plan"
    return None


def _describe(entity, module=None, attr=None, full=True):
    kind = _kind(entity)
    d = {
        "kind": kind,
        "name": entity.name,
        "module": module,
        "attr": attr,
        "doc": inspect.cleandoc(entity.__doc__) if kind != "launch_plan" and entity.__doc__ else None,
        "interface": _interface(entity) if full else {"inputs": [], "outputs": []},
        "container_image": None,
        "task_type": None,
        "workflow": None,
    }
    if kind == "task":
        d["container_image"] = _container_image(entity)
        d["task_type"] = getattr(entity, "task_type", None)
    if kind == "launch_plan":
        d["workflow"] = entity.workflow.name
    return d


def _module_dict(mod):
    """A module's namespace without executing it: flytekit (and the libraries it pulls in) install
    lazily-loaded modules whose first attribute access imports them for real (pandas, pyarrow,
    joblib: hundreds of milliseconds that pyflyte does not spend either)."""
    try:
        d = object.__getattribute__(mod, "__dict__")
    except Exception:
        return {}
    return d if isinstance(d, dict) else {}


def _loaded_files():
    """The files of every loaded module (lazily-loaded ones included, without loading them)."""
    files = set()
    for m in list(sys.modules.values()):
        f = _module_dict(m).get("__file__")
        if isinstance(f, str) and f:
            files.add(os.path.abspath(f))
    return sorted(files)


def _user_modules(root, imported):
    """The modules that belong to the project: the ones we imported and any other loaded module
    whose file lies under `root` (a package's submodules imported by the user's code)."""
    names = [m for m in imported if m in sys.modules]
    root = os.path.abspath(root) + os.sep
    seen = set(names)
    for name, mod in list(sys.modules.items()):
        if name in seen or mod is None or type(mod).__name__ == "_LazyModule":
            continue
        f = _module_dict(mod).get("__file__")
        if isinstance(f, str) and os.path.abspath(f).startswith(root):
            names.append(name)
            seen.add(name)
    return names


def _attrs_by_identity(modules):
    """Map id(entity) -> (module, attribute) for every entity bound at the top level of `modules`."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase

    kinds = (PythonTask, WorkflowBase, LaunchPlan)
    found = {}
    for mod_name in modules:
        mod = sys.modules.get(mod_name)
        if mod is None:
            continue
        for attr, obj in list(_module_dict(mod).items()):
            if issubclass(type(obj), kinds):  # not isinstance: see _kind
                found.setdefault(id(obj), (mod_name, attr))
    return found


@_guard
def discover(root, modules, full="1"):
    """Import `modules` from project `root` and describe every entity that exists afterwards.

    With full="0" interfaces are left out (registration does not need them, and building click
    converters for every input of hundreds of entities is the slow part)."""
    full = full == "1"
    modules = list(modules)
    _import_modules(root, modules)
    from flytekit.core.context_manager import FlyteEntities

    where = _attrs_by_identity(_user_modules(root, modules))
    out = []
    seen = set()
    for e in FlyteEntities.entities:
        if id(e) in seen or _kind(e) is None:
            continue
        seen.add(id(e))
        mod, attr = where.get(id(e), (getattr(e, "instantiated_in", None) or None, None))
        out.append(_describe(e, mod, attr, full))
    return out


@_guard
def entities_in_module(root, module):
    """Import one module and describe what it defines at top level, as `pyflyte run FILE` lists it."""
    _import_modules(root, [module])
    mod = sys.modules[module]
    out = []
    for attr in dir(mod):
        obj = mod.__dict__.get(attr)
        if _kind(obj) is not None:
            out.append(_describe(obj, module, attr))
    return out


# ---------------------------------------------------------------------------------------------
# Local execution


def _load_entity(module, attr):
    mod = sys.modules[module]
    if attr not in mod.__dict__ or _kind(mod.__dict__[attr]) is None:
        raise UserError("entity_not_found", f"`{attr}` is not a task, workflow or launch plan in `{module}`")
    return mod.__dict__[attr]


def _cheap_to_check(literal_type) -> bool:
    """Whether converting a value of this Flyte type to a literal only reads the value (no files,
    directories or dataframes to copy)."""
    if literal_type is None:
        return False
    if literal_type.blob is not None or literal_type.structured_dataset_type is not None:
        return False
    if literal_type.collection_type is not None:
        return _cheap_to_check(literal_type.collection_type)
    if literal_type.map_value_type is not None:
        return _cheap_to_check(literal_type.map_value_type)
    if literal_type.union_type is not None:
        return all(_cheap_to_check(v) for v in literal_type.union_type.variants)
    return True


def _example(t, depth=0, i=0):
    """An example of a command-line value for Python type `t`, as pyflyte accepts it."""
    import datetime
    import types as _types

    if depth > 4:
        return "..."
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (typing.Union, getattr(_types, "UnionType", typing.Union)):
        inner = [a for a in args if a is not type(None)]
        return _example(inner[0], depth, i) if inner else "null"
    if origin in (list, typing.List) or t is list:
        item = args[0] if args else str
        return "[" + ", ".join(_json_example(item, depth + 1, k) for k in range(2)) + "]"
    if origin in (dict, typing.Dict) or t is dict:
        value = args[1] if len(args) == 2 else str
        return "{" + '"key": ' + _json_example(value, depth + 1) + "}"
    if t is bool:
        return "true"
    if t is int:
        return str(1 + i)
    if t is float:
        return str(1.5 + i)
    if t is str:
        return "ab"[i % 2]
    if t is datetime.datetime:
        return "2024-01-31T12:00:00"
    if t is datetime.date:
        return "2024-01-31"
    if t is datetime.timedelta:
        return "10 days"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        first = next(iter(t), None)
        return str(first.value) if first is not None else ""
    return _json_example(t, depth, i)


def _json_example(t, depth, i=0):
    """The example as it appears inside a JSON document (strings quoted)."""
    import datetime

    if depth > 4:
        return "null"
    if dataclasses.is_dataclass(t) and isinstance(t, type):
        hints = _type_hints(t)
        fields = [
            f"{json.dumps(f.name)}: {_json_example(hints.get(f.name, str), depth + 1)}" for f in dataclasses.fields(t)
        ]
        return "{" + ", ".join(fields) + "}"
    model_fields = getattr(t, "model_fields", None)
    if isinstance(t, type) and isinstance(model_fields, dict):
        fields = [f"{json.dumps(n)}: {_json_example(f.annotation, depth + 1)}" for n, f in model_fields.items()]
        return "{" + ", ".join(fields) + "}"
    text = _example(t, depth, i)
    if t in (str, datetime.datetime, datetime.date, datetime.timedelta) or (
        isinstance(t, type) and issubclass(t, enum.Enum)
    ):
        return json.dumps(text)
    return text


def _type_hints(t):
    try:
        return typing.get_type_hints(t)
    except Exception:
        return {f.name: f.type for f in dataclasses.fields(t)}


def _value_reason(e: BaseException, python_type) -> str:
    """What was wrong with a value, in words (flytekit's errors carry their own prefixes)."""
    import datetime

    try:
        import click

        if isinstance(e, click.exceptions.ClickException):
            # click's own words name the value and the expected kind ("'abc' is not a valid
            # integer"); what it wraps is less clear.
            msg = e.format_message()
            return msg[len("Invalid value: ") :] if msg.startswith("Invalid value: ") else msg
    except ImportError:
        pass
    root = _root_cause(e)
    if python_type is datetime.timedelta:
        return "not a duration such as `10 days`, `1h30m`, `1:30:00` or `90s`"
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return "expected one of: " + ", ".join(str(m.value) for m in python_type)
    if isinstance(root, KeyError) and root.args:
        return f"the field {root.args[0]!r} is missing"
    errors = getattr(root, "errors", None)
    if callable(errors) and type(root).__name__ == "ValidationError":  # pydantic
        try:
            return "; ".join(
                f"{'.'.join(str(p) for p in err.get('loc', ())) or 'value'}: {err.get('msg', '')}"
                for err in errors()
            )
        except Exception:
            pass
    msg = str(root).strip()
    # TypeTransformerFailedError: "Failed to convert inputs of task 'x':\n  Failed argument 'n': ..."
    lines = [line.strip() for line in msg.splitlines() if line.strip()]
    if lines and lines[0].startswith("Failed to convert"):
        lines = lines[1:]
    msg = " ".join(lines) or type(root).__name__
    if msg.startswith("Failed argument "):
        msg = msg.split(": ", 1)[-1]
    return msg


def _bad_value(name, python_type, raw, e, conv=None):
    """A usage error for `--name RAW` that names the flag, the expected type and an example."""
    shown = raw if isinstance(raw, str) else json.dumps(raw)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    example = _example(python_type)
    reason = _value_reason(e, python_type).rstrip(".")
    if repr(shown) not in reason:
        reason = f"{shown!r}: {reason}"
    return UserError(
        "bad_value",
        f"invalid value for --{name} ({_type_text(python_type)}): {reason}",
        flag=f"--{name}",
        expected=_type_text(python_type),
        example=example,
        format=getattr(getattr(conv, "click_type", None), "name", None),
    )



def _convert_inputs(entity, given):
    """Turn command-line text into Python values exactly as `pyflyte run` does (FlyteLiteralConverter)."""
    import click

    class _RunParams:
        # What flytekit's click types read from ctx.obj (pyflyte's RunLevelParams) for a local run.
        is_remote = False
        verbose = 0

    click_ctx = click.Context(click.Command("union-run"), obj=_RunParams())
    final = _inputs_with_defaults(entity)
    values = {}
    for name, raw in given.items():
        if name not in final:
            raise UserError("bad_input", f"`{entity.name}` has no input named `{name}`", flag=f"--{name}")
        python_type, _ = final[name]
        conv = _converter(entity, name, python_type)
        try:
            if conv.is_bool():
                v = bool(raw) if isinstance(raw, bool) else click.BOOL.convert(raw, None, None)
            else:
                v = conv.click_type.convert(raw, None, click_ctx)
            values[name] = conv.convert(click_ctx, None, v)
            # pyflyte checks the value against the type only when the entity is called, deep in
            # flytekit; check it here so that the error names the flag. Files, directories and
            # dataframes are skipped: converting them would copy their data.
            if values[name] is not None and _cheap_to_check(entity.interface.inputs[name].type):
                from flytekit.core.context_manager import FlyteContextManager
                from flytekit.core.type_engine import TypeEngine

                TypeEngine.to_literal(
                    FlyteContextManager.current_context(),
                    values[name],
                    python_type,
                    entity.interface.inputs[name].type,
                )
        except KeyboardInterrupt:
            raise
        except Exception as e:
            raise _bad_value(name, python_type, raw, e, conv)

    # Defaults and optionals exactly as pyflyte's run_command applies them.
    inputs = {}
    missing = []
    for name, v in final.items():
        val = values.get(name)
        optional_v = False
        if val is None and isinstance(v, tuple):
            optional_v = _is_optional(v[0])
            if len(v) == 2:
                val = v[1]
        if val is not None or optional_v:
            inputs[name] = val
        if val is None and v[0] is bool:
            inputs[name] = False
        if name not in inputs and name not in given:
            missing.append({"flag": f"--{name}", "type": _type_text(v[0])})
    if missing:
        raise UserError(
            "missing_input",
            "missing required input" + ("s" if len(missing) > 1 else "") + ": "
            + ", ".join(f"{m['flag']} ({m['type']})" for m in missing),
            missing=missing,
        )
    return inputs


@_guard
def run(module, attr, given_json):
    """Run a task, workflow or launch plan locally, in-process, and return what pyflyte would print."""
    import asyncio

    from flytekit.core.context_manager import FlyteContextManager

    entity = _load_entity(module, attr)
    inputs = _convert_inputs(entity, json.loads(given_json))
    try:
        with FlyteContextManager.with_context(FlyteContextManager.current_context().new_builder()):
            output = entity(**inputs)
            if inspect.iscoroutine(output):
                output = asyncio.run(output)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise UserError(
            "task_failed",
            f"{_kind(entity).replace('_', ' ')} `{entity.name}` failed: {type(_root_cause(e)).__name__}: {_root_cause(e)}",
            format_user_traceback(e),
        )
    # click.echo(output) semantics: str() of anything that is not text, None prints an empty line.
    if output is None:
        return ""
    if isinstance(output, (bytes, bytearray)):
        return output.decode("utf-8", "replace")
    return str(output)


def finish():
    """Flush Python's streams and run atexit handlers (we never finalize the interpreter: it is slow)."""
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except BaseException:
            pass


# ---------------------------------------------------------------------------------------------
# Serialization for package / register. flytekit's own translator produces the specs; images are
# never built here: every ImageSpec is mapped (by its id) to the image name union computed, and
# the build engine is replaced by one that refuses, so a missed spec is an error, not a docker run.


def _refuse_build(image_spec, *args, **kwargs):
    raise UserError(
        "internal",
        f"flytekit tried to build ImageSpec {getattr(image_spec, 'name', '?')!r} during serialization; "
        "union computes and builds images itself",
    )


def _settings(s):
    from flytekit.configuration import (
        FastSerializationSettings,
        Image,
        ImageConfig,
        SerializationSettings,
    )

    default = Image.look_up_image_info("default", s["default_image"])
    others = [Image.look_up_image_info(name, uri) for name, uri in (s.get("images") or {}).items()]
    for spec_id, full in (s.get("spec_images") or {}).items():
        fqn, _, tag = full.rpartition(":")
        if "/" in tag or not fqn:
            fqn, tag = full, "latest"
        others.append(Image(name=spec_id, fqn=fqn, tag=tag))
    fast = None
    if s.get("fast"):
        fast = FastSerializationSettings(
            enabled=True,
            destination_dir=s.get("destination_dir"),
            distribution_location=s.get("distribution_location"),
        )
    settings = SerializationSettings(
        project=s.get("project"),
        domain=s.get("domain"),
        version=s.get("version"),
        image_config=ImageConfig.create_from(default_image=default, other_images=others),
        env=s.get("env") or None,
        fast_serialization_settings=fast,
        source_root=s.get("root"),
    )
    settings.git_repo = s.get("git_repo")
    return settings


def _python_tasks():
    from flytekit.core.context_manager import FlyteEntities
    from flytekit.core.python_auto_container import PythonAutoContainerTask

    return [e for e in list(FlyteEntities.entities) if isinstance(e, PythonAutoContainerTask)]


@_guard
def image_specs(settings_json):
    """Every ImageSpec used by a loaded task, after flytekit's copy-mode handling, keyed by its id."""
    from flytekit.core.python_auto_container import update_image_spec_copy_handling
    from flytekit.image_spec.image_spec import ImageSpec

    settings = _settings(json.loads(settings_json))
    out, seen = [], set()
    for t in _python_tasks():
        spec = t.container_image
        if not isinstance(spec, ImageSpec):
            continue
        update_image_spec_copy_handling(spec, settings)
        if spec.id in seen:
            continue
        seen.add(spec.id)
        out.append({"id": spec.id, "spec": image_spec_to_json(spec), "tasks": []})
    by_id = {o["id"]: o for o in out}
    for t in _python_tasks():
        if isinstance(t.container_image, ImageSpec):
            by_id[t.container_image.id]["tasks"].append(t.name)
    return out


@_guard
def loaded_module_files(root):
    """Files of loaded modules, and the prefixes that hold installed packages (for --copy auto)."""
    import site

    files = _loaded_files()
    prefixes = {sys.prefix, sys.base_prefix}
    try:
        prefixes.update(site.getsitepackages())
    except Exception:
        pass
    try:
        import flytekit

        prefixes.add(os.path.dirname(flytekit.__file__))
    except Exception:
        pass
    return {"files": _fs_paths(files), "prefixes": _fs_paths(sorted(prefixes))}


@_guard
def git_repo(root):
    from flytekit.remote.remote import _get_git_repo_url

    try:
        return _get_git_repo_url(root)
    except Exception:
        return None


def _admin_item(e):
    """(kind, name, pb bytes, auto_activate) of a registrable admin message, or None."""
    from flytekit.models import launch_plan as lp_models
    from flytekit.models.admin import workflow as wf_models
    from flytekit.models.task import TaskSpec

    if isinstance(e, TaskSpec):
        kind, name, auto = "task", e.template.id.name, False
    elif isinstance(e, wf_models.WorkflowSpec):
        kind, name, auto = "workflow", e.template.id.name, False
    elif isinstance(e, lp_models.LaunchPlan):
        kind, name, auto = "launch_plan", e.id.name, bool(getattr(e, "should_auto_activate", False))
    else:
        return None
    pb = e.to_flyte_idl()
    if kind == "workflow":
        _sort_upstream_ids(pb)
    return (kind, name, pb.SerializeToString(deterministic=True), auto)


def _sort_upstream_ids(wf_spec_pb):
    """flytekit lists a node's upstream nodes from a Python set of node objects (promise.py:
    `list(set(nodes))`), so their order changes from run to run. Sorted, the same code always
    gives the same bytes, hence the same version; the order means nothing to Flyte."""

    def visit(node):
        ids = sorted(node.upstream_node_ids)
        del node.upstream_node_ids[:]
        node.upstream_node_ids.extend(ids)
        kind = node.WhichOneof("target")
        if kind == "branch_node":
            ie = node.branch_node.if_else
            children = [ie.case.then_node] + [c.then_node for c in ie.other]
            if ie.HasField("else_node"):
                children.append(ie.else_node)
            for child in children:
                visit(child)
        elif kind == "array_node":
            visit(node.array_node.node)

    for template in [wf_spec_pb.template, *wf_spec_pb.sub_workflows]:
        for node in template.nodes:
            visit(node)
        if template.HasField("failure_node"):
            visit(template.failure_node)


# Below this many entities, one process serializes (a fork costs more than it saves).
PARALLEL_MIN_ENTITIES = 32


def _serialize_workers(n):
    """How many processes serialize `n` entities: UNION_SERIALIZE_WORKERS if set (1 = never fork,
    and the size threshold does not apply), else one per CPU (at most 4) for big projects."""
    forced = os.environ.get("UNION_SERIALIZE_WORKERS", "").strip()
    if forced:
        try:
            return max(1, min(int(forced), 16))
        except ValueError:
            return 1
    if n < PARALLEL_MIN_ENTITIES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _serialize_share(ctx, entities, indices):
    """flytekit's get_registrable_entities loop over the entities at `indices`, recording for each
    one the registrable messages it added: {index: [(kind, name, pb, auto), ...]}."""
    import itertools
    from collections import OrderedDict

    from flytekit import LaunchPlan
    from flytekit.core.python_function_task import EagerAsyncPythonFunctionTask
    from flytekit.core.workflow import WorkflowBase
    from flytekit.tools.serialize_helpers import _should_register_with_admin
    from flytekit.tools.translator import get_serializable

    settings = ctx.serialization_settings
    mapping = OrderedDict()
    out = {}
    for i in indices:
        entity = entities[i]
        before = len(mapping)
        get_serializable(mapping, settings, entity, options=None)
        if isinstance(entity, WorkflowBase):
            get_serializable(mapping, settings, LaunchPlan.get_default_launch_plan(ctx, entity), None)
        if isinstance(entity, EagerAsyncPythonFunctionTask):
            wf = entity.get_as_workflow()
            get_serializable(mapping, settings, LaunchPlan.get_default_launch_plan(ctx, wf), None)
        added = len(mapping) - before
        new = list(itertools.islice(reversed(mapping.values()), added))[::-1] if added else []
        out[i] = [item for item in (_admin_item(v) for v in new if _should_register_with_admin(v)) if item]
    return out


def _die_with_parent(parent):
    """A forked worker must not outlive the command (SIGTERM or Ctrl-C reach only the parent when
    they do not come from a terminal): ask the kernel to kill it when its parent dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def _serialize_parallel(ctx, workers):
    """get_registrable_entities with the top-level entities shared out among `workers` forked
    processes (dynamically, in small chunks). Each process keeps its own "already serialized" map,
    so dependencies shared by entities of different processes are serialized more than once; the
    merge walks the entities in flytekit's order and keeps the first copy of each message, which is
    exactly the list flytekit builds in one process. Returns None when it cannot run (threads
    running, fork unavailable, a worker failed): the caller then serializes in one process."""
    import pickle
    import struct
    import threading

    from flytekit import LaunchPlan
    from flytekit.core.base_task import PythonTask
    from flytekit.core.context_manager import FlyteEntities
    from flytekit.core.workflow import WorkflowBase

    # A fork copies only this thread. flytekit's event-loop threads are fork-aware (its loop
    # manager keys them by pid, so a child starts its own) and sit idle in their selector while
    # this thread runs; any other Python thread (a user's pool, a plugin's worker) could hold a
    # lock the children would wait on forever: then serialize in one process.
    if not hasattr(os, "fork"):
        return None
    for t in threading.enumerate():
        if t is not threading.current_thread() and not (t.daemon and t.name.endswith(" : loop-runner")):
            return None
    entities = [
        e for e in FlyteEntities.entities.copy() if isinstance(e, (PythonTask, WorkflowBase, LaunchPlan))
    ]
    n = len(entities)
    chunk = max(1, min(8, n // (workers * 8)))
    starts = list(range(0, n, chunk))
    tokens_r, tokens_w = os.pipe()
    payload = b"".join(struct.pack("<I", s) for s in starts)
    if len(payload) > 60000:  # must fit in the pipe before anyone reads
        os.close(tokens_r)
        os.close(tokens_w)
        return None
    os.write(tokens_w, payload)
    os.close(tokens_w)

    def my_indices():
        while True:
            b = os.read(tokens_r, 4)
            if len(b) < 4:
                return
            (s,) = struct.unpack("<I", b)
            yield from range(s, min(s + chunk, n))

    children = []
    parent = os.getpid()
    for _ in range(workers - 1):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _die_with_parent(parent)
                os.close(r)
                try:
                    data = pickle.dumps(("ok", _serialize_share(ctx, entities, my_indices())))
                except BaseException as e:  # reported; the parent redoes the work in one process
                    data = pickle.dumps(("error", f"{type(e).__name__}: {e}"))
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view) :]
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    ok = True
    try:
        results = _serialize_share(ctx, entities, my_indices())
    finally:
        os.close(tokens_r)
        for pid, r in children:
            try:
                status, part = pickle.loads(_read_all(r))
                if status == "ok":
                    results.update(part)
                else:
                    ok = False
            except Exception:
                ok = False
            finally:
                os.close(r)
                _, st = os.waitpid(pid, 0)
                ok = ok and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
    if not ok or len(results) != n:
        return None
    out, seen = [], set()
    for i in range(n):
        for item in results[i]:
            key = item[:3]
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


@_guard
def serialize(settings_json):
    """Serialize every registrable entity as pyflyte register / package does.

    Returns {"entities": [{kind, name, pb (base64 of the admin message, deterministic),
    auto_activate}] in flytekit's order (dependencies first; each workflow before its default
    launch plan), "processes": how many processes serialized}.
    """
    import base64

    from flytekit.core.context_manager import FlyteContextManager, FlyteEntities
    from flytekit.image_spec.image_spec import ImageBuildEngine
    from flytekit.tools.serialize_helpers import get_registrable_entities

    ImageBuildEngine.build = staticmethod(_refuse_build)
    settings = _settings(json.loads(settings_json))
    ctx_builder = FlyteContextManager.current_context().with_serialization_settings(settings)
    items = None
    try:
        with FlyteContextManager.with_context(ctx_builder) as ctx:
            workers = _serialize_workers(len(FlyteEntities.entities))
            if workers > 1:
                try:
                    items = _serialize_parallel(ctx, workers)
                except (ImportError, AttributeError):  # a flytekit without these internals
                    items = None
            if items is None:
                workers = 1
                items = [i for i in (_admin_item(e) for e in get_registrable_entities(ctx)) if i]
    except UserError:
        raise
    except Exception as e:
        raise UserError("serialize", f"serializing failed: {type(e).__name__}: {e}", format_user_traceback(e))
    entities = [
        {"kind": kind, "name": name, "pb": base64.b64encode(pb).decode(), "auto_activate": auto}
        for kind, name, pb, auto in items
    ]
    return {"entities": entities, "processes": workers}


@_guard
def flytekit_version():
    return _flytekit().__version__


# ---------------------------------------------------------------------------------------------
# Remote executions: inputs become a Flyte LiteralMap exactly as `pyflyte run --remote` builds it,
# and outputs come back through flytekit's type engine.


def _remote_unsupported(python_type):
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile

    try:
        from flytekit.types.structured import StructuredDataset
    except Exception:  # pragma: no cover
        StructuredDataset = ()
    t = python_type
    origin = typing.get_origin(t)
    candidates = typing.get_args(t) if origin is typing.Union else (t,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, (FlyteFile, FlyteDirectory, StructuredDataset)):
            return True
        if getattr(c, "__module__", "").startswith("pandas"):
            return True
    return False


@_guard
def remote_inputs(module, attr, given_json):
    """The LiteralMap (base64) of a remote execution's inputs, with defaults applied as pyflyte does."""
    import base64

    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import LiteralMap

    entity = _load_entity(module, attr)
    given = json.loads(given_json)
    final = _inputs_with_defaults(entity)
    for name in given:
        if name in final and _remote_unsupported(final[name][0]):
            raise UserError(
                "bad_value",
                f"--{name}: file, directory and dataframe inputs are not supported by `union run --remote` yet",
                flag=f"--{name}",
            )
    inputs = _convert_inputs(entity, given)
    ctx = FlyteContextManager.current_context()
    literals = {}
    for name, value in inputs.items():
        python_type = final[name][0]
        literal_type = entity.interface.inputs[name].type
        try:
            literals[name] = TypeEngine.to_literal(ctx, value, python_type, literal_type)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            raise _bad_value(name, python_type, given.get(name, value), e)
    pb = LiteralMap(literals=literals).to_flyte_idl().SerializeToString(deterministic=True)
    return base64.b64encode(pb).decode()


@_guard
def format_outputs(module, attr, literal_map_b64):
    """Render a remote execution's outputs (a LiteralMap, base64) the way a local run prints them."""
    import base64

    from flyteidl.core import literals_pb2
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import LiteralMap

    entity = _load_entity(module, attr)
    pb = literals_pb2.LiteralMap()
    pb.ParseFromString(base64.b64decode(literal_map_b64))
    lm = LiteralMap.from_flyte_idl(pb)
    types = entity.python_interface.outputs
    ctx = FlyteContextManager.current_context()
    values = {}
    for name, python_type in types.items():
        if name in lm.literals:
            values[name] = TypeEngine.to_python_value(ctx, lm.literals[name], python_type)
    if not types:
        return ""
    if len(types) == 1:
        v = next(iter(values.values()), None)
        return "" if v is None else str(v)
    return "\n".join(f"{k}: {v}" for k, v in values.items())


@_guard
def warm_up():
    """Import what every command needs, once, in the warm interpreter's server.

    Returns flytekit's version and every file the server has loaded (the server checks them before
    each command: if one changed, it is stale and exits)."""
    import gc
    import threading

    import click  # noqa: F401
    from flytekit.core import context_manager  # noqa: F401
    from flytekit.core.python_auto_container import update_image_spec_copy_handling  # noqa: F401
    from flytekit.interaction.click_types import FlyteLiteralConverter  # noqa: F401
    from flytekit.tools.serialize_helpers import get_registrable_entities  # noqa: F401

    version = _flytekit().__version__
    files = _loaded_files()
    # What the server holds now is never garbage: take it out of the collector's sight, so each
    # command's collections only walk what the command allocated (and fork shares more pages).
    gc.collect()
    gc.freeze()
    return {"flytekit": version, "files": _fs_paths(files), "python_threads": threading.active_count()}


@_guard
def after_fork():
    """In a warm interpreter's child, before the command: give flytekit a fresh default context
    (its execution date, local sandbox directories and config are read now, as a cold start would)."""
    from flytekit.core.context_manager import FlyteContextManager

    FlyteContextManager.initialize()
    return True
