"""Intra-task checkpoints: each retry resumes from what the previous attempt saved."""

from flytekit import current_context, task, workflow
from flytekit.exceptions.user import FlyteRecoverableException


@task(retries=3)
def resume(n: int) -> int:
    cp = current_context().checkpoint
    prev = cp.read()
    done = int(prev.decode()) if prev else 0
    done += 1
    cp.write(str(done).encode())
    if done < n:
        raise FlyteRecoverableException(f"attempt {done} of {n}: try again")
    return done


@workflow
def checkpoint_wf(n: int = 3) -> int:
    return resume(n=n)
