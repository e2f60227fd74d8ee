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
