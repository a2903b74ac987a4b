"""The evaluator: pairwise comparison of mean per-token log-likelihoods.

For each pair, the correct and the wrong side are scored by the mean, over their scored target
tokens (see :mod:`scaling.evaluation.tokens`), of ``log p(token | everything before it)`` in nats.
The pair counts 1 when the correct side scores higher, 0 when lower, and 0.5 on a tie: scores
within :data:`TIE_TOL` nats per token of each other (two identical sequences computed in different
batch positions may differ in the last float32 bits). Accuracy is the mean over pairs.

Masking the other modality (optional, off by default as in SIMS' slamkit): the softmax of a
speech target runs over the unit rows only, and that of a text target over the text rows only
(``[0, n_text_vocab)``), so probability the model puts on the other modality (or on markers) does
not count against either side.

Context: a model is never asked to predict a token from more tokens than its training context
(the window length it read in training): a sequence longer than that is scored in sliding windows of the
context, ``stride`` tokens apart, each scoring only the tokens no earlier window scored (as in the
Hugging Face perplexity guide), so every token is predicted from at most ``context`` tokens before
it. A sequence that fits is scored in one piece, exactly as without a context.

Windows are sorted by length and batched up to a token budget (4096 tokens, fewer for large
vocabularies so that a batch's logits stay under 64 MB; on CPU, small batches that fit the caches
measured faster than large ones), right-padded with end-of-sequence ids; with causal attention,
padding after a window cannot change its scores, so no attention mask is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from scaling.errors import UserError
from scaling.evaluation.format import Benchmark, Segment
from scaling.evaluation.tokens import DIRECTIONS, ModelVocab, Scored, encode_sides

#: two scores closer than this (nats per token) are a tie
TIE_TOL = 1e-6
#: suffix of the results-table column of each direction (``acc_<bench><suffix>``)
COLUMN_SUFFIX = {"s2s": "", "s": "", "s2t": "_s2t", "t2s": "_t2s", "t2t": "_t2t", "t": "_text"}


@dataclass(frozen=True)
class Result:
    """Scores of one benchmark in one direction.

    column: results-table column (``acc_<bench><suffix>``); accuracy in [0, 1]; per pair (in
    benchmark order): ids, correct / wrong mean log-likelihoods (nats per token), outcome
    (1, 0.5 or 0) and meta."""

    column: str
    bench: str
    direction: str
    accuracy: float
    ids: tuple[str, ...]
    correct: np.ndarray
    wrong: np.ndarray
    outcome: np.ndarray
    meta: tuple[dict, ...]

    @property
    def n_pairs(self) -> int:
        return len(self.ids)


def column_name(bench: str, direction: str) -> str:
    """``acc_stc`` (S→S), ``acc_ms_stc_s2t``, ``acc_sblimp`` (unprompted speech), ``acc_sblimp_text``."""
    return f"acc_{bench}{COLUMN_SUFFIX[direction]}"


def outcomes(correct: np.ndarray, wrong: np.ndarray, tie_tol: float = TIE_TOL) -> np.ndarray:
    """1 where correct > wrong, 0 where lower, 0.5 where they are within ``tie_tol``."""
    diff = np.asarray(correct, dtype=np.float64) - np.asarray(wrong, dtype=np.float64)
    return np.where(np.abs(diff) <= tie_tol, 0.5, (diff > 0).astype(np.float64))


def windows(length: int, context: int | None, stride: int | None = None) -> list[tuple[int, int, int]]:
    """The windows that score a sequence of ``length`` tokens with at most ``context`` tokens of
    left context: ``(begin, end, first)`` triples, where the model reads ``ids[begin:end]`` and
    window position ``p`` predicts token ``p + 1``; the window scores the targets of input positions
    ``first .. end - 1`` (those no earlier window scored).

    As in the Hugging Face perplexity guide, windows of ``context`` input tokens start ``stride``
    tokens apart (default ``context // 2``), so every target has between ``context - stride + 1``
    and ``context`` tokens of left context, except those of the first window, which have all of the
    sequence before them. A sequence whose ``length - 1`` inputs fit in ``context`` (or any sequence
    when ``context`` is None) is one window: exactly the whole-sequence computation."""
    n_inputs = length - 1
    if context is None or n_inputs <= context:
        return [(0, n_inputs, 0)]
    stride = stride or max(1, context // 2)
    if not 1 <= stride <= context:
        raise UserError(f"stride = {stride}: expected 1 to context = {context} tokens")
    out, begin, done = [], 0, 0
    while done < n_inputs:
        end = min(begin + context, n_inputs)
        out.append((begin, end, done))
        done, begin = end, begin + stride
    return out


def mean_log_likelihoods(model: torch.nn.Module, seqs: list[Scored], layout: Any, *, context: int | None = None,
                         stride: int | None = None, mask_other_modality: bool = False, device: torch.device | str = "cpu",
                         max_batch_tokens: int | None = None) -> np.ndarray:
    """Mean log-likelihood (nats per scored token) of each sequence under ``model`` (any module
    whose ``model(input_ids=x).logits`` has shape [B, T, V]); see the module doc.

    ``context``: the most tokens the model reads at once (its training context); longer sequences
    are scored in sliding :func:`windows` ``stride`` tokens apart, so no token is predicted from a
    position the model never trained on. None: every sequence in one piece."""
    device = torch.device(device)
    vocab = int(layout.vocab_size)
    budget = max_batch_tokens or max(128, min(4096, 2**24 // vocab))
    pieces = [(k, b, e, f) for k, s in enumerate(seqs) for b, e, f in windows(len(s.ids), context, stride)]
    widths = np.array([e - b for _, b, e, _ in pieces])
    order = np.argsort(widths, kind="stable")
    total = np.zeros(len(seqs), dtype=np.float64)
    count = np.zeros(len(seqs), dtype=np.int64)
    unit_lo, unit_hi = layout.unit_offset, layout.unit_offset + layout.n_units
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            i = 0
            while i < len(order):
                j = i + 1
                while j < len(order) and (j - i + 1) * widths[order[j]] <= budget:
                    j += 1
                idx = order[i:j]
                width = int(widths[idx].max())
                x = np.full((len(idx), width), layout.eos_id, dtype=np.int64)
                y = np.full((len(idx), width), layout.eos_id, dtype=np.int64)
                for row, w in enumerate(idx):
                    k, b, e, _ = pieces[w]
                    x[row, : e - b] = seqs[k].ids[b:e]
                    y[row, : e - b] = seqs[k].ids[b + 1: e + 1]
                inputs, targets = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                logits = model(input_ids=inputs).logits.float()
                if mask_other_modality:
                    is_unit = (targets >= unit_lo) & (targets < unit_hi)
                    lse_units = logits[..., unit_lo:unit_hi].logsumexp(-1) if layout.n_units else None
                    lse_text = logits[..., : layout.n_text_vocab].logsumexp(-1) if layout.n_text_vocab else None
                    lse = lse_units if lse_text is None else lse_text if lse_units is None else torch.where(is_unit, lse_units, lse_text)
                    logp = logits.gather(-1, targets[..., None]).squeeze(-1) - lse
                else:
                    logp = -torch.nn.functional.cross_entropy(logits.view(-1, vocab), targets.reshape(-1), reduction="none").view(targets.shape)
                logp = logp.double().cpu().numpy()
                for row, w in enumerate(idx):
                    k, b, e, f = pieces[w]
                    scored = seqs[k].scored[f + 1: e + 1]
                    total[k] += logp[row, f - b: e - b][scored].sum()
                    count[k] += int(scored.sum())
                i = j
    finally:
        model.train(was_training)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def evaluate(model: torch.nn.Module, bench: Benchmark, direction: str, vocab: ModelVocab, *,
             units_of: Callable[[Segment, int, str], np.ndarray] | None = None, mask_other_modality: bool = False,
             score: str = "sequence", context: int | None = None, device: torch.device | str = "cpu",
             column: str | None = None) -> Result:
    """Score every pair of ``bench`` in ``direction`` (``s2s``, ``s2t``, ``t2s``, ``t2t`` for
    prompted sets; ``s`` or ``t`` for unprompted ones). ``context``: the model's training context
    in tokens (longer sequences are scored in sliding windows, see :func:`mean_log_likelihoods`).

    ``units_of(segment, pair_index, side)``: unit ids of a speech side (default: its ``units``;
    pass :class:`scaling.evaluation.audio.AudioUnits` for sets with audio). Raises UserError when
    the direction does not fit the benchmark or the vocabulary, or when the benchmark's units come
    from a codebook of another size than the model's unit vocabulary."""
    if direction not in DIRECTIONS:
        raise UserError(f"direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    prompt_mod, cont_mod = DIRECTIONS[direction]
    if (prompt_mod is not None) != bench.prompted:
        kind = "prompted (s2s, s2t, t2s, t2t)" if bench.prompted else "unprompted (s, t)"
        raise UserError(f"benchmark {bench.name!r} ({bench.source}) is {kind}; direction {direction!r} does not apply")
    needed = {m for m in (prompt_mod, cont_mod) if m}
    missing = needed - bench.modalities()
    if missing:
        raise UserError(f"benchmark {bench.name!r} ({bench.source}) has no {missing.pop()} form on every side; direction {direction!r} needs it")
    if not vocab.supports(direction):
        raise UserError(f"the model's vocabulary ({vocab.layout.kind}, {vocab.source}) cannot read direction {direction!r} of {bench.name!r}")
    if "speech" in needed and bench.k is not None and bench.k != vocab.layout.n_units:
        raise UserError(f"vocabulary mismatch: benchmark {bench.name!r} ({bench.source}) has units of a k={bench.k} codebook, "
                        f"but the model's vocabulary ({vocab.source}) has {vocab.layout.n_units} unit tokens")
    units_of = units_of or _stored_units(bench)
    sides = []
    for p in bench.pairs:
        sides.append((p.prompt, p.correct))
        sides.append((p.prompt, p.wrong))
    seqs = encode_sides(sides, direction, vocab, lambda seg, i, side: units_of(seg, i // 2, side if side == "prompt" else ("correct", "wrong")[i % 2]), score)
    scores = mean_log_likelihoods(model, seqs, vocab.layout, context=context, mask_other_modality=mask_other_modality, device=device)
    correct, wrong = scores[0::2], scores[1::2]
    result = outcomes(correct, wrong)
    return Result(column or column_name(bench.name, direction), bench.name, direction, float(result.mean()),
                  tuple(p.id for p in bench.pairs), correct, wrong, result, tuple(p.meta for p in bench.pairs))


def _stored_units(bench: Benchmark) -> Callable[[Segment, int, str], np.ndarray]:
    def units_of(seg: Segment, i: int, side: str) -> np.ndarray:
        if seg.units is None:
            raise UserError(f"benchmark {bench.name!r} ({bench.source}), pair {bench.pairs[i].id!r}: the {side} side has audio "
                            "but no units; expected a corpus whose extractor and codebook turn the audio into units (--corpus)")
        return seg.units
    return units_of
