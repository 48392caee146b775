"""The light graph the memory planner works on.

Both the compiler (from the integer Relax module) and the architecture
search (from an architecture description) produce this description, so
there is one memory model: the arena the search predicts is the arena the
build allocates.
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
    reshape (a view, no data moves) or an in-place kernel (the output
    overwrites the input, which nothing reads afterwards).

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
        """The tensor whose storage ``name`` uses (follows reshape aliases)."""
        return self.storage_map().get(name, name)

    def storage_map(self) -> dict[str, str]:
        """Every tensor -> the tensor whose storage it uses (one pass; for loops over many tensors)."""
        return resolve_aliases(self.tensors, {s.output: s.alias_of for s in self.steps if s.alias_of})


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
