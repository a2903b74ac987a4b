"""The training loop of one run: exact token budget, decay branches, evaluation, atomic checkpoints.

Conventions (recorded in every metrics and evaluation row):

* tokens: trained label positions (targets that carry loss); the run stops exactly at
  ``spec.train.tokens`` — the last step trains only the positions that remain.
* tokens_speech / tokens_text / tokens_marker: those positions by the modality of the target.
* flops_6nd = 6·N_total·tokens; flops_6nd_nonembed = 6·N_non_embedding·tokens; flops_exact counts
  attention and the output layer (see :mod:`scaling.models.flops`).
* The global batch is ``spec.train.batch_size`` windows whatever the hardware: ranks split it
  (:func:`~scaling.train.distributed.rank_rows`) and micro-batches accumulate gradients; the loss
  is the sum over the global batch's label tokens divided by their number.
* Data order depends only on the seed and the step: step s trains windows s·B … s·B+B−1.
* Decay branches (:mod:`scaling.train.schedule`): at a branch's start the trunk's state is copied
  aside, the branch trains to its budget and is evaluated, and the trunk is restored. A branch's
  evaluation row has ``branch`` true, the accounting of its budget (``tokens`` = its D, as if it
  were an independent run), ``branch_from_step`` / ``branch_from_tokens`` (where it left the
  trunk) and ``branch_cost_tokens`` / ``branch_cost_flops_*`` (what it trained beyond the shared
  prefix). Trunk rows have ``branch`` false.
* tokens_per_s and mfu (6·N_total·tokens/s over the fp32 (CPU) or bf16 (GPU) matmul peak measured
  at start, summed over ranks) are logged every ``log_every`` steps.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from scaling.data import MARKER, PAD, SPEECH, TEXT
from scaling.errors import UserError
from scaling.models import count_params, flops_per_token
from scaling.spec import RunSpec
from scaling.store import RunDir, append_jsonl, now, rewrite_jsonl
from scaling.train.checkpoint import drop_shards, load_checkpoint, load_shard, save_checkpoint, save_shard
from scaling.train.distributed import World, barrier, broadcast_flag, rank_rows
from scaling.train.schedule import Plan, Stretch, learning_rate

__all__ = ["Accounting", "Plan", "Trainer", "export_model", "host_info", "make_labels", "measure_peak_flops"]


@dataclass
class Accounting:
    """Running totals of trained tokens by modality."""

    tokens: int = 0
    speech: int = 0
    text: int = 0
    marker: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"tokens": self.tokens, "tokens_speech": self.speech, "tokens_text": self.text, "tokens_marker": self.marker}

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> "Accounting":
        return cls(d["tokens"], d["tokens_speech"], d["tokens_text"], d["tokens_marker"])


def measure_peak_flops(device: torch.device, seconds: float = 0.5) -> float:
    """Dense matmul FLOP/s measured now on this device and thread count: fp32 on CPU, bf16 on GPU.

    Square matrices of 1024 (CPU) or 8192 (GPU), large enough to run at the BLAS library's best rate.
    """
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
        sync()
    return 2.0 * n**3 * reps / (time.perf_counter() - start)


def make_labels(ids: np.ndarray, modality: np.ndarray, marker_loss: bool, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Inputs, labels (-100 where no loss) and target modalities of windows [B, T+1].

    ``budget`` caps the number of label positions (row-major order), for the exact last step.
    """
    inputs = torch.from_numpy(np.ascontiguousarray(ids[:, :-1]))
    target_mod = modality[:, 1:].copy()
    labels = ids[:, 1:].copy()
    mask = target_mod == PAD
    if not marker_loss:
        mask |= target_mod == MARKER
    if budget is not None:
        keep = np.cumsum(~mask.reshape(-1)).reshape(mask.shape) <= budget
        mask |= ~keep
    labels[mask] = -100
    target_mod = np.where(mask, PAD, target_mod)
    return inputs, torch.from_numpy(labels), target_mod


def _cpu_copy(obj: Any) -> Any:
    """A deep copy of nested dicts / lists of tensors, with every tensor cloned to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


@dataclass
class Trainer:
    """Trains one run to its budget (and its decay branches); see the module docstring for the conventions.

    ``on_eval(trainer, step)`` returns metrics merged into each evaluation row (the evaluation
    engine's benchmarks); at a branch's row the model holds the branch's weights.
    """

    spec: RunSpec
    run: RunDir
    prep: Any  # scaling.data.PreparedData
    model: torch.nn.Module
    world: World = field(default_factory=World)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    micro_batch: int = 0  # windows per forward pass on this rank; 0 = $SCALING_MICRO_BATCH, else automatic (_largest_micro_batch)
    checkpoint_seconds: float = 60.0
    log_every: int = 10
    should_stop: Callable[[], bool] = lambda: False
    on_eval: Callable[["Trainer", int], dict[str, float]] | None = None

    def __post_init__(self) -> None:
        self.plan = Plan.of(self.spec)
        positions = getattr(self.model.config, "max_position_embeddings", self.spec.data.context)
        self.counts = count_params(self.spec.model, self.prep.vocab_size, self.prep.n_added_vocab, positions)
        built = sum(p.numel() for p in self.model.parameters())
        if built != self.counts.total:
            m = self.spec.model
            raise UserError(f"model.family = {m.family!r}, model.size = {m.size!r} describes {self.counts.total:,} parameters, "
                            f"but the model has {built:,}; expected the spec to describe the model (for init_from, its architecture)")
        self.flops = flops_per_token(self.spec.model, self.counts, self.prep.vocab_size, self.spec.data.context)
        self.model.to(self.device)
        self.params = params = list(self.model.parameters())
        self.micro_batch = self.micro_batch or int(os.environ.get("SCALING_MICRO_BATCH", "0")) or self._largest_micro_batch()
        # several ranks: DDP all-reduces bucketed gradients while the last micro-batch's backward
        # still runs; rank 0's weights are broadcast here, so every rank starts from the same model;
        # gradients are views into DDP's buckets, so there is no second copy of them
        self.forward = self.model if self.world.size == 1 else torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None, broadcast_buffers=False,
            gradient_as_bucket_view=True)
        t = self.spec.train
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": t.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        adamw = dict(lr=t.lr, betas=(t.beta1, t.beta2), eps=1e-8, fused=True)
        if self.world.size == 1:
            self.optimizer = torch.optim.AdamW(groups, **adamw)
        else:  # ZeRO-1: each rank keeps AdamW's moments of its share of the parameters only
            from torch.distributed.optim import ZeroRedundancyOptimizer

            self.optimizer = ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, **adamw)
        self.step = 0
        self.acc = Accounting()
        self.lr = learning_rate(t, 0, self.plan.n_steps)
        self.branch: int | None = None  # index of the decay branch being trained
        self.next_branch = 0  # branches before this index are done
        self.trunk: dict[str, Any] | None = None  # the trunk's state while a branch trains
        self.rows = {"metrics": 0, "evals": 0}  # rows this run has written to its logs
        self.autocast = self.device.type == "cuda"
        if self.spec.data.val_exclude:  # an unknown source fails now, not at the first evaluation
            self.prep.val_windows(self.spec.data.val_exclude, limit=1)

    def _largest_micro_batch(self) -> int:
        """Windows per forward pass: the whole local batch on CPU; on a GPU the largest that fits,
        found by a forward and backward pass at full context (halving on out-of-memory) while the
        memory this rank's share of AdamW's moments will take is held, agreed as the minimum over
        ranks. The global batch stays the spec's: micro-batches accumulate gradients."""
        lo, hi = rank_rows(self.spec.train.batch_size, self.world)
        local = max(1, hi - lo)
        if self.device.type != "cuda":
            return local
        vocab, context = self.prep.vocab_size, self.spec.data.context
        n_params = sum(p.numel() for p in self.params)

        def attempt(m: int) -> None:
            held = torch.empty(-(-2 * n_params // self.world.size), dtype=torch.float32, device=self.device)
            try:
                x = torch.randint(0, vocab, (m, context), device=self.device)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = self.model(input_ids=x).logits
                torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), x.view(-1)).backward()
            finally:
                del held
                self.model.zero_grad(set_to_none=True)

        m = largest_that_fits(local, attempt, on_oom=torch.cuda.empty_cache)
        if self.world.size > 1:
            t = torch.tensor([m], device=self.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
            m = int(t.item())
        return m

    # ----------------------------------------------------------------- state
    @property
    def stretch(self) -> Stretch:
        """What is being trained now: the trunk, or the decay branch in progress."""
        return self.plan.trunk if self.branch is None else self.plan.branches[self.branch]

    @property
    def _local_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer whose state this rank holds (with several ranks, its ZeRO shard's AdamW)."""
        return self.optimizer if self.world.size == 1 else self.optimizer.optim

    def _line(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self._local_optimizer.state_dict(), "step": self.step,
                "accounting": self.acc.as_dict()}

    def _load_line(self, line: dict[str, Any]) -> None:
        self.model.load_state_dict(line["model"])
        self._local_optimizer.load_state_dict(line["optimizer"])
        self.step = line["step"]
        self.acc = Accounting.from_dict(line["accounting"])

    def state_dict(self) -> dict[str, Any]:
        """The trunk's state, progress through the branches and logs, and the branch in progress (if any)."""
        trunk = self._line() if self.branch is None else self.trunk
        branch = None if self.branch is None else {"index": self.branch, "line": self._line()}
        return {**trunk, "next_branch": self.next_branch, "branch": branch, "rows": dict(self.rows), "run_id": self.spec.run_id}

    def save(self) -> None:
        """Checkpoint atomically. With several ranks each writes its optimizer shard first
        (:func:`~scaling.train.checkpoint.save_shard`), then rank 0 the rest, naming the shards'
        tag: a kill at any moment leaves a whole checkpoint whose shards all exist."""
        state = self.state_dict()
        if self.world.size > 1:
            tag = f"{self.next_branch}-{self.branch}-{self.step}"
            shard = {"trunk": state.pop("optimizer"), "branch": state["branch"] and state["branch"]["line"].pop("optimizer")}
            save_shard(self.run.checkpoint_dir, tag, self.world.rank, shard)
            barrier(self.world)
            state["shards"] = {"tag": tag, "world_size": self.world.size}
        if self.world.is_main:
            save_checkpoint(self.run.checkpoint_dir, state)
        barrier(self.world)
        if self.world.size > 1:
            drop_shards(self.run.checkpoint_dir, self.world.rank, keep=state["shards"]["tag"])

    def resume(self) -> bool:
        """Load the latest checkpoint if any; drop log rows written after it. True if resumed."""
        state = load_checkpoint(self.run.checkpoint_dir)
        shards = state and state.pop("shards", None)
        if state is not None and (shards or {}).get("world_size", 1) != self.world.size:
            raise UserError(f"the checkpoint in {self.run.checkpoint_dir} was written by {(shards or {}).get('world_size', 1)} "
                            f"process(es), each holding its share of the optimizer state; expected to resume with as many, not {self.world.size}")
        if shards:
            shard = load_shard(self.run.checkpoint_dir, shards["tag"], self.world.rank)
            state["optimizer"] = shard["trunk"]
            if state["branch"] is not None:
                state["branch"]["line"]["optimizer"] = shard["branch"]
        if state is None:
            if self.world.is_main:  # a run restarted before its first checkpoint starts clean
                for f in (self.run.metrics_file, self.run.evals_file):
                    f.unlink(missing_ok=True)
            return False
        if state["branch"] is None:
            self._load_line(state)
        else:
            self.trunk = {k: state[k] for k in ("model", "optimizer", "step", "accounting")}
            self.branch = state["branch"]["index"]
            self._load_line(state["branch"]["line"])
        self.next_branch = state["next_branch"]
        self.rows = dict(state["rows"])
        if self.world.is_main:
            for path, n in ((self.run.metrics_file, self.rows["metrics"]), (self.run.evals_file, self.rows["evals"])):
                count = itertools.count()
                rewrite_jsonl(path, lambda row: next(count) < n)
        return True

    def _enter_branch(self) -> None:
        self.trunk = _cpu_copy(self._line())
        self.branch = self.next_branch

    def _leave_branch(self) -> None:
        self._load_line(self.trunk)
        self.trunk, self.branch = None, None
        self.next_branch += 1

    def _append(self, kind: str, row: dict[str, Any]) -> None:
        append_jsonl(self.run.metrics_file if kind == "metrics" else self.run.evals_file, row)
        self.rows[kind] += 1

    # ----------------------------------------------------------------- data
    def global_windows(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The step's global batch [B, T+1]: every row's modality (to count the batch's label
        tokens), but only this rank's rows' ids (the other rows hold padding; they are not trained here)."""
        b = self.spec.train.batch_size
        return self.prep.train_batch(step * b, b, rank_rows(b, self.world))

    def accounting_of(self, target_mod: np.ndarray) -> None:
        self.acc.tokens += int((target_mod != PAD).sum())
        self.acc.speech += int((target_mod == SPEECH).sum())
        self.acc.text += int((target_mod == TEXT).sum())
        self.acc.marker += int((target_mod == MARKER).sum())

    # ----------------------------------------------------------------- steps
    def train_step(self) -> float:
        """One optimizer step of the current stretch on the global batch; returns its mean loss (over all ranks)."""
        stretch, step = self.stretch, self.step
        budget = stretch.last_step_tokens if step == stretch.end - 1 else None
        ids, mod = self.global_windows(step)
        inputs, labels, target_mod = make_labels(ids, mod, self.spec.data.marker_loss, budget)
        n_label = int((labels != -100).sum())
        self.accounting_of(target_mod)
        lo, hi = rank_rows(self.spec.train.batch_size, self.world)
        micro = self.micro_batch or max(1, hi - lo)
        lr = learning_rate(self.spec.train, step, self.plan.n_steps, None if self.branch is None else stretch.end)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)  # backward then hands its gradients over without a copy
        loss_sum = torch.zeros((), device=self.device)
        # micro-batches with label tokens; with several ranks every rank runs at least one (a rank
        # whose rows carry no labels contributes zeros), and only the last one synchronises
        starts = [a for a in range(lo, hi, micro) if (labels[a:min(hi, a + micro)] != -100).any()]
        if not starts and self.world.size > 1:
            starts = [lo]
        # the loss is a sum over the global batch's labels; DDP averages gradients over ranks
        for i, start in enumerate(starts):
            x = inputs[start:min(hi, start + micro)].to(self.device, non_blocking=True)
            y = labels[start:min(hi, start + micro)].to(self.device, non_blocking=True)
            sync = self.world.size == 1 or i == len(starts) - 1
            with contextlib.nullcontext() if sync else self.forward.no_sync():
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    logits = self.forward(input_ids=x).logits
                loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100, reduction="sum")
                (loss / n_label * self.world.size).backward()
            loss_sum += loss.detach()
        if self.world.size > 1:
            torch.distributed.all_reduce(loss_sum)
        torch.nn.utils.clip_grad_norm_(self.params, self.spec.train.grad_clip, foreach=True)
        self.optimizer.step()
        self.step += 1
        self.lr = lr
        return float(loss_sum) / n_label

    @torch.no_grad()
    def validation_losses(self) -> dict[str, float]:
        """Mean next-token loss on the validation windows: all targets, speech targets, text targets."""
        self.model.eval()
        ids, mod = self.prep.val_windows(self.spec.data.val_exclude, limit=self.spec.train.val_windows)
        inputs, labels, target_mod = make_labels(ids, mod, self.spec.data.marker_loss)
        sums = {"all": 0.0, "speech": 0.0, "text": 0.0}
        counts = {"all": 0, "speech": 0, "text": 0}
        mb = 16
        for s in range(0, len(inputs), mb):
            x, y = inputs[s:s + mb].to(self.device), labels[s:s + mb].to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(input_ids=x).logits
            nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-100, reduction="none").cpu().numpy()
            m = target_mod[s:s + mb]
            for key, sel in (("all", m != PAD), ("speech", m == SPEECH), ("text", m == TEXT)):
                sums[key] += float(nll[sel].sum())
                counts[key] += int(sel.sum())
        self.model.train()
        out = {"loss_val": sums["all"] / max(1, counts["all"])}
        if counts["speech"]:
            out["loss_val_speech"] = sums["speech"] / counts["speech"]
        if counts["text"]:
            out["loss_val_text"] = sums["text"] / counts["text"]
        return out

    def accounting_row(self) -> dict[str, Any]:
        t = self.acc.tokens
        c = self.counts
        return {"step": self.step, **self.acc.as_dict(), "params_total": c.total, "params_non_embedding": c.non_embedding,
                "params_embedding": c.embedding, "params_embedding_speech": c.embedding_speech, "flops_6nd": self.flops["6nd"] * t,
                "flops_6nd_nonembed": self.flops["6nd_nonembed"] * t, "flops_exact": self.flops["exact"] * t}

    def branch_row(self) -> dict[str, Any]:
        """Where the branch in progress left the trunk and what it cost beyond it; ``branch`` false on the trunk."""
        if self.branch is None:
            return {"branch": False}
        cost = self.acc.tokens - self.trunk["accounting"]["tokens"]
        return {"branch": True, "branch_from_step": self.trunk["step"], "branch_from_tokens": self.trunk["accounting"]["tokens"],
                "branch_cost_tokens": cost, **{f"branch_cost_flops_{k}": v * cost for k, v in
                                               (("6nd", self.flops["6nd"]), ("6nd_nonembed", self.flops["6nd_nonembed"]), ("exact", self.flops["exact"]))}}

    def spent(self) -> dict[str, float]:
        """Compute the whole run spends, trunk and branches: tokens trained and FLOPs in each convention."""
        tokens = self.plan.tokens_spent
        return {"tokens_spent": tokens, "flops_6nd_spent": self.flops["6nd"] * tokens,
                "flops_6nd_nonembed_spent": self.flops["6nd_nonembed"] * tokens, "flops_exact_spent": self.flops["exact"] * tokens}

    def evaluate(self, loss_train: float) -> dict[str, Any]:
        row = {**self.accounting_row(), **self.branch_row(), "loss_train": loss_train, "time": now()}
        if self.world.is_main:
            row.update(self.validation_losses())
            if self.on_eval is not None:
                row.update(self.on_eval(self, self.step))
            self._append("evals", row)
        barrier(self.world)
        return row

    # ----------------------------------------------------------------- main
    def fit(self, progress: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Train from the current state to the budget. Returns 'done', 'diverged' or 'stopped'."""
        peak = measure_peak_flops(self.device)
        self.model.train()
        last_ckpt = time.monotonic()
        window_start, window_tokens = time.perf_counter(), 0
        branches = self.plan.branches
        while self.step < self.plan.n_steps or self.branch is not None:
            if self.branch is None and self.next_branch < len(branches) and branches[self.next_branch].start == self.step:
                self._enter_branch()
            stretch = self.stretch
            tokens_before = self.acc.tokens
            loss = self.train_step()
            window_tokens += self.acc.tokens - tokens_before
            if not math.isfinite(loss):
                if self.world.is_main:
                    self._append("evals", {**self.accounting_row(), **self.branch_row(), "loss_train": None, "loss_val": None,
                                           "diverged": True, "time": now()})
                    self.run.update_status(state="diverged", diverged_step=self.step, error=f"loss {loss} at step {self.step}", finished=now())
                return "diverged"
            at_end = self.step == stretch.end
            evaluate = at_end if self.branch is not None else self.step in self.plan.eval_steps
            if self.step % self.log_every == 0 or evaluate:
                elapsed = time.perf_counter() - window_start
                tps = window_tokens / elapsed if elapsed > 0 else 0.0
                row = {**self.accounting_row(), "loss_train": loss, "lr": self.lr, "tokens_per_s": tps,
                       "mfu": tps * self.flops["6nd"] / (peak * self.world.size), "peak_flops": peak,
                       "branch": self.branch is not None}
                if self.world.is_main:
                    self._append("metrics", row)
                    if progress:
                        progress(row)
                window_start, window_tokens = time.perf_counter(), 0
            if evaluate:
                self.evaluate(loss)
                if self.branch is not None:
                    self._leave_branch()
                self.save()
                last_ckpt = time.monotonic()
            elif broadcast_flag(self.should_stop() or time.monotonic() - last_ckpt > self.checkpoint_seconds, self.world, self.device):
                self.save()
                last_ckpt = time.monotonic()
                if broadcast_flag(self.should_stop(), self.world, self.device):
                    return "stopped"
        return "done"


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


def host_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "job_id": os.environ.get("SLURM_JOB_ID", "")}


def export_model(trainer: Trainer, directory: Path) -> None:
    """Save the trained model and its tokenizer as a local Hugging Face directory (atomic rename)."""
    import shutil

    from transformers import AutoTokenizer

    from scaling.data.vocab import LAYOUT_FILE

    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(trainer.prep.tokenizer_dir).save_pretrained(tmp)
    layout = Path(trainer.prep.tokenizer_dir) / LAYOUT_FILE
    if layout.exists():  # where units and markers sit in the vocabulary, for evaluation
        shutil.copy2(layout, tmp / LAYOUT_FILE)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
