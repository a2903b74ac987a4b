"""The training loop of one run: exact token budget, periodic evaluation, atomic checkpoints.

Conventions (recorded in every metrics and evaluation row):

* tokens: trained label positions (targets that carry loss); the run stops exactly at
  ``spec.train.tokens`` — the last step trains only the positions that remain.
* tokens_speech / tokens_text / tokens_marker: those positions by the modality of the target.
* flops_6nd = 6·N_total·tokens; flops_6nd_nonembed = 6·N_non_embedding·tokens; flops_exact counts
  attention and the output layer (see :mod:`scaling.models.flops`).
* The global batch is ``spec.train.batch_size`` windows whatever the hardware: ranks split it and
  micro-batches accumulate gradients; the loss is the mean over the global batch's label tokens.
* Data order depends only on the seed and the step: step s trains windows s·B … s·B+B−1.
"""

from __future__ import annotations

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
from scaling.models import count_params, flops_per_token
from scaling.spec import RunSpec
from scaling.store import RunDir, append_jsonl, now, rewrite_jsonl, write_json_atomic
from scaling.train.checkpoint import load_checkpoint, save_checkpoint
from scaling.train.distributed import World, all_reduce_grads, barrier, broadcast_flag
from scaling.train.schedule import learning_rate


@dataclass
class Plan:
    """Step arithmetic of a run: how many steps, how many label tokens in the last one, when to evaluate."""

    tokens: int
    tokens_per_step: int
    n_steps: int
    last_step_tokens: int
    eval_steps: tuple[int, ...]

    @classmethod
    def of(cls, spec: RunSpec) -> "Plan":
        per = spec.train.batch_size * spec.data.context
        n_steps = math.ceil(spec.train.tokens / per)
        last = spec.train.tokens - (n_steps - 1) * per
        k = spec.train.eval_points
        evals = tuple(sorted({max(1, math.ceil(i * n_steps / k)) for i in range(1, k + 1)}))
        return cls(spec.train.tokens, per, n_steps, last, evals)


@dataclass
class Accounting:
    """Running totals of trained tokens by modality."""

    tokens: int = 0
    speech: int = 0
    text: int = 0
    marker: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"tokens": self.tokens, "tokens_speech": self.speech, "tokens_text": self.text, "tokens_marker": self.marker}


def measure_peak_flops(device: torch.device, seconds: float = 0.3) -> float:
    """fp32 (CPU) or bf16 (GPU) dense matmul FLOP/s measured now, on this device and thread count."""
    n = 1024 if device.type == "cuda" else 384
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        reps += 10
        if device.type == "cuda":
            torch.cuda.synchronize()
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


@dataclass
class Trainer:
    """Trains one run to its budget; see the module docstring for the conventions."""

    spec: RunSpec
    run: RunDir
    prep: Any  # scaling.data.PreparedData
    model: torch.nn.Module
    world: World = field(default_factory=World)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    micro_batch: int = 0  # windows per forward pass on this rank; 0 = the whole local batch
    checkpoint_seconds: float = 60.0
    log_every: int = 10
    should_stop: Callable[[], bool] = lambda: False
    on_eval: Callable[["Trainer", int], dict[str, float]] | None = None

    def __post_init__(self) -> None:
        self.plan = Plan.of(self.spec)
        counts = count_params(self.spec.model, self.prep.vocab_size, self.prep.n_added_vocab, self.spec.data.context)
        self.counts = counts
        self.flops = flops_per_token(self.spec.model, counts, self.prep.vocab_size, self.spec.data.context)
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.dim() < 2]
        t = self.spec.train
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=t.lr, betas=(t.beta1, t.beta2), eps=1e-8, foreach=True,
        )
        self.step = 0
        self.acc = Accounting()
        self.autocast = self.device.type == "cuda"

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "accounting": self.acc.as_dict(), "run_id": self.spec.run_id}

    def save(self) -> None:
        if self.world.is_main:
            save_checkpoint(self.run.checkpoint_dir, self.state_dict())
        barrier(self.world)

    def resume(self) -> bool:
        """Load the latest checkpoint if any; drop log rows written after it. True if resumed."""
        state = load_checkpoint(self.run.checkpoint_dir)
        if state is None:
            if self.world.is_main:  # a run restarted before its first checkpoint starts clean
                for f in (self.run.metrics_file, self.run.evals_file):
                    f.unlink(missing_ok=True)
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        a = state["accounting"]
        self.acc = Accounting(a["tokens"], a["tokens_speech"], a["tokens_text"], a["tokens_marker"])
        if self.world.is_main:
            rewrite_jsonl(self.run.metrics_file, lambda r: r["step"] <= self.step)
            rewrite_jsonl(self.run.evals_file, lambda r: r["step"] <= self.step)
        return True

    # ----------------------------------------------------------------- data
    def global_windows(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        b = self.spec.train.batch_size
        pairs = [self.prep.train_window(step * b + i) for i in range(b)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def accounting_of(self, target_mod: np.ndarray) -> None:
        self.acc.tokens += int((target_mod != PAD).sum())
        self.acc.speech += int((target_mod == SPEECH).sum())
        self.acc.text += int((target_mod == TEXT).sum())
        self.acc.marker += int((target_mod == MARKER).sum())

    # ----------------------------------------------------------------- steps
    def train_step(self) -> float:
        """One optimizer step on the global batch; returns its mean loss (over all ranks)."""
        step = self.step
        budget = self.plan.last_step_tokens if step == self.plan.n_steps - 1 else None
        ids, mod = self.global_windows(step)
        inputs, labels, target_mod = make_labels(ids, mod, self.spec.data.marker_loss, budget)
        n_label = int((labels != -100).sum())
        self.accounting_of(target_mod)
        b = self.spec.train.batch_size
        per_rank = b // self.world.size
        lo = self.world.rank * per_rank + min(self.world.rank, b % self.world.size)
        hi = lo + per_rank + (1 if self.world.rank < b % self.world.size else 0)
        micro = self.micro_batch or max(1, hi - lo)
        lr = learning_rate(self.spec.train, step, self.plan.n_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=False)
        loss_sum = torch.zeros((), device=self.device)
        for start in range(lo, hi, micro):
            x = inputs[start:min(hi, start + micro)].to(self.device)
            y = labels[start:min(hi, start + micro)].to(self.device)
            if not (y != -100).any():
                continue
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100, reduction="sum")
            (loss / n_label).backward()
            loss_sum += loss.detach()
        all_reduce_grads(self.model, self.world)
        if self.world.size > 1:
            torch.distributed.all_reduce(loss_sum)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
        self.optimizer.step()
        self.step += 1
        self.lr = lr
        return float(loss_sum) / n_label

    @torch.no_grad()
    def validation_losses(self) -> dict[str, float]:
        """Mean next-token loss on the validation windows: all targets, speech targets, text targets."""
        self.model.eval()
        ids, mod = self.prep.val_windows(limit=self.spec.train.val_windows)
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

    def evaluate(self, loss_train: float) -> dict[str, Any]:
        row = {**self.accounting_row(), "loss_train": loss_train, "time": now()}
        if self.world.is_main:
            row.update(self.validation_losses())
            if self.on_eval is not None:
                row.update(self.on_eval(self, self.step))
            append_jsonl(self.run.evals_file, row)
        barrier(self.world)
        return row

    # ----------------------------------------------------------------- main
    def fit(self, progress: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Train from the current step to the budget. Returns 'done', 'diverged' or 'stopped'."""
        peak = measure_peak_flops(self.device)
        self.model.to(self.device)
        last_ckpt = time.monotonic()
        window_start, window_tokens = time.perf_counter(), 0
        loss = float("nan")
        while self.step < self.plan.n_steps:
            tokens_before = self.acc.tokens
            loss = self.train_step()
            window_tokens += self.acc.tokens - tokens_before
            if not math.isfinite(loss):
                if self.world.is_main:
                    append_jsonl(self.run.evals_file, {**self.accounting_row(), "loss_train": None, "loss_val": None,
                                                       "diverged": True, "time": now()})
                    self.run.update_status(state="diverged", diverged_step=self.step, error=f"loss {loss} at step {self.step}", finished=now())
                return "diverged"
            if self.step % self.log_every == 0 or self.step in self.plan.eval_steps or self.step == self.plan.n_steps:
                elapsed = time.perf_counter() - window_start
                tps = window_tokens / elapsed if elapsed > 0 else 0.0
                row = {**self.accounting_row(), "loss_train": loss, "lr": self.lr, "tokens_per_s": tps,
                       "mfu": tps * self.flops["6nd"] / (peak * self.world.size), "peak_flops": peak}
                if self.world.is_main:
                    append_jsonl(self.run.metrics_file, row)
                    if progress:
                        progress(row)
                window_start, window_tokens = time.perf_counter(), 0
            if self.step in self.plan.eval_steps:
                self.evaluate(loss)
                self.save()
                last_ckpt = time.monotonic()
            elif broadcast_flag(self.should_stop() or time.monotonic() - last_ckpt > self.checkpoint_seconds, self.world, self.device):
                self.save()
                last_ckpt = time.monotonic()
                if broadcast_flag(self.should_stop(), self.world, self.device):
                    return "stopped"
        return "done"


def host_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "job_id": os.environ.get("SLURM_JOB_ID", "")}


def export_model(trainer: Trainer, directory: Path) -> None:
    """Save the trained model and its tokenizer as a local Hugging Face directory (atomic rename)."""
    import shutil

    from transformers import AutoTokenizer

    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(trainer.prep.tokenizer_dir).save_pretrained(tmp)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
