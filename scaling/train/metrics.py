"""The rows a run logs: what they hold, how they are written, and the speed and MFU they report.

* Every row carries the accounting of its point (:func:`accounting_row`): step, trained tokens by
  modality, parameter counts, and FLOPs so far in each convention (``flops_6nd`` = 6·N_total·tokens,
  ``flops_6nd_nonembed`` = 6·N_non_embedding·tokens, ``flops_exact``; :mod:`scaling.models.flops`).
* Evaluation rows say where a decay branch left the trunk and what it cost (:func:`branch_row`).
* Metrics rows add ``loss_train``, ``lr``, ``tokens_per_s`` over the steps since the last row, and
  ``mfu`` = 6·N_total·tokens/s over the fp32 (CPU) or bf16 (GPU) matmul peak measured at start
  (:func:`measure_peak_flops`), summed over ranks.
* :class:`RowLog` appends whole lines to ``metrics.jsonl`` / ``evals.jsonl``, counts them for the
  checkpoint, and cuts the logs back to a checkpoint's counts on resume; every row is also given to
  the run's mirrors (:mod:`scaling.train.mirrors`), when it has some.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from scaling.models import ParamCounts
from scaling.runs.timeline import Timeline
from scaling.store import RunDir, append_jsonl, rewrite_jsonl
from scaling.train.state import Tokens

LOGS = ("metrics", "evals")


def accounting_row(step: int, tokens: Tokens, counts: ParamCounts, flops_per_token: dict[str, float]) -> dict[str, Any]:
    """Step, tokens by modality, parameter counts and FLOPs so far of a point."""
    t = tokens.total
    return {"step": step, **tokens.as_dict(), "params_total": counts.total, "params_non_embedding": counts.non_embedding,
            "params_embedding": counts.embedding, "params_embedding_speech": counts.embedding_speech,
            "flops_6nd": flops_per_token["6nd"] * t, "flops_6nd_nonembed": flops_per_token["6nd_nonembed"] * t,
            "flops_exact": flops_per_token["exact"] * t}


def branch_row(branch: int | None, trunk: dict[str, Any] | None, tokens: Tokens, flops_per_token: dict[str, float]) -> dict[str, Any]:
    """Where the branch in progress left the trunk and what it cost beyond it; ``branch`` false on the trunk."""
    if branch is None:
        return {"branch": False}
    cost = tokens.total - trunk["accounting"]["tokens"]
    return {"branch": True, "branch_from_step": trunk["step"], "branch_from_tokens": trunk["accounting"]["tokens"],
            "branch_cost_tokens": cost, **{f"branch_cost_flops_{k}": flops_per_token[k] * cost for k in ("6nd", "6nd_nonembed", "exact")}}


def spent(timeline: Timeline, flops_per_token: dict[str, float]) -> dict[str, float]:
    """Compute the whole run spends, trunk and branches: tokens trained and FLOPs in each convention."""
    tokens = timeline.tokens_spent
    return {"tokens_spent": tokens, "flops_6nd_spent": flops_per_token["6nd"] * tokens,
            "flops_6nd_nonembed_spent": flops_per_token["6nd_nonembed"] * tokens, "flops_exact_spent": flops_per_token["exact"] * tokens}


def progress_line(row: dict[str, Any]) -> str:
    """One line for people per metrics row: step, tokens, training loss, speed."""
    return f"step {row['step']} tokens {row['tokens']} loss {row['loss_train']:.4f} {row['tokens_per_s']:.0f} tok/s"


class RowLog:
    """The run's ``metrics.jsonl`` and ``evals.jsonl`` as a trainer writes them; ``written`` counts
    the rows of each (saved in every checkpoint); ``mirror(kind, row)`` gets every row too."""

    def __init__(self, run: RunDir, mirror: Callable[[str, dict[str, Any]], None] | None = None):
        self.run, self.mirror = run, mirror
        self.written = {kind: 0 for kind in LOGS}

    def path(self, kind: str):
        return self.run.metrics_file if kind == "metrics" else self.run.evals_file

    def append(self, kind: str, row: dict[str, Any]) -> None:
        """Append one whole line to log ``kind`` (``metrics`` or ``evals``)."""
        append_jsonl(self.path(kind), row)
        self.written[kind] += 1
        if self.mirror is not None:
            self.mirror(kind, row)

    def clear(self) -> None:
        """Remove both logs (a run restarted before its first checkpoint starts clean)."""
        for kind in LOGS:
            self.path(kind).unlink(missing_ok=True)

    def cut_to_written(self) -> None:
        """Cut each log back to its first ``written[kind]`` rows (on resume: those the checkpoint counted)."""
        for kind in LOGS:
            kept = iter(range(self.written[kind]))
            rewrite_jsonl(self.path(kind), lambda row: next(kept, None) is not None)


class Throughput:
    """Trained tokens per second since the last :meth:`rate` call."""

    def __init__(self) -> None:
        self.start, self.tokens = time.perf_counter(), 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def rate(self) -> float:
        """Tokens per second of the window now closing; a new window starts."""
        elapsed = time.perf_counter() - self.start
        rate = self.tokens / elapsed if elapsed > 0 else 0.0
        self.start, self.tokens = time.perf_counter(), 0
        return rate


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
