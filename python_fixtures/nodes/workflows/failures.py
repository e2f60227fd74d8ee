"""Failure handling: an `on_failure` node, and the policy that lets independent nodes finish."""

from typing import Optional

from flytekit import WorkflowFailurePolicy, task, workflow
from flytekit.types.error import FlyteError


@task
def boom(x: int) -> int:
    if x > 0:
        raise ValueError(f"boom {x}")
    return x


@task
def plus_one(x: int) -> int:
    return x + 1


@task
def clean_up(x: int, err: Optional[FlyteError] = None) -> None:
    # Fails (and so shows) unless the failure reached it.
    assert err is not None and err.failed_node_id == "n0" and "boom" in err.message, err
    print(f"cleaned up after {err.failed_node_id}: x={x}")


@workflow(on_failure=clean_up)
def handled_wf(x: int = 1) -> int:
    return boom(x=x)


@workflow(failure_policy=WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE)
def keep_going_wf(x: int = 1) -> int:
    a = boom(x=x)
    plus_one(x=plus_one(x=x))
    return a
