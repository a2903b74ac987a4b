"""One shard of a speech source → a corpus directory of units aligned with words.

The output is the corpus-directory format of :mod:`scaling.data.records` (units, run lengths,
one JSON line per utterance), which the token stage reads. Audio goes through the corpus'
extractor in batches (HuBERT on a GPU when there is one) and its codebook, then consecutive
duplicate units are collapsed; pre-extracted units are checked against the codebook size ``k``
and collapsed the same way. Each word is its own aligned group ``(i, i, start_s, end_s)``; an
utterance without word times serves the speech stream only (``groups = null``). Bad items are
skipped and counted by reason in ``corpus.json["skipped"]``.

Everything here runs on one thread, so a shard's bytes do not depend on how many processes
build the corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling.data.features import SAMPLE_RATE
from scaling.data.records import UtteranceRecord, write_corpus
from scaling.data.sources.items import Skipped, Utterance, check_alignment
from scaling.data.sources.plan import read_shard
from scaling.data.units import Codebook, dedup, make_extractor
from scaling.data.wordnet import split_of

#: audio held in memory before it is sent through the extractor (seconds)
_AUDIO_BATCH_S = 600.0
_EXTRACTORS: dict = {}
_CODEBOOKS: dict = {}


def split_for(source, item_split: str | None, key: str) -> str:
    """An item's split: its own, else the source's, else (``auto``) a hash of ``key``."""
    if item_split in ("train", "val", "test"):
        return item_split
    return split_of(key) if source.split == "auto" else source.split


def count(skipped: dict, examples: dict, skip: Skipped) -> None:
    """Count ``skip`` by reason and keep the first detail of each reason."""
    skipped[skip.reason] = skipped.get(skip.reason, 0) + 1
    examples.setdefault(skip.reason, skip.detail)


def build_speech_shard(out: Path, source, shard: dict, units_config, codebook_path: str | None, shard_name: str) -> None:
    """Write the corpus directory of one shard of speech ``source`` into ``out`` (see module doc)."""
    from threadpoolctl import threadpool_limits

    k = units_config.k
    records: list[UtteranceRecord] = []
    units, durations, skipped, examples = [], [], {}, {}
    pending: list[tuple[Utterance, np.ndarray]] = []
    frame_s = [None]
    offset = [0]

    def add(u: Utterance, unit_ids: np.ndarray, step_s: float, seconds: float) -> None:
        if frame_s[0] is None:
            frame_s[0] = step_s
        ids, runs = dedup(unit_ids)
        groups = None
        if u.times:
            rounded = np.round(np.asarray(u.times, dtype=np.float64), 4).tolist()
            groups = tuple((i, i, s, e) for i, (s, e) in enumerate(rounded))
        records.append(UtteranceRecord(id=u.id, sentence=len(records), words=u.words, groups=groups, voice=u.speaker,
                                       source=source.name, split=split_for(source, u.split, u.text or u.id),
                                       offset=offset[0], n_units=len(ids), seconds=round(seconds, 6)))
        offset[0] += len(ids)
        units.append(ids)
        durations.append(runs)

    def flush() -> None:
        if not pending:
            return
        extractor = _extractor(units_config)
        codebook = _codebook(codebook_path, units_config)
        for (u, audio), feats in zip(pending, extractor.features_batch([a for _, a in pending])):
            add(u, codebook.assign(feats), extractor.frame_s, len(audio) / SAMPLE_RATE)
        pending.clear()

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            held = 0.0
            for item in read_shard(source, shard):
                if isinstance(item, Skipped):
                    count(skipped, examples, item)
                    continue
                try:
                    if item.units is not None:
                        if int(item.units.min()) < 0 or int(item.units.max()) >= k:
                            raise Skipped("unit id outside the codebook", f"{item.id}: ids {int(item.units.min())}..{int(item.units.max())}, k = {k}")
                        add(item, item.units, item.frame_s, len(item.units) * item.frame_s)
                        continue
                    audio = item.audio()
                    if len(audio) == 0 or not np.abs(audio).max() > 0:
                        raise Skipped("empty or silent audio", item.id)
                    if item.times:
                        check_alignment(item.words, item.times, len(audio) / SAMPLE_RATE)
                except Skipped as skip:
                    count(skipped, examples, skip)
                    continue
                pending.append((item, audio))
                held += len(audio) / SAMPLE_RATE
                if held >= _AUDIO_BATCH_S:
                    flush()
                    held = 0.0
            flush()
    finally:
        torch.set_num_threads(threads)
    meta = {"name": shard_name, "k": k, "frame_s": frame_s[0] or 0.04, "sources": [source.name], "source": source.name,
            "real": source.real, "skipped": skipped, "examples": examples, "n_utterances": len(records)}
    write_corpus(out, records, np.concatenate(units) if units else np.zeros(0, np.int64),
                 np.concatenate(durations) if durations else np.zeros(0, np.int64), meta)


def _extractor(units_config):
    key = repr(units_config)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = make_extractor(units_config)
    return _EXTRACTORS[key]


def _codebook(path: str, units_config) -> Codebook:
    if path not in _CODEBOOKS:
        _CODEBOOKS[path] = Codebook.load(Path(path), units_config.trust_codebook_pickle)
    return _CODEBOOKS[path]
