"""The optimizer and the parallel wrapping of a model: the ``zero1`` strategy of :mod:`scaling.runs.costs`.

One process: the model and AdamW. Several (torch.distributed ranks, see
:mod:`scaling.train.distributed`): the model wrapped in ``DistributedDataParallel``, which
broadcasts rank 0's weights at start (every rank starts from the same model) and all-reduces
bucketed gradients while the backward pass of a step's last micro-batch still runs; gradients are
views into DDP's buckets, so there is no second copy of them; and AdamW's moments sharded over the
ranks (ZeRO-1, ``ZeroRedundancyOptimizer``): each rank keeps the moments of its share only.

AdamW: two parameter groups, weight decay on matrices (dim ≥ 2) only, eps 1e-8, fused kernels.
The micro-batch (windows per forward pass) is the whole local batch on CPU; on a GPU the largest
that fits (:func:`largest_micro_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from scaling.errors import UserError
from scaling.spec import TrainSpec
from scaling.train.distributed import World, rank_rows


@dataclass
class Parallel:
    """``forward``: the module a training step calls (the model, or its DDP wrapper); ``optimizer``:
    AdamW, or the ZeRO-1 optimizer over AdamW; ``world``: the ranks."""

    forward: torch.nn.Module
    optimizer: torch.optim.Optimizer
    world: World

    @property
    def local_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer whose state this rank holds (with several ranks, its ZeRO shard's AdamW)."""
        return self.optimizer if self.world.size == 1 else self.optimizer.optim


def wrap(model: torch.nn.Module, train: TrainSpec, world: World, device: torch.device) -> Parallel:
    """The model (already on ``device``) and its optimizer under ``zero1`` (see the module docstring)."""
    params = list(model.parameters())
    forward = model if world.size == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False,
        gradient_as_bucket_view=True)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    adamw = dict(lr=train.lr, betas=(train.beta1, train.beta2), eps=1e-8, fused=True)
    if world.size == 1:
        return Parallel(forward, torch.optim.AdamW(groups, **adamw), world)
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return Parallel(forward, ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, **adamw), world)


def largest_micro_batch(model: torch.nn.Module, vocab_size: int, context: int, batch_size: int, world: World,
                        device: torch.device) -> int:
    """Windows per forward pass: the whole local batch on CPU; on a GPU the largest that fits,
    found by a forward and backward pass at full context (halving on out-of-memory) while the
    memory this rank's share of AdamW's moments will take is held, agreed as the minimum over
    ranks. The global batch stays the spec's: micro-batches accumulate gradients."""
    lo, hi = rank_rows(batch_size, world)
    local = max(1, hi - lo)
    if device.type != "cuda":
        return local
    n_params = sum(p.numel() for p in model.parameters())

    def attempt(m: int) -> None:
        held = torch.empty(-(-2 * n_params // world.size), dtype=torch.float32, device=device)
        try:
            x = torch.randint(0, vocab_size, (m, context), device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=x).logits
            torch.nn.functional.cross_entropy(logits.float().view(-1, vocab_size), x.view(-1)).backward()
        finally:
            del held
            model.zero_grad(set_to_none=True)

    m = largest_that_fits(local, attempt, on_oom=torch.cuda.empty_cache)
    if world.size > 1:
        t = torch.tensor([m], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        m = int(t.item())
    return m


def largest_that_fits(n: int, attempt: Callable[[int], None], on_oom: Callable[[], None] = lambda: None) -> int:
    """The largest of n, ⌈n/2⌉, ⌈n/4⌉ … 1 for which ``attempt(m)`` does not run out of memory
    (``torch.OutOfMemoryError``); UserError when even 1 does not fit."""
    m = n
    while True:
        try:
            attempt(m)
            return m
        except torch.OutOfMemoryError:
            on_oom()
            if m == 1:
                raise UserError("one window of data.context tokens does not fit in the accelerator's memory with the model, its "
                                "gradients and AdamW's moments; expected a shorter data.context or a smaller model") from None
            m = (m + 1) // 2
