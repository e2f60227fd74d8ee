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


@_guard
def union_builder_facts():
    """What union's image builder plugin takes from the user's environment: its Python
    (`sys.version_info`, the default python_version) and the installed union (pinned into images)."""
    import sys
    from importlib.metadata import PackageNotFoundError, version

    try:
        union_version = version("union")
    except PackageNotFoundError:
        union_version = None
    return {
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "union_version": union_version,
    }
