"""TinyNAS's two searches, both constrained by the compiler's own memory model (``light.py``).

1. Search-space optimisation: for every (width, resolution) space, sample
   architectures, keep those whose planned arena and flash fit the MCU, and
   pick the space whose fitting models have the most computation (the highest
   mean MACs, read off their cumulative distribution): under a memory limit
   more MACs that fit means more capacity, hence accuracy.
2. Evolutionary search in the chosen space: a population of fitting subnets,
   mutated and crossed over; fitness is accuracy with the supernet's weights
   after BatchNorm re-calibration; infeasible children are rejected by the
   planner before any evaluation.

Latency, TinyNAS's second resource, is optional (:class:`LatencyLimit`): a subnet fits when its
modelled cycles (:mod:`.latency`: every layer measured once on the core and cached) are within the
limit too. Layers are measured in batches: every space's samples at once, and the space's
covering set (:meth:`~.space.Space.covering`) before the evolution starts.

The baseline is MobileNetV2 on the same terms: the search's width grid and
resolution list, its last layer scaled with the width as the search space's
(``scale_last``; the paper's fixed 1280 channels as a variant), kept when the
exact planner says it fits; ``cli`` picks among those by validation accuracy.
Every plan takes the memory forms the compiled network will (``patch``: a
:class:`~.light.PatchPolicy`, patch-based inference where layer by layer does not
fit), so the search explores the resolutions patches make fit, and the baseline is
planned with the same forms.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import BudgetError
from ..frontend.zoo import mbv2_config
from .latency import Latency, LatencyModel
from .light import PatchPolicy, Prediction, predict
from .mcu import Mcu
from .space import WIDTHS, Arch, Space, to_netconfig


@dataclass(frozen=True)
class MobileNetV2:
    """One scaled MobileNetV2 of the baseline grid; ``width`` is the multiplier it was built with."""

    width: float
    resolution: int
    scale_last: bool
    config: dict = field(compare=False, repr=False)
    prediction: Prediction = field(compare=False)

    @property
    def label(self) -> str:
        return f"mbv2-w{self.width}-r{self.resolution}" + ("" if self.scale_last else "-last1280")

    def to_json(self) -> dict:
        p = self.prediction
        return {"width": self.width, "resolution": self.resolution,
                "last_channels": self.config["feature_mix_layer"]["out_channels"], "macs": p.macs,
                "params": p.params, "arena_bytes": p.arena_bytes, "flash_bytes": p.flash_bytes,
                "patch": p.patch_json()}


@dataclass
class SpaceStats:
    """Samples of one space: MACs of each, and which fit."""

    space: Space
    macs: list[int]
    fits: list[bool]
    smallest_arena: int
    smallest_flash: int

    @property
    def fit_ratio(self) -> float:
        return sum(self.fits) / max(len(self.fits), 1)

    @property
    def fitting_macs(self) -> list[int]:
        return [m for m, f in zip(self.macs, self.fits, strict=True) if f]

    @property
    def score(self) -> float:
        fitting = self.fitting_macs
        return float(np.mean(fitting)) if fitting else 0.0


@dataclass(frozen=True)
class LatencyLimit:
    """At most ``max_cycles`` modelled cycles per inference, costed by ``model``."""

    model: LatencyModel
    max_cycles: int

    def latency(self, p: Prediction) -> Latency:
        return self.model.latency(p.program)

    def allows(self, p: Prediction) -> bool:
        return self.latency(p).cycles <= self.max_cycles

    def prepare(self, predictions: list[Prediction]) -> None:
        """Measure the layers of ``predictions`` the cache lacks, in one go."""
        self.model.prepare([p.program for p in predictions])


@dataclass
class Candidate:
    """An evaluated subnet."""

    arch: Arch
    prediction: Prediction
    accuracy: float = 0.0
    latency: Latency | None = None


@dataclass
class SearchLog:
    evaluated: list[Candidate] = field(default_factory=list)


def fits(p: Prediction, mcu: Mcu, limit: LatencyLimit | None = None) -> bool:
    """Whether ``p`` fits the MCU's memories (and, with ``limit``, its latency: memory checked first)."""
    memory = p.arena_bytes <= mcu.budget_sram and p.flash_bytes <= mcu.budget_flash
    return memory and (limit is None or limit.allows(p))


def arch_prediction(arch: Arch, classes: int, isa: str, fast: bool = True, patch: PatchPolicy | None = None
                    ) -> Prediction:
    """The compiled arena/flash of ``arch`` on a core with kernels ``isa`` ("plain", "dsp" or "mve"), with
    patches where ``patch`` says (:func:`~.light.predict_program`)."""
    return predict(to_netconfig(arch, classes), dsp=isa != "plain", fast=fast, mve=isa == "mve", patch=patch)


def optimise_space(
    mcu: Mcu,
    resolutions: list[int],
    classes: int,
    samples: int,
    isa: str,
    seed: int = 0,
    widths: tuple[float, ...] = WIDTHS,
    progress: Callable[[int, int, str], None] | None = None,
    limit: LatencyLimit | None = None,
    patch: PatchPolicy | None = None,
) -> tuple[Space, list[SpaceStats]]:
    """The space whose fitting subnets have the highest mean MACs; raises if none fits anywhere."""
    stats: list[SpaceStats] = []
    spaces = [Space(w, r) for w in widths for r in resolutions]
    done = 0
    fastest: int | None = None
    for space in spaces:
        rng = random.Random(f"{seed}:{space.width}:{space.resolution}")
        small = arch_prediction(space.smallest(), classes, isa, patch=patch)
        preds = [arch_prediction(space.sample(rng), classes, isa, patch=patch) for _ in range(samples)]
        if limit is not None:
            limit.prepare([small] + [p for p in preds if fits(p, mcu)])
            cycles = limit.latency(small).cycles
            fastest = cycles if fastest is None else min(fastest, cycles)
        ok = [fits(p, mcu, limit) for p in preds]
        stats.append(SpaceStats(space, [p.macs for p in preds], ok, small.arena_bytes, small.flash_bytes))
        done += 1
        if progress:
            progress(done, len(spaces), f"w{space.width} r{space.resolution}: {sum(ok)}/{samples} fit")
    best = max(stats, key=lambda s: (s.score, s.fit_ratio))
    if best.score == 0.0:
        arena = min(s.smallest_arena for s in stats)
        flash = min(s.smallest_flash for s in stats)
        latency = "" if limit is None else (f" within {limit.max_cycles:,} modelled cycles (the fastest smallest "
                                            f"network takes {fastest:,})")
        raise BudgetError(
            f"no network of the search space fits {mcu.budget_sram:,} B of SRAM and {mcu.budget_flash:,} B of flash "
            f"(after the reserves){latency}; the smallest achievable arena is {arena:,} B and the smallest flash "
            f"{flash:,} B (width {min(widths)}, resolution {min(resolutions)})",
            where=f"--mcu {mcu.name}", hint="choose a larger MCU, smaller reserves, lower resolutions"
                                            + ("" if limit is None else " or a looser latency limit"),
        )
    return best.space, stats


def evolve(
    space: Space,
    mcu: Mcu,
    classes: int,
    isa: str,
    fitness: Callable[[list[Arch]], list[float]],
    population: int,
    generations: int,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    limit: LatencyLimit | None = None,
    patch: PatchPolicy | None = None,
) -> tuple[Candidate, SearchLog]:
    """Evolutionary search for the most accurate fitting subnet (parents: the best quarter).

    ``fitness`` scores a batch of architectures at once, so the batch can be
    spread over workers (see ``cli._fitness``).
    """
    rng = random.Random(seed)
    log = SearchLog()
    seen: dict[Arch, Candidate] = {}
    if limit is not None:  # nearly every layer the evolution will meet, measured in one go
        limit.prepare([arch_prediction(a, classes, isa) for a in space.covering()])

    def feasible(arch: Arch) -> Prediction | None:
        p = arch_prediction(arch, classes, isa, patch=patch)
        return p if fits(p, mcu, limit) else None

    def evaluate(batch: list[tuple[Arch, Prediction]]) -> list[Candidate]:
        scores = fitness([a for a, _ in batch])
        for (arch, p), acc in zip(batch, scores, strict=True):
            seen[arch] = Candidate(arch, p, acc, limit.latency(p) if limit else None)
            log.evaluated.append(seen[arch])
        return [seen[a] for a, _ in batch]

    def new_batch(n: int, make: Callable[[], Arch]) -> list[tuple[Arch, Prediction]]:
        batch: list[tuple[Arch, Prediction]] = []
        tries = 0
        while len(batch) < n and tries < n * 200 + 200:
            tries += 1
            arch = make()
            if arch in seen or any(a == arch for a, _ in batch):
                continue
            if p := feasible(arch):
                batch.append((arch, p))
        return batch

    pop = evaluate(new_batch(population, lambda: space.sample(rng).canonical()))
    if not pop:
        raise BudgetError(f"no subnet of {space} fits the budget", where=f"--mcu {mcu.name}")
    for gen in range(generations):
        pop.sort(key=lambda c: -c.accuracy)
        parents = pop[: max(2, population // 4)]

        def child(parents: list[Candidate] = parents) -> Arch:
            a = rng.choice(parents).arch
            return a.mutate(rng) if rng.random() < 0.5 else a.crossover(rng.choice(parents).arch, rng)

        pop = parents + evaluate(new_batch(population - len(parents), child))
        if progress:
            best = max(pop, key=lambda c: c.accuracy)
            progress(gen + 1, generations, f"best {best.accuracy:.3f}")
    return max(pop, key=lambda c: (c.accuracy, c.prediction.macs)), log


def mobilenetv2_grid(mcu: Mcu, widths: tuple[float, ...], resolutions: list[int], classes: int, isa: str,
                     scale_last: bool = True, patch: PatchPolicy | None = None,
                     limit: LatencyLimit | None = None) -> list[MobileNetV2]:
    """Every scaled MobileNetV2 of ``widths`` x ``resolutions`` that fits, judged by the exact planner (with
    the search's memory forms, ``patch``, and with ``limit`` the same latency model as the search)."""
    grid = []
    for w in widths:
        for r in resolutions:
            config = mbv2_config(w, r, classes, scale_last=scale_last)
            p = predict(config, dsp=isa != "plain", fast=False, mve=isa == "mve", patch=patch)
            if fits(p, mcu, limit):
                grid.append(MobileNetV2(w, r, scale_last, config, p))
    return grid


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, accuracy) not dominated by any other (lower cost, higher accuracy)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_acc = [], -1.0
    for i in order:
        if points[i][1] > best_acc:
            front.append(i)
            best_acc = points[i][1]
    return front
