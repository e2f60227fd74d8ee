"""A task that raises: its traceback must reach the execution's error."""

from flytekit import task, workflow


def check(n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


@task
def validate(n: int) -> int:
    check(n)
    return n * 10


@workflow
def validate_wf(n: int) -> int:
    return validate(n=n)
