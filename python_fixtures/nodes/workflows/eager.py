"""An eager workflow: Python decides at run time, and every task it calls runs as an
execution of the backend (flytekit 1.16 calls them without `await`)."""

from flytekit import eager, task


@task
def add_one(x: int) -> int:
    return x + 1


@task
def double(x: int) -> int:
    return x * 2


@eager
async def eager_wf(x: int = 3) -> int:
    out = add_one(x=x)
    if out < 0:
        return -1
    return double(x=out)

