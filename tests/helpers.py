"""Shared test helpers: tiny sweeps and stores that share one data cache."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import yaml

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def write_sweep(path: Path, store: Path, *, name: str = "t", sizes=("20k",), tokens=(8192,), mode: str = "text",
                extra_base: dict | None = None, variants: list | None = None, budget: dict | None = None) -> Path:
    """A tiny sweep file on the ``tiny`` corpus (context 32, batch 8)."""
    base = {"model": {"family": "llama"}, "data": {"corpus": "tiny", "context": 32, "mode": mode},
            "train": {"batch_size": 8, "eval_points": 4, "val_windows": 8, "lr": 3e-3}}
    for key, value in (extra_base or {}).items():
        base.setdefault(key, {}).update(value) if isinstance(value, dict) else base.__setitem__(key, value)
    config = {"name": name, "store": str(store), "base": base, "grid": {"model.size": list(sizes)},
              "budget": budget or {"tokens": list(tokens)}}
    if variants:
        config["variants"] = variants
    path.write_text(yaml.safe_dump(config))
    return path


def link_cache(store: Path, cache: Path) -> None:
    """Make ``store`` use the shared data cache ``cache`` (built once per test session)."""
    store.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not (store / "cache").exists():
        os.symlink(cache, store / "cache")


def scaling(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run the `scaling` CLI in a subprocess; returns the completed process (text mode)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.run([PYTHON, "-m", "scaling.cli", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, **kw)


@contextlib.contextmanager
def rendezvous(world_size: int) -> Iterator[dict[str, str]]:
    """A torch.distributed rendezvous store served by this process on a port the OS assigns it (as
    torchrun's agent serves one), so no port is guessed free and then raced for. Yields the
    environment that ``world_size`` ranks need to join it (every rank connects as a client)."""
    from torch.distributed import TCPStore

    store = TCPStore("127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False)
    try:
        yield {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(store.port), "TORCHELASTIC_USE_AGENT_STORE": "True"}
    finally:
        del store
