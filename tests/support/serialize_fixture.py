"""Serialize every entity of a flytekit project the way `pyflyte package` does, without building images.

Usage: python serialize_fixture.py PROJECT_ROOT OUT_DIR MODULE [MODULE ...]

Imports MODULE(s) with PROJECT_ROOT on sys.path and as the current directory (ImageSpec reads
`requirements=` relative to it), then writes one file per registrable entity to OUT_DIR:
`NNN_<name>.<message type>.pb`, e.g. `003_workflows.hello.say_hello.flyteidl.admin.TaskSpec.pb`, each
the message serialized with `SerializeToString(deterministic=True)`. Prints one line per file.

Used by tests/sandbox/idl.rs; it needs the real flytekit (the project's .venv).

No image is ever built: every ImageSpec used by a task is first passed through
`update_image_spec_copy_handling` (as flytekit does during serialization, so ids and tags match
pyflyte's), then mapped by its id to `Image(fqn, tag)` in the ImageConfig; and the image build engine
is replaced by one that fails loudly, so a missed ImageSpec is an error rather than a docker build.
"""

import importlib
import os
import sys


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    root, out_dir = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    modules = argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    os.chdir(root)
    sys.path.insert(0, root)

    from flytekit.configuration import (
        FastSerializationSettings,
        Image,
        ImageConfig,
        SerializationSettings,
    )
    from flytekit.core import context_manager
    from flytekit.core.python_auto_container import PythonAutoContainerTask, update_image_spec_copy_handling
    from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec
    from flytekit.models import launch_plan as launch_plan_models
    from flytekit.models.admin import workflow as workflow_models
    from flytekit.models.task import TaskSpec
    from flytekit.tools.serialize_helpers import get_registrable_entities

    def refuse_build(image_spec, *args, **kwargs):
        raise RuntimeError(f"serialize_fixture.py: ImageSpec {image_spec.name!r} is not in the ImageConfig")

    ImageBuildEngine.build = staticmethod(refuse_build)

    for name in modules:
        importlib.import_module(name)

    settings = SerializationSettings(
        image_config=ImageConfig.create_from(default_image=Image(name="default", fqn="cr.flyte.org/flyteorg/flytekit", tag="py3.11-1.16.31")),
        fast_serialization_settings=FastSerializationSettings(enabled=True, destination_dir="/root"),
        source_root=root,
    )

    images = []
    seen = set()
    for entity in list(context_manager.FlyteEntities.entities):
        spec = getattr(entity, "container_image", None) if isinstance(entity, PythonAutoContainerTask) else None
        if isinstance(spec, ImageSpec):
            update_image_spec_copy_handling(spec, settings)
            if spec.id in seen:
                continue
            seen.add(spec.id)
            full = spec.image_name()
            fqn, _, tag = full.rpartition(":")
            if "/" in tag or not fqn:  # no tag after the last '/'
                fqn, tag = full, "latest"
            images.append(Image(name=spec.id, fqn=fqn, tag=tag))
    settings.image_config = ImageConfig.create_from(default_image=settings.image_config.default_image, other_images=images)

    ctx = context_manager.FlyteContextManager.current_context().with_serialization_settings(settings)
    with context_manager.FlyteContextManager.with_context(ctx) as ctx:
        entities = get_registrable_entities(ctx)

    for i, entity in enumerate(entities):
        if isinstance(entity, TaskSpec):
            name, kind = entity.template.id.name, "flyteidl.admin.TaskSpec"
        elif isinstance(entity, workflow_models.WorkflowSpec):
            name, kind = entity.template.id.name, "flyteidl.admin.WorkflowSpec"
        elif isinstance(entity, launch_plan_models.LaunchPlan):
            name, kind = entity.id.name, "flyteidl.admin.LaunchPlan"
        else:
            raise TypeError(f"unexpected registrable entity {type(entity)}")
        msg = entity.to_flyte_idl()
        assert msg.DESCRIPTOR.full_name == kind, (msg.DESCRIPTOR.full_name, kind)
        fname = f"{i:03d}_{name}.{kind}.pb"
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(msg.SerializeToString(deterministic=True))
        print(fname)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
