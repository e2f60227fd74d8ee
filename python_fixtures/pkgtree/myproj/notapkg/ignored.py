# Not in a package (no __init__.py here): directory discovery skips it, as pkgutil does.
from flytekit import task


@task
def never_discovered() -> int:
    return 0
