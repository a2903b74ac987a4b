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


def test_windows_are_packed_contiguously(prep):
    n = prep.n_train_windows()
    assert n > 100 and prep.vocab_size == prep.n_text_vocab == 1024 and prep.n_added_vocab == 0
    a_ids, a_mod = prep.train_window(5)
    b_ids, _ = prep.train_window(6)
    assert a_ids.dtype == np.int64 and a_mod.dtype == np.int8
    assert len(a_ids) == len(a_mod) == prep.context + 1
    assert a_ids[-1] == b_ids[0], "consecutive windows share one token: each token is a target once"
    assert (a_mod == TEXT).all() and prep.pad_id not in a_ids


def test_tokenizer_round_trip(prep):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(prep.tokenizer_dir))
    for sentence in load_sentences()[:50]:
        ids = prep.encode_text(sentence)
        assert tok.decode(ids) == sentence
        assert prep.vocab.decode(ids) == [("text", sentence)]
    words = "The dogs barked at the stranger".split()
    assert sum(prep.vocab.encode_words(words), []) == prep.encode_text(" ".join(words))


def test_order_depends_on_seed_and_index_only(prep, cache):
    again = prepare_data(DataSpec(mode="text", context=64), cache, seed=0)
    other = prepare_data(DataSpec(mode="text", context=64), cache, seed=1)
    n = prep.n_train_windows()
    for i in (0, 7, n - 1, n, 2 * n + 3):
        assert (again.train_window(i)[0] == prep.train_window(i)[0]).all()
    assert not (other.train_window(0)[0] == prep.train_window(0)[0]).all()
    assert not (prep.train_window(n)[0] == prep.train_window(0)[0]).all(), "epoch 1 is reshuffled"


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
