from flytekit import task

import not_a_real_module_for_union_tests  # noqa: F401


@task
def unreachable() -> int:
    return 1
