"""Content-addressed build cache: build a directory once, share it between runs and processes.

A cached artefact lives in ``<cache_root>/<kind>/<key>`` where ``key`` is a hash of everything that
determines its content (``recipe``, a JSON-able mapping that includes :data:`FORMAT_VERSION`). A
build writes into a private temporary directory beside the target and renames it into place, so a
reader never sees a half-built directory; an advisory file lock makes a second process that asks
for the same artefact wait for the first instead of building it again. If the lock is unavailable
(some network file systems), both build and the first rename wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

#: bump when the layout of any cached artefact changes, so that old caches are never reused.
FORMAT_VERSION = 1


def content_key(recipe: dict[str, Any]) -> str:
    """16 hex characters of SHA-256 over the canonical JSON of ``recipe`` and the format version."""
    text = json.dumps({"format": FORMAT_VERSION, **recipe}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_path(cache_root: Path, kind: str, recipe: dict[str, Any]) -> Path | None:
    """The built ``<cache_root>/<kind>/<key>`` of ``recipe``, or None if it is not built yet."""
    target = Path(cache_root) / kind / content_key(recipe)
    return target if target.is_dir() else None


def cached_dir(cache_root: Path, kind: str, recipe: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return ``<cache_root>/<kind>/<key of recipe>``, calling ``build(tmp_dir)`` first if absent.

    ``build`` fills an empty directory; it is renamed into place only when ``build`` returns, and
    ``recipe.json`` is written beside its files so a person can see what a cache entry is.
    Temporary directories a killed build of the same key left behind are removed first (under
    the lock, so no live build owns them).
    """
    target = Path(cache_root) / kind / content_key(recipe)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if target.is_dir():
            return target
        for stale in target.parent.glob(f".{target.name}.*"):  # left by a killed build of this key
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(tmp)
            (tmp / "recipe.json").write_text(json.dumps(recipe, indent=1, sort_keys=True, default=str) + "\n")
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            pass  # no locking here: fall back to build-and-rename, first rename wins
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(f, fcntl.LOCK_UN)
