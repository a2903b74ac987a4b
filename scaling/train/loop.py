"""The training loop of one run: exact token budget, decay branches, evaluation, atomic checkpoints.

Conventions (recorded in every metrics and evaluation row, see :mod:`scaling.train.metrics`):

* tokens: trained label positions (targets that carry loss); the run stops exactly at
  ``spec.train.tokens`` — the last step trains only the positions that remain.
* The global batch is ``spec.train.batch_size`` windows whatever the hardware: ranks split it
  (:func:`~scaling.train.distributed.rank_rows`) and micro-batches accumulate gradients; the loss
  is the sum over the global batch's label tokens divided by their number.
* Data order depends only on the seed and the step (:mod:`scaling.train.batches`).
* Decay branches (:mod:`scaling.runs.timeline`): at a branch's start the trunk's state is set
  aside (:mod:`scaling.train.state`), the branch trains to its budget and is evaluated, and the
  trunk is restored. A branch's evaluation row has ``branch`` true, the accounting of its budget
  (``tokens`` = its D, as if it were an independent run) and where it left the trunk and what it
  cost (:func:`~scaling.train.metrics.branch_row`). Trunk rows have ``branch`` false.

* Layout: strategy, activation checkpointing and micro-batch come from the one memory model
  (:func:`scaling.runs.costs.costs` under the sweep's ``engine:`` settings); a run that fits the
  device under no allowed layout is refused before training starts.
* Checkpoints: at every evaluation point, on the stop signal, and every ``engine.checkpoint_every``
  (a duration, a number of steps, or ``auto``: scaled with the checkpoint's size, and never less
  than 50 times the last save took, so that saving stays about 2% of the time).

The parts, one job each: :mod:`~scaling.train.parallel` (optimizer, DDP, FSDP, micro-batch),
:mod:`~scaling.train.state` (trunk and branch, save and resume), :mod:`~scaling.train.metrics`
(rows), :mod:`~scaling.train.validation` (validation losses). This module wires them and runs the
steps: :meth:`Trainer.train_to_budget`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from scaling.errors import UserError
from scaling.models import count_params, flops_per_token
from scaling.runs.costs import Device, costs, loss_chunk_tokens
from scaling.runs.outcome import Outcome
from scaling.runs.timeline import Stretch, Timeline
from scaling.spec import EngineSpec, RunSpec, parse_bytes, parse_seconds
from scaling.store import RunDir, now
from scaling.train.batches import global_windows, make_labels
from scaling.train.distributed import World, barrier, broadcast_flag, rank_rows
from scaling.train.faults import fault_point
from scaling.train.loss import IGNORE
from scaling.train.metrics import RowLog, Throughput, accounting_row, branch_row, measure_peak_flops, spent
from scaling.train.parallel import checkpoint_blocks, largest_micro_batch, wrap
from scaling.train.schedule import learning_rate
from scaling.train.state import TrainingState
from scaling.train.validation import validation_losses

#: the auto checkpoint interval is at least this many times the last save's duration
SAVE_TIME_FACTOR = 50


@dataclass(frozen=True)
class EvalPoint:
    """What an evaluation hook (``Trainer.on_eval``) is given at an evaluation point: the run's
    directory, spec and prepared data; the model (at a branch's point, the branch's weights) on
    ``device``; the step; the decay branch (its index) or None on the trunk; whether the point
    is final (the run's last step, or a branch's end); and whether this is the main rank (the one
    that writes: under fsdp every rank runs the hook, since every forward pass needs every rank's
    shards)."""

    run: RunDir
    spec: RunSpec
    prep: Any
    model: torch.nn.Module
    device: torch.device
    step: int
    branch: int | None
    final: bool
    main: bool = True


@dataclass
class Trainer:
    """Trains one run to its budget (and its decay branches); see the module docstring.

    ``on_eval(point)`` returns metrics merged into each evaluation row (the evaluation engine's
    benchmarks, :func:`scaling.evaluation.hooks.benchmark_metrics`); ``mirror(kind, row)`` gets
    every row written to the run's logs (:mod:`scaling.train.mirrors`).
    """

    spec: RunSpec
    run: RunDir
    prep: Any  # scaling.data.PreparedData
    model: torch.nn.Module
    world: World = field(default_factory=World)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    micro_batch: int = 0  # windows per forward pass on this rank; 0 = $SCALING_MICRO_BATCH, else the layout's
    engine: EngineSpec = field(default_factory=EngineSpec)
    log_every: int = 10
    should_stop: Callable[[], bool] = lambda: False
    on_eval: Callable[[EvalPoint], dict[str, float]] | None = None
    mirror: Callable[[str, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        self.timeline = Timeline.of(self.spec)
        positions = getattr(self.model.config, "max_position_embeddings", self.spec.data.context)
        self.counts = count_params(self.spec.model, self.prep.vocab_size, self.prep.n_added_vocab, positions)
        built = sum(p.numel() for p in self.model.parameters())
        if built != self.counts.total:
            m = self.spec.model
            raise UserError(f"model.family = {m.family!r}, model.size = {m.size!r} describes {self.counts.total:,} parameters, "
                            f"but the model has {built:,}; expected the spec to describe the model (for init_from, its architecture)")
        self.flops_per_token = flops_per_token(self.spec.model, self.counts, self.prep.vocab_size, self.spec.data.context)
        gpu = self.device.type == "cuda"
        memory = parse_bytes(self.engine.gpu_memory, "engine.gpu_memory") if self.engine.gpu_memory else \
            torch.cuda.get_device_properties(self.device).total_memory if gpu else None
        self.costs = costs(self.spec, self.engine, self.world.size, Device(gpu, memory))
        layout = self.costs.layout
        self.chunk_tokens = loss_chunk_tokens(self.prep.vocab_size)
        self.model.to(self.device)
        checkpoint_blocks(self.model, layout)
        self.micro_batch = self.micro_batch or int(os.environ.get("SCALING_MICRO_BATCH", "0"))
        if not self.micro_batch and gpu and layout.strategy != "fsdp":
            self.micro_batch = largest_micro_batch(self.model, self.chunk_tokens, self.prep.vocab_size, self.spec.data.context,
                                                   -(-self.spec.train.batch_size // self.world.size), self.costs.memory.optimizer,
                                                   self.world, self.device)
        self.layout = dataclasses.replace(layout, micro_batch=self.micro_batch or layout.micro_batch)
        self.micro_batch = self.layout.micro_batch
        self.parallel = wrap(self.model, self.spec.train, self.layout, self.world, self.device, self.chunk_tokens)
        self.state = TrainingState(self.parallel, self.run.checkpoint_dir, self.spec.run_id)
        self.log = RowLog(self.run, self.mirror)
        self.lr = learning_rate(self.spec.train, 0, self.timeline.n_steps)
        self.autocast = gpu and (self.layout.strategy != "fsdp" or self.world.size == 1)
        self.collective_timeout = parse_seconds(self.engine.collective_timeout, "engine.collective_timeout")
        self.last_save_seconds = 0.0
        if self.spec.data.val_exclude:  # an unknown source fails now, not at the first evaluation
            self.prep.val_windows(self.spec.data.val_exclude, limit=1)

    @property
    def stretch(self) -> Stretch:
        """What is being trained now: the trunk, or the decay branch in progress."""
        return self.timeline.trunk if self.state.branch is None else self.timeline.branches[self.state.branch]

    def save(self) -> None:
        """Checkpoint the run (every rank calls it); remembers how long it took."""
        start = time.monotonic()
        self.state.save(self.log.written)
        self.last_save_seconds = time.monotonic() - start

    def checkpoint_due(self, since: float) -> bool:
        """Whether ``engine.checkpoint_every`` calls for a checkpoint now, ``since`` (monotonic
        seconds) the last one (see the module docstring)."""
        interval = self.engine.checkpoint_interval()
        if interval is not None and interval[0] == "steps":
            return self.state.step % interval[1] == 0
        seconds = interval[1] if interval is not None else max(self.costs.checkpoint_seconds(),
                                                               SAVE_TIME_FACTOR * self.last_save_seconds)
        return time.monotonic() - since >= seconds

    def resume(self) -> bool:
        """Load the latest checkpoint if any and drop log rows written after it; a run without one
        starts with empty logs. True if resumed."""
        rows = self.state.resume()
        if rows is not None:
            self.log.written = rows
        if self.world.is_main:
            if rows is None:
                self.log.clear()
            else:
                self.log.cut_to_written()
        return rows is not None

    # ----------------------------------------------------------------- one step
    def train_step(self) -> float:
        """One optimizer step of the current stretch on the global batch; returns its mean loss (over all ranks)."""
        state, stretch, step = self.state, self.stretch, self.state.step
        budget = stretch.last_step_tokens if step == stretch.end - 1 else None
        ids, mod = global_windows(self.prep, step, self.spec.train.batch_size, rank_rows(self.spec.train.batch_size, self.world))
        inputs, labels, target_mod = make_labels(ids, mod, self.spec.data.marker_loss, budget)
        n_label = int((labels != -100).sum())
        state.tokens.add(target_mod)
        lo, hi = rank_rows(self.spec.train.batch_size, self.world)
        micro = self.micro_batch or max(1, hi - lo)
        lr = learning_rate(self.spec.train, step, self.timeline.n_steps, None if state.branch is None else stretch.end)
        optimizer, forward = self.parallel.optimizer, self.parallel.forward
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)  # backward then hands its gradients over without a copy
        loss_sum = torch.zeros((), device=self.device)
        for i, (rows, labelled) in enumerate(passes := self.micro_batches(labels, lo, hi, micro)):
            x = inputs[rows].to(self.device, non_blocking=True)
            y = (labels[rows] if labelled else torch.full_like(labels[rows], IGNORE)).to(self.device, non_blocking=True)
            with self.parallel.accumulating(last=i == len(passes) - 1):
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    loss = forward(x, y).sum()
                # the loss is a sum over the global batch's labels; DDP and FSDP average gradients over ranks
                (loss / n_label * self.world.size).backward()
            loss_sum += loss.detach()
        if self.world.size > 1:
            torch.distributed.all_reduce(loss_sum)
        torch.nn.utils.clip_grad_norm_(list(self.model.parameters()), self.spec.train.grad_clip, foreach=True)
        optimizer.step()
        state.step += 1
        self.lr = lr
        return float(loss_sum) / n_label

    def micro_batches(self, labels: torch.Tensor, lo: int, hi: int, micro: int) -> list[tuple[slice, bool]]:
        """(rows, whether they carry their labels) of this rank's forward passes in one step.
        ddp and zero1: the micro-batches that carry labels, with several ranks at least one (only
        the last synchronises, so ranks may run different numbers). fsdp: as many passes on every
        rank (each gathers shards from all ranks). A pass a rank needs beyond its labelled rows
        runs one window without labels (no loss, no gradient)."""
        spare = (slice(lo, lo + 1) if hi > lo else slice(0, 1), False)
        if self.world.size == 1 or self.layout.strategy != "fsdp":
            out = [(slice(a, min(hi, a + micro)), True) for a in range(lo, hi, micro)
                   if (labels[a:min(hi, a + micro)] != IGNORE).any()]
            return out or ([spare] if self.world.size > 1 else [])
        passes = -(-(-(-self.spec.train.batch_size // self.world.size)) // micro)
        out = [(slice(a, min(hi, a + micro)), True) for a in range(lo, hi, micro)]
        return out + [spare] * (passes - len(out))

    # ----------------------------------------------------------------- rows
    def point_row(self) -> dict[str, Any]:
        """The accounting of the point reached, and where its branch (if any) left the trunk."""
        s = self.state
        return {**accounting_row(s.step, s.tokens, self.counts, self.flops_per_token),
                **branch_row(s.branch, s.trunk, s.tokens, self.flops_per_token)}

    def spent(self) -> dict[str, float]:
        """Compute the whole run spends, trunk and branches (:func:`scaling.train.metrics.spent`)."""
        return spent(self.timeline, self.flops_per_token)

    def evaluate(self, loss_train: float) -> dict[str, Any]:
        """Validation losses (every rank takes part) and the hook's metrics at this point, appended to
        ``evals.jsonl`` by the main rank. The hook runs on the main rank, or under fsdp on every rank
        with the root's parameters gathered; ``eval_seconds`` records how long the point took, and a
        point that takes more than half the collective timeout is reported, since under ddp and
        zero1 the other ranks wait for the main one that long."""
        s, start = self.state, time.monotonic()
        row = {**self.point_row(), "loss_train": loss_train, "time": now()}
        self.parallel.optimizer.zero_grad(set_to_none=True)  # the next step starts with none: free them now
        row.update(validation_losses(self.parallel.forward, self.prep, self.spec, self.device, self.autocast, self.world,
                                     self.micro_batch))
        sharded = self.world.size > 1 and self.layout.strategy == "fsdp"
        if self.on_eval is not None and (self.world.is_main or sharded):
            final = s.branch is not None or s.step >= self.timeline.n_steps
            point = EvalPoint(self.run, self.spec, self.prep, self.model, self.device, s.step, s.branch, final, self.world.is_main)
            with self.parallel.gathered_root() if sharded else contextlib.nullcontext():
                row.update(self.on_eval(point))
        row["eval_seconds"] = time.monotonic() - start
        if self.world.is_main:
            if row["eval_seconds"] > self.collective_timeout / 2:
                print(f"warning: the evaluation at step {s.step} took {row['eval_seconds']:.0f}s, more than half of "
                      f"engine.collective_timeout ({self.collective_timeout:.0f}s) that the other ranks wait at most", flush=True)
            self.log.append("evals", row)
        barrier(self.world)
        return row

    def diverged(self, loss: float) -> None:
        """Record a non-finite loss: an evaluation row marked ``diverged`` and the run's status (main rank)."""
        if self.world.is_main:
            self.log.append("evals", {**self.point_row(), "loss_train": None, "loss_val": None, "diverged": True, "time": now()})
            self.run.update_status(state="diverged", diverged_step=self.state.step, error=f"loss {loss} at step {self.state.step}",
                                   finished=now())

    # ----------------------------------------------------------------- the loop
    def train_to_budget(self, progress: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
        """Train from the current state to the budget, its decay branches included: done, diverged,
        or stopped (``should_stop`` became true on some rank; a checkpoint was saved first)."""
        peak = measure_peak_flops(self.device)
        self.parallel.forward.train()
        last_checkpoint = time.monotonic()
        speed = Throughput()
        state, timeline, branches = self.state, self.timeline, self.timeline.branches
        while state.step < timeline.n_steps or state.branch is not None:
            if state.branch is None and state.next_branch < len(branches) and branches[state.next_branch].start == state.step:
                state.enter_branch()
            stretch = self.stretch
            tokens_before = state.tokens.total
            loss = self.train_step()
            speed.add(state.tokens.total - tokens_before)
            if not math.isfinite(loss):
                self.diverged(loss)
                return Outcome.DIVERGED
            evaluate = state.step == stretch.end if state.branch is not None else state.step in timeline.eval_steps
            if state.step % self.log_every == 0 or evaluate:
                tps = speed.rate()
                row = {**accounting_row(state.step, state.tokens, self.counts, self.flops_per_token), "loss_train": loss, "lr": self.lr,
                       "tokens_per_s": tps, "mfu": tps * self.flops_per_token["6nd"] / (peak * self.world.size), "peak_flops": peak,
                       "branch": state.branch is not None}
                if self.world.is_main:
                    self.log.append("metrics", row)
                    if progress:
                        progress(row)
            if evaluate:
                self.evaluate(loss)
                if state.branch is not None:
                    state.leave_branch()
                self.save()
                last_checkpoint = time.monotonic()
            elif broadcast_flag(self.should_stop() or self.checkpoint_due(last_checkpoint), self.world, self.device):
                self.save()
                last_checkpoint = time.monotonic()
                if broadcast_flag(self.should_stop(), self.world, self.device):
                    return Outcome.STOPPED
            fault_point("step")
        return Outcome.DONE


def host_info() -> dict[str, Any]:
    """Where this process runs: host, pid, SLURM job id ('' outside SLURM)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "job_id": os.environ.get("SLURM_JOB_ID", "")}


def export_model(trainer: Trainer, directory: Path) -> None:
    """Save the trained model and its tokenizer as a local Hugging Face directory (atomic rename).
    Every rank calls it: under fsdp the weights are first gathered, whole, on the main rank's host."""
    import shutil

    from transformers import AutoTokenizer

    from scaling.data.vocab import LAYOUT_FILE

    state = None
    if trainer.world.size > 1 and trainer.layout.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not trainer.world.is_main:
        return
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp, state_dict=state)
    AutoTokenizer.from_pretrained(trainer.prep.tokenizer_dir).save_pretrained(tmp)
    layout = Path(trainer.prep.tokenizer_dir) / LAYOUT_FILE
    if layout.exists():  # where units and markers sit in the vocabulary, for evaluation
        shutil.copy2(layout, tmp / LAYOUT_FILE)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
