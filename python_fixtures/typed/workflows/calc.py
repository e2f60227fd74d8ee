"""A typed multi-task workflow: ints, floats, lists, a dataclass, Optional, defaults, a subworkflow."""

from dataclasses import dataclass
from typing import List, Optional

from flytekit import ImageSpec, Resources, task, workflow

calc_image = ImageSpec(
    name="calc-image",
    packages=["flytekit==1.16.31"],
    apt_packages=["ca-certificates"],
    env={"CALC_MODE": "typed"},
    registry="localhost:30000",
)


@dataclass
class Stats:
    count: int
    total: int
    mean: float


@task(container_image=calc_image, requests=Resources(cpu="1", mem="200Mi"))
def scale(xs: List[int], factor: int = 2) -> List[int]:
    """Multiply every element by factor."""
    return [x * factor for x in xs]


@task(container_image=calc_image)
def summarize(xs: List[int]) -> Stats:
    """Count, total and mean of a list."""
    total = sum(xs)
    return Stats(count=len(xs), total=total, mean=total / len(xs) if xs else 0.0)


@task(container_image=calc_image)
def above(stats: Stats, threshold: float, label: Optional[str] = None) -> str:
    """Say whether the mean is above the threshold."""
    verdict = "above" if stats.mean > threshold else "not above"
    prefix = f"{label}: " if label else ""
    return f"{prefix}mean {stats.mean} of {stats.count} values is {verdict} {threshold}"


@workflow
def stats_wf(xs: List[int], factor: int = 2) -> Stats:
    """A subworkflow: scale, then summarize."""
    return summarize(xs=scale(xs=xs, factor=factor))


@workflow
def calc_wf(xs: List[int], factor: int = 2, threshold: float = 4.5, label: Optional[str] = None) -> str:
    """Scale a list, summarize it in a subworkflow, and compare the mean to a threshold."""
    stats = stats_wf(xs=xs, factor=factor)
    return above(stats=stats, threshold=threshold, label=label)
