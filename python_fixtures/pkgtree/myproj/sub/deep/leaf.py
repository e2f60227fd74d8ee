from flytekit import task


@task
def leaf(x: float) -> float:
    return x / 2
