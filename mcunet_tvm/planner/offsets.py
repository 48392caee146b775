"""Static arena layout: assign each tensor an offset so live tensors never overlap.

Several greedy strategies are tried (by size, by lifetime start, by
duration, by conflict degree, then seeded random orders) and the smallest
arena wins. Each places tensors one by one
at the lowest aligned offset that does not collide with an already placed
tensor whose lifetime overlaps (best-fit in the gaps).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .lifetimes import Interval

ALIGN = 16
RANDOM_RESTARTS = 200


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Layout:
    """Byte offset of every tensor in the arena, and the arena size."""

    offsets: dict[str, int]
    arena_bytes: int
    strategy: str


def _forbidden(x: Interval, size: int, p: Interval, off_p: int, rules) -> tuple[int, int] | None:
    """Open interval of offsets at which ``x`` may not start, given placed tensor ``p``."""
    lo, hi = off_p - size, off_p + _align(p.nbytes)
    if (p.name, x.name) in rules:  # x is the output written over input p
        lo = max(lo, off_p + rules[(p.name, x.name)])
    elif (x.name, p.name) in rules:  # x is the input, p the output written over it
        hi = min(hi, off_p - rules[(x.name, p.name)])
    return (lo, hi) if lo < hi - 1 else None


def _place(order: list[Interval], rules: dict[tuple[str, str], int]) -> tuple[dict[str, int], int]:
    """First fit: each tensor at the lowest aligned offset clear of every live neighbour."""
    offsets: dict[str, int] = {}
    placed: list[Interval] = []
    arena = 0
    for iv in order:
        size = _align(iv.nbytes)
        blocked = [
            f for p in placed if p.overlaps(iv)
            if (f := _forbidden(iv, size, p, offsets[p.name], rules)) is not None
        ]
        candidates = sorted({0, *(max(0, _align(hi)) for _, hi in blocked)})
        offset = next(c for c in candidates if all(not (lo < c < hi) for lo, hi in blocked))
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


def assign_offsets(
    intervals: dict[str, Interval], rules: dict[tuple[str, str], int] | None = None, lower_bound: int = 0
) -> Layout:
    """The smallest layout over all strategies (ties: first strategy listed).

    ``rules`` maps (input, output) to the largest safe ``offset(output) -
    offset(input)`` for tensors that may overlap (see ``Step.overlap``); deltas
    are rounded down to the alignment so every placement stays safe. After the
    heuristic orders, seeded random orders are tried; the search stops early
    once a layout reaches ``lower_bound``.
    """
    ivs = list(intervals.values())
    aligned = {k: (d // ALIGN) * ALIGN for k, d in (rules or {}).items()}
    best: Layout | None = None
    orders = [(name, order(ivs)) for name, order in STRATEGIES.items()]
    rng = random.Random(0)  # seeded: plans are deterministic
    for i in range(RANDOM_RESTARTS if len(ivs) > 2 else 0):
        perm = sorted(ivs, key=lambda v: (-v.nbytes, v.name))
        rng.shuffle(perm)
        orders.append((f"random{i}", perm))
    for name, order in orders:
        offsets, arena = _place(order, aligned)
        if best is None or arena < best.arena_bytes:
            best = Layout(offsets, arena, name)
        if best.arena_bytes <= lower_bound:
            break  # optimal
    assert best is not None
    return best
