"""A task that sleeps: for termination and restart tests."""

import time

from flytekit import task, workflow


@task
def sleepy(seconds: int) -> str:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke up"


@workflow
def sleepy_wf(seconds: int = 60) -> str:
    return sleepy(seconds=seconds)
