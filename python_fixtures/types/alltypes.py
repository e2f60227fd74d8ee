"""One task per kind of input pyflyte run accepts, each echoing what it received."""

import datetime
import enum
from dataclasses import dataclass
from typing import Dict, List, Optional

import pandas as pd
from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from pydantic import BaseModel


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: float
    tags: List[str]


class Config(BaseModel):
    name: str
    retries: int = 3


@task
def scalars(i: int, f: float, s: str, b: bool) -> str:
    return f"i={i!r} f={f!r} s={s!r} b={b!r}"


@task
def times(when: datetime.datetime, delta: datetime.timedelta, day: datetime.date) -> str:
    return f"when={when.isoformat()} delta={delta.total_seconds()} day={day.isoformat()}"


@task
def color(c: Color) -> str:
    return f"color={c.name}"


@task
def optional(x: Optional[int] = None, s: Optional[str] = None) -> str:
    return f"x={x!r} s={s!r}"


@task
def collections(xs: List[float], m: Dict[str, int]) -> str:
    return f"xs={xs!r} m={sorted(m.items())!r}"


@task
def point(p: Point) -> str:
    return f"p={p.x},{p.y},{p.tags}"


@task
def model(c: Config) -> str:
    return f"name={c.name} retries={c.retries}"


@task
def file_size(f: FlyteFile) -> int:
    with open(f, "rb") as fh:
        return len(fh.read())


@task
def dir_count(d: FlyteDirectory) -> int:
    import os

    return sum(len(files) for _, _, files in os.walk(d.download()))


@task
def frame_rows(df: pd.DataFrame) -> int:
    return len(df)


@task
def flags(verbose: bool = False, dry_run: bool = True) -> str:
    return f"verbose={verbose} dry_run={dry_run}"


@workflow
def defaults_wf(n: int = 7, ratio: float = 0.5, name: str = "x", xs: List[int] = [1, 2]) -> str:
    return scalars(i=n, f=ratio, s=name, b=True)
