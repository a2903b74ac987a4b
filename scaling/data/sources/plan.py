"""Shard plans: a source's items cut into shards, the unit of parallel and resumable work.

A shard is a JSON-able mapping: ``{"file": path, "start": i, "stop": j, "fingerprint": ...}`` —
items ``[i, j)`` of one input file (files are never split across shards' boundaries, so a shard
reads one file), or ``{"files": [...], ...}`` for formats with one file per item. The fingerprint
(size and modification time of every file a shard reads) is part of the shard's content key, so a
changed input file rebuilds exactly the shards that read it.
"""

from __future__ import annotations

from typing import Iterator

from scaling.data.sources.items import Skipped, TextDoc, Utterance


def _reader(source):
    """The module that reads ``source``'s format (``plan`` and ``items``)."""
    from scaling.data.sources import aligned_audio, lhotse_cuts, tables

    return {"lhotse": lhotse_cuts, "textgrid": aligned_audio, "words_json": aligned_audio, "units": tables, "text": tables}[source.format]


def plan_source(source) -> list[dict]:
    """The shards of ``source`` (UserError when its path names nothing readable)."""
    return _reader(source).plan(source)


def read_shard(source, shard: dict) -> Iterator[Utterance | TextDoc | Skipped]:
    """The items of one shard, in order; a bad item is yielded as :class:`Skipped`."""
    return _reader(source).items(source, shard)
