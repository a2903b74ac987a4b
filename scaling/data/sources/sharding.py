"""Cutting a source's items into shards (see :mod:`scaling.data.sources.plan` for what a shard is)."""

from __future__ import annotations

from pathlib import Path

from scaling.data.sources import DEFAULT_SHARD_SIZE


def fingerprint(paths: list[Path]) -> list[list]:
    """[name, bytes, mtime in ns] of each file."""
    out = []
    for p in paths:
        st = Path(p).stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def shard_size(source) -> int:
    return source.shard_size or DEFAULT_SHARD_SIZE[source.format]


def ranges(files_and_counts: list[tuple[Path, int]], size: int) -> list[dict]:
    """Shards of at most ``size`` items, each within one file."""
    shards = []
    for path, count in files_and_counts:
        fp = fingerprint([path])
        for start in range(0, count, size):
            shards.append({"file": str(path), "start": start, "stop": min(count, start + size), "fingerprint": fp})
    return shards


def chunks(files: list[Path], size: int) -> list[dict]:
    """Shards of at most ``size`` files each (formats with one item per file)."""
    return [{"files": [str(f) for f in files[i: i + size]], "fingerprint": fingerprint(files[i: i + size])}
            for i in range(0, len(files), size)]
