"""An Echo task (type `echo`): no container; flytepropeller's echo plugin passes its inputs to
its outputs, and so must the sandbox."""

from flytekit import task, workflow
from flytekit.core.task import Echo

echo = Echo(name="echo", inputs={"a": int})


@task
def double(n: int) -> int:
    return n * 2


@workflow
def echo_wf(a: int = 3) -> int:
    return double(n=echo(a=a))
