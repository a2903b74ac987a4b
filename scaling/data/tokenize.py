"""The token stage: one shard of a source → a token shard in one vocabulary.

- speech sources (a corpus directory of :mod:`scaling.data.records`): the ``speech`` stream (each
  utterance's units as unit tokens, then end-of-sequence; no markers) and the ``interleaved``
  stream (each utterance with word times: some word spans spoken, the rest written, as
  :mod:`scaling.data.interleave` renders it, with markers). Which spans are spoken is drawn once
  here, with a generator seeded by (seed, draw, source, shard, utterance): the spans are fixed
  offline, as in SIMS, unless a run asks for new spans every epoch (``resample_interleave``),
  which builds one draw per epoch after the first.
- text sources: the ``text`` stream (each document's tokens, then end-of-sequence).

Documents keep their source order; shuffling happens when windows are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from scaling.data import SPEECH, TEXT
from scaling.data.interleave import build_document, choose_spoken
from scaling.data.shards import ShardWriter, write_shard_meta
from scaling.data.sources.items import Skipped, TextDoc
from scaling.data.vocab import Vocabulary

_TEXT_BATCH = 2000  # documents per tokenizer call
_VOCABS: dict[str, Vocabulary] = {}


def vocabulary(directory: Path) -> Vocabulary:
    """A process-wide Vocabulary of ``directory`` (its tokenizer is loaded once)."""
    key = str(directory)
    if key not in _VOCABS:
        _VOCABS[key] = Vocabulary(Path(directory))
    return _VOCABS[key]


def speech_token_shard(out: Path, corpus_dir: Path, source_index: int, shard_index: int, vocab_dir: Path,
                       streams: tuple[str, ...], interleave: dict | None) -> dict:
    """Token shard of a speech shard's corpus directory: ``streams`` among speech / interleaved.
    ``interleave``: rule, span_lambda, speech_ratio, seed, draw. Returns shard.json's content."""
    from scaling.data.records import Corpus

    corpus = Corpus(corpus_dir)
    vocab = vocabulary(vocab_dir)
    lay = vocab.layout
    meta = {"source": corpus.meta.get("source", corpus.meta["sources"][0]), "source_index": source_index, "streams": {},
            "skipped": {}, "seconds": {s: round(sum(r.seconds for r in corpus.records if r.split == s), 3) for s in ("train", "val", "test")}}
    if "speech" in streams:
        w = ShardWriter("speech", source_index)
        for r in corpus.records:
            ids = np.concatenate([corpus.units(r) + lay.unit_offset, [lay.eos_id]])
            w.add(ids, np.full(len(ids), SPEECH, np.uint8), r.split)
        meta["streams"]["speech"] = w.save(out)
    if "interleaved" in streams:
        w = ShardWriter("interleaved", source_index)
        aligned = [r for r in corpus.records if r.groups is not None]
        if len(aligned) < len(corpus.records):
            meta["skipped"]["no word alignment (speech stream only)"] = len(corpus.records) - len(aligned)
        pieces = vocab.encode_words_batch([list(r.words) for r in aligned]) if aligned else []
        for i, (r, words) in enumerate(zip(aligned, pieces)):
            rng = np.random.default_rng([interleave["seed"], interleave["draw"], source_index, shard_index, i, 0x696C76])
            groups = r.groups
            mask = choose_spoken(len(groups), interleave["rule"], rng, interleave["span_lambda"], interleave["speech_ratio"])
            group_tokens = [np.asarray(words[a] if a == b else sum(words[a: b + 1], []), dtype=np.int64) for a, b, _, _ in groups]
            ids, mod = build_document(mask, group_tokens, np.array([g[2] for g in groups]), np.array([g[3] for g in groups]),
                                      corpus.units(r) + lay.unit_offset, corpus.unit_starts(r), lay.speech_marker,
                                      lay.text_marker, lay.eos_id)
            w.add(ids, mod, r.split)
        meta["streams"]["interleaved"] = w.save(out)
    write_shard_meta(out, meta)
    return meta


def text_token_shard(out: Path, docs: Iterable[TextDoc | Skipped], splits, source_name: str, source_index: int,
                     vocab_dir: Path) -> dict:
    """Token shard of a text shard: ``docs`` (TextDoc, or Skipped: counted by reason) with
    ``splits(doc)`` giving each one's split. Returns shard.json's content."""
    vocab = vocabulary(vocab_dir)
    eos = vocab.layout.eos_id
    w = ShardWriter("text", source_index)
    batch: list[TextDoc] = []

    def flush() -> None:
        for doc, ids in zip(batch, vocab.encode_batch([d.text for d in batch])):
            ids = np.asarray(ids + [eos], dtype=np.uint32)
            w.add(ids, np.full(len(ids), TEXT, np.uint8), splits(doc))
        batch.clear()

    skipped, examples = {}, {}
    for doc in docs:
        if isinstance(doc, Skipped):
            skipped[doc.reason] = skipped.get(doc.reason, 0) + 1
            examples.setdefault(doc.reason, doc.detail)
            continue
        batch.append(doc)
        if len(batch) >= _TEXT_BATCH:
            flush()
    flush()
    meta = {"source": source_name, "source_index": source_index, "streams": {"text": w.save(out)}, "skipped": skipped,
            "examples": examples}
    write_shard_meta(out, meta)
    return meta
