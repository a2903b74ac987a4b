"""Reading windows from memory-mapped token shards, by index, in O(1) memory.

A prepared set (``manifest.json``, written by :mod:`scaling.data.build`) lists its token shards;
:class:`TokenPool` is the concatenation of one (source, stream, split) range of every shard, read
through ``numpy.load(mmap_mode="r")``: opening a pool reads no tokens, and a read touches only the
pages it returns. RSS and start-up therefore do not grow with the corpus; only the list of shards
(a few numbers per shard) is held in memory.

Training windows (:class:`TrainWindows`): window ``i`` → (pool, k) by :class:`scaling.data.mixing.Blend`;
pool epoch ``e = k // W`` and ``j = k % W`` where ``W = max(1, (tokens - 1) // context)`` are the
pool's windows per epoch; the window starts at token ``perm_e(j) · context`` of the pool, where
``perm_e`` is a :class:`scaling.data.permutation.Permutation` keyed by (seed, pool, e). A window
holds ``context + 1`` tokens, so consecutive windows of a pool share one token and, over an epoch,
every token after the first is a target once. A pool shorter than a window is read around its end
(reads wrap). Each pool walks through its own epochs: a pool with a large share and few tokens
repeats more often, which is what mixing by token share means.

Validation windows (:class:`ValWindows`): the same blend over the ``val`` pools, each read in
order from its start, the last window of a pool padded; a pool that runs out starts again.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from scaling.data import PAD
from scaling.data.mixing import Blend
from scaling.data.permutation import Permutation

MANIFEST = "manifest.json"


def read_manifest(directory: Path) -> dict:
    """manifest.json of a prepared set."""
    return json.loads((Path(directory) / MANIFEST).read_text())


class TokenPool:
    """One (source, stream, split) token stream: ranges of several shards, concatenated.

    ``parts``: ``(shard directory, stream, start, end)`` token ranges, in order."""

    def __init__(self, parts: list[tuple[Path, str, int, int]]):
        self.parts = [p for p in parts if p[3] > p[2]]
        lengths = np.array([end - start for _, _, start, end in self.parts], dtype=np.int64)
        self.bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.n_tokens = int(self.bounds[-1])
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _arrays(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        if part not in self._open:
            directory, stream, _, _ = self.parts[part]
            self._open[part] = (np.load(Path(directory) / f"{stream}.ids.npy", mmap_mode="r"),
                                np.load(Path(directory) / f"{stream}.mod.npy", mmap_mode="r"))
        return self._open[part]

    def read(self, start: int, n: int, ids_out: np.ndarray, mod_out: np.ndarray) -> None:
        """Tokens ``[start, start + n)`` of the pool (wrapping around its end) into ``ids_out``
        and ``mod_out`` (length ``n`` each)."""
        done, pos = 0, int(start) % self.n_tokens
        while done < n:
            part = int(np.searchsorted(self.bounds, pos, side="right")) - 1
            ids, mod = self._arrays(part)
            offset = self.parts[part][2] + pos - int(self.bounds[part])
            take = min(n - done, int(self.bounds[part + 1]) - pos)
            ids_out[done: done + take] = ids[offset: offset + take]
            mod_out[done: done + take] = mod[offset: offset + take]
            done += take
            pos = (pos + take) % self.n_tokens


def pool_key(source: str, stream: str) -> int:
    """A stable integer naming a pool (keys its permutations)."""
    return zlib.crc32(f"{source}\0{stream}".encode())


class TrainWindows:
    """Training window ``i`` = a pure function of (pools, shares, seed, context, i); see module doc.

    ``pools``: per pool a callable ``epoch -> TokenPool`` (the interleaved stream may be drawn
    anew each epoch) and the pool's windows per epoch; ``keys``: the pools' stable keys."""

    def __init__(self, pools: list, windows: list[int], keys: list[int], shares: list[float], seed: int, context: int):
        self.pools, self.windows, self.keys = pools, windows, keys
        self.blend = Blend(shares)
        self.seed, self.context = int(seed), int(context)
        self._perms: dict[tuple[int, int], Permutation] = {}

    def locate(self, i: int) -> tuple[int, int, int]:
        """(pool, pool epoch, first token) of window ``i``."""
        pool, k = self.blend.locate(i)
        epoch, j = divmod(k, self.windows[pool])
        perm = self._perms.get((pool, epoch))
        if perm is None:
            if len(self._perms) > 64:
                self._perms.clear()
            perm = self._perms[(pool, epoch)] = Permutation(self.windows[pool], self.seed, self.keys[pool], epoch)
        return pool, epoch, perm(j) * self.context

    def read(self, i: int, ids_out: np.ndarray, mod_out: np.ndarray) -> None:
        """Window ``i`` (``context + 1`` tokens) into ``ids_out`` / ``mod_out``."""
        pool, epoch, start = self.locate(i)
        self.pools[pool](epoch).read(start, self.context + 1, ids_out, mod_out)


class ValWindows:
    """Validation windows: the blend of the ``val`` pools, each read in order (see module doc)."""

    def __init__(self, pools: list[TokenPool], shares: list[float], context: int, pad_id: int):
        self.pools, self.context, self.pad_id = pools, int(context), int(pad_id)
        self.blend = Blend(shares)
        self.per_pool = [max(1, -(-(p.n_tokens - 1) // self.context)) for p in pools]
        self.n = sum(n for n, s in zip(self.per_pool, shares) if s > 0)

    def read(self, i: int, ids_out: np.ndarray, mod_out: np.ndarray) -> None:
        pool, k = self.blend.locate(i)
        p = self.pools[pool]
        start = (k % self.per_pool[pool]) * self.context
        n = min(self.context + 1, p.n_tokens - start)
        p.read(start, n, ids_out[:n], mod_out[:n])
        ids_out[n:] = self.pad_id
        mod_out[n:] = PAD
