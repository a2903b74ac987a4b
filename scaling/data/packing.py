"""Packing documents into fixed context windows.

Documents (token ids with a modality code per token) are concatenated into one stream per epoch.
Window ``i`` of a stream is ``stream[i*context : i*context + context + 1]``: the model reads the
first ``context`` tokens and is trained to predict the last ``context`` (labels are ``ids[1:]``),
so consecutive windows share one token and every token after the first is a target exactly once.
Documents cross window boundaries (as in GPT-style packing); each ends with an end-of-sequence
token so the model sees where one stops. Only the tail of a validation stream is padded.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

Document = tuple[np.ndarray, np.ndarray]  # (ids int64, modality int8), equal lengths


def pack_stream(documents: Iterator[Document], n_tokens: int) -> Document:
    """Concatenate documents until at least ``n_tokens`` tokens, then cut to exactly ``n_tokens``."""
    ids, mods, total = [], [], 0
    while total < n_tokens:
        doc_ids, doc_mod = next(documents)
        ids.append(doc_ids)
        mods.append(doc_mod)
        total += len(doc_ids)
    return np.concatenate(ids)[:n_tokens], np.concatenate(mods)[:n_tokens]


def windows_of(stream: Document, context: int, pad_id: int, pad_code: int) -> Document:
    """All windows of a finite stream as arrays [M, context+1]; the last is padded with
    ``pad_id`` / modality ``pad_code`` so every token of the stream is a target once."""
    ids, mod = stream
    n = max(1, -(-(len(ids) - 1) // context))
    length = n * context + 1
    out_ids = np.full(length, pad_id, dtype=np.int64)
    out_mod = np.full(length, pad_code, dtype=np.int8)
    out_ids[: len(ids)] = ids
    out_mod[: len(mod)] = mod
    idx = np.arange(n)[:, None] * context + np.arange(context + 1)[None, :]
    return out_ids[idx], out_mod[idx]


def concat(documents: Iterable[Document]) -> Document:
    """One stream from a finite sequence of documents."""
    docs = list(documents)
    return np.concatenate([d[0] for d in docs]), np.concatenate([d[1] for d in docs])
