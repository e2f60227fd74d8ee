"""Caching: outputs reused across executions for the same inputs and cache version, an input
left out of the key, and a serialized cache."""

import random

from flytekit import task, workflow


@task(cache=True, cache_version="1")
def roll(seed: int) -> float:
    # Different on every run: equal outputs across executions prove the cache served them.
    return random.random() + seed


@task(cache=True, cache_version="1", cache_ignore_input_vars=("note",))
def roll_noted(seed: int, note: str) -> float:
    return random.random() + seed


@task(cache=True, cache_serialize=True, cache_version="1")
def roll_once(seed: int) -> float:
    return random.random() + seed


@workflow
def cached_wf(seed: int = 1) -> float:
    return roll(seed=seed)


@workflow
def noted_wf(seed: int = 1, note: str = "first") -> float:
    return roll_noted(seed=seed, note=note)


@workflow
def serialized_wf(seed: int = 1) -> float:
    return roll_once(seed=seed)
