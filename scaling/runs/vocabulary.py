"""The vocabulary of a run, known before any data is built (for planning and costs).

Budgets given as tokens per parameter or as IsoFLOP compute need each run's parameter count,
which includes the embedding rows of its vocabulary. The vocabulary of every mode is fixed by the
corpus' codebook size K and the base text tokenizer:

* ``text``: the base text vocabulary;
* ``interleaved``: base + K unit tokens + 2 markers (``<speech>``, ``<text>``), plus a pad and an
  end-of-sequence token when the base has none of its own;
* ``speech`` (textless): K units + pad + end-of-sequence.

The base is the toolkit's default byte-level BPE (the corpus' ``text_vocab`` rows, pad and eos
included) unless a run starts from a local text LM, whose tokenizer is read.
The data a run trains on has exactly this vocabulary (:mod:`scaling.data.vocab` builds it).

``scaling plan`` may run before the text LMs are downloaded: inside :func:`published_tokenizers`,
a missing ``init_from`` directory of a named size (``qwen2.5-7B`` …) is planned with the size of
that model's published tokenizer (the named size's ``tokenizer`` in :mod:`scaling.models.families`),
and the substitution is recorded so the command can say so. Training and launching always read
the real directory.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from scaling.errors import UserError
from scaling.models.families import FAMILIES, NAMED_SIZES
from scaling.spec import RunSpec


_substitutes: ContextVar[dict[str, str] | None] = ContextVar("published_tokenizer_substitutes", default=None)


@contextlib.contextmanager
def published_tokenizers() -> Iterator[dict[str, str]]:
    """Within this block, plan missing ``init_from`` directories of named sizes with their published
    tokenizer's size; yields {init_from: model size} of every substitution made."""
    made: dict[str, str] = {}
    token = _substitutes.set(made)
    try:
        yield made
    finally:
        _substitutes.reset(token)


@lru_cache(maxsize=64)
def _local_base(path: str) -> tuple[int, int]:
    """(rows, extra special rows needed) of a local tokenizer directory."""
    from scaling.data.vocab import load_tokenizer

    tok = load_tokenizer(Path(path).expanduser())
    extra = int(tok.pad_token is None or tok.pad_token_id == tok.eos_token_id) + int(tok.eos_token is None)
    return len(tok), extra


def vocabulary_rows(spec: RunSpec) -> tuple[int, int]:
    """(vocab_size, n_added_vocab) of a run: all embedding rows, and the rows added for speech
    (units, markers, and the specials its base text tokenizer lacks)."""
    from scaling.data.config import resolve_corpus

    data, init_from = spec.data, spec.init_from
    corpus = resolve_corpus(data.corpus)
    k = corpus.units.k
    if data.mode == "speech":
        return k + 2, k + 2
    made = _substitutes.get()
    if spec.init == "text-lm" and init_from and not init_from.startswith("pretrain:"):
        size = spec.model.size
        published = FAMILIES[NAMED_SIZES[size]].sizes[size].tokenizer if size in NAMED_SIZES else None
        if made is not None and published and not Path(init_from).expanduser().is_dir():
            base, extra = published
            made[init_from] = size
        elif not Path(init_from).expanduser().is_dir():
            raise UserError(f"init_from = {init_from!r}: no such directory; expected a local text-LM directory (its "
                            "config.json, weights and tokenizer) or 'pretrain:<tokens>'")
        else:
            base, extra = _local_base(init_from)
    else:
        base, extra = corpus.text_vocab, 0
    if data.mode == "text":
        return base + extra, extra
    added = k + 2 + extra
    return base + added, added
