"""Test-suite set-up: offline Hugging Face, and the ``slurm`` marker.

Tests marked ``@pytest.mark.slurm`` run against a real SLURM cluster reachable from this machine
(in CI, the one-node cluster that ``.ci/slurm-up.sh`` starts). When none answers they are skipped
with the reason, so the suite passes on machines without SLURM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@lru_cache(maxsize=1)
def slurm_missing() -> str:
    """Why the SLURM tests cannot run here ('' when a controller answers and the node accepts jobs)."""
    if not shutil.which("sbatch") or not shutil.which("srun"):
        return "no SLURM client commands on PATH (start a local cluster with `bash .ci/slurm-up.sh`, as root)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
        nodes = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"SLURM controller not answering ({exc})"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return "no SLURM controller answers `scontrol ping` (start one with `bash .ci/slurm-up.sh`, as root)"
    if not any(state.strip().rstrip("*") in ("idle", "mixed", "allocated") for state in nodes.stdout.splitlines()):
        return f"no SLURM node is up (sinfo says: {nodes.stdout.strip() or 'nothing'})"
    return ""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slurm") and slurm_missing():
            item.add_marker(pytest.mark.skip(reason=f"needs a SLURM cluster: {slurm_missing()}"))
