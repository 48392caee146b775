"""The NAS's figures: MACs distribution per candidate space, accuracy vs peak SRAM and vs latency with the
Pareto front."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .search import Candidate, SpaceStats, pareto_front


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def flops_cdf(stats: list[SpaceStats], chosen, path: Path) -> None:
    """CDF of the MACs of the subnets that fit, one curve per (width, resolution) space."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in sorted(stats, key=lambda s: -s.score):
        m = np.sort(np.asarray(s.fitting_macs, dtype=float)) / 1e6
        if not len(m):
            continue
        label = f"w{s.space.width} r{s.space.resolution} ({s.fit_ratio:.0%} fit)"
        style = {"linewidth": 3, "color": "black"} if s.space == chosen else {"linewidth": 1, "alpha": 0.7}
        ax.step(m, np.arange(1, len(m) + 1) / len(m), where="post", label=label, **style)
    ax.set_xlabel("MMACs of subnets that fit the MCU")
    ax.set_ylabel("cumulative fraction")
    ax.set_title(f"search spaces (bold: chosen, w{chosen.width} r{chosen.resolution})")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def accuracy_vs_sram(evaluated: list[Candidate], winner: Candidate, baseline: tuple[int, float] | None,
                     budget: int, path: Path) -> None:
    """Supernet accuracy of every evaluated subnet against its planned arena; Pareto front marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = [(c.prediction.arena_bytes / 1024, c.accuracy) for c in evaluated]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.6, label="evaluated subnets")
    front = sorted(pareto_front(pts), key=lambda i: pts[i][0])
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r-o", markersize=4, label="Pareto front")
    ax.scatter([winner.prediction.arena_bytes / 1024], [winner.accuracy], marker="*", s=200, color="gold",
               edgecolor="black", label="chosen (supernet accuracy)", zorder=5)
    if baseline:
        ax.axvline(baseline[0] / 1024, color="gray", linestyle=":", label="MobileNetV2 baseline arena")
    ax.axvline(budget / 1024, color="black", linestyle="--", label="SRAM budget")
    ax.set_xlabel("planned peak SRAM (arena), kB")
    ax.set_ylabel("accuracy (supernet weights, BN re-calibrated)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def accuracy_vs_latency(evaluated: list[Candidate], winner: Candidate, max_cycles: int, mhz: float | None,
                        path: Path) -> None:
    """Supernet accuracy of every evaluated subnet against its modelled latency (ms at ``mhz``, else
    Mcycles); Pareto front and the limit marked."""
    plt = _plt()
    scale, unit = (mhz * 1e3, "ms") if mhz else (1e6, "Mcycles")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    timed = [c for c in evaluated if c.latency is not None]
    pts = [(c.latency.cycles / scale, c.accuracy) for c in timed]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.6, label="evaluated subnets")
    front = sorted(pareto_front(pts), key=lambda i: pts[i][0])
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r-o", markersize=4, label="Pareto front")
    if winner.latency is not None:
        ax.scatter([winner.latency.cycles / scale], [winner.accuracy], marker="*", s=200, color="gold",
                   edgecolor="black", label="chosen (supernet accuracy)", zorder=5)
    ax.axvline(max_cycles / scale, color="black", linestyle="--", label="latency limit")
    ax.set_xlabel(f"modelled latency, {unit}" + (f" at {mhz:g} MHz" if mhz else ""))
    ax.set_ylabel("accuracy (supernet weights, BN re-calibrated)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
