"""Code snapshots: the ``scaling`` package copied into the store at launch, so that queued jobs run
the code of their launch even if the checkout is edited (or switched to another branch) afterwards.

A snapshot is content-addressed: ``<store>/slurm/code/<id>/scaling/``, where ``id`` is 12 hex
characters of SHA-256 over every file of the package (relative path and bytes; ``__pycache__``
left out). Launching unchanged code again reuses the snapshot. Jobs start with their working
directory and ``PYTHONPATH`` set to ``<store>/slurm/code/<id>``, which puts the copy ahead of the
installed (or editable) package. The git commit of the checkout, with ``+dirty`` when the
package has uncommitted changes, is recorded next to the id in the manifest.

Each launch removes the snapshots that no open job of the manifest uses any more
(:func:`prune_snapshots`, under the store's launch lock), so a store keeps one copy per code
version still queued or running, not one per launch ever made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scaling.store import Store


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of the package: its id, the directory to import it from, the checkout's commit."""

    id: str
    path: Path
    commit: str


def package_dir() -> Path:
    """The directory of the ``scaling`` package this process imported (this file is ``scaling/launch/snapshot.py``)."""
    return Path(__file__).resolve().parents[1]


def package_files(root: Path) -> list[Path]:
    """Files of the package below ``root``, sorted, without byte-code caches."""
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def content_id(root: Path) -> str:
    """12 hex characters of SHA-256 over the relative paths and bytes of the package's files."""
    digest = hashlib.sha256()
    for path in package_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def git_commit(root: Path) -> str:
    """'<commit>' or '<commit>+dirty' of the checkout holding ``root``; '' outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def snapshot_code(store: Store) -> Snapshot:
    """Copy the imported ``scaling`` package into the store (once per distinct content)."""
    source = package_dir()
    sid = content_id(source)
    target = (store.root / "slurm" / "code" / sid).resolve()
    if not (target / "scaling").is_dir():
        tmp = target.with_name(f".{sid}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "scaling").mkdir(parents=True)
        for path in package_files(source):
            dest = tmp / "scaling" / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        try:
            os.rename(tmp, target)
        except OSError:  # another launch made the same snapshot first
            shutil.rmtree(tmp, ignore_errors=True)
    return Snapshot(sid, target, git_commit(source))


def prune_snapshots(store: Store, keep: set[str]) -> list[str]:
    """Remove ``<store>/slurm/code/<id>`` for every id not in ``keep`` (the snapshots of open jobs),
    and leftovers of interrupted copies; returns the removed ids. Call it under the launch lock."""
    code = store.root / "slurm" / "code"
    removed = []
    if code.is_dir():
        for path in sorted(code.iterdir()):
            stale_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            if path.is_dir() and (stale_tmp or path.name not in keep):
                shutil.rmtree(path, ignore_errors=True)
                if not stale_tmp:
                    removed.append(path.name)
    return removed
