"""Execution order: pick the topological order of the steps with the lowest peak of live bytes.

For a chain there is one order. Where the graph branches (parallel paths
that later join), running one path to its narrow end before starting the
next keeps fewer wide tensors alive. A dynamic programme over the sets of
already executed steps finds the order with the smallest peak exactly; it
falls back to the given order when the graph has too many such sets. The
live bytes of a step are counted with the planner's lifetime model
(:mod:`.lifetimes`: aliases folded, scratch live during its step, an output
sharing bytes with an input that dies at its step), so the peak of an order
here is the lower bound ``live_bytes`` gives the graph run in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .graph import Graph
from .lifetimes import max_overlap

MAX_STATES = 50_000


@dataclass(frozen=True)
class _Storage:
    """The graph as storage tensors (aliases folded), computed once per search."""

    base: dict[str, str]  # tensor -> the storage it uses
    reads: tuple[frozenset[str], ...]  # per step, the storage it reads
    writes: tuple[str, ...]  # per step, the storage it writes
    inputs: frozenset[str]
    outputs: frozenset[str]
    overlaps: tuple[tuple[tuple[str, str, int], ...], ...]  # per step, ``Graph.storage_overlaps``

    @staticmethod
    def of(graph: Graph) -> _Storage:
        storage = graph.storage_map()

        def base(name: str) -> str:
            return storage.get(name, name)

        return _Storage(storage, tuple(frozenset(base(x) for x in s.inputs) for s in graph.steps),
                        tuple(base(s.output) for s in graph.steps),
                        frozenset(base(x) for x in graph.inputs), frozenset(base(x) for x in graph.outputs),
                        tuple(graph.storage_overlaps()))


def peak_of(graph: Graph, order: list[int]) -> int:
    """Largest live total (tensor sizes, aliases folded) over the steps run in ``order``."""
    done: set[int] = set()
    peak = 0
    storage = _Storage.of(graph)
    for i in order:
        peak = max(peak, _live_at(graph, frozenset(done), i, storage))
        done.add(i)
    return peak


def best_order(graph: Graph) -> list[int]:
    """The step order with the lowest peak (the given order if it is already best or the search is too big)."""
    n = len(graph.steps)
    producers = {graph.steps[i].output: i for i in range(n)}
    deps = [frozenset(producers[x] for x in s.inputs if x in producers) for s in graph.steps]
    storage = _Storage.of(graph)
    states = 0

    @cache
    def solve(done: frozenset) -> tuple[int, tuple[int, ...]]:
        nonlocal states
        states += 1
        if states > MAX_STATES:
            raise _SearchTooLargeError
        if len(done) == n:
            return 0, ()
        best: tuple[int, tuple[int, ...]] | None = None
        for i in range(n):
            if i in done or not deps[i] <= done:
                continue
            here = _live_at(graph, done, i, storage)
            rest, order = solve(done | {i})
            cand = (max(here, rest), (i, *order))
            if best is None or cand[0] < best[0]:
                best = cand
        assert best is not None
        return best

    original = list(range(n))
    try:
        peak, order = solve(frozenset())
    except _SearchTooLargeError:
        return original
    return list(order) if peak < peak_of(graph, original) else original


class _SearchTooLargeError(Exception):
    pass


def _live_at(graph: Graph, done: frozenset, i: int, storage: _Storage) -> int:
    """Bytes live while step ``i`` runs after the steps in ``done`` (the planner's lifetime model)."""
    available = storage.inputs | {storage.writes[j] for j in done}
    later = set().union(*(storage.reads[k] for k in range(len(storage.reads)) if k not in done and k != i))
    needed = later | storage.reads[i]
    live = {t for t in available if t in needed or t in storage.outputs}
    out = storage.writes[i]
    live.add(out)
    step = graph.steps[i]
    if step.scratch:
        live.add(step.scratch)
    saved = max((max_overlap(graph.tensors[src].nbytes, graph.tensors[out].nbytes, delta)
                 for src, _, delta in storage.overlaps[i]
                 if out not in available and src not in later and src not in storage.outputs),
                default=0)  # an output sharing bytes with an input that dies here (``overlap_rules``)
    return sum(graph.tensors[t].nbytes for t in live) - saved
