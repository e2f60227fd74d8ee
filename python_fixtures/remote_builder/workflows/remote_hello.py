"""A task whose image is built by the backend (builder="union"): the client needs no Docker."""

import union

image_spec = union.ImageSpec(
    name="remote-builder-hello",
    # Build on the backend: `union sandbox start` serves the image builder next to FlyteAdmin.
    builder="union",
    requirements="requirements.txt",
    # Copied to /root/greeting.txt in the image.
    copy=["greeting.txt"],
    # No registry: the backend pushes to its default registry (localhost:30000 for the sandbox).
)


@union.task(container_image=image_spec)
def greet(name: str) -> str:
    with open("/root/greeting.txt") as f:
        return f"{f.read().strip()}, {name}!"


@union.workflow
def remote_hello_wf(name: str = "world") -> str:
    return greet(name=name)
