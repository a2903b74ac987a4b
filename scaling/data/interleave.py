"""Which words of a sample are spoken: the SIMS span rule and two ablation variants.

All rules work on the aligned word groups of an utterance (a group is one word, or a pair of words
the synthesiser aligned as one) and return a boolean mask, True = spoken.

- ``poisson`` (SIMS): draw a span length L ~ Poisson(λ) (at least 1) and a start uniformly among
  positions not yet spoken; the span covers ``[start, min(start + L, n))``; a draw that overlaps an
  existing span is rejected and redrawn; spans are added until at least ``ceil(ratio · n)`` groups
  are spoken.
- ``random``: each group is spoken with probability 0.5, independently.
- ``span``: walk left to right; at each group not yet covered, with probability
  ``p = ratio / (L (1 - ratio) + ratio)`` a span of fixed length ``L = round(λ)`` starts there
  (p is chosen so that the expected spoken share is ``ratio``).

:func:`segments` turns a mask into alternating (spoken, first, last) runs; :func:`build_document`
renders them as tokens: a marker at the start and at every modality switch, never at the end.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.data import MARKER, SPEECH, TEXT
from scaling.errors import unknown_choice

RULES = ("poisson", "random", "span")
_BATCH = 64


def choose_spoken(n: int, rule: str, rng: np.random.Generator, span_lambda: float = 10.0, ratio: float = 0.3) -> np.ndarray:
    """Boolean mask [n] of spoken groups under ``rule`` (see module doc)."""
    if rule == "poisson":
        spoken = np.zeros(n, dtype=bool)
        for start, end in poisson_spans(n, rng, span_lambda, ratio):
            spoken[start:end] = True
        return spoken
    if rule == "random":
        return rng.random(n) < 0.5
    if rule == "span":
        return _fixed_spans(n, rng, max(1, round(span_lambda)), ratio)
    raise unknown_choice("value for data.interleave:", rule, RULES)


def poisson_spans(n: int, rng: np.random.Generator, lam: float, ratio: float) -> list[tuple[int, int]]:
    """The SIMS rule's spans ``[(start, end), ...]`` (end exclusive) in the order drawn; they never
    overlap and together cover at least ``ceil(ratio · n)`` of the ``n`` groups."""
    spoken = np.zeros(n, dtype=bool)
    spans: list[tuple[int, int]] = []
    target = min(n, math.ceil(ratio * n))
    covered = 0
    while covered < target:
        free = np.flatnonzero(~spoken)
        starts = free[rng.integers(0, len(free), size=_BATCH)]
        lengths = np.maximum(1, rng.poisson(lam, size=_BATCH))
        for s, length in zip(starts.tolist(), lengths.tolist()):
            end = min(s + length, n)
            if not spoken[s:end].any():
                spoken[s:end] = True
                spans.append((s, end))
                covered += end - s
                break
    return spans


def _fixed_spans(n: int, rng: np.random.Generator, length: int, ratio: float) -> np.ndarray:
    p = ratio / (length * (1 - ratio) + ratio) if ratio < 1 else 1.0
    spoken = np.zeros(n, dtype=bool)
    draws = rng.random(n)
    i = 0
    while i < n:
        if draws[i] < p:
            spoken[i: i + length] = True
            i += length
        else:
            i += 1
    return spoken


def segments(mask: np.ndarray) -> list[tuple[bool, int, int]]:
    """Maximal runs of equal value: ``[(spoken, first, last), ...]`` (inclusive indices)."""
    out = []
    start = 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            out.append((bool(mask[start]), start, i - 1))
            start = i
    return out


def build_document(mask: np.ndarray, group_tokens: list[np.ndarray], group_start: np.ndarray, group_end: np.ndarray,
                   unit_tokens: np.ndarray, unit_start: np.ndarray, speech_marker: int, text_marker: int,
                   eos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (ids int64, modality int8) of one interleaved sample.

    A spoken run of groups ``a..b`` becomes the unit tokens whose start time lies in
    ``[group_start[a], group_end[b])``; a written run becomes the text tokens of its groups. A
    spoken run that holds no unit start (possible only for very short runs) is written instead.
    Each segment is preceded by its marker (``MARKER``); the sample ends with ``eos_id``, which
    takes the modality of the last segment.
    """
    parts: list[tuple[bool, np.ndarray]] = []
    for spoken, a, b in segments(mask):
        if spoken:
            sel = unit_tokens[(unit_start >= group_start[a]) & (unit_start < group_end[b])]
            if len(sel):
                parts.append((True, sel))
                continue
        text = np.concatenate(group_tokens[a: b + 1])
        if parts and not parts[-1][0]:
            parts[-1] = (False, np.concatenate([parts[-1][1], text]))
        else:
            parts.append((False, text))
    ids, mods = [], []
    for spoken, toks in parts:
        ids.append(np.array([speech_marker if spoken else text_marker]))
        mods.append(np.array([MARKER]))
        ids.append(toks)
        mods.append(np.full(len(toks), SPEECH if spoken else TEXT))
    ids.append(np.array([eos_id]))
    mods.append(np.array([SPEECH if parts[-1][0] else TEXT]))
    return np.concatenate(ids).astype(np.int64), np.concatenate(mods).astype(np.int8)
