"""The offline corpus: espeak-ng word groups, units aligned with word times, the on-disk format,
caching, and the skip / error paths. Builds a tiny corpus through the real pipeline."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace

import numpy as np
import pytest

from scaling.data.cache import cached_dir
from scaling.data.config import PRESETS, resolve_corpus
from scaling.data.corpus import SpeechPipeline, build_corpus, plan_utterances
from scaling.data.espeak import align_groups, speak
from scaling.data.features import FRAME_S, log_mel_25hz
from scaling.data.records import Corpus
from scaling.data.units import Codebook, dedup
from scaling.errors import UserError

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "data-cache"  # shared by the data test modules


@pytest.fixture(scope="module")
def corpus(cache):
    return Corpus(build_corpus(TINY, cache, progress=False))


def test_word_groups_from_espeak_events():
    sentence = "I would be true for there are those who trust me"
    audio, events = speak(sentence, "en-us")
    groups = align_groups(sentence, events, audio, 22050)
    words = sentence.split()
    assert [w for g in groups for w in range(g[0], g[1] + 1)] == list(range(len(words))), "every word in exactly one group"
    assert any(g[1] > g[0] for g in groups), "espeak fuses a function-word pair ('there are') into one group"
    assert all(g[3] > g[2] for g in groups) and all(a[3] == b[2] for a, b in zip(groups, groups[1:])), "a group ends where the next begins"
    assert groups[-1][3] <= len(audio) / 22050 + 1e-6


def test_corpus_layout_splits_and_voices(corpus):
    assert corpus.k == 32 and corpus.frame_s == FRAME_S
    splits = {r.split for r in corpus.records}
    assert splits == {"train", "val", "test"}
    held = set(TINY.heldout_voices)
    assert {r.voice for r in corpus.records if r.split != "test"}.isdisjoint(held), "held-out voices never in train/val"
    assert held <= {r.voice for r in corpus.records if r.split == "test"}
    assert all(r.source == "espeak" for r in corpus.records)
    assert len({r.id for r in corpus.records}) == len(corpus.records)
    line = json.loads((corpus.dir / "utterances.jsonl").read_text().splitlines()[0])
    assert set(line) == {"id", "sentence", "words", "groups", "voice", "source", "split", "offset", "n_units", "seconds"}


def test_units_match_word_times(corpus):
    """Unit runs tile the audio at 25 Hz, and the units of each word group are exactly those that
    start inside its time interval: slicing by groups partitions the spoken units in order."""
    spoken_chars, spoken_seconds = [], []
    for r in corpus.records:
        units, durations = corpus.units(r), corpus.durations(r)
        n_frames = -(-round(r.seconds * 16000) // 640)
        assert durations.sum() == n_frames, "run lengths cover every 40 ms frame of the audio"
        assert (units[1:] != units[:-1]).all(), "consecutive duplicates removed"
        starts = corpus.unit_starts(r)
        first, last = r.groups[0][2], r.groups[-1][3]
        inside = units[(starts >= first) & (starts < last)]
        pieces = [corpus.span_units(r, g[2], g[3]) for g in r.groups]
        assert np.array_equal(np.concatenate(pieces), inside)
        assert last <= r.seconds + 1e-3
        for g in r.groups:
            spoken_chars.append(sum(len(w) for w in r.words[g[0]: g[1] + 1]))
            spoken_seconds.append(g[3] - g[2])
    assert np.corrcoef(spoken_chars, spoken_seconds)[0, 1] > 0.5, "longer words take longer: timings follow the words"


def test_pipeline_reproduces_corpus_units(corpus):
    r = next(r for r in corpus.records if r.split == "train")
    pipe = SpeechPipeline(TINY.units, Codebook.load(corpus.dir / "codebook.npz"), TINY.rate)
    spoken = pipe.speak(r.text, r.voice)
    assert np.array_equal(spoken.units, corpus.units(r)) and np.array_equal(spoken.durations, corpus.durations(r))
    other = pipe.speak(r.text, TINY.heldout_voices[0])
    assert len(other.units) > 0 and not np.array_equal(other.units, spoken.units)


def test_build_is_cached_and_deterministic(cache, corpus, tmp_path):
    assert build_corpus(TINY, cache, progress=False) == corpus.dir
    again = Corpus(build_corpus(replace(TINY, workers=2), tmp_path, progress=False))
    assert again.dir.name == corpus.dir.name, "workers do not change the content key"
    assert np.array_equal(np.asarray(again.all_units), np.asarray(corpus.all_units))
    other = build_corpus(replace(TINY, units=replace(TINY.units, k=16)), cache, progress=False)
    assert other != corpus.dir and Corpus(other).meta["codebook"] != corpus.meta["codebook"], "another k: another codebook"


def test_concurrent_builders_agree(tmp_path):
    calls = []

    def build(d):
        calls.append(1)
        (d / "x").write_text("done")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_dir(tmp_path, "kind", {"a": 1}, build))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(calls) == 1 and (results[0] / "x").read_text() == "done"
    assert [p.name for p in (tmp_path / "kind").iterdir() if not p.name.startswith(".")] == [results[0].name]


def test_dedup_and_features():
    units, durations = dedup(np.array([5, 5, 7, 7, 7, 5]))
    assert units.tolist() == [5, 7, 5] and durations.tolist() == [2, 3, 1]
    feats = log_mel_25hz(np.zeros(16000, np.float32))
    assert feats.shape == (25, 320), "one second of 16 kHz audio is 25 stacked frames"


def test_empty_audio_is_skipped_and_counted(tmp_path):
    sentences = tmp_path / "s.txt"
    sentences.write_text("The dogs barked at the stranger\n,\nShe earns a lot in her new job\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sentences: {sentences}\nvoices: [en-us]\nheldout_voices: []\nunits: {{k: 4, kmeans_frames: 100}}\n")
    corpus = Corpus(build_corpus(resolve_corpus(str(cfg)), tmp_path / "cache", progress=False))
    assert corpus.meta["skipped"] == {"utterance: empty or silent audio": 1}
    assert len(corpus.records) == 2
    with pytest.raises(ValueError, match="silent"):
        SpeechPipeline(PRESETS["tiny"].units, Codebook.load(corpus.dir / "codebook.npz"), 175).speak(",", "en-us")


def test_bad_word_times_drop_the_alignment(corpus, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(corpus.dir, broken)
    lines = (broken / "utterances.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["groups"][1][3] = rec["groups"][1][2] - 0.1  # a word that ends before it starts
    lines[0] = json.dumps(rec)
    (broken / "utterances.jsonl").write_text("\n".join(lines) + "\n")
    c = Corpus(broken)
    assert c.records[0].groups is None and c.records[0].n_units > 0, "still usable for the speech stream"
    assert sum(c.meta["skipped_alignment_on_read"].values()) == 1


def test_unit_outside_codebook_is_an_error(corpus, tmp_path):
    broken = tmp_path / "broken-units"
    shutil.copytree(corpus.dir, broken)
    units = np.load(broken / "units.npy")
    units[3] = corpus.k
    np.save(broken / "units.npy", units)
    with pytest.raises(UserError, match="outside the codebook"):
        Corpus(broken)


def test_unknown_voice_and_bad_config(tmp_path):
    with pytest.raises(UserError, match="unknown espeak-ng voice 'en-xx'"):
        build_corpus(replace(TINY, voices=("en-us", "en-xx")), tmp_path, progress=False)
    with pytest.raises(UserError, match="heldout_voices"):
        build_corpus(replace(TINY, heldout_voices=("en-us+m3",)), tmp_path, progress=False)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("voices: [en-us]\nunits: {kk: 3}\n")
    with pytest.raises(UserError, match="corpus.units.kk"):
        resolve_corpus(str(cfg))


def test_plan_keeps_voices_per_sentence():
    plan = plan_utterances(replace(TINY, voices_per_sentence=2), ["The dogs barked at the stranger"] * 1)
    assert len({p.voice for p in plan}) >= 2
