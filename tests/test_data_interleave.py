"""The interleaving rules, statistically, and the rendering of interleaved samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling.data import MARKER, SPEECH, TEXT
from scaling.data.interleave import build_document, choose_spoken, poisson_spans, segments
from scaling.errors import UserError

SPEECH_MARK, TEXT_MARK, EOS = 900, 901, 0


def test_poisson_rule_statistics():
    rng = np.random.default_rng(0)
    lengths, shares = [], []
    for _ in range(400):
        n = int(rng.integers(60, 300))
        spans = poisson_spans(n, rng, 10.0, 0.3)
        covered = np.zeros(n, dtype=int)
        for start, end in spans:
            covered[start:end] += 1
            if end < n:  # spans clipped by the sample end are shorter by construction
                lengths.append(end - start)
        assert covered.max() == 1, "spans never overlap"
        assert covered.sum() >= math.ceil(0.3 * n), "at least 30% of words are speech"
        shares.append(covered.mean())
    assert min(shares) >= 0.3
    assert abs(np.mean(lengths) - 10.0) < 0.6, f"mean span length {np.mean(lengths):.2f}, expected near lambda = 10"


def test_poisson_rule_on_short_samples_and_lambda():
    rng = np.random.default_rng(1)
    for n in range(1, 15):
        for _ in range(50):
            mask = choose_spoken(n, "poisson", rng, 10.0, 0.3)
            assert mask.sum() >= math.ceil(0.3 * n)
    long = [e - s for _ in range(200) for s, e in poisson_spans(400, rng, 4.0, 0.3) if e < 400]
    assert abs(np.mean(long) - 4.0) < 0.4


def test_variants():
    rng = np.random.default_rng(2)
    random_share = np.mean([choose_spoken(100, "random", rng).mean() for _ in range(300)])
    assert abs(random_share - 0.5) < 0.02
    masks = [choose_spoken(200, "span", rng, 10.0, 0.3) for _ in range(300)]
    assert abs(np.mean([m.mean() for m in masks]) - 0.3) < 0.03
    runs = [b - a + 1 for m in masks for spoken, a, b in segments(m) if spoken and b < 199]
    assert all(r % 10 == 0 for r in runs), "fixed-length spans (adjacent ones merge into multiples)"
    with pytest.raises(UserError, match="data.interleave"):
        choose_spoken(10, "poisonn", rng)


def test_same_seed_same_spans():
    a = choose_spoken(50, "poisson", np.random.default_rng(7))
    b = choose_spoken(50, "poisson", np.random.default_rng(7))
    assert (a == b).all()


def _toy(n_groups=8):
    group_tokens = [np.array([10 + g, 20 + g]) for g in range(n_groups)]
    starts = np.arange(n_groups) * 0.5
    ends = starts + 0.5
    unit_start = np.arange(0, n_groups * 0.5, 0.1)  # 5 units per group
    unit_tokens = 500 + np.arange(len(unit_start))
    return group_tokens, starts, ends, unit_tokens, unit_start


def test_document_markers_and_slices():
    group_tokens, starts, ends, unit_tokens, unit_start = _toy()
    mask = np.array([0, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    ids, mod = build_document(mask, group_tokens, starts, ends, unit_tokens, unit_start, SPEECH_MARK, TEXT_MARK, EOS)
    assert len(ids) == len(mod)
    expected = ([TEXT_MARK, 10, 20, 11, 21, SPEECH_MARK] + list(range(510, 520)) + [TEXT_MARK, 14, 24, 15, 25, 16, 26, SPEECH_MARK]
                + list(range(535, 540)) + [EOS])
    assert ids.tolist() == expected
    switches = np.flatnonzero(np.diff(mod[mod != MARKER].astype(int)) != 0)
    assert (mod == MARKER).sum() == len(switches) + 1, "a marker at the start and at every switch"
    assert mod[-2] != MARKER and mod[-1] == SPEECH, "no marker at the end; eos takes the last modality"


def test_marker_rule_over_many_samples():
    rng = np.random.default_rng(3)
    group_tokens, starts, ends, unit_tokens, unit_start = _toy(40)
    for _ in range(200):
        mask = choose_spoken(40, "poisson", rng, 10.0, 0.3)
        ids, mod = build_document(mask, group_tokens, starts, ends, unit_tokens, unit_start, SPEECH_MARK, TEXT_MARK, EOS)
        assert mod[0] == MARKER and mod[-2] != MARKER
        for i in np.flatnonzero(mod == MARKER):
            assert mod[i + 1] == (SPEECH if ids[i] == SPEECH_MARK else TEXT), "marker names the segment after it"
            assert i == 0 or mod[i - 1] != mod[i + 1], "markers only at switches"
        content = mod[mod != MARKER][:-1]
        assert (content == SPEECH).sum() == 5 * mask.sum(), "spoken groups become their units"


def test_spoken_run_without_units_is_written():
    group_tokens, starts, ends, unit_tokens, unit_start = _toy(4)
    ids, mod = build_document(np.array([0, 1, 0, 0], dtype=bool), group_tokens, starts, ends, np.zeros(0, np.int64),
                              np.zeros(0), SPEECH_MARK, TEXT_MARK, EOS)
    assert ids.tolist() == [TEXT_MARK, 10, 20, 11, 21, 12, 22, 13, 23, EOS]
    assert (mod == SPEECH).sum() == 0
