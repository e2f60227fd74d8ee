"""Gate nodes: a sleep, an approval and an input, each waiting inside a workflow."""

from datetime import timedelta

from flytekit import approve, sleep, task, wait_for_input, workflow


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@task
def shout(s: str) -> str:
    return s.upper()


@workflow
def sleep_wf(name: str = "nap") -> str:
    g = greet(name=name)
    nap = sleep(timedelta(seconds=1))
    loud = shout(s=g)
    g >> nap
    nap >> loud
    return loud


@workflow
def approval_wf(name: str = "Ada") -> str:
    g = greet(name=name)
    return shout(s=approve(g, "review", timeout=timedelta(minutes=30)))


@workflow
def input_wf() -> str:
    title = wait_for_input("title", timeout=timedelta(minutes=30), expected_type=str)
    return shout(s=title)


@workflow
def impatient_wf() -> str:
    title = wait_for_input("never", timeout=timedelta(seconds=1), expected_type=str)
    return shout(s=title)
