"""Text mode of prepare_data: default tokenizer, packing, labels, determinism, caching, errors."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.data import PAD, TEXT, prepare_data
from scaling.data.wordnet import is_clean, load_sentences, split_of
from scaling.errors import UserError
from scaling.spec import DataSpec


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def prep(cache):
    return prepare_data(DataSpec(mode="text", context=64), cache, seed=0)


def test_shipped_sentences_are_clean_and_split():
    sentences = load_sentences()
    assert 5000 <= len(sentences) <= 7000
    assert len({s.lower().rstrip(".?!") for s in sentences}) == len(sentences)
    assert all(is_clean(s) for s in sentences)
    splits = [split_of(s) for s in sentences]
    assert 0.85 < splits.count("train") / len(splits) < 0.95
    assert splits.count("val") > 100 and splits.count("test") > 100


def test_an_epoch_is_a_permutation_of_contiguous_windows(prep):
    """One pool (text mode): the windows of an epoch start at every multiple of the context once,
    so, put back in order, they tile the pool and each token after the first is a target once."""
    n = prep.n_train_windows()
    assert n > 100 and prep.vocab_size == prep.n_text_vocab == 1024 and prep.n_added_vocab == 0
    starts = [prep._train.locate(i)[2] for i in range(n)]
    assert sorted(starts) == [j * prep.context for j in range(n)]
    assert starts[:20] != sorted(starts[:20]), "windows are shuffled"
    by_start = dict(zip(starts, range(n)))
    a_ids, a_mod = prep.train_window(by_start[5 * prep.context])
    b_ids, _ = prep.train_window(by_start[6 * prep.context])
    assert a_ids.dtype == np.int64 and a_mod.dtype == np.int8
    assert len(a_ids) == len(a_mod) == prep.context + 1
    assert a_ids[-1] == b_ids[0], "neighbouring windows share one token: each token is a target once"
    assert (a_mod == TEXT).all() and prep.pad_id not in a_ids
    assert (a_ids == prep.eos_id).any(), "documents end with end-of-sequence"


def test_tokenizer_round_trip(prep):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(prep.tokenizer_dir))
    for sentence in load_sentences()[:50]:
        ids = prep.encode_text(sentence)
        assert tok.decode(ids) == sentence
        assert prep.vocab.decode(ids) == [("text", sentence)]
    sentences = load_sentences()[:200] + [" leading space", "two  spaces\ttab", "caf\u00e9 na\u00efve"]
    assert prep.vocab.encode_batch(sentences) == [tok.encode(s, add_special_tokens=False) for s in sentences], \
        "the batched path (Rust tokenizer) gives the wrapper's ids"
    words = "The dogs barked at the stranger".split()
    assert sum(prep.vocab.encode_words(words), []) == prep.encode_text(" ".join(words))


def test_order_depends_on_seed_and_index_only(prep, cache):
    again = prepare_data(DataSpec(mode="text", context=64), cache, seed=0)
    other = prepare_data(DataSpec(mode="text", context=64), cache, seed=1)
    n = prep.n_train_windows()
    for i in (0, 7, n - 1, n, 2 * n + 3):
        assert (again.train_window(i)[0] == prep.train_window(i)[0]).all()
    assert not (other.train_window(0)[0] == prep.train_window(0)[0]).all()
    assert [prep._train.locate(n + i)[2] for i in range(8)] != [prep._train.locate(i)[2] for i in range(8)], "epoch 1 is reshuffled"
    ids, mod = prep.train_batch(3, 4)
    assert all((ids[r] == prep.train_window(3 + r)[0]).all() for r in range(4))
    part, pmod = prep.train_batch(3, 4, rows=(1, 3))
    assert (pmod == mod).all() and (part[1:3] == ids[1:3]).all() and (part[[0, 3]] == prep.pad_id).all(), \
        "a rank reads the ids of its own rows only, the modality of all"


def test_val_windows_fixed_and_padded(prep, cache):
    ids, mod = prep.val_windows()
    other = prepare_data(DataSpec(mode="text", context=64), cache, seed=5)
    ids2, _ = other.val_windows()
    assert (ids == ids2).all(), "validation does not depend on the run seed"
    assert ids.shape[1] == 65 and (mod[:-1] != PAD).all() and (ids[mod == PAD] == prep.pad_id).all()
    assert prep.val_windows(limit=3)[0].shape == (3, 65)
    with pytest.raises(UserError, match="validation split is empty"):
        prep.val_windows(exclude_sources=("wordnet",))


def test_missing_tokenizer_dir_is_an_error(cache, tmp_path):
    with pytest.raises(UserError, match="tokenizer_dir"):
        prepare_data(DataSpec(mode="text"), cache, seed=0, tokenizer_dir=str(tmp_path / "nope"))


def test_unknown_corpus_is_an_error(cache):
    with pytest.raises(UserError, match="corpus"):
        prepare_data(DataSpec(mode="text", corpus="defualt"), cache, seed=0)
