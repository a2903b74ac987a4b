"""Mirrors: a run's metrics and evaluation rows, also where researchers watch them.

The store stays the source of truth (``metrics.jsonl``, ``evals.jsonl``); a mirror is a copy for
viewing, set per sweep (:class:`scaling.spec.MirrorSpec`) and off by default:

* TensorBoard (``torch.utils.tensorboard``): every numeric field of a row as a scalar, under
  ``train/<field>`` (metrics rows) or ``eval/<field>`` (evaluation rows, a decay branch's under
  ``branch/<field>``), against the row's step; event files in
  ``<store>/tensorboard/<run name>_<run id>/`` (``tensorboard --logdir <store>/tensorboard``).
* Weights & Biases, offline: one W&B run per run (id = run id, name = run name, group = its sweep,
  config = its spec) in ``<store>/wandb/``; ``wandb sync <store>/wandb/offline-run-*`` uploads it.
  ``wandb`` is imported only when a sweep asks for it.

A mirror that fails (a missing package, a full disk, a W&B error) prints one line and is dropped;
it never fails the run. A run resumed from a checkpoint mirrors again the rows after that
checkpoint (the store drops them, a mirror cannot).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

from scaling.spec import MirrorSpec, RunSpec, to_dict
from scaling.store import RunDir


class TensorBoardMirror:
    def __init__(self, run: RunDir, spec: RunSpec):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run.path.parents[1] / "tensorboard" / f"{spec.name}_{spec.run_id}"))

    def __call__(self, kind: str, row: dict[str, Any]) -> None:
        for key, value in _numbers(row).items():
            if key != "step":
                self.writer.add_scalar(f"{_section(kind, row)}/{key}", value, global_step=row["step"])

    def close(self) -> None:
        self.writer.close()


class WandbMirror:
    def __init__(self, run: RunDir, spec: RunSpec, project: str):
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        directory = run.path.parents[1]
        self.run = wandb.init(project=project, id=spec.run_id, name=spec.name, group=spec.sweep or None, config=to_dict(spec),
                              dir=str(directory), mode="offline", resume="allow", reinit="create_new")

    def __call__(self, kind: str, row: dict[str, Any]) -> None:
        self.run.log({f"{_section(kind, row)}/{k}": v for k, v in _numbers(row).items()})

    def close(self) -> None:
        self.run.finish()


def guarded(name: str, call: Callable[[], Any], say: Callable[[str], None]) -> bool:
    """Run ``call()`` for mirror ``name``; if it raises, say so in one line and return False."""
    try:
        call()
        return True
    except Exception as exc:  # a mirror must never fail the run: report it, go on without it
        hint = f" (pip install 'scaling[{name}]')" if isinstance(exc, ImportError) else ""
        say(f"mirror {name} failed ({type(exc).__name__}: {exc}){hint}; it is dropped, the store keeps every row")
        return False


class Mirrors:
    """The open mirrors of one run by name, called with (kind, row) for every row the run writes
    (``metrics`` or ``evals``); one that raises is reported with ``say`` and dropped."""

    def __init__(self, mirrors: dict[str, Any], say: Callable[[str], None] = print):
        self.mirrors, self.say = mirrors, say

    def __call__(self, kind: str, row: dict[str, Any]) -> None:
        for name, mirror in list(self.mirrors.items()):
            if not guarded(name, lambda: mirror(kind, row), self.say):
                del self.mirrors[name]

    def close(self) -> None:
        for name, mirror in self.mirrors.items():
            guarded(name, lambda: mirror.close(), self.say)


def open_mirrors(run: RunDir, spec: RunSpec, settings: MirrorSpec, say: Callable[[str], None] = print) -> Mirrors | None:
    """The mirrors ``settings`` asks for (None when none); one that cannot start is reported and left out."""
    makers = {"tensorboard": lambda: TensorBoardMirror(run, spec), "wandb": lambda: WandbMirror(run, spec, settings.wandb)}
    wanted = [name for name, on in (("tensorboard", settings.tensorboard), ("wandb", bool(settings.wandb))) if on]
    opened: dict[str, Any] = {}
    for name in wanted:
        guarded(name, lambda name=name: opened.__setitem__(name, makers[name]()), say)
    return Mirrors(opened, say) if wanted else None


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    """The finite numeric fields of a row (booleans and strings left out), ``step`` too."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _section(kind: str, row: dict[str, Any]) -> str:
    return "train" if kind == "metrics" else "branch" if row.get("branch") else "eval"
