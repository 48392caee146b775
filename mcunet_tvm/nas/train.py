"""Training: the supernet (sandwich rule, optionally DistributedDataParallel), plain networks,
accuracy, and BatchNorm re-calibration of a subnet.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the supernet trains with
DistributedDataParallel on the gloo backend (CPU): every rank takes its share
of each batch, all ranks sample the same subnets (seeded by the step), and
gradients are averaged. Nothing else changes, so the same command runs on one
process or many.
"""

from __future__ import annotations

import math
import os
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from torch import nn

from .space import Arch, Space
from .supernet import Supernet

Progress = Callable[[int, int, str], None]
#: subnets trained per supernet step (sandwich rule: largest, smallest, two random)
SANDWICH = 4


@dataclass
class Compute:
    """Training work done: optimiser updates, forward/backward passes of one batch through one
    network (a supernet step makes ``SANDWICH`` of them), and the images they carried."""

    updates: int = 0
    forward_backward: int = 0
    images: int = 0

    def add(self, other: Compute) -> Compute:
        return Compute(self.updates + other.updates, self.forward_backward + other.forward_backward,
                       self.images + other.images)

    def to_json(self) -> dict:
        return asdict(self)


def distributed() -> tuple[int, int]:
    """(rank, world size); initialises the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def finish_distributed() -> None:
    """Wait for every rank, then leave the process group (the main rank goes on alone).

    A rank that exits while the gloo group is still up can abort at interpreter
    shutdown ("terminate called without an active exception"), failing torchrun.
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_worker() -> None:
    """End a non-main rank now: flush its output and skip interpreter teardown.

    Leaving the group is not enough on a loaded machine: C++ threads of the
    distributed runtime can still be joinable when static destructors run, and
    the rank aborts ("terminate called without an active exception"), which
    torchrun reports as a failure of the whole job. The worker has nothing left
    to write, so it exits with ``os._exit(0)``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and small shifts (padding by reflection)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, x.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def _batches(n: int, batch: int, epoch: int, seed: int, rank: int = 0, world: int = 1):
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(n, generator=gen)
    for i in range(0, n - batch + 1 if n >= batch else 1, batch):
        yield order[i : i + batch][rank::world]


def _lr(step: int, total: int, base: float) -> float:
    return 0.5 * base * (1 + math.cos(math.pi * step / max(total, 1)))


def train_supernet(
    net: Supernet,
    data: tuple[torch.Tensor, torch.Tensor],
    epochs: int,
    batch: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    progress: Progress | None = None,
    compute: Compute | None = None,
) -> Supernet:
    """Sandwich-rule training: each step the largest, the smallest and two random subnets.

    ``compute`` (if given) counts the work (global batches, as every rank takes a share).
    """
    rank, world = distributed()
    torch.manual_seed(seed)
    model: nn.Module = net
    if world > 1:
        for p in net.parameters():  # identical start on every rank
            dist.broadcast(p.data, 0)
        model = nn.parallel.DistributedDataParallel(net, find_unused_parameters=True)
    x, y = data
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    steps = epochs * max(1, len(x) // batch)
    gen = torch.Generator().manual_seed(seed + rank)
    space: Space = net.space
    step = 0
    net.train()
    for epoch in range(epochs):
        for idx in _batches(len(x), batch, epoch, seed, rank, world):
            rng = random.Random(seed * 7919 + step)  # the same subnets on every rank
            archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(SANDWICH - 2)]
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr)
            opt.zero_grad()
            xb = _augment(x[idx], gen)
            loss = 0.0
            for arch in archs:  # gradients of the four subnets are averaged
                part = F.cross_entropy(model(xb, arch), y[idx], label_smoothing=0.1) / len(archs)
                part.backward()
                loss += part.item()
            opt.step()
            step += 1
            if compute is not None:
                compute.updates += 1
                compute.forward_backward += len(archs)
                compute.images += len(archs) * len(idx) * world
            if progress:
                progress(step, steps, f"loss {loss:.3f}")
    return net


def train_network(
    net: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    epochs: int,
    batch: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    progress: Progress | None = None,
    compute: Compute | None = None,
) -> nn.Module:
    """Plain supervised training (the fine-tune of the winner, the MobileNetV2 baseline): SGD with
    Nesterov momentum, one cosine decay of the learning rate from ``lr`` over ``epochs``."""
    torch.manual_seed(seed)
    x, y = data
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    steps = epochs * max(1, len(x) // batch)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    net.train()
    for epoch in range(epochs):
        for idx in _batches(len(x), batch, epoch, seed):
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr)
            opt.zero_grad()
            loss = F.cross_entropy(net(_augment(x[idx], gen)), y[idx], label_smoothing=0.1)
            loss.backward()
            opt.step()
            step += 1
            if compute is not None:
                compute.updates += 1
                compute.forward_backward += 1
                compute.images += len(idx)
            if progress:
                progress(step, steps, f"loss {loss.item():.3f}")
    return net.eval()


@torch.no_grad()
def accuracy(forward: Callable[[torch.Tensor], torch.Tensor], data: tuple[torch.Tensor, torch.Tensor],
             batch: int = 256) -> float:
    x, y = data
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((forward(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    return correct / max(len(x), 1)


@torch.no_grad()
def recalibrate_bn(net: Supernet, arch: Arch, x: torch.Tensor, batches: int = 8, batch: int = 64) -> None:
    """Re-estimate BatchNorm statistics for ``arch`` (shared weights, its own activation statistics)."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for i in range(min(batches, max(1, len(x) // batch))):
        net(x[i * batch : (i + 1) * batch], arch)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    net.eval()


def evaluate_subnet(net: Supernet, arch: Arch, calib_x: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Accuracy of ``arch`` with the supernet's weights after BatchNorm re-calibration."""
    recalibrate_bn(net, arch, calib_x)
    return accuracy(lambda xb: net(xb, arch), val)
