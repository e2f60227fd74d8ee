# ---------------------------------------------------------------------------------------------
# Remote executions: inputs become a Flyte LiteralMap exactly as `pyflyte run --remote` builds it,
# and outputs come back through flytekit's type engine.


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
    # Local files, directories and dataframes become local URIs here; union uploads them
    # through the data proxy before the execution starts, as pyflyte does.
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
    from flytekit.core.promise import Promise, create_native_named_tuple
    from flytekit.models.literals import LiteralMap

    entity = _load_entity(module, attr)
    pb = literals_pb2.LiteralMap()
    pb.ParseFromString(base64.b64decode(literal_map_b64))
    lm = LiteralMap.from_flyte_idl(pb)
    interface = entity.python_interface
    ctx = FlyteContextManager.current_context()
    # The value a local call returns (a single value, or the outputs' NamedTuple), built by
    # flytekit itself, printed as `pyflyte run` prints it: click.echo semantics.
    promises = tuple(Promise(var=name, val=lm.literals[name]) for name in interface.outputs if name in lm.literals)
    if not promises:
        return ""
    output = create_native_named_tuple(ctx, promises[0] if len(interface.outputs) == 1 else promises, interface)
    if output is None:
        return ""
    if isinstance(output, (bytes, bytearray)):
        return output.decode("utf-8", "replace")
    return str(output)
