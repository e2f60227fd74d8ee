"""Map tasks (array nodes): plain, bounded concurrency, a partial, and tolerated failures."""

from functools import partial
from typing import List, Optional

from flytekit import map_task, task, workflow


@task
def numbers(n: int) -> List[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@task
def fragile(x: int) -> int:
    if x % 3 == 0:
        raise ValueError(f"{x} is a multiple of 3")
    return x


@workflow
def squares_wf(n: int = 6) -> List[int]:
    return map_task(square, concurrency=2)(x=numbers(n=n))


@workflow
def partial_wf() -> List[int]:
    return map_task(partial(scale, factor=10))(x=numbers(n=4))


@workflow
def tolerant_wf() -> List[Optional[int]]:
    return map_task(fragile, min_success_ratio=0.5)(x=[1, 2, 3, 4])


@workflow
def strict_wf() -> List[int]:
    return map_task(fragile)(x=[1, 2, 3, 4])
