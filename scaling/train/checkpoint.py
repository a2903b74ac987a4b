"""Atomic checkpoints: model, optimizer, data position and RNG states in one file.

The file is written under a temporary name in the checkpoint directory and renamed over
``latest.pt``, so a kill at any moment leaves either the previous or the new checkpoint whole.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus RNG states) atomically to ``directory/latest.pt``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = dict(state, rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()})
    tmp = directory / f".latest.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / "latest.pt")
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
