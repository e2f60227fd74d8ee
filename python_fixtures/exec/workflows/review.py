"""Gate nodes a person answers: an approval, and an input."""

from datetime import timedelta

from flytekit import approve, task, wait_for_input, workflow


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@task
def shout(s: str) -> str:
    return s.upper()


@workflow
def review_wf(name: str = "Ada") -> str:
    return shout(s=approve(greet(name=name), "review", timeout=timedelta(hours=1)))


@workflow
def title_wf() -> str:
    return shout(s=wait_for_input("title", timeout=timedelta(hours=1), expected_type=str))
