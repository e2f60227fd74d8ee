"""A workflow with several named outputs."""

from typing import NamedTuple

from flytekit import task, workflow

stats = NamedTuple("stats", [("total", int), ("label", str)])


@task
def summarize(xs: list[int]) -> stats:
    return stats(total=sum(xs), label="sum")


@workflow
def stats_wf(xs: list[int] = [1, 2, 3]) -> stats:
    s = summarize(xs=xs)
    return stats(total=s.total, label=s.label)
