# ---------------------------------------------------------------------------------------------
# Command-line inputs: converted exactly as `pyflyte run` converts them, checked against their
# type, and a usage error that names the flag, the type and an example when they do not fit.


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
