import time

from flytekit import task


@task
def sleepy(seconds: int = 60) -> str:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke up"
