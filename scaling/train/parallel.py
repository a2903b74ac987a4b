"""The optimizer and the parallel wrapping of a model, by strategy (:mod:`scaling.runs.costs`).

The module a training step calls is a :class:`~scaling.train.loss.TokenLoss` around the causal LM
(per-position losses without full-vocabulary logits). One process: that module and AdamW. Several
(torch.distributed ranks, see :mod:`scaling.train.distributed`):

* ``ddp``: the module wrapped in ``DistributedDataParallel``, which broadcasts rank 0's weights at
  start and all-reduces bucketed gradients while the backward pass of a step's last micro-batch
  still runs (gradients are views into its buckets: one copy); AdamW on every rank.
* ``zero1``: as ``ddp``, with AdamW's moments sharded over the ranks (``ZeroRedundancyOptimizer``).
* ``fsdp``: PyTorch's ``fully_shard`` on every decoder block and on the loss module (the root:
  embeddings, final norm, output layer); weights, gradients and AdamW's moments are sharded
  DTensors. On a GPU, blocks compute in bf16 and gradients are reduced in fp32 over fp32 master
  weights (``MixedPrecisionPolicy``); on the CPU everything is fp32. Gradients are reduce-scattered
  after every micro-batch, so no rank ever holds a whole model's gradients.

Activation checkpointing (the layout's switch) recomputes each decoder block in the backward pass
(transformers' gradient checkpointing, non-reentrant). ddp and zero1 on a GPU compute under bf16
autocast. AdamW: two parameter groups, weight decay on matrices (dim ≥ 2) only, eps 1e-8, fused
kernels. The micro-batch (windows per forward pass): the whole local batch on CPU; on a GPU
under ddp and zero1 the largest that fits (:func:`largest_micro_batch`, searched on this rank's
model alone, so no rank waits on another's out-of-memory), under fsdp the memory model's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

from scaling.errors import UserError
from scaling.runs.costs import Layout
from scaling.spec import TrainSpec
from scaling.train.distributed import World
from scaling.train.loss import TokenLoss


@dataclass
class Parallel:
    """``forward``: the module a step calls (the :class:`TokenLoss`, its DDP wrapper, or under fsdp
    the sharded TokenLoss itself); ``lm``: the causal LM inside (its parameters are DTensors under
    fsdp); ``optimizer``: AdamW, or the ZeRO-1 optimizer over AdamW; ``layout``, ``world``."""

    forward: torch.nn.Module
    lm: torch.nn.Module
    optimizer: torch.optim.Optimizer
    layout: Layout
    world: World

    @property
    def local_optimizer(self) -> torch.optim.Optimizer:
        """The AdamW whose state this rank holds (under zero1, its shard's)."""
        return self.optimizer.optim if self.sharded_optimizer else self.optimizer

    @property
    def sharded_optimizer(self) -> bool:
        return self.world.size > 1 and self.layout.strategy == "zero1"

    @contextlib.contextmanager
    def gathered_root(self):
        """Context in which the causal LM can be called directly under fsdp: the root unit's
        parameters (embeddings, final norm, output layer) are gathered, the blocks gather their
        own as they run."""
        self.forward.unshard()
        try:
            yield
        finally:
            self.forward.reshard()

    def accumulating(self, last: bool):
        """Context of one micro-batch's backward pass: under ddp and zero1 gradients are
        all-reduced only on a step's ``last`` micro-batch; fsdp reduce-scatters every one."""
        if isinstance(self.forward, torch.nn.parallel.DistributedDataParallel) and not last:
            return self.forward.no_sync()
        return contextlib.nullcontext()


def decoder_blocks(lm: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks of a transformers causal LM: its module list as long as its layer count."""
    n_layers = lm.config.num_hidden_layers
    for module in lm.base_model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise UserError(f"found no list of {n_layers} decoder blocks in {type(lm).__name__}; expected a transformers causal LM")


def checkpoint_blocks(lm: torch.nn.Module, layout: Layout) -> None:
    """Turn on activation checkpointing of every decoder block when ``layout`` asks for it."""
    if layout.activation_checkpointing:
        lm.activation_checkpointing_enable()


def wrap(lm: torch.nn.Module, train: TrainSpec, layout: Layout, world: World, device: torch.device,
         chunk_tokens: int) -> Parallel:
    """The model (already on ``device``) and its optimizer under ``layout`` (see the module docstring)."""
    checkpoint_blocks(lm, layout)
    loss = TokenLoss(lm, chunk_tokens)
    strategy = layout.strategy if world.size > 1 else "ddp"
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if device.type == "cuda" \
            else MixedPrecisionPolicy()
        for block in decoder_blocks(lm):
            fully_shard(block, mp_policy=policy)
        fully_shard(loss, mp_policy=policy)
        forward = loss
    elif world.size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            loss, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False,
            gradient_as_bucket_view=True)
    else:
        forward = loss
    params = list(lm.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    adamw = dict(lr=train.lr, betas=(train.beta1, train.beta2), eps=1e-8, fused=True)
    if strategy == "zero1":
        from torch.distributed.optim import ZeroRedundancyOptimizer

        optimizer = ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, **adamw)
    else:
        optimizer = torch.optim.AdamW(groups, **adamw)
    return Parallel(forward, lm, optimizer, layout, world)


def largest_micro_batch(lm: torch.nn.Module, chunk_tokens: int, vocab_size: int, context: int, local: int,
                        held_bytes: float, world: World, device: torch.device) -> int:
    """The largest micro-batch of at most ``local`` windows whose forward and backward pass at full
    context fits on this GPU (halving on out-of-memory) while ``held_bytes`` are held (the state the
    strategy adds later: AdamW's moments, or DDP's gradient buckets), agreed as the minimum over
    ranks. Runs this rank's model alone (no collectives)."""
    loss = TokenLoss(lm, chunk_tokens)

    def attempt(m: int) -> None:
        held = torch.empty(int(held_bytes) // 4, dtype=torch.float32, device=device)
        try:
            x = torch.randint(0, vocab_size, (m, context), device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                nll = loss(x, x)
            nll.sum().backward()
        finally:
            del held
            lm.zero_grad(set_to_none=True)

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
                                "gradients and AdamW's moments; expected a shorter data.context, a smaller model, "
                                "engine.activation_checkpointing: true, or engine.strategy: fsdp over more GPUs") from None
            m = (m + 1) // 2
