"""Memory planner invariants on random graphs: no live overlap, arena >= lower bound, determinism."""

from __future__ import annotations

import random

import pytest

from mcunet_tvm.planner import ALIGN, Graph, Step, plan_memory


def random_graph(seed: int) -> Graph:
    rng = random.Random(seed)
    g = Graph(inputs=("t0",))
    g.add_tensor("t0", rng.randint(1, 5000))
    live = ["t0"]
    for i in range(1, rng.randint(2, 30)):
        name = f"t{i}"
        g.add_tensor(name, rng.randint(1, 5000))
        k = 2 if len(live) > 1 and rng.random() < 0.3 else 1
        inputs = tuple(rng.sample(live[-4:], min(k, len(live[-4:]))))
        if rng.random() < 0.1 and k == 1:
            g.tensors[name] = g.tensors[inputs[0]].__class__(name, g.tensors[inputs[0]].nbytes)
            g.steps.append(Step(f"s{i}", inputs, name, alias_of=inputs[0]))
        elif rng.random() < 0.4:
            delta = rng.choice([0, -rng.randint(1, 3000), rng.randint(1, 100)])
            g.steps.append(Step(f"s{i}", inputs, name, overlap=((inputs[0], delta),)))
        else:
            g.steps.append(Step(f"s{i}", inputs, name))
        live.append(name)
    g.outputs = (live[-1],)
    return g


@pytest.mark.parametrize("seed", range(200))
def test_live_tensors_never_overlap(seed: int) -> None:
    g = random_graph(seed)
    plan = plan_memory(g)
    ivs = list(plan.intervals.values())
    for a in ivs:
        oa = plan.layout.offsets[a.name]
        assert oa % ALIGN == 0
        assert oa + a.nbytes <= plan.arena_bytes
        for b in ivs:
            if a is b or not a.overlaps(b):
                continue
            ob = plan.layout.offsets[b.name]
            if (a.name, b.name) in plan.rules:  # b may be written over dying input a
                assert ob - oa <= plan.rules[(a.name, b.name)] or ob >= oa + a.nbytes or ob + b.nbytes <= oa
                continue
            if (b.name, a.name) in plan.rules:
                continue  # checked from the other side
            assert oa + a.nbytes <= ob or ob + b.nbytes <= oa, (a, b)


@pytest.mark.parametrize("seed", range(50))
def test_arena_at_least_lower_bound_and_deterministic(seed: int) -> None:
    g = random_graph(seed)
    plan = plan_memory(g)
    assert plan.arena_bytes >= plan.lower_bound_bytes
    again = plan_memory(random_graph(seed))
    assert again.layout == plan.layout


def test_chain_reuses_memory() -> None:
    # a -> b -> c -> d with equal sizes: two buffers suffice
    g = Graph(inputs=("a",), outputs=("d",))
    for n in "abcd":
        g.add_tensor(n, 1024)
    g.steps = [Step("s1", ("a",), "b"), Step("s2", ("b",), "c"), Step("s3", ("c",), "d")]
    plan = plan_memory(g)
    assert plan.lower_bound_bytes == 2048
    assert plan.arena_bytes == 2048


def test_pointwise_overlap_shrinks_arena() -> None:
    # 32 pixels, 32 -> 16 channels: the output may start one output pixel (16 B) before the input
    g = Graph(inputs=("x",), outputs=("y",))
    g.add_tensor("x", 1024)
    g.add_tensor("y", 512)
    g.steps = [Step("s1", ("x",), "y", overlap=(("x", -16),))]
    plan = plan_memory(g)
    assert plan.arena_bytes == 1040
    assert plan.lower_bound_bytes == 1040
    assert plan.layout.offsets["y"] - plan.layout.offsets["x"] == -16


def test_overlap_ignored_when_input_lives_on() -> None:
    g = Graph(inputs=("x",), outputs=("z",))
    for n in "xyz":
        g.add_tensor(n, 256)
    g.steps = [Step("s1", ("x",), "y", overlap=(("x", 0),)), Step("s2", ("x", "y"), "z")]
    plan = plan_memory(g)
    assert not plan.rules
    assert plan.arena_bytes >= 512


def test_residual_keeps_skip_alive() -> None:
    g = Graph(inputs=("x",), outputs=("y",))
    for n, size in (("x", 100), ("a", 400), ("b", 100), ("y", 100)):
        g.add_tensor(n, size)
    g.steps = [Step("s1", ("x",), "a"), Step("s2", ("a",), "b"), Step("s3", ("x", "b"), "y")]
    plan = plan_memory(g)
    assert plan.intervals["x"].last == 2
    assert plan.live_bytes[1] == 100 + 400 + 100


def test_branch_order_lowers_peak() -> None:
    # x -> a1 (big) -> a2 (small); x -> b1 (big) -> b2 (small); y = a2 + b2
    # given order a1, b1, a2, b2 keeps both big tensors alive; the best order does not
    from mcunet_tvm.planner.schedule import best_order, peak_of

    g = Graph(inputs=("x",), outputs=("y",))
    for n, size in (("x", 100), ("a1", 1000), ("b1", 1000), ("a2", 10), ("b2", 10), ("y", 10)):
        g.add_tensor(n, size)
    g.steps = [Step("A1", ("x",), "a1"), Step("B1", ("x",), "b1"), Step("A2", ("a1",), "a2"),
               Step("B2", ("b1",), "b2"), Step("Y", ("a2", "b2"), "y")]
    order = best_order(g)
    assert peak_of(g, order) < peak_of(g, list(range(5)))
    assert peak_of(g, order) == 1110  # x + a1 + a2 while A2 runs; x + a2 + b1 while B1 runs
    position = {i: k for k, i in enumerate(order)}
    for i, step in enumerate(g.steps):  # a valid topological order
        for x in step.inputs:
            producer = next((j for j, s in enumerate(g.steps) if s.output == x), None)
            assert producer is None or position[producer] < position[i]


def test_chain_order_unchanged() -> None:
    from mcunet_tvm.planner.schedule import best_order

    g = Graph(inputs=("t0",), outputs=("t5",))
    for i in range(6):
        g.add_tensor(f"t{i}", 100 * (i + 1))
    g.steps = [Step(f"s{i}", (f"t{i}",), f"t{i + 1}") for i in range(5)]
    assert best_order(g) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(30))
def test_best_order_is_topological_and_never_worse(seed: int) -> None:
    from mcunet_tvm.planner.schedule import best_order, peak_of

    g = random_graph(seed)
    order = best_order(g)
    assert sorted(order) == list(range(len(g.steps)))
    assert peak_of(g, order) <= peak_of(g, list(range(len(g.steps))))
    done: set[str] = set(g.inputs)
    for i in order:
        assert all(x in done for x in g.steps[i].inputs)
        done.add(g.steps[i].output)


@pytest.mark.parametrize("seed", range(60))
def test_order_peak_is_the_planners_lower_bound(seed: int) -> None:
    """One lifetime model: the peak the scheduler computes for an order is the planner's live-bytes
    lower bound of the graph run in that order (aliases, scratch, overlaps of dying inputs)."""
    from mcunet_tvm.planner import live_bytes
    from mcunet_tvm.planner.schedule import best_order, peak_of

    g = random_graph(seed)
    rng = random.Random(seed)
    orders = [list(range(len(g.steps))), best_order(g)]
    for _ in range(3):  # random topological orders
        done, order = set(g.inputs), []
        while len(order) < len(g.steps):
            ready = [i for i, s in enumerate(g.steps) if i not in order and all(x in done for x in s.inputs)]
            i = rng.choice(ready)
            order.append(i)
            done.add(g.steps[i].output)
        orders.append(order)
    for order in orders:
        reordered = Graph(dict(g.tensors), [g.steps[i] for i in order], g.inputs, g.outputs)
        assert peak_of(g, order) == max(live_bytes(reordered)), order


def _brute_force_arena(ivs, rules) -> int:
    """Smallest arena over every aligned placement (a spec: no search tricks)."""
    import itertools

    sizes = [(iv.nbytes + ALIGN - 1) // ALIGN * ALIGN for iv in ivs]
    limit = sum(sizes)
    best = limit
    for offs in itertools.product(range(0, limit, ALIGN), repeat=len(ivs)):
        top = max(o + s for o, s in zip(offs, sizes, strict=True))
        if top >= best:
            continue
        ok = True
        for i, j in itertools.combinations(range(len(ivs)), 2):
            a, b = ivs[i], ivs[j]
            if not a.overlaps(b) or offs[i] + sizes[i] <= offs[j] or offs[j] + sizes[j] <= offs[i]:
                continue
            if (a.name, b.name) in rules and offs[j] - offs[i] <= rules[(a.name, b.name)]:
                continue
            if (b.name, a.name) in rules and offs[i] - offs[j] <= rules[(b.name, a.name)]:
                continue
            ok = False
            break
        if ok:
            best = top
    return best


@pytest.mark.parametrize("seed", range(40))
def test_branch_and_bound_is_exact_on_small_graphs(seed: int) -> None:
    from mcunet_tvm.planner import Interval
    from mcunet_tvm.planner.offsets import assign_offsets

    rng = random.Random(seed)
    n = rng.randint(3, 5)
    ivs = []
    for i in range(n):
        first = rng.randint(0, 4)
        ivs.append(Interval(f"t{i}", rng.randint(1, 3 * ALIGN), first, first + rng.randint(0, 2)))
    rules = {}
    if rng.random() < 0.5:  # an output written over its dying input (delta <= 0, as our kernels prove)
        a, b = rng.sample(ivs, 2)
        if a.last == b.first:
            rules[(a.name, b.name)] = -ALIGN * rng.randint(0, 1)
    layout = assign_offsets({iv.name: iv for iv in ivs}, rules, lower_bound=0, node_budget=10**6)
    assert layout.optimal
    assert layout.arena_bytes == _brute_force_arena(ivs, {k: d // ALIGN * ALIGN for k, d in rules.items()})


@pytest.mark.parametrize("seed", range(40))
def test_promoting_top_tensors_never_grows_the_arena(seed: int) -> None:
    """The local search after the greedy orders keeps a layout only when it is smaller."""
    from mcunet_tvm.planner.lifetimes import lifetimes, overlap_rules
    from mcunet_tvm.planner.offsets import assign_offsets

    g = random_graph(seed)
    intervals = lifetimes(g)
    rules = overlap_rules(g, intervals)
    plain = assign_offsets(intervals, rules, node_budget=0, restarts=3, promote_rounds=0)
    promoted = assign_offsets(intervals, rules, node_budget=0, restarts=3)
    assert promoted.arena_bytes <= plain.arena_bytes
    assert set(promoted.offsets) == set(intervals)


def test_greedy_places_an_output_below_the_input_it_overlaps() -> None:
    """A pointwise output may start below its dying input (negative delta): size-first first fit puts the
    input at 0 first and loses the overlap; the outputs-first variant of the order keeps it."""
    from mcunet_tvm.planner.lifetimes import Interval
    from mcunet_tvm.planner.offsets import STRATEGIES, _outputs_first, _place, assign_offsets

    x, y, z = Interval("x", 1000 * ALIGN, 0, 1), Interval("y", 200 * ALIGN, 1, 2), Interval("z", 50 * ALIGN, 1, 1)
    rules = {("x", "y"): -ALIGN}  # y (x's output) must start at least ALIGN bytes below x to overlap it
    by_size = STRATEGIES["size"]([x, y, z])
    assert [iv.name for iv in by_size] == ["x", "y", "z"]
    assert [iv.name for iv in _outputs_first(by_size, rules)] == ["y", "x", "z"]
    assert _place(by_size, rules)[1] == (1000 + 200 + 50) * ALIGN
    offsets, arena = _place(_outputs_first(by_size, rules), rules)
    assert arena == (1000 + 1 + 50) * ALIGN and offsets["y"] < offsets["x"] < offsets["y"] + y.nbytes
    layout = assign_offsets({iv.name: iv for iv in (x, y, z)}, rules, node_budget=0, restarts=0, promote_rounds=0)
    assert layout.arena_bytes == arena


# ---- views at byte offsets (slices, concatenation parts: planner/graph.py) ---------------------

def random_view_graph(seed: int) -> Graph:
    """A random graph with kernels (some with overlap deltas), slice views of live tensors at random
    offsets, and concatenations whose parts are earlier kernel outputs written straight into them."""
    rng = random.Random(seed)
    g = Graph(inputs=("t0",))
    g.add_tensor("t0", rng.randint(1, 300) * 8)
    live, own = ["t0"], []  # own: kernel outputs with their own storage, not yet a concatenation's part
    for i in range(1, rng.randint(3, 25)):
        name = f"t{i}"
        kind = rng.random()
        if kind < 0.25:  # a slice: a view at an offset of a live tensor
            src = rng.choice(live[-4:])
            size = g.tensors[src].nbytes
            n = rng.randint(1, size)
            g.add_tensor(name, n)
            g.steps.append(Step(f"v{i}", (src,), name, alias_of=src, alias_offset=rng.randint(0, size - n)))
        elif kind < 0.45 and len(own) >= 2:  # a concatenation of parts written into it
            parts = rng.sample(own, rng.randint(2, min(3, len(own))))
            offsets, total = [], 0
            for p in parts:
                offsets.append(total)
                total += g.tensors[p].nbytes
            own = [o for o in own if o not in parts]
            g.add_tensor(name, total)
            g.steps.append(Step(f"c{i}", tuple(parts), name, parts=tuple(zip(parts, offsets, strict=True))))
        else:  # a kernel, maybe writing over a dying input
            inputs = tuple(rng.sample(live[-4:], min(rng.choice([1, 1, 2]), len(live[-4:]))))
            g.add_tensor(name, rng.randint(1, 300) * 8)
            overlap = ((inputs[0], rng.choice([0, -rng.randint(1, 1000), rng.randint(1, 64)])),) \
                if rng.random() < 0.4 else ()
            scratch = None
            if rng.random() < 0.2:
                scratch = f"{name}_scratch"
                g.add_tensor(scratch, rng.randint(1, 200))
            g.steps.append(Step(f"k{i}", inputs, name, overlap=overlap, scratch=scratch))
            own.append(name)
        live.append(name)
    g.outputs = tuple(rng.sample(live[1:], min(2, len(live) - 1)))
    return g


def simulate(g: Graph, plan) -> None:
    """Run ``g`` on a byte-level arena: every byte a kernel writes is labelled with (storage, offset in it);
    every read and every model output at the end must find its own labels, and a kernel's output may
    share bytes with an input only where its overlap delta allows (views and concatenations move nothing)."""
    place = g.placement()
    arena: dict[int, tuple[str, int]] = {}

    def span(name: str) -> range:
        start = plan.offset_of(g, name)
        return range(start, start + g.tensors[name].nbytes)

    def write(name: str) -> None:
        root, off = place[name]
        for j, b in enumerate(span(name)):
            arena[b] = (root, off + j)

    def check(name: str, where: str) -> None:
        root, off = place[name]
        bad = [b for j, b in enumerate(span(name)) if arena.get(b) != (root, off + j)]
        assert not bad, f"{where}: {name} lost {len(bad)} bytes"

    for x in g.inputs:
        write(x)
    for i, s in enumerate(g.steps):
        if s.alias_of or s.parts:
            for x in s.inputs:
                check(x, f"step {i}")
            continue
        if s.scratch:
            write(s.scratch)
        for x in s.inputs:
            check(x, f"step {i}")
        deltas = dict(s.overlap)
        out = set(span(s.output))
        for x in s.inputs:
            if out & set(span(x)):
                assert x in deltas and plan.offset_of(g, s.output) - plan.offset_of(g, x) <= deltas[x], (i, x)
        write(s.output)
        if s.scratch:
            check(s.scratch, f"step {i} (scratch)")
    for x in g.outputs:
        check(x, "end")


@pytest.mark.parametrize("seed", range(150))
def test_views_keep_every_live_byte(seed: int) -> None:
    """No two live storages overlap (but where an overlap delta proves it safe), and every view reads
    the bytes written into its storage: simulated byte by byte, in the given and the best order."""
    from mcunet_tvm.planner.schedule import best_order

    g = random_view_graph(seed)
    simulate(g, plan_memory(g))
    order = best_order(g)
    reordered = Graph(dict(g.tensors), [g.steps[i] for i in order], g.inputs, g.outputs)
    simulate(reordered, plan_memory(reordered))


@pytest.mark.parametrize("seed", range(60))
def test_view_bytes_inside_storage(seed: int) -> None:
    g = random_view_graph(seed)
    plan = plan_memory(g)
    for name, (root, offset) in g.placement().items():
        assert 0 <= offset and offset + g.tensors[name].nbytes <= g.tensors[root].nbytes
        if root in plan.layout.offsets:
            assert plan.offset_of(g, name) == plan.layout.offsets[root] + offset
            assert plan.offset_of(g, name) + g.tensors[name].nbytes <= plan.arena_bytes


@pytest.mark.parametrize("seed", range(40))
def test_view_order_peak_is_the_planners_lower_bound(seed: int) -> None:
    """The scheduler and the planner count views alike: a storage from its first writer to its last reader."""
    from mcunet_tvm.planner import live_bytes
    from mcunet_tvm.planner.schedule import best_order, peak_of

    g = random_view_graph(seed)
    for order in (list(range(len(g.steps))), best_order(g)):
        reordered = Graph(dict(g.tensors), [g.steps[i] for i in order], g.inputs, g.outputs)
        assert peak_of(g, order) == max(live_bytes(reordered)), order


def test_concatenation_view_needs_no_copy_bytes() -> None:
    """Two 256 B producers written into their 512 B concatenation: the peak is the concatenation and the
    producers' input, not inputs plus a copy."""
    g = Graph(inputs=("x",), outputs=("t",))
    for name, n in (("x", 256), ("a", 256), ("b", 256), ("t", 512)):
        g.add_tensor(name, n)
    g.steps = [Step("ka", ("x",), "a"), Step("kb", ("x",), "b"),
               Step("cat", ("a", "b"), "t", parts=(("a", 0), ("b", 256)))]
    plan = plan_memory(g)
    assert plan.arena_bytes == 768 and plan.offset_of(g, "b") == plan.offset_of(g, "t") + 256
    simulate(g, plan)


def test_placement_rejects_inconsistent_views() -> None:
    g = Graph(inputs=("x",), outputs=("t",))
    for name, n in (("x", 64), ("a", 32), ("t", 64), ("u", 64)):
        g.add_tensor(name, n)
    g.steps = [Step("ka", ("x",), "a"), Step("c1", ("a", "x"), "t", parts=(("a", 48),))]
    with pytest.raises(ValueError, match="outside"):
        g.placement()
    g.steps = [Step("ka", ("x",), "a"), Step("c1", ("a",), "t", parts=(("a", 0),)),
               Step("c2", ("a",), "u", parts=(("a", 32),))]
    with pytest.raises(ValueError, match="view of both"):
        g.placement()
