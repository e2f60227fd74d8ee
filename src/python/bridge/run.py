# ---------------------------------------------------------------------------------------------
# Local execution


def _load_entity(module, attr):
    mod = sys.modules[module]
    if attr not in mod.__dict__ or _kind(mod.__dict__[attr]) is None:
        raise UserError("entity_not_found", f"`{attr}` is not a task, workflow or launch plan in `{module}`")
    return mod.__dict__[attr]


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
