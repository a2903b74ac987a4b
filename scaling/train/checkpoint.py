"""Atomic checkpoints: model, optimizer, data position and RNG states in one file.

The file is written under a temporary name in the checkpoint directory and renamed over
``latest.pt``, so a kill at any moment leaves either the previous or the new checkpoint whole.

A checkpoint holds tensors and plain data only (dicts, lists, numbers, strings; the RNG states
too: numpy's as a tensor of its key and plain numbers) and is loaded with ``weights_only=True``
(:func:`scaling.reading.load_tensors`): a checkpoint from someone else's store cannot run code. One
that holds anything else is refused (:class:`~scaling.reading.UnsafeFile`); one that cannot be read
(:class:`~scaling.reading.UnreadableFile`: truncated, damaged) is moved aside by
:func:`set_aside` so that the run can start again.

A run trained by several processes writes its tensors as a sharded checkpoint first
(:mod:`scaling.train.sharded`, also read without running code); its ``latest.pt`` holds the rest
and names that checkpoint.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaling.atomic import atomic_write
from scaling.reading import UnreadableFile, load_tensors
from scaling.train.faults import fault_point

LATEST = "latest.pt"


def rng_state() -> dict[str, Any]:
    """The torch, numpy and Python RNG states as tensors and plain data."""
    numpy = np.random.get_state(legacy=False)
    return {"torch": torch.get_rng_state(),
            "numpy": {**numpy, "state": {"key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)), "pos": numpy["state"]["pos"]}},
            "python": random.getstate()}


def set_rng_state(rng: dict[str, Any]) -> None:
    """Restore the states :func:`rng_state` returned (numpy's also in the legacy tuple form of
    checkpoints written before they held plain data only)."""
    torch.set_rng_state(rng["torch"])
    numpy = rng["numpy"]
    if isinstance(numpy, dict):
        numpy = {**numpy, "state": {"key": numpy["state"]["key"].numpy().astype(np.uint32), "pos": numpy["state"]["pos"]}}
    np.random.set_state(numpy)
    random.setstate(rng["python"])


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus RNG states) atomically to ``directory/latest.pt``."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / LATEST, dict(state, rng=rng_state()))
    return directory / LATEST


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The latest checkpoint with RNG states restored, or None when there is none. Raises
    :class:`~scaling.reading.UnsafeFile` or :class:`~scaling.reading.UnreadableFile` (see the
    module docstring)."""
    path = directory / LATEST
    if not path.exists():
        return None
    state = load_tensors(path)
    if not isinstance(state, dict) or not {"tensors", "sharded"} & state.keys():
        raise UnreadableFile(f"checkpoint {str(path)!r} holds no model state; expected a checkpoint written by scaling")
    if state.get("rng"):
        set_rng_state(state["rng"])
    return state


def set_aside(directory: Path) -> Path:
    """Move ``latest.pt`` aside as ``latest.pt.corrupt-<UTC time>`` (kept for inspection, never
    read again); returns the new path."""
    aside = directory / f"{LATEST}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    os.replace(directory / LATEST, aside)
    return aside


def _write(path: Path, obj: Any) -> None:
    def write(f) -> None:
        torch.save(obj, f)
        fault_point("checkpoint", path)

    atomic_write(path, write)
