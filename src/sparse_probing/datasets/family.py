"""What every feature family provides to the registry and to the builder CLI."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .base import ProbingDataset
from .sources import TextUnit

UnitsFn = Callable[[str], Sequence[TextUnit]]
"""Returns the text units of a source by name (the CLI fetches packages; tests read fixture trees)."""

VARIANTS = ("smoke", "default")

T = TypeVar("T")


@dataclass(frozen=True)
class Family:
    """A feature family: a name, a content version and a builder."""

    name: str
    version: str
    """Bump when the builder's output changes for the same inputs; enters the activation cache key."""
    description: str
    build: Callable[[UnitsFn, str], ProbingDataset]
    """``build(units, variant)``: the dataset of one size variant."""
    sources: Callable[[str], list[str]]
    """``sources(variant)``: the names of the sources the builder reads."""


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    return variant


def shuffled(items: Iterable[T], seed: str) -> list[T]:
    """A deterministic shuffle (Python's string seeding is stable across runs and platforms)."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def round_robin(pools: Sequence[Sequence[T]], n: int) -> list[T]:
    """Take items alternately from each pool (in order) until ``n`` are taken or all pools are exhausted."""
    out: list[T] = []
    idx = [0] * len(pools)
    while len(out) < n and any(i < len(p) for i, p in zip(idx, pools, strict=True)):
        for k, pool in enumerate(pools):
            if len(out) >= n:
                break
            if idx[k] < len(pool):
                out.append(pool[idx[k]])
                idx[k] += 1
    return out


def interleave(per_class: Sequence[Sequence[T]]) -> list[T]:
    """Round-robin over classes, so that any prefix of the result is close to class-balanced."""
    return round_robin(per_class, sum(len(c) for c in per_class))


def round_robin_ranks(lists: Sequence[Sequence[T]], n: int) -> list[T]:
    """The first item of every list (in order), then every second item, ... until ``n`` items are taken."""
    out: list[T] = []
    rank = 0
    while len(out) < n and any(rank < len(x) for x in lists):
        for x in lists:
            if rank < len(x):
                out.append(x[rank])
                if len(out) >= n:
                    break
        rank += 1
    return out
