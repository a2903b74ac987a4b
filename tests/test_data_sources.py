"""Every source format through `scaling data build` → a short training run → evaluation, on
fixtures written here in the real formats (see tests/data_fixtures.py): skip reasons, real and
synthetic labels and token counts against hand counts, token shares, byte-identical shards across
builds and process counts, and a build killed mid-way that restarts to the same shards."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from scaling.data import SPEECH, TEXT, prepare_data
from scaling.data.build import effective_sources
from scaling.data.config import resolve_corpus
from scaling.data.units import dedup
from scaling.data.wordnet import load_sentences, split_of
from scaling.errors import UserError
from scaling.spec import DataSpec
from tests.data_fixtures import SENTENCES, mixed_corpus, write_units
from tests.helpers import PYTHON, REPO, scaling, write_sweep

MIX = {"text": 0.3, "interleaved": 0.4, "speech": 0.3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The fixtures, and their interleaved prepared set built in this process (one worker)."""
    root = tmp_path_factory.mktemp("sources")
    config, skips = mixed_corpus(root)
    return root, config, root / "cache", skips


@pytest.fixture(scope="module")
def prep(corpus):
    _, config, cache, _ = corpus
    return prepare_data(DataSpec(mode="interleaved", corpus=str(config), context=32, mix_tokens=tuple(MIX.items())), cache, seed=0,
                        resample_interleave=False, progress=False)


def _tree(cache: Path) -> dict[str, bytes]:
    """Every file of the built shards and manifests (paths relative to the cache)."""
    return {str(p.relative_to(cache)): p.read_bytes() for kind in ("units", "tokens", "prepared")
            for p in sorted((cache / kind).rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(cache).parts)}


def test_bad_items_are_skipped_and_counted_by_reason(corpus, prep):
    skips = corpus[3]
    manifest = prep.manifest
    for source, expected in skips.items():
        got = {r: n for r, n in manifest["skipped"].get(source, {}).items() if not r.startswith("no word alignment")}
        assert got == expected, source


def test_labels_and_token_counts_match_hand_counts(prep, tmp_path):
    manifest = prep.manifest
    assert {s["name"]: s["real"] for s in manifest["sources"]} == {"books": True, "ls": True, "mfa": True, "whisper": True, "stories": False}
    tok = prep.vocab.tokenizer
    eos = 1
    books = load_sentences()[100:400]
    for split in ("train", "val", "test"):
        lines = [s for s in books if split_of(s) == split]
        expect = sum(len(tok(s, add_special_tokens=False)["input_ids"]) + eos for s in lines)
        assert manifest["tokens"]["books"]["text"][split] == {"tokens": expect, "documents": len(lines)}
    _, rows = write_units(tmp_path / "s.parquet", SENTENCES[24:40], 16)  # the fixture's rows (seeded)
    for split in ("train", "val", "test"):
        mine = [r for r in rows if split_of(r["text"]) == split]
        expect = sum(len(dedup(np.array(r["units"]))[0]) + eos for r in mine)
        assert manifest["tokens"]["stories"]["speech"].get(split, {"tokens": 0})["tokens"] == expect
    for source, n in (("ls", 8), ("mfa", 8), ("whisper", 8)):
        docs = sum(manifest["tokens"][source]["speech"][s]["documents"] for s in ("train", "val", "test"))
        inter = sum(manifest["tokens"][source]["interleaved"][s]["documents"] for s in ("train", "val", "test"))
        assert docs == inter == n, f"{source}: every good utterance is aligned and in both speech streams"


def test_windows_hold_the_right_modalities(prep):
    ids, mod = prep.train_batch(0, 400)
    pools = [prep._train.locate(i)[0] for i in range(400)]
    for row, p in enumerate(pools):
        stream = prep.train_pools[p].stream
        if stream == "text":
            assert (mod[row] == TEXT).all() and (ids[row] < prep.n_text_vocab).all()
        elif stream == "speech":
            assert (mod[row] == SPEECH).all()
    units = (ids >= prep.vocab.layout.unit_offset) & (ids < prep.vocab.layout.unit_offset + 16)
    assert (units == ((mod == SPEECH) & (ids != prep.eos_id))).all()


def test_token_shares_follow_the_mix(prep):
    stats = {(s["source"], s["stream"]): s for s in prep.mix_stats()}
    for stream, share in MIX.items():
        pools = {k: s for k, s in stats.items() if k[1] == stream}
        total = sum(s["tokens"] for s in pools.values())
        for s in pools.values():
            assert s["requested_share"] == pytest.approx(share * s["tokens"] / total, abs=1e-12), "within a stream by tokens"
            assert abs(s["realised_share"] - s["requested_share"]) <= 1e-4  # a blend block holds 10,000 windows
    real = sum(s["realised_share"] for s in stats.values() if s["real"])
    synthetic = sum(s["realised_share"] for s in stats.values() if not s["real"])
    assert real + synthetic == pytest.approx(1.0)
    assert synthetic == pytest.approx(sum(s["requested_share"] for s in stats.values() if not s["real"]), abs=5e-4)
    out = scaling("data", "stats", str(prep.prepared_dir), "--mix", "text=0.3,interleaved=0.4,speech=0.3")
    assert out.returncode == 0 and "all synthetic" in out.stdout and "requested" in out.stdout


@pytest.mark.slow
def test_builds_are_byte_identical_across_runs_and_process_counts(corpus, prep, tmp_path):
    _, config, cache, _ = corpus
    again = scaling("data", "build", str(config), "--cache", str(tmp_path / "c2"), "--modes", "interleaved", "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "malformed manifest line 1" in again.stdout and "unit id outside the codebook 1" in again.stdout, "build reports the skips"
    reference = _tree(cache)
    assert reference and _tree(tmp_path / "c2") == reference, "1 process (here) and 2 (the CLI), two builds: the same bytes"


@pytest.mark.slow
def test_killed_build_restarts_to_the_same_shards(corpus, prep, tmp_path):
    _, config, cache, _ = corpus
    target = tmp_path / "killed"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([PYTHON, "-m", "scaling.cli", "data", "build", str(config), "--cache", str(target), "--modes", "interleaved",
                             "--workers", "1", "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((target / "tokens").glob("*/shard.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the build was still running when killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (target / "prepared").exists() or not any((target / "prepared").rglob("manifest.json")), "no manifest of a half build"
    again = scaling("data", "build", str(config), "--cache", str(target), "--modes", "interleaved", "--workers", "2", "--quiet")
    assert again.returncode == 0, again.stderr
    assert _tree(target) == _tree(cache)


@pytest.mark.slow
def test_every_format_trains_and_evaluates(corpus, prep, tmp_path):
    _, config, cache, _ = corpus
    store = tmp_path / "store"
    store.mkdir()
    os.symlink(cache, store / "cache")
    sweep = write_sweep(tmp_path / "s.yaml", store, mode="interleaved", tokens=(6144,),
                        extra_base={"data": {"corpus": str(config), "mix_tokens": MIX, "resample_interleave": False,
                                             "val_exclude": ["stories"]}})
    done = scaling("launch", str(sweep), "--executor", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    run = next((store / "runs").iterdir())
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    last = evals[-1]
    assert last["tokens"] == 6144 and last["tokens_speech"] > 0 and last["tokens_text"] > 0
    assert math.isfinite(last["loss_val"]) and last["loss_val"] < evals[0]["loss_val"]
    spec = json.loads((run / "spec.json").read_text())
    assert dict(map(tuple, spec["data"]["mix_tokens"])) == MIX
    scored = scaling("eval", run.name, "--store", str(store), "--bench", "swuggy", "--pairs", "8")
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert "swuggy" in scored.stdout


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("sources:\n  - {name: a, format: text, path: x.txt}\n")
    with pytest.raises(UserError, match=r"corpus.sources\[0\].real = None: expected true"):
        resolve_corpus(str(bad))
    bad.write_text("sources:\n  - {name: a, format: text, path: x.txt, real: true, tier: words}\n")
    with pytest.raises(UserError, match="unknown key for a text source"):
        resolve_corpus(str(bad))
    bad.write_text("sources:\n  - {name: a, format: flac, path: x, real: true}\n")
    with pytest.raises(UserError, match="format"):
        resolve_corpus(str(bad))
    bad.write_text("sources:\n  - {name: a, format: text, path: nothing-here/*.txt, real: true}\n")
    done = scaling("data", "build", str(bad), "--cache", str(tmp_path / "c"), "--modes", "text")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "source 'a'" in done.stderr.strip().splitlines()[-1] and "names no file" in done.stderr.strip().splitlines()[-1]


def test_a_source_with_nothing_usable_stops_the_build(tmp_path):
    write_units(tmp_path / "u.parquet", SENTENCES[:3], k=4)  # ids up to 4: all outside a k=2 codebook but the bad row's
    (tmp_path / "c.yaml").write_text("units: {k: 2}\nsources:\n  - {name: tts, format: units, path: u.parquet, real: false}\n")
    done = scaling("data", "build", str(tmp_path / "c.yaml"), "--cache", str(tmp_path / "cache"), "--modes", "speech")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "source 'tts'" in done.stderr and "unit id outside the codebook" in done.stderr and "u.parquet" in done.stderr
    assert not list((tmp_path / "cache").rglob("manifest.json"))


def test_legacy_configs_keep_their_sources():
    config = resolve_corpus("tiny")
    assert [(s.name, s.format, s.real) for s in effective_sources(config)] == [("wordnet", "text", True), ("espeak", "espeak", False)]


def test_a_units_only_corpus_has_no_speech_pipeline_and_skips_speech_benchmarks(tmp_path):
    from scaling.evaluation.offline import Unavailable, speech_benchmark

    write_units(tmp_path / "u.parquet", SENTENCES[:30], k=16)
    (tmp_path / "c.yaml").write_text("units: {k: 16}\nsources:\n  - {name: tts, format: units, path: u.parquet, real: false, time_unit: frames}\n")
    prep = prepare_data(DataSpec(mode="speech", corpus=str(tmp_path / "c.yaml"), context=16), tmp_path / "cache", seed=0, progress=False)
    assert prep.corpus is None and prep.sources() == ["tts"]
    with pytest.raises(Unavailable, match="pre-extracted units only"):
        speech_benchmark("swuggy", resolve_corpus(str(tmp_path / "c.yaml")), tmp_path / "cache")


@pytest.mark.slow
@pytest.mark.slurm
def test_a_slurm_array_builds_one_task_per_shard_then_the_manifest(tmp_path):
    write_units(tmp_path / "u.parquet", SENTENCES[:12], k=16)
    (tmp_path / "c.yaml").write_text("units: {k: 16}\nsources:\n  - {name: tts, format: units, path: u.parquet, real: false, "
                                     "time_unit: frames, shard_size: 4}\n")
    cache = tmp_path / "cache"
    args = ("data", "build", str(tmp_path / "c.yaml"), "--cache", str(cache), "--modes", "speech")
    submitted = scaling(*args, "--executor", "slurm", "--cpus-per-task", "1", "--mem-gb", "1", "--time", "10")
    assert submitted.returncode == 0 and "4 shard task(s)" in submitted.stdout, submitted.stdout + submitted.stderr
    deadline = time.time() + 300
    while time.time() < deadline and len(list((cache / "tokens").glob("*/shard.json"))) < 4:
        time.sleep(1)
    assert len(list((cache / "tokens").glob("*/shard.json"))) == 4, "one array task per shard (12 stories and a bad row, 4 a shard)"
    again = scaling(*args, "--executor", "slurm")
    assert again.returncode == 0 and "every shard" in again.stdout, "finished shards are not submitted again"
    assert scaling(*args).returncode == 0
    local = scaling("data", "build", str(tmp_path / "c.yaml"), "--cache", str(tmp_path / "local"), "--modes", "speech")
    assert local.returncode == 0
    assert _tree(cache) == _tree(tmp_path / "local"), "the cluster's shards are the local build's, byte for byte"
