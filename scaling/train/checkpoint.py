"""Atomic checkpoints: model, optimizer, data position and RNG states in one file.

The file is written under a temporary name in the checkpoint directory and renamed over
``latest.pt``, so a kill at any moment leaves either the previous or the new checkpoint whole.

A run trained by several processes writes its tensors as a sharded checkpoint first
(:mod:`scaling.train.sharded`); its ``latest.pt`` holds the rest and names that checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaling.atomic import atomic_write


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus RNG states) atomically to ``directory/latest.pt``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = dict(state, rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()})
    _write(directory / "latest.pt", state)
    return directory / "latest.pt"


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The latest checkpoint with RNG states restored, or None when there is none."""
    path = directory / "latest.pt"
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    rng = state.get("rng")
    if rng:
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    return state


def _write(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))

