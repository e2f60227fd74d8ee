"""A dynamic workflow: the chain of tasks it runs is decided at run time."""

from flytekit import dynamic, task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@dynamic
def chain(n: int) -> int:
    x = inc(x=0)
    for _ in range(n - 1):
        x = inc(x=x)
    return x


@workflow
def chain_wf(n: int = 2) -> int:
    return chain(n=n)
