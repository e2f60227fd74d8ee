"""Attribute access on task outputs: dataclass fields (sent as msgpack), list items, dict keys."""

from dataclasses import dataclass, field
from typing import Dict, List

from flytekit import task, workflow


@dataclass
class Inner:
    label: str
    weight: float


@dataclass
class Stats:
    count: int
    mean: float
    names: List[str]
    extra: Dict[str, int]
    inner: Inner
    flags: List[bool] = field(default_factory=list)


@task
def stats() -> Stats:
    return Stats(
        count=3,
        mean=2.5,
        names=["ada", "grace"],
        extra={"k": 7},
        inner=Inner(label="x", weight=0.5),
        flags=[True, False],
    )


@task
def pairs() -> Dict[str, List[int]]:
    return {"a": [1, 2], "b": [3]}


@task
def show(count: int, mean: float, first: str, k: int, flag: bool, b0: int) -> str:
    return f"count={count} mean={mean} first={first} k={k} flag={flag} b0={b0}"


@task
def describe(inner: Inner) -> str:
    return f"{inner.label}:{inner.weight}"


@workflow
def attr_wf() -> str:
    s = stats()
    p = pairs()
    return show(
        count=s.count,
        mean=s.mean,
        first=s.names[0],
        k=s.extra["k"],
        flag=s.flags[1],
        b0=p["b"][0],
    )


@workflow
def nested_attr_wf() -> str:
    return describe(inner=stats().inner)
