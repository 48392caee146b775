"""Static memory planning: lifetimes, arena offsets and the live-bytes lower bound."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .graph import Graph, Step, Tensor
from .lifetimes import Interval, lifetimes, live_bytes, live_bytes_per_step, overlap_rules, peak_live_bytes
from .offsets import ALIGN, Layout, assign_offsets

__all__ = ["ALIGN", "Graph", "Interval", "Layout", "MemoryPlan", "Step", "Tensor", "live_bytes", "peak_live_bytes",
           "plan_memory"]


@dataclass(frozen=True)
class MemoryPlan:
    """Where every activation lives, how big the arena is, and how close to optimal."""

    layout: Layout
    intervals: dict[str, Interval]
    live_bytes: list[int]
    rules: dict[tuple[str, str], int]
    #: guard bytes kept before and after every tensor (test builds); 0 in production
    guard: int = 0

    @property
    def arena_bytes(self) -> int:
        return self.layout.arena_bytes

    @property
    def lower_bound_bytes(self) -> int:
        return max(self.live_bytes) if self.live_bytes else 0

    def offset_of(self, graph: Graph, name: str) -> int:
        """Byte offset of the data of tensor ``name`` in the arena (a view: its storage's plus its own)."""
        storage, offset = graph.placement().get(name, (name, 0))
        return self.layout.offsets[storage] + offset + self.guard


def plan_memory(graph: Graph, guard: int = 0, fast: bool = False) -> MemoryPlan:
    """Plan the arena for ``graph``; ``guard`` > 0 reserves guard zones around every tensor.

    ``fast`` (the NAS scoring thousands of candidates): the heuristic orders
    and 10 random restarts, no branch-and-bound. The arena is then an
    upper bound of the full plan's (which only ever improves on them), so a
    network that fits when planned fast fits when compiled.
    """
    intervals = lifetimes(graph)
    rules = overlap_rules(graph, intervals)
    live = live_bytes_per_step(intervals, len(graph.steps), rules)
    effort = {"restarts": 10, "node_budget": 0, "promote_rounds": 0} if fast else {}
    if guard:
        padded = {n: dataclasses.replace(iv, nbytes=iv.nbytes + 2 * guard) for n, iv in intervals.items()}
        layout = assign_offsets(padded, rules, **effort)
    else:
        layout = assign_offsets(intervals, rules, lower_bound=max(live, default=0), **effort)
    return MemoryPlan(layout, intervals, live, rules, guard)
