"""Where a run stands, and its checkpoint: step and trained tokens of the line in progress (the
trunk, or a decay branch with the trunk set aside), which branches are done, and how many rows
the run's logs hold; saved atomically and resumed exactly.

A *line* is the state one stretch of training carries: its tensors, the step and the tokens trained
(:class:`Tokens`). Tensors are named strategy-neutrally (:meth:`TrainingState.tensors`):
``model.<name>`` for every weight (by its name in the causal LM) and
``optim.<parameter>.<exp_avg|exp_avg_sq|step>`` for AdamW's state of the parameters this rank's
optimizer holds; under fsdp they are sharded DTensors. While a decay branch trains, the trunk's
line is kept on the host (this rank's pieces, on the CPU) and restored when the branch ends
(:mod:`scaling.runs.timeline`).

The checkpoint's small state (``latest.pt``, :mod:`scaling.train.checkpoint`: step, tokens,
``next_branch``, the branch in progress, the log row counts, the run id) is written by the main
rank. Its tensors: one process writes them into ``latest.pt`` itself; several write them as a
sharded checkpoint (:mod:`scaling.train.sharded`, keys ``trunk/…`` and, in a branch, ``branch/…``)
first, and ``latest.pt`` names it only once every shard is complete, so a kill at any moment
leaves a whole checkpoint. A sharded checkpoint resumes on any number of processes (resharded);
one written whole by one process resumes on one process.
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
from scaling.train.checkpoint import LATEST, load_checkpoint, save_checkpoint, set_aside
from scaling.train.distributed import barrier, broadcast_flag
from scaling.train.parallel import Parallel
from scaling.train.sharded import drop_others, load_sharded, save_sharded


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


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's piece of a tensor (a DTensor's local shard; a plain tensor itself)."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def host_copy(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A CPU clone of this rank's piece of every tensor."""
    return {name: local_part(t).detach().to("cpu", copy=True) for name, t in tensors.items()}


def like(host: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """The host piece ``host`` as a tensor shaped and sharded like ``live`` (a DTensor passes through
    ``live``'s device; a plain tensor stays on the host)."""
    if not hasattr(live, "to_local"):
        return host
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(host.to(live.device), live.device_mesh, live.placements, run_check=False,
                              shape=live.shape, stride=live.stride())


def check_whole(directory: Path, stored: dict[str, torch.Tensor], live: dict[str, torch.Tensor]) -> None:
    """UserError (one line) when a checkpoint written whole lacks a tensor of the model or holds it
    with another shape: it was written for another model."""
    for name, tensor in live.items():
        held = stored.get(name)
        if held is None or tuple(held.shape) != tuple(tensor.shape):
            what = "nothing" if held is None else f"shape {tuple(held.shape)}"
            raise UserError(f"the checkpoint in {directory} holds {what} for {name}, but the model has shape {tuple(tensor.shape)}: "
                            "it was written for another model config; expected the run's own checkpoint")


def model_tensors(lm: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The causal LM's weights and buffers by name; a tied output layer only once (it is its input
    embedding, named as that)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in lm.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out[name] = tensor
    return out


@torch.no_grad()
def load_trunk_weights(checkpoint: Path, state: dict[str, Any], lm: torch.nn.Module) -> None:
    """Fill ``lm`` (one process, plain tensors) with the weights of the trunk's line of ``state``,
    the checkpoint read from ``checkpoint`` (a run's ``latest.pt``), written whole or sharded;
    UserError (one line) when they were written for another model."""
    live = {f"model.{name}": tensor for name, tensor in model_tensors(lm).items()}
    if "sharded" in state:
        load_sharded(checkpoint.parent, state["sharded"]["tag"], {f"trunk/{name}": t for name, t in live.items()})
        return
    check_whole(checkpoint.parent, state["tensors"], live)
    for name, tensor in live.items():
        tensor.copy_(state["tensors"][name])


class TrainingState:
    """The state of one run's training on this rank (see the module docstring). The model and this
    rank's optimizer (``parallel``) are read and written in place; ``directory`` is the run's
    checkpoint directory."""

    def __init__(self, parallel: Parallel, directory: Path, run_id: str):
        self.parallel, self.world, self.directory, self.run_id = parallel, parallel.world, directory, run_id
        self.step = 0
        self.tokens = Tokens()
        self.branch: int | None = None  # index of the decay branch being trained
        self.next_branch = 0  # branches before this index are done
        self.trunk: dict[str, Any] | None = None  # the trunk's line (host copies) while a branch trains
        self.discarded: str | None = None  # why resume set an unreadable checkpoint aside (one line), if it did

    def tensors(self) -> dict[str, torch.Tensor]:
        """The live tensors of this rank, by name (see the module docstring); AdamW's state is
        created (zeros, step 0, as AdamW's first step would) where it does not exist yet."""
        out = {f"model.{name}": tensor for name, tensor in model_tensors(self.parallel.lm).items()}
        names = {id(p): name for name, p in self.parallel.lm.named_parameters()}
        optimizer = self.parallel.local_optimizer
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state[p]
                if not state:
                    state.update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                                 exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                                 exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format))
                for key in ("step", "exp_avg", "exp_avg_sq"):
                    out[f"optim.{names[id(p)]}.{key}"] = state[key]
        return out

    def line(self) -> dict[str, Any]:
        """The line in progress: live tensors, step, tokens."""
        return {"tensors": self.tensors(), "step": self.step, "accounting": self.tokens.as_dict()}

    @torch.no_grad()
    def load_line(self, line: dict[str, Any]) -> None:
        """Make ``line`` (tensors by name, whole or this rank's pieces) the line in progress."""
        live = self.tensors()
        for name, tensor in line["tensors"].items():
            local_part(live[name]).copy_(local_part(tensor))
        self.step = line["step"]
        self.tokens = Tokens.from_dict(line["accounting"])

    def enter_branch(self) -> None:
        """Set the trunk's line aside (on the host) and start the next decay branch from it."""
        line = self.line()
        self.trunk = {**line, "tensors": host_copy(line["tensors"])}
        self.branch = self.next_branch

    def leave_branch(self) -> None:
        """Drop the branch and restore the trunk's line."""
        self.load_line(self.trunk)
        self.trunk, self.branch = None, None
        self.next_branch += 1

    def progress(self, rows_written: dict[str, int]) -> dict[str, Any]:
        """What ``latest.pt`` holds besides tensors: the trunk's step and tokens, the branch in
        progress (index, step, tokens), progress through the branches, log rows, run id."""
        trunk = self.line() if self.branch is None else self.trunk
        branch = None if self.branch is None else {"index": self.branch, "step": self.step, "accounting": self.tokens.as_dict()}
        return {"step": trunk["step"], "accounting": trunk["accounting"], "next_branch": self.next_branch, "branch": branch,
                "rows": dict(rows_written), "run_id": self.run_id}

    def save(self, rows_written: dict[str, int]) -> None:
        """Checkpoint atomically (every rank calls it; see the module docstring)."""
        state = self.progress(rows_written)
        live = self.tensors()
        trunk = live if self.branch is None else {n: like(t, live[n]) for n, t in self.trunk["tensors"].items()}
        if self.world.size == 1:
            state["tensors"] = trunk
            if self.branch is not None:
                state["branch"]["tensors"] = live
            save_checkpoint(self.directory, state)
            return
        tag = f"{self.next_branch}-{self.branch}-{self.step}"
        tensors = {f"trunk/{n}": t for n, t in trunk.items()}
        if self.branch is not None:
            tensors.update({f"branch/{n}": t for n, t in live.items()})
        save_sharded(self.directory, tag, tensors)
        if self.world.is_main:
            save_checkpoint(self.directory, {**state, "sharded": {"tag": tag, "world_size": self.world.size}})
        barrier(self.world)
        if self.world.is_main:
            drop_others(self.directory, keep=tag)

    def resume(self) -> dict[str, int] | None:
        """Load the latest checkpoint, if any; returns the rows the run's logs held at it (None
        without a checkpoint). UserError when one process's whole checkpoint meets several ranks, or
        when the checkpoint holds objects other than tensors and plain data. A checkpoint that cannot
        be read (on any rank) is moved aside by rank 0 and every rank starts again from scratch;
        :attr:`discarded` then says so in one line."""
        try:
            state, problem = load_checkpoint(self.directory), None
        except UnreadableFile as exc:
            state, problem = None, str(exc)
        if broadcast_flag(problem is not None, self.world, next(self.parallel.lm.parameters()).device):
            aside = set_aside(self.directory).name if self.world.is_main and (self.directory / LATEST).exists() else None
            self.discarded = (f"{problem or 'another process could not read its part of the checkpoint'}; "
                              + (f"moved aside to {aside}, " if aside else "") + "training starts again from scratch")
            return None
        if state is None:
            return None
        live = self.tensors()
        branch = state["branch"]
        if "sharded" in state:
            trunk = live if branch is None else {n: torch.empty_like(t, device=t.device if hasattr(t, "to_local") else "cpu")
                                                 for n, t in live.items()}
            tensors = {f"trunk/{n}": t for n, t in trunk.items()}
            if branch is not None:
                tensors.update({f"branch/{n}": t for n, t in live.items()})
            load_sharded(self.directory, state["sharded"]["tag"], tensors)
            trunk_tensors, branch_tensors = (live, None) if branch is None else (trunk, live)
        elif self.world.size > 1:
            raise UserError(f"the checkpoint in {self.directory} was written whole by one process; expected to resume it "
                            f"with one process, not {self.world.size} (checkpoints of several processes resume on any number)")
        else:
            trunk_tensors, branch_tensors = state["tensors"], branch and branch["tensors"]
            for tensors in filter(None, (trunk_tensors, branch_tensors)):
                check_whole(self.directory, tensors, live)
        trunk_line = {"tensors": trunk_tensors, "step": state["step"], "accounting": state["accounting"]}
        if branch is None:
            if trunk_tensors is not live:
                self.load_line(trunk_line)
            self.step, self.tokens = state["step"], Tokens.from_dict(state["accounting"])
        else:
            self.trunk = {**trunk_line, "tensors": host_copy(trunk_tensors)}
            self.branch = branch["index"]
            if branch_tensors is not live:
                self.load_line({"tensors": branch_tensors, "step": branch["step"], "accounting": branch["accounting"]})
            self.step, self.tokens = branch["step"], Tokens.from_dict(branch["accounting"])
        self.next_branch = state["next_branch"]
        return dict(state["rows"])
