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
