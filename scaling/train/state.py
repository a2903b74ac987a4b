"""Where a run stands, and its checkpoint: step and trained tokens of the line in progress (the
trunk, or a decay branch with the trunk set aside), which branches are done, and how many rows
the run's logs hold; saved atomically and resumed exactly.

A *line* is the state one stretch of training carries: model weights, this rank's optimizer state,
the step and the tokens trained (:class:`Tokens`). While a decay branch trains, the trunk's line is
kept on the host (CPU copies) and restored when the branch ends (:mod:`scaling.runs.timeline`).

The checkpoint (``latest.pt``, :mod:`scaling.train.checkpoint`) holds the trunk's line, the branch
in progress with its own line, ``next_branch``, the log row counts and the run id. With several
ranks each rank first writes its optimizer shard, then rank 0 the rest naming the shards' tag, so
that a kill at any moment leaves a whole checkpoint whose shards all exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaling.data import MARKER, PAD, SPEECH, TEXT
from scaling.errors import UserError
from scaling.reading import UnreadableFile
from scaling.train.checkpoint import LATEST, drop_shards, load_checkpoint, load_shard, save_checkpoint, save_shard, set_aside
from scaling.train.distributed import World, barrier, broadcast_flag


@dataclass
class Tokens:
    """Running totals of trained (label) tokens: all of them, and by the modality of the target."""

    total: int = 0
    speech: int = 0
    text: int = 0
    marker: int = 0

    def add(self, target_mod: np.ndarray) -> None:
        """Count the label positions of a batch by their target modality (``PAD`` carries no label)."""
        self.total += int((target_mod != PAD).sum())
        self.speech += int((target_mod == SPEECH).sum())
        self.text += int((target_mod == TEXT).sum())
        self.marker += int((target_mod == MARKER).sum())

    def as_dict(self) -> dict[str, int]:
        """The results table's names: tokens, tokens_speech, tokens_text, tokens_marker."""
        return {"tokens": self.total, "tokens_speech": self.speech, "tokens_text": self.text, "tokens_marker": self.marker}

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> "Tokens":
        return cls(d["tokens"], d["tokens_speech"], d["tokens_text"], d["tokens_marker"])


def cpu_copy(obj: Any) -> Any:
    """A deep copy of nested dicts / lists of tensors, with every tensor cloned to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class TrainingState:
    """The state of one run's training on this rank (see the module docstring).

    ``model`` and ``optimizer`` (this rank's, see :attr:`scaling.train.parallel.Parallel.local_optimizer`)
    are read and written in place; ``directory`` is the run's checkpoint directory.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, world: World, directory: Path, run_id: str):
        self.model, self.optimizer, self.world, self.directory, self.run_id = model, optimizer, world, directory, run_id
        self.step = 0
        self.tokens = Tokens()
        self.branch: int | None = None  # index of the decay branch being trained
        self.next_branch = 0  # branches before this index are done
        self.trunk: dict[str, Any] | None = None  # the trunk's line while a branch trains
        self.discarded: str | None = None  # why resume set an unreadable checkpoint aside (one line), if it did

    def line(self) -> dict[str, Any]:
        """The line in progress: weights, this rank's optimizer state, step, tokens."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "accounting": self.tokens.as_dict()}

    def load_line(self, line: dict[str, Any]) -> None:
        self.model.load_state_dict(line["model"])
        self.optimizer.load_state_dict(line["optimizer"])
        self.step = line["step"]
        self.tokens = Tokens.from_dict(line["accounting"])

    def enter_branch(self) -> None:
        """Set the trunk's line aside (on the host) and start the next decay branch from it."""
        self.trunk = cpu_copy(self.line())
        self.branch = self.next_branch

    def leave_branch(self) -> None:
        """Drop the branch and restore the trunk's line."""
        self.load_line(self.trunk)
        self.trunk, self.branch = None, None
        self.next_branch += 1

    def state_dict(self, rows_written: dict[str, int]) -> dict[str, Any]:
        """The trunk's line, progress through the branches and logs, and the branch in progress (if any)."""
        trunk = self.line() if self.branch is None else self.trunk
        branch = None if self.branch is None else {"index": self.branch, "line": self.line()}
        return {**trunk, "next_branch": self.next_branch, "branch": branch, "rows": dict(rows_written), "run_id": self.run_id}

    def save(self, rows_written: dict[str, int]) -> None:
        """Checkpoint atomically (every rank calls it; see the module docstring for several ranks)."""
        state = self.state_dict(rows_written)
        if self.world.size > 1:
            tag = f"{self.next_branch}-{self.branch}-{self.step}"
            shard = {"trunk": state.pop("optimizer"), "branch": state["branch"] and state["branch"]["line"].pop("optimizer")}
            save_shard(self.directory, tag, self.world.rank, shard)
            barrier(self.world)
            state["shards"] = {"tag": tag, "world_size": self.world.size}
        if self.world.is_main:
            save_checkpoint(self.directory, state)
        barrier(self.world)
        if self.world.size > 1:
            drop_shards(self.directory, self.world.rank, keep=state["shards"]["tag"])

    def resume(self) -> dict[str, int] | None:
        """Load the latest checkpoint, if any; returns the rows the run's logs held at it (None
        without a checkpoint). UserError when it was written by another number of processes, or
        holds objects other than tensors and plain data. A checkpoint that cannot be read (on any
        rank) is moved aside by rank 0 and every rank starts again from scratch;
        :attr:`discarded` then says so in one line."""
        try:
            state, problem = self._read_checkpoint(), None
        except UnreadableFile as exc:
            state, problem = None, str(exc)
        if broadcast_flag(problem is not None, self.world, next(self.model.parameters()).device):
            aside = set_aside(self.directory).name if self.world.is_main and (self.directory / LATEST).exists() else None
            self.discarded = (f"{problem or 'another process could not read its part of the checkpoint'}; "
                              + (f"moved aside to {aside}, " if aside else "") + "training starts again from scratch")
            return None
        if state is None:
            return None
        if state["branch"] is None:
            self.load_line(state)
        else:
            self.trunk = {k: state[k] for k in ("model", "optimizer", "step", "accounting")}
            self.branch = state["branch"]["index"]
            self.load_line(state["branch"]["line"])
        self.next_branch = state["next_branch"]
        return dict(state["rows"])

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint with this rank's optimizer shard in place, or None."""
        state = load_checkpoint(self.directory)
        shards = state and state.pop("shards", None)
        if state is not None and (shards or {}).get("world_size", 1) != self.world.size:
            raise UserError(f"the checkpoint in {self.directory} was written by {(shards or {}).get('world_size', 1)} "
                            f"process(es), each holding its share of the optimizer state; expected to resume with as many, not {self.world.size}")
        if shards:
            shard = load_shard(self.directory, shards["tag"], self.world.rank)
            state["optimizer"] = shard["trunk"]
            if state["branch"] is not None:
                state["branch"]["line"]["optimizer"] = shard["branch"]
        return state
