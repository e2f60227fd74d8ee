"""A dataframe as the input of `run --remote`: uploaded from the user's machine, read by a
task whose image has pandas."""

import pandas as pd
from flytekit import ImageSpec, task, workflow

pandas_image = ImageSpec(
    name="nodes-pandas",
    packages=["flytekit==1.16.31", "pandas==2.2.3", "pyarrow==18.1.0"],
    registry="localhost:30000",
)


@task(container_image=pandas_image)
def total(df: pd.DataFrame) -> int:
    return int(df["n"].sum())


@workflow
def total_wf(df: pd.DataFrame) -> int:
    return total(df=df)
