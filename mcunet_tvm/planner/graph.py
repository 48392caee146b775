"""The light graph the memory planner works on.

Both the compiler (from the integer Relax module) and the architecture
search (from an architecture description) produce this description, so
there is one memory model: the arena the search predicts is the arena the
build allocates.

Views. A tensor may live inside another tensor's storage instead of its own:

- ``Step.alias_of`` (with ``Step.alias_offset``): the step's output is the bytes of
  ``alias_of`` from that byte offset on (a reshape or a contiguous slice: a view; an
  in-place kernel or a patch ``Insert``: the output overwrites that storage);
- ``Step.parts``: inputs of the step that live inside its output at a byte offset (a
  concatenation whose inputs are contiguous blocks of it: their producers write straight
  into their block, the step itself moves nothing).

:meth:`Graph.placement` follows these edges to each tensor's storage (a tensor that is
no view is its own) and the byte offset in it. Limits, checked there: a tensor is a view
of at most one tensor, and a view's bytes lie inside its storage. A storage lives from its
first writer to its last reader over all its views (:mod:`.lifetimes`); its bytes are
placed once and every view is addressed at ``offset(storage) + offset(view)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tensor:
    """An activation buffer: ``nbytes`` of int8 data living in the arena."""

    name: str
    nbytes: int


@dataclass(frozen=True)
class Step:
    """One kernel call: reads ``inputs``, writes ``output``.

    ``alias_of`` marks a step whose output shares its input's storage: a
    reshape (a view, no data moves), a contiguous slice (a view at byte offset
    ``alias_offset`` of its input) or an in-place kernel (the output overwrites
    the input, which nothing reads afterwards).

    ``parts`` lists ``(input, byte offset)`` for inputs that live inside the
    output's storage (a concatenation view: the output is assembled where its
    inputs were written).

    ``overlap`` lists ``(input, max_delta)`` pairs proved safe by the kernel's
    loop order: if ``input`` dies at this step, the output may be placed at
    ``offset(output) - offset(input) <= max_delta`` even though their bytes
    overlap, because every input byte is read before an output byte lands on it.

    ``scratch`` names a tensor the kernel uses as working memory: it is live
    during this step only.
    """

    name: str
    inputs: tuple[str, ...]
    output: str
    alias_of: str | None = None
    overlap: tuple[tuple[str, int], ...] = ()
    scratch: str | None = None
    alias_offset: int = 0
    parts: tuple[tuple[str, int], ...] = ()


@dataclass
class Graph:
    """Activation tensors and the steps that produce and consume them, in order."""

    tensors: dict[str, Tensor] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def add_tensor(self, name: str, nbytes: int) -> None:
        self.tensors[name] = Tensor(name, int(nbytes))

    def storage_of(self, name: str) -> str:
        """The tensor whose storage ``name`` uses (follows views and aliases)."""
        return self.storage_map().get(name, name)

    def storage_map(self) -> dict[str, str]:
        """Every tensor -> the tensor whose storage it uses (one pass; for loops over many tensors)."""
        return {name: root for name, (root, _) in self.placement().items()}

    def placement(self) -> dict[str, tuple[str, int]]:
        """Every tensor -> (the tensor whose storage it uses, its byte offset there).

        Raises ``ValueError`` when a tensor is a view of two tensors, the views form a
        cycle, or a view's bytes reach outside its storage.
        """
        edges: dict[str, tuple[str, int]] = {}

        def edge(view: str, base: str, offset: int) -> None:
            if view in edges and edges[view] != (base, offset):
                raise ValueError(f"tensor {view} is a view of both {edges[view][0]} and {base}")
            edges[view] = (base, offset)

        for s in self.steps:
            if s.alias_of:
                edge(s.output, s.alias_of, s.alias_offset)
            for name, offset in s.parts:
                edge(name, s.output, offset)
        out: dict[str, tuple[str, int]] = {}
        for name in self.tensors:
            root, offset, seen = name, 0, {name}
            while root in edges:
                root, step = edges[root]
                offset += step
                if root in seen:
                    raise ValueError(f"views of tensor {name} form a cycle")
                seen.add(root)
            if offset and (offset < 0 or offset + self.tensors[name].nbytes > self.tensors[root].nbytes):
                raise ValueError(f"view {name} ({self.tensors[name].nbytes} B at offset {offset}) reaches outside "
                                 f"its storage {root} ({self.tensors[root].nbytes} B)")
            out[name] = (root, offset)
        return out

    def storage_overlaps(self, placement: dict[str, tuple[str, int]] | None = None
                         ) -> list[tuple[tuple[str, str, int], ...]]:
        """Per step, its ``overlap`` pairs between storages: ``(input storage, output storage, max delta)``.

        The kernel's delta between the tensors, shifted by their offsets in their storages
        (``offset(out storage) - offset(in storage) <= delta + offset(input) - offset(output)``).
        An input storage the step reads through several tensors gets a pair only when each of them
        has a delta (the smallest shifted one): bytes of it read without one may not be overwritten.
        """
        place = placement or self.placement()
        result = []
        for s in self.steps:
            out, out_off = place.get(s.output, (s.output, 0))
            deltas = dict(s.overlap)
            pairs: dict[str, int] = {}
            unsafe: set[str] = set()  # read through a tensor without a delta
            for name in s.inputs:
                base, off = place.get(name, (name, 0))
                if base == out:
                    continue
                if name not in deltas:
                    unsafe.add(base)
                    continue
                shifted = deltas[name] + off - out_off
                pairs[base] = min(pairs.get(base, shifted), shifted)
            result.append(tuple((base, out, d) for base, d in pairs.items() if base not in unsafe))
        return result


def resolve_aliases(names: Iterable[str], aliases: Mapping[str, str]) -> dict[str, str]:
    """Every one of ``names`` -> the tensor whose storage it uses, following ``aliases`` (tensor -> the
    tensor it is a view of or writes over) to a tensor that has its own storage."""
    base = {}
    for name in names:
        root = name
        while root in aliases:
            root = aliases[root]
        base[name] = root
    return base
