from flytekit import task, workflow


@task
def greet(name: str) -> str:
    return f"hi {name}"


@workflow
def greet_wf(name: str = "tree") -> str:
    return greet(name=name)
