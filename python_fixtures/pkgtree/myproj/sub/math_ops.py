from flytekit import LaunchPlan, task, workflow


@task
def add(a: int, b: int) -> int:
    return a + b


@workflow
def add_wf(a: int = 1, b: int = 2) -> int:
    return add(a=a, b=b)


add_three_lp = LaunchPlan.get_or_create(add_wf, name="myproj.sub.math_ops.add_three", default_inputs={"b": 3})
