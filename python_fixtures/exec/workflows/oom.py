"""A task that needs more memory than its limit: the container is killed for it."""

from flytekit import Resources, task, workflow


@task(limits=Resources(mem="64Mi"), requests=Resources(mem="64Mi"))
def hog(mb: int) -> int:
    chunks = [bytearray(1024 * 1024) for _ in range(mb)]
    return len(chunks)


@workflow
def hog_wf(mb: int = 1024) -> int:
    return hog(mb=mb)
