"""Data-parallel training over processes started by ``torchrun``: one agent copy per process, gradients averaged.

``torchrun --standalone --nproc_per_node N -m wam.cli.main train ...`` starts N copies of the same run. Each process
(rank) steps its own environments (seeded apart) into its own replay and samples its own batches; every optimiser
step averages the gradients over ranks before clipping (the agent calls :meth:`~wam.agents.base.Agent.sync_gradients`
between ``backward`` and its clip/step), so all copies hold the same weights, as with ``DistributedDataParallel``.
Floating-point buffers (e.g. DreamerV3's return percentiles) are averaged after each update.

Counting: env steps, the budget, evaluation, logging and checkpoint schedules are *global* (summed over ranks every
step), so ``--steps 100000`` on 4 ranks is 25k steps per rank. The train ratio is kept: each rank's update uses its own
batch, the global batch is N times larger, and there are N times fewer updates per env step.

Files: rank 0 writes the run folder as a single process does (config, logs, evaluation, checkpoint, ``final/``);
rank r > 0 writes its logs and its checkpoint (the same weights, its own replay) under ``<run>/rank<r>/``, so
``wam train --resume RUN`` under the same ``torchrun`` command continues every rank. Only rank 0 evaluates.

The process group uses NCCL when every rank has a CUDA device and Gloo otherwise (CPU runs, tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

#: Seed distance between ranks: rank r's environments and replay use ``seed + r * RANK_SEED_STRIDE``.
RANK_SEED_STRIDE = 1_000_003

#: How long a rank waits in a collective (rank 0 evaluating, checkpointing) before the group gives up.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in a data-parallel run (``world_size == 1``: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(
                f"invalid process placement rank={self.rank} world_size={self.world_size} "
                f"local_rank={self.local_rank}: start data-parallel runs with torchrun, which sets them"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Distributed":
        """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as ``torchrun`` sets them (absent: a single process)."""
        env = os.environ if environ is None else environ
        try:
            return cls(
                rank=int(env.get("RANK", 0)),
                world_size=int(env.get("WORLD_SIZE", 1)),
                local_rank=int(env.get("LOCAL_RANK", 0)),
            )
        except ValueError as e:
            raise ValueError(
                f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({e}); start runs with torchrun"
            ) from None

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that evaluates and writes the run folder's top level)."""
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """The device of this rank: ``cuda`` becomes ``cuda:<local_rank>``, anything else is kept."""
        if self.enabled and requested.type == "cuda" and requested.index is None:
            return torch.device("cuda", self.local_rank)
        return requested

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, else Gloo); a no-op for one process or when already joined."""
        if not self.enabled or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=self.rank,
            world_size=self.world_size,
            timeout=COLLECTIVE_TIMEOUT,
        )

    def close(self) -> None:
        """Leave the process group."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

    def sum_ints(self, values: Iterable[int], device: torch.device) -> list[int]:
        """Element-wise sum of small integer vectors over ranks (the values themselves for one process)."""
        values = [int(v) for v in values]
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.int64, device=device)
        dist.all_reduce(t)
        return [int(v) for v in t.tolist()]

    def _min_max(self, value: torch.Tensor) -> tuple[float, float]:
        """The smallest and largest of a scalar over ranks, in one all-reduce."""
        spread = torch.stack([-value, value])
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        return -float(spread[0]), float(spread[1])

    def same_everywhere(self, value: int, device: torch.device) -> bool:
        """Whether every rank passed the same integer."""
        if not self.enabled:
            return True
        low, high = self._min_max(torch.tensor(value, dtype=torch.int64, device=device))
        return low == high

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over ranks, in one flat all-reduce (parameters without one are skipped,
        which is the same set on every rank as long as every rank runs the same losses)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_buffers(self, module: nn.Module) -> None:
        """Average the module's floating-point buffers over ranks (running statistics fed by each rank's data)."""
        if not self.enabled:
            return
        for buf in module.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf /= self.world_size

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if not self.enabled:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)

    def check_in_sync(self, module: nn.Module) -> None:
        """Raise if the ranks' parameters differ (an agent whose ``update`` does not call ``sync_gradients``)."""
        if not self.enabled:
            return
        with torch.no_grad():
            low, high = self._min_max(torch.stack([p.double().sum() for p in module.parameters()]).sum())
        if low != high:
            raise RuntimeError(
                f"the data-parallel copies of {type(module).__name__} have drifted apart (parameter "
                f"sums from {low!r} to {high!r}): its update() must call self.sync_gradients() "
                "between backward() and the optimiser step (see docs/extending.md)"
            )
