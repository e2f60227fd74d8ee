from flytekit import task


@task
def broken(x: int) -> int:
    return x +
