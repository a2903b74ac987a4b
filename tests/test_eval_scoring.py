"""The evaluator on a tiny model with hand-computed likelihoods: mean NLL, ties, masking, markers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scaling.data.vocab import Layout
from scaling.errors import UserError
from scaling.evaluation.format import Benchmark, Pair, Segment
from scaling.evaluation.scoring import evaluate, mean_log_likelihoods, outcomes, windows
from scaling.evaluation.tokens import ModelVocab, encode_sides

# ids: 0 eos, 1 pad, 2 "a", 3 "b" | units 0..2 → ids 4..6 | <speech> 7, <text> 8
LAYOUT = Layout("extended", 4, 3, 4, 7, 8, 1, 0, 9, " ")
WORDS = {"a": 2, "b": 3, " a": 2, " b": 3}


def encode(texts):
    out = []
    for t in texts:
        ids, first = [], True
        for w in t.split(" "):
            if w:
                ids.append(WORDS[w if first else " " + w])
            first = False
        out.append(ids)
    return out


VOCAB = ModelVocab(LAYOUT, encode, "test")


class Bigram(torch.nn.Module):
    """logits[b, t] = table[input_ids[b, t]]: the next-token distribution depends on the last token only."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, input_ids):
        return type("Out", (), {"logits": self.table[input_ids]})()


TABLE = np.random.default_rng(0).normal(0, 2, (9, 9))


def logp(prev: int, nxt: int, allowed=None) -> float:
    row = TABLE[prev].astype(np.float32).astype(np.float64)
    idx = np.arange(9) if allowed is None else np.asarray(allowed)
    return row[nxt] - np.log(np.exp(row[idx]).sum())


def seg(units=None, text=None):
    return Segment(text=text, units=None if units is None else np.asarray(units))


def test_sequence_layout_markers_and_scored_positions():
    pair_prompt, cont = seg([0, 1], "a"), seg([2], "b a")
    s2s, t2s, s2t, t2t = (encode_sides([(pair_prompt, cont)], d, VOCAB, lambda s, i, side: s.units)[0] for d in ("s2s", "t2s", "s2t", "t2t"))
    assert s2s.ids.tolist() == [0, 7, 4, 5, 6] and s2s.scored.tolist() == [False, False, True, True, True]
    assert t2s.ids.tolist() == [0, 8, 2, 7, 6] and t2s.scored.tolist() == [False, False, True, False, True]
    assert s2t.ids.tolist() == [0, 7, 4, 5, 8, 3, 2]
    assert t2t.ids.tolist() == [0, 8, 2, 3, 2]  # one marker: no modality switch
    cont_only = encode_sides([(pair_prompt, cont)], "s2s", VOCAB, lambda s, i, side: s.units, score="continuation")[0]
    assert cont_only.scored.tolist() == [False, False, False, False, True]


def test_mean_log_likelihood_matches_hand_computation():
    model = Bigram(TABLE)
    prompt, good, bad = seg([0, 1]), seg([2, 0]), seg([1])
    bench = Benchmark("hand", (Pair("p0", good, bad, prompt),), k=3)
    r = evaluate(model, bench, "s2s", VOCAB)
    want_good = np.mean([logp(7, 4), logp(4, 5), logp(5, 6), logp(6, 4)])
    want_bad = np.mean([logp(7, 4), logp(4, 5), logp(5, 5)])
    assert r.correct[0] == pytest.approx(want_good, abs=1e-5) and r.wrong[0] == pytest.approx(want_bad, abs=1e-5)
    assert r.outcome[0] == float(want_good > want_bad) and r.accuracy == r.outcome[0]
    cont = evaluate(model, bench, "s2s", VOCAB, score="continuation")
    assert cont.correct[0] == pytest.approx(np.mean([logp(5, 6), logp(6, 4)]), abs=1e-5)
    assert cont.wrong[0] == pytest.approx(logp(5, 5), abs=1e-5)


def test_masking_renormalises_over_the_target_modality():
    model = Bigram(TABLE)
    bench = Benchmark("mask", (Pair("p0", seg([2, 0], "a"), seg([1], "b")),), k=3)
    units = [4, 5, 6]
    r = evaluate(model, bench, "s", VOCAB, mask_other_modality=True)
    assert r.correct[0] == pytest.approx(np.mean([logp(7, 6, units), logp(6, 4, units)]), abs=1e-5)
    t = evaluate(model, bench, "t", VOCAB, mask_other_modality=True)
    assert t.correct[0] == pytest.approx(logp(8, 2, [0, 1, 2, 3]), abs=1e-5)
    plain = evaluate(model, bench, "s", VOCAB)
    assert plain.correct[0] == pytest.approx(np.mean([logp(7, 6), logp(6, 4)]), abs=1e-5)


def test_ties_count_half():
    assert outcomes(np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0 + 1e-9])).tolist() == [1.0, 0.0, 0.5]
    model = Bigram(TABLE)
    same = seg([1, 2])
    bench = Benchmark("ties", (Pair("a", same, same), Pair("b", seg([0]), seg([1])), Pair("c", seg([1]), seg([0]))), k=3)
    r = evaluate(model, bench, "s", VOCAB)
    assert r.outcome[0] == 0.5 and sorted(r.outcome[1:].tolist()) == [0.0, 1.0] and r.accuracy == pytest.approx(0.5)


def test_batching_does_not_change_scores():
    from scaling.models import resolve_model
    from scaling.models.build import build_model
    from scaling.spec import ModelSpec

    model = build_model(resolve_model(ModelSpec(size="20k")), LAYOUT.vocab_size, 64, seed=0)
    rng = np.random.default_rng(1)
    seqs = encode_sides([(None, seg(rng.integers(0, 3, n))) for n in rng.integers(1, 30, 40)], "s", VOCAB, lambda s, i, side: s.units)
    small = mean_log_likelihoods(model, seqs, LAYOUT, max_batch_tokens=32)
    large = mean_log_likelihoods(model, seqs, LAYOUT, max_batch_tokens=100_000)
    np.testing.assert_allclose(small, large, atol=1e-5)
    assert model.training  # restored after scoring


class PrefixSum(torch.nn.Module):
    """logits[b, t] = table[sum(input_ids[b, :t+1]) % 9] + position[t]: every prediction depends on
    the whole window it reads and on where the window starts."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(2)
        self.table = torch.nn.Parameter(torch.tensor(rng.normal(0, 2, (9, 9)), dtype=torch.float32))
        self.position = torch.nn.Parameter(torch.tensor(rng.normal(0, 2, (64, 9)), dtype=torch.float32))

    def forward(self, input_ids):
        t = input_ids.shape[1]
        return type("Out", (), {"logits": self.table[input_ids.cumsum(1) % 9] + self.position[:t]})()


def test_windows_cover_every_target_once_with_at_most_the_context():
    assert windows(10, 4, 2) == [(0, 4, 0), (2, 6, 4), (4, 8, 6), (6, 9, 8)]
    assert windows(5, 4) == [(0, 4, 0)] and windows(5, None) == [(0, 4, 0)]
    for length, context, stride in [(50, 8, 1), (50, 8, 3), (50, 8, 8), (9, 8, None), (10, 8, None), (123, 64, None)]:
        scored = [p for b, e, f in windows(length, context, stride) for p in range(f, e)]
        assert scored == list(range(length - 1))
        for b, e, f in windows(length, context, stride):
            assert e - b <= context and b <= f < e
            assert f - b >= context - (stride or context // 2) or b == 0  # fresh targets keep most of the context


def test_sliding_window_scores_match_a_hand_computation():
    model = PrefixSum()
    table, position = model.table.detach().double().numpy(), model.position.detach().double().numpy()
    rng = np.random.default_rng(3)
    sides = [(seg(rng.integers(0, 3, n)), seg(rng.integers(0, 3, m))) for n, m in [(3, 2), (9, 7), (20, 13), (2, 1)]]
    for score in ("sequence", "continuation"):
        seqs = encode_sides(sides, "s2s", VOCAB, lambda s, i, side: s.units, score=score)
        for context, stride in [(8, None), (8, 3), (5, 1)]:
            got = mean_log_likelihoods(model, seqs, LAYOUT, context=context, stride=stride, max_batch_tokens=16)
            for s, value in zip(seqs, got):
                ids, terms = s.ids.tolist(), []
                for b, e, f in windows(len(ids), context, stride):
                    for p in range(f, e):  # input position p predicts token p + 1 from ids[b..p]
                        if s.scored[p + 1]:
                            row = table[sum(ids[b: p + 1]) % 9] + position[p - b]
                            terms.append(row[ids[p + 1]] - np.log(np.exp(row).sum()))
                assert value == pytest.approx(np.mean(terms), abs=1e-5)
            short = [s for s in seqs if len(s.ids) - 1 <= context]
            np.testing.assert_array_equal(mean_log_likelihoods(model, short, LAYOUT, context=context, stride=stride),
                                          mean_log_likelihoods(model, short, LAYOUT))


def test_context_leaves_sequences_that_fit_unchanged_and_limits_long_ones():
    from scaling.models import resolve_model
    from scaling.models.build import build_model
    from scaling.spec import ModelSpec

    model = build_model(resolve_model(ModelSpec(size="20k")), LAYOUT.vocab_size, 16, seed=0)
    rng = np.random.default_rng(4)
    seqs = encode_sides([(None, seg(rng.integers(0, 3, n))) for n in (3, 10, 14, 15, 30, 40)], "s", VOCAB, lambda s, i, side: s.units)
    whole = mean_log_likelihoods(model, seqs, LAYOUT)
    windowed = mean_log_likelihoods(model, seqs, LAYOUT, context=16)
    fits = np.array([len(s.ids) - 1 <= 16 for s in seqs])
    assert fits.tolist() == [True, True, True, True, False, False]
    np.testing.assert_allclose(windowed[fits], whole[fits], atol=1e-5)
    assert np.all(np.abs(windowed[~fits] - whole[~fits]) > 1e-4)  # positions past the context are not read
    explicit = []  # each scored token from its own forward pass over the 16 tokens or fewer before it
    model.eval()
    with torch.no_grad():
        for s in seqs[4:]:
            terms = []
            for p in np.flatnonzero(s.scored) - 1:
                b = next(b for b, e, f in windows(len(s.ids), 16) if f <= p < e)
                logits = model(input_ids=torch.tensor(s.ids[None, b: p + 1])).logits[0, -1].double().log_softmax(-1)
                terms.append(float(logits[s.ids[p + 1]]))
            explicit.append(np.mean(terms))
    np.testing.assert_allclose(windowed[~fits], explicit, atol=1e-5)


def test_direction_and_vocabulary_mismatches_are_errors():
    model = Bigram(TABLE)
    bench = Benchmark("u", (Pair("p0", seg([1]), seg([2])),), k=5, source="u.jsonl")
    with pytest.raises(UserError, match="vocabulary mismatch.*k=5.*3 unit tokens"):
        evaluate(model, bench, "s", VOCAB)
    with pytest.raises(UserError, match="unprompted"):
        evaluate(model, bench, "s2s", VOCAB)
    with pytest.raises(UserError, match="no text form"):
        evaluate(model, Benchmark("u", bench.pairs, k=3), "t", VOCAB)
    units_only = ModelVocab(Layout("units", 0, 3, 0, -1, -1, 3, 4, 5, ""), encode, "units")
    with pytest.raises(UserError, match="cannot read"):
        evaluate(model, Benchmark("t", (Pair("p0", seg(text="a"), seg(text="b")),)), "t", units_only)
