"""Offline sets through the real speech pipeline (tiny corpus), the training hook, `scaling eval`."""

from __future__ import annotations

import dataclasses
import functools
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from scaling.data.config import PRESETS, corpus_sentences
from scaling.data.vocab import Vocabulary, build_vocabulary, train_text_tokenizer
from scaling.data.wordnet import split_of
from scaling.errors import UserError
from scaling.evaluation.offline import OFFLINE_SETS, speech_benchmark
from scaling.store import RunDir
from scaling.train.loop import EvalPoint
from tests.helpers import link_cache, scaling, write_sweep

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def vocabs(tmp_path_factory):
    """An interleaved and a unit-only vocabulary for the tiny corpus (k = 32)."""
    root = tmp_path_factory.mktemp("vocab")
    train_text_tokenizer([s for s in corpus_sentences(TINY) if split_of(s) == "train"], root / "bpe", 300)
    build_vocabulary(root / "ext", "extended", TINY.units.k, root / "bpe")
    build_vocabulary(root / "units", "units", TINY.units.k)
    return {"interleaved": Vocabulary(root / "ext"), "speech": Vocabulary(root / "units"), "text_lm": root / "bpe"}


def test_speech_sets_use_the_right_voices_and_are_cached(cache):
    for name in OFFLINE_SETS:
        bench = speech_benchmark(name, TINY, cache)
        voices = {p.meta["voice"] for p in bench.pairs}
        expected = {"stc": {TINY.voices[0]}, "ssc": {TINY.voices[0]}, "ms_stc": set(TINY.heldout_voices),
                    "ms_ssc": set(TINY.heldout_voices)}.get(name, set(TINY.voices))
        assert voices <= expected and voices, name
        assert bench.k == TINY.units.k and bench.modalities() == {"speech", "text"}
        for p in bench.pairs:
            for side in (p.prompt, p.correct, p.wrong):
                if side is not None:
                    assert len(side.units) > 0 and side.units.max() < bench.k and side.text
    assert not set(TINY.heldout_voices) & set(TINY.voices)
    built = sorted((cache / "bench").iterdir())
    speech_benchmark("stc", TINY, cache)
    assert sorted((cache / "bench").iterdir()) == built and len([d for d in built if not d.name.startswith(".")]) == len(OFFLINE_SETS)


def _model(vocab):
    from scaling.models import resolve_model
    from scaling.models.build import build_model
    from scaling.spec import ModelSpec

    return build_model(resolve_model(ModelSpec(size="20k")), vocab.layout.vocab_size, 256, seed=0, pad_id=vocab.layout.pad_id)


@pytest.mark.parametrize("mode", ["interleaved", "speech"])
def test_hook_scores_every_column_of_the_mode(tmp_path, cache, vocabs, mode, monkeypatch):
    from scaling.evaluation.hooks import benchmark_metrics

    store = tmp_path / "store"
    link_cache(store, cache)
    (store / "eval.yaml").write_text("pairs: 2\n")
    run = RunDir(store / "runs" / f"r-{mode}")
    run.path.mkdir(parents=True)
    vocab = vocabs[mode]
    context = SimpleNamespace(context=16)  # shorter than most sequences: scored in windows
    spec = SimpleNamespace(init="scratch", data=context)
    if mode == "interleaved":  # initialised from a (here random) local text LM: the _textlm reference columns
        from transformers import AutoTokenizer

        text_lm = _model(vocabs["interleaved"])
        text_lm.resize_token_embeddings(vocabs["interleaved"].layout.n_text_vocab)
        text_lm.save_pretrained(tmp_path / "lm")
        AutoTokenizer.from_pretrained(vocabs["text_lm"]).save_pretrained(tmp_path / "lm")
        spec = SimpleNamespace(init="text-lm", init_from=str(tmp_path / "lm"), data=context)
    point = functools.partial(EvalPoint, run, spec, SimpleNamespace(vocab=vocab, corpus_config=TINY, corpus=None), _model(vocab),
                              torch.device("cpu"), branch=None)
    early = benchmark_metrics(point(step=3, final=False))
    metrics = benchmark_metrics(point(step=7, final=True))
    speech = {"acc_stc", "acc_ssc", "acc_ms_stc", "acc_ms_ssc", "acc_sblimp", "acc_swuggy"}
    cross = {f"acc_ms_{b}_{d}" for b in ("stc", "ssc") for d in ("s2t", "t2s", "t2t", "textlm")}
    assert set(metrics) == (speech | cross if mode == "interleaved" else speech) and set(early) == speech
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    lines = (run.path / "benchmarks" / "step00000007.csv").read_text().splitlines()
    assert lines[0].startswith("column,pair,loglik_correct") and len(lines) > len(metrics)
    if mode == "interleaved":  # the text-LM reference is cached in the store: another run of that text LM loads no text LM
        cached = {json.loads(p.read_text())["column"] for p in (store / "cache" / "textlm-scores").glob("*.json")}
        assert cached == {"acc_ms_stc_textlm", "acc_ms_ssc_textlm"}
        monkeypatch.setattr("scaling.evaluation.hooks.load_pretrained", lambda *a, **k: pytest.fail("the text LM was loaded again"))
        other = RunDir(store / "runs" / "r-other")
        other.path.mkdir(parents=True)
        again = benchmark_metrics(dataclasses.replace(point(step=7, final=True), run=other))
        assert {c: again[c] for c in cached} == {c: metrics[c] for c in cached}


def test_silent_audio_and_codebook_mismatch_are_errors(tmp_path, cache, vocabs):
    import soundfile

    from scaling.evaluation.suite import Benchmarks, Task, official_tasks, run_tasks
    from scaling.evaluation.tokens import ModelVocab

    soundfile.write(str(tmp_path / "loud.wav"), (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32), 16000)
    soundfile.write(str(tmp_path / "quiet.wav"), np.zeros(8000, np.float32), 16000)
    (tmp_path / "gold.csv").write_text("id,filename,correct\nw,loud,1\nw,quiet,0\n")
    vocab = ModelVocab.of(vocabs["speech"])
    benches = Benchmarks(TINY, cache, speech=True, official={"zr": str(tmp_path)})
    tasks = official_tasks("zr", benches.get("zr"), vocab)
    assert [t.column for t in tasks] == ["acc_zr"]
    with pytest.raises(UserError, match=r"pair 'w', wrong audio .*quiet.wav.*empty or silent audio yields no units"):
        run_tasks(_model(vocabs["speech"]), vocab, tasks, benches)
    small = ModelVocab(vocab.layout.__class__(**{**vocab.layout.__dict__, "n_units": 16}), vocab.encode, "small")
    with pytest.raises(UserError, match="vocabulary mismatch: the corpus codebook has k=32 but the model's vocabulary"):
        run_tasks(_model(vocabs["speech"]), small, tasks, benches)
    with pytest.raises(UserError, match="vocabulary mismatch: benchmark 'stc'.*k=32.*16 unit tokens"):
        run_tasks(_model(vocabs["speech"]), small, [Task("acc_stc", "stc", "s2s")], benches)
    from scaling.data.build import open_corpus
    from scaling.evaluation.format import Benchmark, Pair, Segment, write_benchmark

    write_benchmark(tmp_path / "other.jsonl", Benchmark("other", (Pair("p", Segment(units=np.array([1])), Segment(units=np.array([2]))),),
                                                         k=32, codebook="not-this-one"))
    opened = Benchmarks(TINY, cache, speech=True, official={"other": str(tmp_path / "other.jsonl")}, corpus=open_corpus(TINY, cache))
    with pytest.raises(UserError, match="codebook not-this-one, but the model's corpus uses codebook"):
        run_tasks(_model(vocabs["speech"]), vocab, official_tasks("other", opened.get("other"), vocab), opened)


def test_text_run_carries_benchmarks_into_the_table_and_eval_cli(tmp_path, cache, capsys):
    from scaling.cli import main

    store = tmp_path / "store"
    link_cache(store, cache)
    (store / "eval.yaml").write_text("pairs: 4\n")
    sweep = write_sweep(tmp_path / "s.yaml", store, tokens=(4096,))
    out = scaling("launch", str(sweep))
    assert out.returncode == 0, out.stderr + out.stdout
    run_dir = next((store / "runs").iterdir())
    rows = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    columns = {"acc_ms_stc_t2t", "acc_ms_ssc_t2t", "acc_sblimp_text", "acc_swuggy_text"}
    assert all(columns <= set(r) for r in rows)
    assert main(["collect", str(store)]) == 0
    import pandas as pd

    assert columns <= set(pd.read_csv(store / "results.csv").columns)
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--bench", "sblimp", "--bench", "ms_stc", "--out", str(tmp_path / "e.json")]) == 0
    printed = capsys.readouterr().out
    assert "acc_sblimp_text" in printed and "acc_ms_stc_t2t" in printed
    saved = json.loads((tmp_path / "e.json").read_text())
    assert set(saved["results"]) == {"acc_sblimp_text", "acc_ms_stc_t2t"}
    assert saved["context"] == json.loads((run_dir / "spec.json").read_text())["data"]["context"]
    assert (tmp_path / "e.pairs.csv").read_text().startswith("column,pair")
    assert main(["eval", str(run_dir / "checkpoint"), "--bench", "sblimp", "--pairs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "latest.pt (step" in printed and "acc_sblimp_text" in printed
    assert main(["eval", str(run_dir / "model"), "--bench", "stc", "--corpus", "tiny", "--cache", str(cache), "--context", "8"]) == 0
    printed = capsys.readouterr().out
    assert "acc_stc_t2t" in printed and "at most 8 tokens of context" in printed
    assert main(["eval", str(run_dir), "--bench", "stc", "--context", "0"]) == 2
    err = capsys.readouterr().err
    assert "--context = 0: expected a positive number of tokens" in err and len(err.strip().splitlines()) == 1
    assert main(["eval", str(run_dir / "model"), "--bench", "stc"]) == 2
    assert "needs a corpus" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--bench", "sblimpp"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'sblimp'" in err and len(err.strip().splitlines()) == 1


def test_hook_skips_sets_a_corpus_cannot_provide(tmp_path, cache, vocabs, capsys):
    from dataclasses import replace

    from scaling.evaluation.hooks import benchmark_metrics

    words = ["birds", "sing", "near", "rivers", "during", "spring", "mornings", "loudly"]
    (tmp_path / "s.txt").write_text("".join(f"Birds {' '.join(words[i % 5:i % 5 + 3])} blorp{i} zeb{i} quix{i}\n" for i in range(400)))
    config = replace(TINY, name="odd", sentences=str(tmp_path / "s.txt"), max_sentences=0)
    build_vocabulary(tmp_path / "text", "text", 0, vocabs["text_lm"])
    store = tmp_path / "store"
    link_cache(store, cache)
    run = RunDir(store / "runs" / "r-text")
    run.path.mkdir(parents=True)
    vocab = Vocabulary(tmp_path / "text")
    metrics = benchmark_metrics(EvalPoint(run, SimpleNamespace(init="scratch", data=SimpleNamespace(context=256)),
                                          SimpleNamespace(vocab=vocab, corpus_config=config, corpus=None), _model(vocab),
                                          torch.device("cpu"), step=1, branch=None, final=True))
    assert "acc_ms_stc_t2t" in metrics and "acc_sblimp_text" not in metrics
    assert "skipping sblimp: offline benchmark 'sblimp': corpus 'odd' yields no pairs" in capsys.readouterr().out
