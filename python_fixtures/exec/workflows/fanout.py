"""A 20-way fan-out then a fan-in, and a branch on the result."""

from typing import List

from flytekit import conditional, task, workflow


@task
def square(x: int, base: int) -> int:
    return (x + base) * (x + base)


@task
def total(xs: List[int]) -> int:
    return sum(xs)


@task
def describe(n: int, kind: str) -> str:
    return f"{n} is {kind}"


@workflow
def fanout_wf(base: int = 0) -> int:
    return total(xs=[square(x=i, base=base) for i in range(20)])


@workflow
def parity_wf(n: int) -> str:
    return (
        conditional("parity")
        .if_(n > 100)
        .then(describe(n=n, kind="big"))
        .else_()
        .then(describe(n=n, kind="small"))
    )


@workflow
def summary_wf(n: int) -> str:
    # The condition reads only the workflow's input; the branches read `total`'s output, so the
    # branch must wait for `total` (flytekit binds only the condition's operands to it).
    s = total(xs=[n, n])
    return (
        conditional("size")
        .if_(n > 100)
        .then(describe(n=s, kind="big"))
        .else_()
        .then(describe(n=s, kind="small"))
    )
