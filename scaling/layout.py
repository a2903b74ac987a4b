"""Vocabulary sizes known before any data is built, for planning sweeps.

Budgets given as tokens per parameter or as IsoFLOP compute need each run's parameter count,
which includes the embedding rows of its vocabulary. The vocabulary of every mode is fixed by the
corpus' codebook size K and the base text tokenizer:

* ``text``: the base text vocabulary;
* ``interleaved``: base + K unit tokens + 2 markers (``<speech>``, ``<text>``), plus a pad and an
  end-of-sequence token when the base has none of its own;
* ``speech`` (textless): K units + pad + end-of-sequence.

The base is the toolkit's default byte-level BPE (:data:`scaling.data.vocab.DEFAULT_TEXT_VOCAB`
rows, pad and eos included) unless a run starts from a local text LM, whose tokenizer is read.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from scaling.spec import DataSpec


@lru_cache(maxsize=64)
def _local_base(path: str) -> tuple[int, int]:
    """(rows, extra special rows needed) of a local tokenizer directory."""
    from scaling.data.vocab import load_tokenizer

    tok = load_tokenizer(Path(path).expanduser())
    extra = int(tok.pad_token is None or tok.pad_token_id == tok.eos_token_id) + int(tok.eos_token is None)
    return len(tok), extra


def vocab_layout(data: DataSpec, init: str = "scratch", init_from: str = "") -> tuple[int, int]:
    """(vocab_size, n_added_vocab) of a run: all embedding rows, and the rows added for speech."""
    from scaling.data.config import resolve_corpus
    from scaling.data.vocab import DEFAULT_TEXT_VOCAB

    k = resolve_corpus(data.corpus).units.k
    if data.mode == "speech":
        return k + 2, k + 2
    if init == "text-lm" and init_from and not init_from.startswith("pretrain:"):
        base, extra = _local_base(init_from)
    else:
        base, extra = DEFAULT_TEXT_VOCAB, 0
    if data.mode == "text":
        return base + extra, extra
    added = k + 2 + extra
    return base + added, added
