"""Tensor lifetimes from the execution order.

A tensor is live from the step that writes it to the last step that reads it
(graph inputs from step 0, graph outputs until the end). A step's output and
its inputs are live at the same time: the kernel reads while it writes.
Reshape aliases extend the lifetime of the storage they view.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph


@dataclass(frozen=True)
class Interval:
    """Storage tensor ``name`` occupies ``nbytes`` during steps [first, last]."""

    name: str
    nbytes: int
    first: int
    last: int

    def overlaps(self, other: Interval) -> bool:
        return self.first <= other.last and other.first <= self.last


def lifetimes(graph: Graph) -> dict[str, Interval]:
    """Live interval of every storage tensor (aliases folded into their base)."""
    n = len(graph.steps)
    first: dict[str, int] = {}
    last: dict[str, int] = {}

    def touch(name: str, step: int) -> None:
        base = graph.storage_of(name)
        first[base] = min(first.get(base, step), step)
        last[base] = max(last.get(base, step), step)

    for name in graph.inputs:
        touch(name, 0)
    for i, step in enumerate(graph.steps):
        for name in step.inputs:
            touch(name, i)
        touch(step.output, i)
    for name in graph.outputs:
        touch(name, max(n - 1, 0))
    return {
        name: Interval(name, graph.tensors[name].nbytes, first[name], last[name]) for name in first
    }


def live_bytes_per_step(intervals: dict[str, Interval], num_steps: int) -> list[int]:
    """Total bytes live at each step: a lower bound for any arena layout."""
    live = [0] * max(num_steps, 1)
    for iv in intervals.values():
        for s in range(iv.first, iv.last + 1):
            live[s] += iv.nbytes
    return live
