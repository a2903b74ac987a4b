"""The three training streams and their seeded mixture.

- text: a sentence's text tokens, then end-of-sequence; every token ``TEXT``.
- speech: an utterance's units (deduplicated), then end-of-sequence; every token ``SPEECH``; no
  markers (as in SIMS, and as textless models see it).
- interleaved: an utterance (with a usable word alignment) with some word spans spoken (units) and the rest written (text
  tokens), a marker before each segment (see :mod:`scaling.data.interleave`), then
  end-of-sequence with the modality of the last segment.

:func:`mixture` draws documents: each draw picks a stream with the given probabilities, and each
stream walks through its own permutation of its documents, reshuffled when exhausted. Everything
is a function of (seed, epoch), never of the number of processes that read the result.
:func:`probabilities_for_token_shares` turns target token shares into those probabilities.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np

from scaling.data import SPEECH, TEXT
from scaling.data.interleave import build_document, choose_spoken
from scaling.data.packing import Document


class Stream(Protocol):
    """A finite list of documents; ``document(i, epoch)`` is deterministic."""

    name: str

    def __len__(self) -> int: ...

    def document(self, i: int, epoch: int) -> Document: ...


class TokenStream:
    """Documents that are fixed token sequences of one modality, each followed by ``eos_id``."""

    def __init__(self, name: str, sequences: Sequence[Sequence[int]], modality: int, eos_id: int):
        self.name = name
        self._seqs = [np.asarray(list(s) + [eos_id], dtype=np.int64) for s in sequences]
        self._modality = modality

    def __len__(self) -> int:
        return len(self._seqs)

    def document(self, i: int, epoch: int) -> Document:
        ids = self._seqs[i]
        return ids, np.full(len(ids), self._modality, dtype=np.int8)


def text_stream(token_lists: Sequence[Sequence[int]], eos_id: int) -> TokenStream:
    """The text stream: each sentence's token ids, then eos; all ``TEXT``."""
    return TokenStream("text", token_lists, TEXT, eos_id)


def speech_stream(unit_token_lists: Sequence[Sequence[int]], eos_id: int) -> TokenStream:
    """The speech stream: each utterance's unit token ids, then eos; all ``SPEECH``, no markers."""
    return TokenStream("speech", unit_token_lists, SPEECH, eos_id)


class AlignedUtterance:
    """What an interleaved sample is made of: per aligned word group its text tokens and time
    interval (seconds), and the utterance's unit tokens with their start times (seconds)."""

    __slots__ = ("group_tokens", "group_start", "group_end", "unit_tokens", "unit_start")

    def __init__(self, group_tokens: list[np.ndarray], group_start: np.ndarray, group_end: np.ndarray,
                 unit_tokens: np.ndarray, unit_start: np.ndarray):
        self.group_tokens = group_tokens
        self.group_start = group_start
        self.group_end = group_end
        self.unit_tokens = unit_tokens
        self.unit_start = unit_start


class InterleavedStream:
    """Interleaved samples (see :mod:`scaling.data.interleave`). The spoken spans of utterance
    ``i`` are drawn with (seed, epoch, i), or (seed, 0, i) in every epoch when ``resample`` is
    false."""

    name = "interleaved"

    def __init__(self, utterances: Sequence[AlignedUtterance], rule: str, span_lambda: float, ratio: float,
                 speech_marker: int, text_marker: int, eos_id: int, seed: int, resample: bool = True):
        self.utterances = list(utterances)
        self.rule, self.span_lambda, self.ratio = rule, span_lambda, ratio
        self.speech_marker, self.text_marker, self.eos_id = speech_marker, text_marker, eos_id
        self.seed, self.resample = seed, resample

    def __len__(self) -> int:
        return len(self.utterances)

    def spoken_mask(self, i: int, epoch: int) -> np.ndarray:
        """Which groups of utterance ``i`` are spoken in ``epoch``."""
        u = self.utterances[i]
        rng = np.random.default_rng([self.seed, epoch if self.resample else 0, i, 0x696C76])
        return choose_spoken(len(u.group_tokens), self.rule, rng, self.span_lambda, self.ratio)

    def document(self, i: int, epoch: int) -> Document:
        u = self.utterances[i]
        return build_document(self.spoken_mask(i, epoch), u.group_tokens, u.group_start, u.group_end, u.unit_tokens,
                              u.unit_start, self.speech_marker, self.text_marker, self.eos_id)


def probabilities_for_token_shares(mean_tokens: Sequence[float], shares: Sequence[float]) -> tuple[float, ...]:
    """Stream probabilities that give the streams token shares ``shares`` (mixing by token share
    rather than by probability): ``p_s ∝ share_s / mean_tokens_s``, where ``mean_tokens_s`` is the
    mean length of a document of stream ``s`` (eos included). Streams with share 0 get 0."""
    w = np.array([sh / m if sh > 0 else 0.0 for sh, m in zip(shares, mean_tokens)], dtype=float)
    if not w.sum() > 0:
        raise ValueError("token shares must give at least one stream with documents a positive share")
    return tuple(float(x) for x in w / w.sum())


def mixture(streams: Sequence[Stream], probs: Sequence[float], seed: int, epoch: int) -> Iterator[Document]:
    """Endless documents: each draw picks stream ``s`` with probability ``probs[s]`` and yields the
    next document of that stream's (seed, epoch)-shuffled order. Streams with probability 0 or
    no documents are never drawn."""
    p = np.array([pr if len(s) else 0.0 for s, pr in zip(streams, probs)], dtype=float)
    p = p / p.sum()
    rng = np.random.default_rng([seed, epoch, 0x6D6978])
    orders = [np.empty(0, dtype=np.int64) for _ in streams]
    cursor = [0] * len(streams)
    while True:
        for s in rng.choice(len(streams), size=1024, p=p):
            if cursor[s] >= len(orders[s]):
                orders[s] = rng.permutation(len(streams[s]))
                cursor[s] = 0
            i = int(orders[s][cursor[s]])
            cursor[s] += 1
            yield streams[s].document(i, epoch)

