"""A 100-element map task, then a sum (the sandbox benchmark: tests/bench/sandbox_exec.sh)."""

from typing import List

from flytekit import map_task, task, workflow


@task
def numbers(n: int) -> List[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: List[int]) -> int:
    return sum(xs)


@workflow
def map_wf(n: int = 100) -> int:
    return total(xs=map_task(square)(x=numbers(n=n)))
