"""Dynamic workflows: a chain built at run time, and a dynamic task calling another one."""

from typing import List

from flytekit import dynamic, task, workflow


@task
def add(a: int, b: int) -> int:
    return a + b


@dynamic
def sum_below(n: int) -> int:
    s = add(a=0, b=0)
    for i in range(n):
        s = add(a=s, b=i)
    return s


@dynamic
def sums(n: int) -> List[int]:
    return [sum_below(n=i) for i in range(1, n + 1)]


@workflow
def dynamic_wf(n: int = 4) -> List[int]:
    return sums(n=n)
