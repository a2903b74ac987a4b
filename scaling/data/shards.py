"""Token shards: the on-disk form every run reads its windows from.

A token shard is a directory (built once, renamed into place whole, see :mod:`scaling.data.cache`)
holding, for each stream it has (``text``, ``interleaved``, ``speech``), three ``.npy`` files that
any tool opens with ``numpy.load(path, mmap_mode="r")``:

::

    <stream>.ids.npy    uint32 [n_tokens]   token ids of every document, concatenated
    <stream>.mod.npy    uint8  [n_tokens]   modality code of every token (scaling.data: TEXT 0, SPEECH 1, MARKER 2)
    <stream>.docs.npy   int64  [n_docs, 5]  document index: start, length, source, stream, split
    shard.json          per stream: token range and documents of each split, modality counts

Documents are ordered by split (all ``train`` documents, then ``val``, then ``test``), each split
in the order its source produced it, so that a split of a stream is one contiguous token range.
Every document ends with its vocabulary's end-of-sequence token. Codes: source = index of the
source in the corpus config, stream = index in :data:`STREAMS`, split = index in :data:`SPLITS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scaling.data import MODALITY_NAMES

STREAMS = ("text", "interleaved", "speech")
SPLITS = ("train", "val", "test")
SHARD_FILE = "shard.json"


class ShardWriter:
    """Collects the documents of one stream of one shard, then saves them (see module doc)."""

    def __init__(self, stream: str, source_index: int):
        self.stream = stream
        self.source_index = source_index
        self._docs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in SPLITS}

    def add(self, ids: np.ndarray, modality: np.ndarray, split: str) -> None:
        """Append one document (ids and modality codes of equal length, eos included) to ``split``."""
        self._docs[split].append((np.asarray(ids, dtype=np.uint32), np.asarray(modality, dtype=np.uint8)))

    def __len__(self) -> int:
        return sum(len(d) for d in self._docs.values())

    def save(self, directory: Path) -> dict:
        """Write the three arrays into ``directory``; returns this stream's entry of shard.json."""
        docs = [d for s in SPLITS for d in self._docs[s]]
        splits = [i for i, s in enumerate(SPLITS) for _ in self._docs[s]]
        lengths = np.array([len(d[0]) for d in docs], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(docs) else np.zeros(0, np.int64)
        ids = np.concatenate([d[0] for d in docs]) if docs else np.zeros(0, np.uint32)
        mod = np.concatenate([d[1] for d in docs]) if docs else np.zeros(0, np.uint8)
        index = np.stack([starts, lengths, np.full(len(docs), self.source_index), np.full(len(docs), STREAMS.index(self.stream)),
                          np.array(splits, dtype=np.int64)], axis=1) if docs else np.zeros((0, 5), np.int64)
        np.save(Path(directory) / f"{self.stream}.ids.npy", ids)
        np.save(Path(directory) / f"{self.stream}.mod.npy", mod)
        np.save(Path(directory) / f"{self.stream}.docs.npy", index.astype(np.int64))
        entry, pos = {}, 0
        for s in SPLITS:
            n_tokens = int(sum(len(d[0]) for d in self._docs[s]))
            entry[s] = {"start": pos, "end": pos + n_tokens, "documents": len(self._docs[s])}
            pos += n_tokens
        counts = np.bincount(mod, minlength=len(MODALITY_NAMES))
        entry["modality_tokens"] = {MODALITY_NAMES[c]: int(counts[c]) for c in MODALITY_NAMES}
        return entry


def write_shard_meta(directory: Path, meta: dict) -> None:
    """Write shard.json (sorted keys, so equal shards are byte-identical)."""
    (Path(directory) / SHARD_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def read_shard_meta(directory: Path) -> dict:
    """shard.json of a token shard."""
    return json.loads((Path(directory) / SHARD_FILE).read_text())


def open_stream(directory: Path, stream: str) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped (ids uint32, modality uint8) of one stream of a token shard."""
    d = Path(directory)
    return np.load(d / f"{stream}.ids.npy", mmap_mode="r"), np.load(d / f"{stream}.mod.npy", mmap_mode="r")
