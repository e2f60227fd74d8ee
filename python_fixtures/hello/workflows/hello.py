"""The hello example from the Union docs: one task, one workflow, one ImageSpec."""

import union

image_spec = union.ImageSpec(
    # The name of the image. This image will be used by the say_hello task.
    name="say-hello-image",
    # Lock your dependency requirements with a requirements file.
    requirements="requirements.txt",
    # No registry: against `union sandbox` the image goes to the sandbox's built-in registry
    # (localhost:<its port>); elsewhere, add `registry="..."` to push it somewhere the cluster
    # can pull from.
)


@union.task(container_image=image_spec)
def say_hello(name: str) -> str:
    return f"Hello, {name}!"


@union.workflow
def hello_world_wf(name: str = "world") -> str:
    greeting = say_hello(name=name)
    return greeting
