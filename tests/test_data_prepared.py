"""prepare_data in interleaved and speech modes on a tiny espeak corpus: vocabularies, windows,
markers, per-modality accounting, determinism, mixture, error paths."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.data import MARKER, PAD, SPEECH, TEXT, prepare_data
from scaling.data.mixing import Blend, PoolInfo, quotas, resolve_shares
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


def _pool_streams(prep):
    """{(source, stream): (ids, modality)}: each training pool's first epoch, its windows put back in
    order of their start (they overlap by one token) — the pool's token stream."""
    found: dict[int, dict[int, tuple]] = {}
    i = 0
    while any(len(found.get(p, {})) < w for p, w in enumerate(prep._train.windows)):
        pool, epoch, start = prep._train.locate(i)
        if epoch == 0:
            found.setdefault(pool, {})[start] = prep.train_window(i)
        i += 1
    out = {}
    for pool, wins in found.items():
        ordered = [wins[s] for s in sorted(wins)]
        info = prep.train_pools[pool]
        out[(info.source, info.stream)] = (np.concatenate([ordered[0][0]] + [w[0][1:] for w in ordered[1:]]),
                                           np.concatenate([ordered[0][1]] + [w[1][1:] for w in ordered[1:]]))
    return out


def _epoch_stream(prep):
    streams = _pool_streams(prep)
    return np.concatenate([v[0] for v in streams.values()]), np.concatenate([v[1] for v in streams.values()])


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
    ids, mod = _pool_streams(inter)[("espeak", "interleaved")]
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
    text, tmod = _pool_streams(inter)[("wordnet", "text")]
    assert (tmod == TEXT).all() and (text < 1024).all()
    speech, smod = _pool_streams(inter)[("espeak", "speech")]
    assert (smod == SPEECH).all() and not (speech == inter.marker_id("speech")).any(), "no markers in the speech stream"


def test_blend_realises_token_shares_in_every_block():
    shares = [0.2024, 0.5433, 0.2543]
    blend = Blend(shares, block=1000)
    assert list(quotas(shares, 1000)) == [203, 543, 254] and sum(blend.realised()) == 1
    pools = np.array([blend.locate(i)[0] for i in range(3000)])
    for b in range(3):
        assert list(np.bincount(pools[b * 1000:(b + 1) * 1000], minlength=3)) == [203, 543, 254]
    assert abs((pools[:100] == 1).mean() - 0.5433) <= 0.01, "slots are spread evenly, so any run of windows is near the mix"
    ks = [blend.locate(i)[1] for i in range(3000) if blend.locate(i)[0] == 2]
    assert ks == list(range(len(ks))), "each pool's windows are taken in order"
    assert blend.windows_of(2, 3000) == 762
    assert list(quotas([0.99995, 0.00005], 1000)) == [999, 1], "a positive share gets at least one slot"


def test_token_shares_from_probabilities_and_keys():
    pools = [PoolInfo("books", "text", 600, 60), PoolInfo("ls", "interleaved", 300, 10), PoolInfo("ls", "speech", 200, 10),
             PoolInfo("tts", "speech", 200, 5)]
    names = ["books", "ls", "tts"]
    p = resolve_shares(pools, {}, (0.5, 0.25, 0.25), names)
    # expected share of a stream = p_s * mean length_s: text 0.5*10, interleaved 0.25*30, speech 0.25*(400/15)
    w = np.array([0.5 * 10, 0.25 * 30, 0.25 * 400 / 15])
    assert np.allclose([p[0], p[1], p[2] + p[3]], w / w.sum()) and np.isclose(p[2], p[3]), "within a stream by tokens"
    q = resolve_shares(pools, {"text": 0.3, "interleaved": 0.4, "speech": 0.3}, None, names)
    assert np.allclose(q, [0.3, 0.4, 0.15, 0.15])
    r = resolve_shares(pools, {"books": 0.5, "tts": 0.5}, None, names)
    assert np.allclose(r, [0.5, 0, 0, 0.5])
    assert np.allclose(resolve_shares(pools, {"ls.speech": 0.25, "books": 0.75}, None, names), [0.75, 0, 0.25, 0])
    with pytest.raises(UserError, match="data.mix_tokens key 'librispeech'"):
        resolve_shares(pools, {"librispeech": 1.0}, None, names)
    with pytest.raises(UserError, match="both name pool 'ls.speech'"):
        resolve_shares(pools, {"speech": 0.5, "ls": 0.5}, None, names)


def test_token_accounting_matches_the_realised_shares(cache):
    inter = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64, resample_interleave=False), cache, seed=0, progress=False)
    stats = inter.mix_stats()
    assert {(s["source"], s["stream"]) for s in stats} == {("wordnet", "text"), ("espeak", "interleaved"), ("espeak", "speech")}
    assert abs(sum(s["realised_share"] for s in stats) - 1) < 1e-12
    assert all(abs(s["realised_share"] - s["requested_share"]) <= 1e-4 for s in stats)
    n = 10_000  # one blending block: each pool's share of windows is exactly its quota
    _, mod = inter.train_batch(0, n)
    by_pool = np.array([inter._train.locate(i)[0] for i in range(n)])
    for p, s in enumerate(stats):
        assert (by_pool == p).sum() == round(s["realised_share"] * n)
    speech_pool = [p for p, s in enumerate(stats) if s["stream"] == "speech"][0]
    assert (mod[by_pool == speech_pool] == SPEECH).all()


def test_interleaved_determinism_and_resampling(inter, cache):
    again = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, progress=False)
    n = inter.n_train_windows()
    for i in (0, n - 1, n + 2):
        assert np.array_equal(again.train_window(i)[0], inter.train_window(i)[0])
    pool = [p for p, info in enumerate(inter.train_pools) if info.stream == "interleaved"][0]
    a, b, c = (np.asarray(inter._train.pools[pool](e)._arrays(0)[0]) for e in (0, 1, 2))
    assert not np.array_equal(a, b) and not np.array_equal(b, c), "spans are re-drawn after the first epoch"
    fixed = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64, resample_interleave=False), cache, seed=0, progress=False)
    pool = [p for p, info in enumerate(fixed.train_pools) if info.stream == "interleaved"][0]
    assert fixed._train.pools[pool](0) is fixed._train.pools[pool](3), "fixed spans: every epoch reads the prepared ones"
    assert fixed.prepared_dir == inter.prepared_dir, "one prepared set serves both (the fixed spans are the corpus' own)"


def test_val_windows_and_sources(inter, cache):
    ids, mod = inter.val_windows()
    assert ids.shape[1] == 65 and (ids[mod == PAD] == inter.pad_id).all()
    assert inter.sources() == ["wordnet", "espeak"]
    other = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=3, progress=False)
    assert np.array_equal(other.val_windows(limit=8)[0], ids[:8]), "validation does not depend on the run seed"
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


def test_text_lms_of_one_tokenizer_share_a_vocabulary_and_a_prepared_set(inter, cache, tmp_path):
    """A text LM's directory holds its tokenizer beside files only the model reads (config.json's
    shape, generation_config.json, scaling_vocab.json): text LMs of different sizes with one
    tokenizer name one vocabulary, while a different tokenizer names another."""
    import json
    import shutil

    from scaling.data.vocab import train_text_tokenizer
    from scaling.data.wordnet import load_sentences

    train_text_tokenizer(load_sentences()[:300], tmp_path / "bpe", vocab_size=400)
    dirs = []
    for width in (32, 64):
        lm = tmp_path / f"lm{width}"
        shutil.copytree(tmp_path / "bpe", lm)
        (lm / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": width}))
        (lm / "generation_config.json").write_text(json.dumps({"max_length": width}))
        (lm / "scaling_vocab.json").write_text(json.dumps({"vocab_size": width}))
        dirs.append(prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, tokenizer_dir=str(lm),
                                 progress=False))
    assert dirs[0].vocab.dir == dirs[1].vocab.dir and dirs[0].prepared_dir == dirs[1].prepared_dir
    other = tmp_path / "other"
    train_text_tokenizer(load_sentences()[:300], other, vocab_size=380)
    (other / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 32}))
    third = prepare_data(DataSpec(mode="interleaved", corpus="tiny", context=64), cache, seed=0, tokenizer_dir=str(other), progress=False)
    assert third.vocab.dir != dirs[0].vocab.dir and third.n_text_vocab == 380


def test_a_corpus_names_the_size_of_its_default_bpe(cache, tmp_path):
    """``text_vocab``: the rows of the default BPE a corpus' text and interleaved runs use (the demo's
    is small: at 10^4 parameters the output layer is most of a step); the speech is unchanged."""
    import yaml

    from scaling.data.build import corpus_key
    from scaling.data.config import PRESETS, resolve_corpus
    from scaling.runs.vocabulary import vocabulary_rows
    from scaling.spec import ModelSpec, RunSpec, TrainSpec

    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "max_sentences": 40, "voices": ["en-us+m3", "en+f3"],
                                      "heldout_voices": ["en-gb-scotland+m4"], "units": {"k": 32, "kmeans_frames": 5000},
                                      "text_vocab": 300}))
    assert corpus_key(resolve_corpus(str(config))) == corpus_key(PRESETS["tiny"])  # the same speech
    prep = prepare_data(DataSpec(mode="interleaved", corpus=str(config), context=64), cache, seed=0, progress=False)
    assert prep.n_text_vocab == 300 and prep.vocab_size == 300 + 32 + 2
    spec = RunSpec(model=ModelSpec(family="llama", size="2x32"), data=DataSpec(mode="interleaved", corpus=str(config)),
                   train=TrainSpec(tokens=1000))
    assert vocabulary_rows(spec) == (prep.vocab_size, 32 + 2)
    assert PRESETS["demo-bpe384"].text_vocab == 384 and PRESETS["demo"].text_vocab == PRESETS["default"].text_vocab == 1024
    assert corpus_key(PRESETS["demo-bpe384"]) == corpus_key(PRESETS["demo"])  # one speech corpus, built once
    config.write_text(yaml.safe_dump({"text_vocab": 100}))
    with pytest.raises(UserError, match=r"corpus.text_vocab = 100: expected 258"):
        resolve_corpus(str(config))


def test_bad_inputs(cache, tmp_path):
    with pytest.raises(UserError, match="tokenizer_dir"):
        prepare_data(DataSpec(mode="interleaved", corpus="tiny"), cache, seed=0, tokenizer_dir=str(tmp_path / "missing"), progress=False)
    with pytest.raises(UserError, match="unit-only"):
        prepare_data(DataSpec(mode="speech", corpus="tiny"), cache, seed=0, tokenizer_dir=str(tmp_path), progress=False)
    with pytest.raises(UserError, match="speech_ratio"):
        prepare_data(DataSpec(mode="interleaved", corpus="tiny", speech_ratio=0.0), cache, seed=0, progress=False)
