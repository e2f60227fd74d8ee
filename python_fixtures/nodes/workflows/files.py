"""Files and directories as inputs of `run --remote`: uploaded from the user's machine
through the data proxy, read by the task in its container."""

import os
from typing import List

from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile


@task
def count_words(f: FlyteFile) -> int:
    with open(f) as fh:
        return len(fh.read().split())


@task
def list_files(d: FlyteDirectory) -> List[str]:
    base = d.download()
    found = []
    for root, _, files in os.walk(base):
        found += [os.path.relpath(os.path.join(root, n), base) for n in files]
    return sorted(found)


@workflow
def words_wf(f: FlyteFile) -> int:
    return count_words(f=f)


@workflow
def listing_wf(d: FlyteDirectory) -> List[str]:
    return list_files(d=d)
