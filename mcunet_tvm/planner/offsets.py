"""Static arena layout: assign each tensor an offset so live tensors never overlap.

Several greedy strategies are tried (by size, by lifetime start, by
duration, by conflict degree, then seeded random orders) and the smallest
arena wins. Each places tensors one by one at the lowest aligned offset that
does not collide with an already placed tensor whose lifetime overlaps.

When the best greedy layout is above the live-bytes lower bound, a
branch-and-bound search looks for a smaller one. It enumerates layouts in
"dropped" form: every optimal layout can be pushed down until each tensor
sits at 0 or on the upper edge of the forbidden zone of a lower tensor, so
placing tensors in order of non-decreasing offset, each at such an edge, is
a complete search. It proves the optimum when it finishes within its node
budget (always for small graphs); otherwise it keeps the best layout found.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from .lifetimes import Interval, max_overlap

ALIGN = 16
RANDOM_RESTARTS = 200
#: search nodes the branch-and-bound may visit before it settles for the best layout so far
EXACT_NODE_BUDGET = 20_000


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Layout:
    """Byte offset of every tensor in the arena, and the arena size."""

    offsets: dict[str, int]
    arena_bytes: int
    strategy: str
    #: the arena is proved the smallest possible (it meets the lower bound, or the search was exhaustive)
    optimal: bool = False


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


#: rounds of :func:`_promote_top` after the greedy and random orders
PROMOTE_ROUNDS = 60


def _promote_top(best: Layout, order: list[Interval], rules, lower_bound: int, rounds: int) -> Layout:
    """Local search: place the tensors that touch the top of the arena earlier, keep what helps.

    First fit is sensitive to its order; the tensors ending at the arena's top
    are the ones it placed badly. Moving them to the front of the order (the
    rest keeps its relative order) and placing again is a cheap repair step.
    """
    offsets, arena = best.offsets, best.arena_bytes
    for _ in range(rounds):
        top = {iv.name for iv in order if offsets[iv.name] + _align(iv.nbytes) == arena}
        candidate = [iv for iv in order if iv.name in top] + [iv for iv in order if iv.name not in top]
        if candidate == order:
            break
        offsets, arena = _place(candidate, rules)
        order = candidate
        if arena < best.arena_bytes:
            best = Layout(offsets, arena, best.strategy + "+promote")
            if arena <= lower_bound:
                break
    return best


def _outputs_first(order: list[Interval], rules: dict[tuple[str, str], int]) -> list[Interval]:
    """``order`` with every output that may start below its input (a negative overlap delta) moved
    just before that input: first fit places the input first at offset 0, where the output,
    which must start lower, can no longer overlap it."""
    order = list(order)
    for (inp, out), delta in rules.items():
        names = [iv.name for iv in order]
        if delta < 0 and inp in names and out in names and names.index(out) > names.index(inp):
            iv = order.pop(names.index(out))
            order.insert(names.index(inp), iv)
    return order


def assign_offsets(
    intervals: dict[str, Interval],
    rules: dict[tuple[str, str], int] | None = None,
    lower_bound: int = 0,
    node_budget: int = EXACT_NODE_BUDGET,
    restarts: int = RANDOM_RESTARTS,
    promote_rounds: int = PROMOTE_ROUNDS,
) -> Layout:
    """The smallest layout found by the greedy strategies and the branch-and-bound search.

    ``rules`` maps (input, output) to the largest safe ``offset(output) -
    offset(input)`` for tensors that may overlap (see ``Step.overlap``); deltas
    are rounded down to the alignment so every placement stays safe. After the
    heuristic orders (each also with the outputs that overlap an input from
    below placed just before it, :func:`_outputs_first`), seeded random orders are tried, then ``promote_rounds``
    rounds of :func:`_promote_top` on the best of them, then the exact search
    (``node_budget`` nodes; 0 disables it). The search stops as soon as a layout
    reaches ``lower_bound``.
    """
    ivs = list(intervals.values())
    aligned = {k: (d // ALIGN) * ALIGN for k, d in (rules or {}).items()}
    best: Layout | None = None
    orders = [(name, order(ivs)) for name, order in STRATEGIES.items()]
    orders += [(name + "+overlap", _outputs_first(order, aligned)) for name, order in orders]
    rng = random.Random(0)  # seeded: plans are deterministic
    for i in range(restarts if len(ivs) > 2 else 0):
        perm = sorted(ivs, key=lambda v: (-v.nbytes, v.name))
        rng.shuffle(perm)
        orders.append((f"random{i}", perm))
    best_order: list[Interval] = []
    for name, order in orders:
        offsets, arena = _place(order, aligned)
        if best is None or arena < best.arena_bytes:
            best, best_order = Layout(offsets, arena, name), order
        if best.arena_bytes <= lower_bound:
            return dataclasses.replace(best, optimal=True)
    assert best is not None
    best = _promote_top(best, best_order, aligned, lower_bound, promote_rounds)
    if best.arena_bytes <= lower_bound:
        return dataclasses.replace(best, optimal=True)
    if node_budget <= 0 or any(d > 0 for d in aligned.values()):
        return best  # the dropped-form argument needs every overlap delta <= 0
    return _branch_and_bound(ivs, aligned, best, lower_bound, node_budget)


def _branch_and_bound(
    ivs: list[Interval], rules: dict[tuple[str, str], int], best: Layout, lower_bound: int, budget: int
) -> Layout:
    """Exhaustive search over dropped layouts, pruned by the best arena so far."""
    by_name = {iv.name: iv for iv in ivs}
    neighbours = {iv.name: [o.name for o in ivs if o is not iv and o.overlaps(iv)] for iv in ivs}
    sizes = {iv.name: _align(iv.nbytes) for iv in ivs}
    steps = sorted({s for iv in ivs for s in range(iv.first, iv.last + 1)})
    live_at = {s: [iv.name for iv in ivs if iv.first <= s <= iv.last] for s in steps}
    saved_at = dict.fromkeys(steps, 0)  # bytes overlap rules may save at a step (bound stays valid)
    for (src, dst), delta in rules.items():
        saved_at[by_name[src].last] += max_overlap(sizes[src], sizes[dst], delta)
    state = {"best": best.arena_bytes, "offsets": None, "nodes": 0, "exhausted": False}
    offsets: dict[str, int] = {}

    def bound(remaining: set[str], floor: int, top: int) -> int:
        need = max(sum(sizes[n] for n in live_at[s] if n in remaining) - saved_at[s] for s in steps)
        return max(top, floor + need)

    def search(remaining: set[str], floor: int, top: int) -> None:
        if not remaining:
            state["best"], state["offsets"] = top, dict(offsets)
            return
        state["nodes"] += 1
        if state["nodes"] > budget:
            state["exhausted"] = True
            return
        if bound(remaining, floor, top) >= state["best"] or state["best"] <= lower_bound:
            return
        choices = []
        for name in remaining:
            iv = by_name[name]
            blocked = [
                f for p in neighbours[name] if p in offsets
                if (f := _forbidden(iv, sizes[name], by_name[p], offsets[p], rules)) is not None
            ]
            for c in sorted({0, *(_align(hi) for _, hi in blocked)}):
                if c >= floor and all(not (lo < c < hi) for lo, hi in blocked):
                    choices.append((c, -sizes[name], name))
        for c, _, name in sorted(choices):
            if max(top, c + sizes[name]) >= state["best"]:
                continue
            offsets[name] = c
            search(remaining - {name}, c, max(top, c + sizes[name]))
            del offsets[name]
            if state["exhausted"]:
                return

    search({iv.name for iv in ivs}, 0, 0)
    proved = not state["exhausted"]
    if state["offsets"] is None:
        return dataclasses.replace(best, optimal=proved)
    return Layout(state["offsets"], state["best"], "branch-and-bound", optimal=proved)
