"""Static arena layout: assign each tensor an offset so live tensors never overlap.

Several greedy strategies are tried (by size, by lifetime start, by
conflict degree) and the smallest arena wins. Each places tensors one by one
at the lowest aligned offset that does not collide with an already placed
tensor whose lifetime overlaps (best-fit in the gaps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .lifetimes import Interval

ALIGN = 16


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Layout:
    """Byte offset of every tensor in the arena, and the arena size."""

    offsets: dict[str, int]
    arena_bytes: int
    strategy: str


def _place(order: list[Interval]) -> tuple[dict[str, int], int]:
    offsets: dict[str, int] = {}
    placed: list[Interval] = []
    arena = 0
    for iv in order:
        busy = sorted(
            (offsets[p.name], offsets[p.name] + _align(p.nbytes)) for p in placed if p.overlaps(iv)
        )
        size = _align(iv.nbytes)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        offset = best if best is not None else cursor
        offsets[iv.name] = offset
        placed.append(iv)
        arena = max(arena, offset + size)
    return offsets, arena


def _conflicts(iv: Interval, all_ivs: list[Interval]) -> int:
    return sum(o.nbytes for o in all_ivs if o is not iv and o.overlaps(iv))


STRATEGIES: dict[str, Callable[[list[Interval]], list[Interval]]] = {
    "size": lambda ivs: sorted(ivs, key=lambda v: (-v.nbytes, v.first, v.name)),
    "start": lambda ivs: sorted(ivs, key=lambda v: (v.first, -v.nbytes, v.name)),
    "duration": lambda ivs: sorted(ivs, key=lambda v: (-(v.last - v.first), -v.nbytes, v.name)),
    "conflict": lambda ivs: sorted(ivs, key=lambda v: (-_conflicts(v, ivs), -v.nbytes, v.name)),
}


def assign_offsets(intervals: dict[str, Interval]) -> Layout:
    """The smallest layout over all strategies (ties: first strategy listed)."""
    ivs = list(intervals.values())
    best: Layout | None = None
    for name, order in STRATEGIES.items():
        offsets, arena = _place(order(ivs))
        if best is None or arena < best.arena_bytes:
            best = Layout(offsets, arena, name)
    assert best is not None
    return best
