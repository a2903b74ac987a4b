"""prepare_data in interleaved and speech modes on a tiny espeak corpus: vocabularies, windows,
markers, per-modality accounting, determinism, mixture, error paths."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.data import MARKER, PAD, SPEECH, TEXT, prepare_data
from scaling.data.streams import TokenStream, mixture, probabilities_for_token_shares
from scaling.errors import UserError
from scaling.spec import DataSpec


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "data-cache"  # shared by the data test modules


@pytest.fixture(scope="module")
def inter(cache):
    return prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, progress=False)


@pytest.fixture(scope="module")
def speech(cache):
    return prepare_data(DataSpec(mode="speech", corpus="tiny", context=64), cache, seed=0, progress=False)


def _epoch_stream(prep, epoch=0):
    n = prep.n_train_windows()
    wins = [prep.train_window(epoch * n + i) for i in range(n)]
    ids = np.concatenate([wins[0][0]] + [w[0][1:] for w in wins[1:]])
    mod = np.concatenate([wins[0][1]] + [w[1][1:] for w in wins[1:]])
    return ids, mod


def test_interleaved_vocabulary(inter):
    lay = inter.vocab.layout
    k = inter.corpus.k
    assert inter.n_text_vocab == 1024 and lay.unit_offset == 1024
    assert inter.n_added_vocab == k + 2 and inter.vocab_size == 1024 + k + 2
    assert inter.marker_id("speech") == 1024 + k and inter.marker_id("text") == 1024 + k + 1
    assert inter.pad_id != inter.eos_id
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(inter.tokenizer_dir))
    assert len(tok) == inter.vocab_size
    assert tok.convert_tokens_to_ids(["<unit_0>", f"<unit_{k - 1}>", "<speech>", "<text>"]) == [1024, 1024 + k - 1, 1024 + k, 1025 + k]
    ids = [inter.marker_id("speech")] + inter.encode_units([3, 1, 4]) + [inter.marker_id("text")] + inter.encode_text("the dogs barked")
    assert inter.vocab.decode(ids) == [("marker", "speech"), ("speech", [3, 1, 4]), ("marker", "text"), ("text", "the dogs barked")]
    with pytest.raises(UserError, match="outside the codebook"):
        inter.encode_units([k])


def test_interleaved_windows_follow_the_marker_rule(inter):
    ids, mod = _epoch_stream(inter)
    assert set(np.unique(mod)) == {TEXT, SPEECH, MARKER}
    eos = ids == inter.eos_id
    for i in np.flatnonzero(mod == MARKER):
        assert i + 1 < len(mod) and mod[i + 1] == (SPEECH if ids[i] == inter.marker_id("speech") else TEXT)
        assert not eos[i + 1], "never a marker at the end of a sample"
    content = np.flatnonzero(mod != MARKER)
    a, b = content[:-1], content[1:]
    switch = (mod[a] != mod[b]) & (b == a + 1)
    assert eos[a[switch]].all(), "modality switches inside a sample are always marked"
    units = (ids >= 1024) & (ids < 1024 + inter.corpus.k)
    assert (units == (mod == SPEECH) & ~eos).all(), "SPEECH tokens are exactly the unit tokens (and speech eos)"
    assert ((ids < 1024) | (mod != TEXT)).all()


def test_mixture_probabilities():
    streams = [TokenStream(name, [[i]] * 50, TEXT, 0) for i, name in enumerate(("text", "interleaved", "speech"))]
    docs = mixture(streams, (0.2024, 0.5433, 0.2543), seed=3, epoch=0)
    drawn = np.array([next(docs)[0][0] for _ in range(20000)])
    share = np.bincount(drawn, minlength=3) / len(drawn)
    assert np.allclose(share, (0.2024, 0.5433, 0.2543), atol=0.015)


def test_mixing_by_token_share_and_accounting(inter):
    p = probabilities_for_token_shares([10.0, 40.0, 50.0], [1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(np.array(p) * [10, 40, 50] / np.dot(p, [10, 40, 50]), 1 / 3)
    stats = inter.stream_stats()
    assert set(stats["streams"]) == {"text", "interleaved", "speech"}
    assert abs(sum(s["token_share"] for s in stats["streams"].values()) - 1) < 1e-9
    _, mod = _epoch_stream(inter)
    counts = stats["epoch_target_tokens"]
    assert counts["speech"] == (mod[1:] == SPEECH).sum() and counts["marker"] == (mod[1:] == MARKER).sum()
    assert sum(counts.values()) == inter.n_train_windows() * inter.context, "every target counted once, by its modality"


def test_interleaved_determinism_and_resampling(inter, cache):
    again = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, progress=False)
    n = inter.n_train_windows()
    for i in (0, n - 1, n + 2):
        assert np.array_equal(again.train_window(i)[0], inter.train_window(i)[0])
    stream = inter._train[1]
    masks0 = [stream.spoken_mask(i, 0) for i in range(len(stream))]
    masks1 = [stream.spoken_mask(i, 1) for i in range(len(stream))]
    assert any((a != b).any() for a, b in zip(masks0, masks1)), "spans are re-drawn each epoch"
    fixed = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64, resample_interleave=False), cache, seed=0, progress=False)
    st = fixed._train[1]
    assert all((st.spoken_mask(i, 0) == st.spoken_mask(i, 3)).all() for i in range(len(st)))


def test_val_windows_and_sources(inter):
    ids, mod = inter.val_windows()
    assert ids.shape[1] == 65 and (ids[mod == PAD] == inter.pad_id).all()
    assert inter.sources() == ["wordnet", "espeak"]
    text_only, tmod = inter.val_windows(exclude_sources=("espeak",))
    assert SPEECH not in tmod and MARKER not in tmod
    with pytest.raises(UserError, match="validation split is empty"):
        inter.val_windows(exclude_sources=("espeak", "wordnet"))
    with pytest.raises(UserError, match="no source 'librispeech'.*expected some of"):
        inter.val_windows(exclude_sources=("librispeech",))


def test_speech_mode_unit_vocabulary(speech):
    k = speech.corpus.k
    assert speech.n_text_vocab == 0 and speech.vocab_size == k + 2 and speech.n_added_vocab == k + 2
    assert speech.pad_id == k and speech.eos_id == k + 1
    ids, mod = _epoch_stream(speech)
    assert (mod == SPEECH).all() and ids.max() <= k + 1
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(speech.tokenizer_dir))
    assert tok.decode([3, 1, 4]) == "<unit_3> <unit_1> <unit_4>"
    assert tok("<unit_3> <unit_1>", add_special_tokens=False)["input_ids"] == [3, 1]
    with pytest.raises(UserError, match="unit-only"):
        speech.encode_text("hello")
    with pytest.raises(UserError, match="no modality markers"):
        speech.marker_id("speech")


def test_speech_pipeline_encodes_new_sentences_in_held_out_voices(speech):
    pipe = speech.speech_pipeline()
    spoken = pipe.speak("The cat sat on the mat", speech.heldout_voices[0])
    assert len(spoken.units) > 10 and spoken.groups is not None and len(spoken.groups) <= 6
    assert max(speech.encode_units(spoken.units)) < speech.corpus.k
    with pytest.raises(UserError, match="unknown espeak-ng voice"):
        pipe.speak("The cat sat on the mat", "xx-nope")


def test_extends_a_local_tokenizer_without_clobbering(inter, cache, tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from scaling.data.vocab import train_text_tokenizer
    from scaling.data.wordnet import load_sentences

    train_text_tokenizer(load_sentences()[:300], tmp_path / "bpe", vocab_size=400)
    base = AutoTokenizer.from_pretrained(str(tmp_path / "bpe"))
    gpt2_like = PreTrainedTokenizerFast(tokenizer_object=base.backend_tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    gpt2_like.save_pretrained(str(tmp_path / "lm"))
    prep = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, tokenizer_dir=str(tmp_path / "lm"), progress=False)
    n = len(gpt2_like)
    assert prep.n_text_vocab == n and prep.vocab.layout.unit_offset == n
    assert prep.pad_id >= n + prep.corpus.k + 2 and prep.pad_id != prep.eos_id, "a new pad row, never a real token"
    assert prep.vocab_size == n + prep.corpus.k + 3 and prep.n_added_vocab == prep.corpus.k + 3
    text = "The dogs barked at the stranger"
    assert prep.encode_text(text) == gpt2_like.encode(text, add_special_tokens=False)


def test_bad_inputs(cache, tmp_path):
    with pytest.raises(UserError, match="tokenizer_dir"):
        prepare_data(DataSpec(mode="interleaved", corpus="tiny"), cache, seed=0, tokenizer_dir=str(tmp_path / "missing"), progress=False)
    with pytest.raises(UserError, match="unit-only"):
        prepare_data(DataSpec(mode="speech", corpus="tiny"), cache, seed=0, tokenizer_dir=str(tmp_path), progress=False)
    with pytest.raises(UserError, match="speech_ratio"):
        prepare_data(DataSpec(mode="interleaved", corpus="tiny", speech_ratio=0.0), cache, seed=0, progress=False)
