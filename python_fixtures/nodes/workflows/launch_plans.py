"""Launch plan nodes: each runs as a child execution, with the launch plan's fixed and default
inputs (Flyte's answers: 15.0 and 20.0; a local run ignores the launch plan's defaults); mapped
over a list, one child execution per element."""

from typing import List

from flytekit import LaunchPlan, map_task, task, workflow


@task
def area(width: float, height: float) -> float:
    return width * height


@workflow
def rect_wf(width: float, height: float = 2.0) -> float:
    return area(width=width, height=height)


rect_lp = LaunchPlan.get_or_create(
    rect_wf, name="rect_lp", default_inputs={"height": 3.0}, fixed_inputs={"width": 5.0}
)


@workflow
def defaults_wf() -> float:
    return rect_lp()


@workflow
def override_wf(height: float = 4.0) -> float:
    return rect_lp(height=height)


@workflow
def areas_wf() -> List[float]:
    return map_task(rect_lp)(height=[1.0, 2.0])
