"""Atomic checkpoints: model, optimizer, data position and RNG states in one file.

The file is written under a temporary name in the checkpoint directory and renamed over
``latest.pt``, so a kill at any moment leaves either the previous or the new checkpoint whole.

A run trained by several processes keeps AdamW's state sharded (ZeRO-1): each rank also writes
``optimizer-<tag>.rank<r>.pt`` before ``latest.pt`` names ``tag``, and removes its older shards
only after, so ``latest.pt`` always names shards that exist.
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


def _shard_path(directory: Path, tag: str, rank: int) -> Path:
    return directory / f"optimizer-{tag}.rank{rank}.pt"


def save_shard(directory: Path, tag: str, rank: int, shard: dict[str, Any]) -> None:
    """Write this rank's optimizer shard of checkpoint ``tag`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(_shard_path(directory, tag, rank), shard)


def load_shard(directory: Path, tag: str, rank: int) -> dict[str, Any]:
    return torch.load(_shard_path(directory, tag, rank), map_location="cpu", weights_only=False)


def drop_shards(directory: Path, rank: int, keep: str) -> None:
    """Remove this rank's shards of every checkpoint but ``keep``."""
    for path in directory.glob(f"optimizer-*.rank{rank}.pt"):
        if path != _shard_path(directory, keep, rank):
            path.unlink(missing_ok=True)
