"""Tensor lifetimes from the execution order.

A tensor is live from the step that writes it to the last step that reads it
(graph inputs from step 0, graph outputs until the end). A step's output and
its inputs are live at the same time: the kernel reads while it writes. A
step's scratch buffer is live during that step only.
Views (reshapes, slices, concatenation parts: :mod:`.graph`) extend the lifetime
of the storage they are in: a storage lives from the first step that writes any
of its views to the last step that reads one.
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
    storage = graph.storage_map()

    def touch(name: str, step: int) -> None:
        base = storage.get(name, name)
        first[base] = min(first.get(base, step), step)
        last[base] = max(last.get(base, step), step)

    for name in graph.inputs:
        touch(name, 0)
    for i, step in enumerate(graph.steps):
        for name in step.inputs:
            touch(name, i)
        touch(step.output, i)
        if step.scratch:
            touch(step.scratch, i)
    for name in graph.outputs:
        touch(name, max(n - 1, 0))
    return {
        name: Interval(name, graph.tensors[name].nbytes, first[name], last[name]) for name in first
    }


def overlap_rules(graph: Graph, intervals: dict[str, Interval]) -> dict[tuple[str, str], int]:
    """(input storage, output storage) -> max offset delta, for inputs that die at their step (a model
    output's storage never dies)."""
    rules: dict[tuple[str, str], int] = {}
    storage = graph.storage_map()
    kept = {storage.get(x, x) for x in graph.outputs}  # a model output lives on after the last step
    for i, pairs in enumerate(graph.storage_overlaps()):
        for base, out, delta in pairs:
            if intervals[base].last == i and intervals[out].first == i and base not in kept:
                rules[(base, out)] = delta
    return rules


def max_overlap(size_in: int, size_out: int, delta: int) -> int:
    """Most bytes an output at ``offset(input) + d`` (d <= delta) can share with the input."""
    best = 0
    for d in {delta, min(delta, 0), min(delta, size_in - size_out)}:
        best = max(best, min(size_in, d + size_out) - max(0, d))
    return max(best, 0)


def live_bytes_per_step(
    intervals: dict[str, Interval], num_steps: int, rules: dict[tuple[str, str], int] | None = None
) -> list[int]:
    """Bytes live at each step, minus provably safe overlaps: a lower bound for any layout."""
    live = [0] * max(num_steps, 1)
    for iv in intervals.values():
        for s in range(iv.first, iv.last + 1):
            live[s] += iv.nbytes
    # an output can share bytes with one of its inputs at a time: take the best per output
    best: dict[str, tuple[int, int]] = {}
    for (src, dst), delta in (rules or {}).items():
        saved = max_overlap(intervals[src].nbytes, intervals[dst].nbytes, delta)
        if saved > best.get(dst, (0, 0))[1]:
            best[dst] = (intervals[src].last, saved)
    for step, saved in best.values():
        live[step] -= saved
    return live


def live_bytes(graph: Graph) -> list[int]:
    """Bytes live at each step of ``graph`` as the planner counts them (lifetimes, provable overlaps)."""
    intervals = lifetimes(graph)
    return live_bytes_per_step(intervals, len(graph.steps), overlap_rules(graph, intervals))


def peak_live_bytes(graph: Graph) -> int:
    """The largest live total of any step: the lower bound of every arena layout."""
    return max(live_bytes(graph), default=0)
