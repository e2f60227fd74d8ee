"""Work that takes long: a map task of naps, run as a launch plan's child execution (for the
restart test)."""

import time
from typing import List

from flytekit import LaunchPlan, map_task, task, workflow


@task
def nap(s: int) -> int:
    time.sleep(s)
    return s


@workflow
def naps_wf(s: int = 300) -> List[int]:
    return map_task(nap)(s=[s, s])


naps_lp = LaunchPlan.get_or_create(naps_wf, name="naps_lp")


@workflow
def parent_naps_wf(s: int = 300) -> List[int]:
    return naps_lp(s=s)
