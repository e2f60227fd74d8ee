# ---------------------------------------------------------------------------------------------
# The warm interpreter: what its server imports once, and what each forked child refreshes.


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
