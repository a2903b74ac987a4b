"""torch.distributed set-up from the environment (torchrun or SLURM tasks).

A run given several processes trains data-parallel: every rank reads its slice of the same
global batch (:func:`rank_rows`), and the trainer wraps its model by the run's strategy
(:mod:`scaling.train.parallel`; gloo on CPU, NCCL on GPU). A rank waits at a collective for at
most the collective timeout (``engine.collective_timeout``) before the run fails, rather than
forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """Ranks from torchrun (RANK/WORLD_SIZE) or SLURM (SLURM_PROCID/SLURM_NTASKS); 1 process otherwise."""
    env = os.environ
    if "WORLD_SIZE" in env and int(env["WORLD_SIZE"]) > 1:
        return World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return World(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return World()


def init_process_group(world: World, timeout_s: float = 1800.0) -> None:
    """Join the process group when there are several ranks (MASTER_ADDR/PORT from the environment);
    a collective that waits more than ``timeout_s`` seconds fails."""
    if world.size == 1 or dist.is_initialized():
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timedelta(seconds=timeout_s))


def rank_rows(batch_size: int, world: World) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch of ``batch_size`` windows that ``world.rank`` trains.

    Ranks take contiguous slices in rank order whose sizes differ by at most one, so the ranks'
    rows joined in rank order are the global batch in order: which windows a step trains, and in
    which order the loss sums them, does not depend on the number of processes.
    """
    per, extra = divmod(batch_size, world.size)
    lo = world.rank * per + min(world.rank, extra)
    return lo, lo + per + (1 if world.rank < extra else 0)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def broadcast_flag(flag: bool, world: World, device: torch.device | str = "cpu") -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
