"""Several processes (gloo on the CPU) against one: every strategy (ddp, zero1, fsdp) trains as one
process does; sharded checkpoints (torch.distributed.checkpoint) survive kill -9 and resume on one
rank and on two; a checkpoint for another model is refused in one line; a planted pickle in a
checkpoint's index is refused without running; the chunked loss equals the full loss."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import shutil
import signal
import subprocess
import time
from typing import Iterator

import pytest
import torch

from scaling.errors import UserError
from scaling.models import FAMILIES, resolve_model
from scaling.models.build import build_model
from scaling.runs.materialise import materialise
from scaling.spec import DataSpec, EngineSpec, ModelSpec, RunSpec, TrainSpec
from scaling.store import Store
from scaling.train.entry import train_run
from scaling.train.loop import Trainer
from scaling.train.loss import TokenLoss
from scaling.train.sharded import METADATA, read_metadata
from tests.helpers import PYTHON, REPO, link_cache, rendezvous

PER_STEP = 8 * 32  # tokens per step of the specs below (batch 8, context 32)


def _spec(size="50k", tokens=6 * PER_STEP - 9, **train) -> RunSpec:
    train = {"batch_size": 8, "eval_points": 2, "val_windows": 8, "lr": 3e-3, **train}
    return RunSpec(model=resolve_model(ModelSpec(family="llama", size=size)), data=DataSpec(mode="text", corpus="tiny", context=32),
                   train=TrainSpec(tokens=tokens, **train)).validate()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr("scaling.train.entry._benchmark_hook", lambda: None)  # benchmarks are not under test here
    yield
    torch.set_num_threads(threads)


def _store(tmp_path, cache, name) -> Store:
    link_cache(tmp_path / name, cache)
    return Store(tmp_path / name)


@contextlib.contextmanager
def _ranks(store: Store, spec: RunSpec, *flags: str, n: int = 2) -> Iterator[list[subprocess.Popen]]:
    """``n`` training processes of ``spec`` in ``store`` joined by gloo (one thread each), through a
    rendezvous this process serves; any still running at the end are killed."""
    with rendezvous(n) as env:
        procs = [subprocess.Popen([PYTHON, "-m", "scaling.train.entry", str(store.root), spec.run_id, "--threads", "1", *flags],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                  env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", RANK=str(r), WORLD_SIZE=str(n),
                                           LOCAL_RANK=str(r), **env))
                 for r in range(n)]
        try:
            yield procs
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()


def _finish(procs: list[subprocess.Popen]) -> None:
    outputs = [p.communicate(timeout=280)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs


def _losses(run) -> tuple[list[float], list[float]]:
    return [r["loss_train"] for r in run.metrics()], [r["loss_val"] for r in run.evals()]


# ---------------------------------------------------------------- the loss
@pytest.mark.parametrize("chunk", [7, 128])
@pytest.mark.parametrize("family", FAMILIES)
def test_chunked_loss_equals_the_full_loss(family, chunk):
    """The per-position losses of chunks of 7 positions (a chunk boundary inside every window, each
    chunk recomputed in backward) or of one chunk of all 128 positions (not recomputed) against cross-entropy of the model's full logits: the same fp32 rows of the output layer, so
    they agree to float32 rounding (1e-6 relative); so do the gradients (to 1e-5 of the largest)."""
    torch.manual_seed(0)
    lm = build_model(resolve_model(ModelSpec(family=family, size="20k")), 300, 32, seed=0)
    x, y = torch.randint(0, 300, (4, 32)), torch.randint(0, 300, (4, 32))
    y[0, :5] = -100
    full = torch.nn.functional.cross_entropy(lm(input_ids=x).logits.float().view(-1, 300), y.view(-1), reduction="sum")
    full.backward()
    expected = [p.grad.clone() for p in lm.parameters()]
    lm.zero_grad()
    chunked = TokenLoss(lm, chunk_tokens=chunk)(x, y)
    assert chunked.shape == y.shape and float(chunked.detach()[0, :5].abs().sum()) == 0.0
    assert float(chunked.detach().sum()) == pytest.approx(float(full), rel=1e-6)
    chunked.sum().backward()
    scale = max(float(g.abs().max()) for g in expected)
    for got, want in zip((p.grad for p in lm.parameters()), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * scale)


# ---------------------------------------------------------------- several processes
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("strategy", ["ddp", "zero1", "fsdp"])
def test_two_ranks_match_one_process(tmp_path, cache, strategy):
    """Two gloo ranks (4 windows each) against one process (8 windows) on the same global batch,
    fp32: training and validation losses agree to 1e-5 relative (only the order of float sums
    differs: all-reduce, reduce-scatter and the split of the batch)."""
    spec = _spec()
    single, multi = _store(tmp_path, cache, "single"), _store(tmp_path, cache, strategy)
    for store in (single, multi):
        store.register(spec)
    assert train_run(single.root, spec.run_id, threads=1) == "done"
    with _ranks(multi, spec, "--strategy", strategy) as procs:
        _finish(procs)
    one, two = single.run(spec.run_id), multi.run(spec.run_id)
    assert two.status()["world_size"] == 2 and two.status()["state"] == "done" and two.status()["strategy"] == strategy
    assert [r["tokens"] for r in two.evals()] == [r["tokens"] for r in one.evals()]
    for got, want in zip(_losses(two), _losses(one)):
        assert got == pytest.approx(want, rel=1e-5)
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(one.path / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(two.path / "model").state_dict()
    assert a.keys() == b.keys()
    for key in a:  # each tensor to 1e-5 relative in norm: the order of float sums differs, and Adam's normalised step
        # m/sqrt(v) turns that noise into up to a whole step of lr for the odd element whose gradient is nearly zero
        assert float(torch.linalg.vector_norm(b[key] - a[key])) <= 1e-5 * float(torch.linalg.vector_norm(a[key])), key


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fsdp_killed_after_a_sharded_checkpoint_resumes_on_one_rank_and_on_two(tmp_path, cache):
    """Two fsdp ranks (WSD with a decay branch: the trunk's shards are kept on the host and saved
    too) killed with -9 after a sharded checkpoint; the store, copied, resumes once on one process
    and once on two ranks; both end where one uninterrupted process ends (losses within 1e-5).
    Only the checkpoint ``latest.pt`` names is left."""
    spec = _spec(tokens=24 * PER_STEP, schedule="wsd", branch_tokens=(12 * PER_STEP,), eval_points=2)
    single, sharded = _store(tmp_path, cache, "single"), _store(tmp_path, cache, "sharded")
    for store in (single, sharded):
        store.register(spec)
    assert train_run(single.root, spec.run_id, threads=1) == "done"
    run = sharded.run(spec.run_id)
    with _ranks(sharded, spec, "--strategy", "fsdp", "--checkpoint-every", "1 steps") as procs:
        deadline = time.time() + 300
        while time.time() < deadline and all(p.poll() is None for p in procs) and not (run.checkpoint_dir / "latest.pt").exists():
            time.sleep(0.01)
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    assert run.status()["state"] == "running", "the run finished before it could be killed"
    again = tmp_path / "again"
    shutil.copytree(sharded.root, again, symlinks=True)
    one_rank, two_ranks = Store(sharded.root), Store(again)
    assert train_run(one_rank.root, spec.run_id, threads=1) == "done"
    with _ranks(two_ranks, spec, "--strategy", "fsdp") as procs:
        _finish(procs)
    want = _losses(single.run(spec.run_id))
    for store in (one_rank, two_ranks):
        resumed = store.run(spec.run_id)
        assert resumed.status()["resumed_from_step"] > 0
        assert [(r["tokens"], r["branch"]) for r in resumed.evals()] == [(r["tokens"], r["branch"]) for r in single.run(spec.run_id).evals()]
        for got, expected in zip(_losses(resumed), want):
            assert got == pytest.approx(expected, rel=1e-5)
    assert len(list(two_ranks.run(spec.run_id).checkpoint_dir.glob("sharded-*"))) == 1


def _trainer(store: Store, spec: RunSpec, **kw) -> Trainer:
    built = materialise(spec, store)
    return Trainer(spec=spec, run=store.register(spec), prep=built.data, model=built.model, **kw)


def _sharded_checkpoint(tmp_path, cache, spec) -> Store:
    """A store whose run of ``spec`` has a sharded checkpoint, written by two fsdp ranks (one step)."""
    store = _store(tmp_path, cache, "s")
    store.register(spec)
    with _ranks(store, spec, "--strategy", "fsdp") as procs:
        _finish(procs)
    return store


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_checkpoints_for_another_model_and_planted_pickles_are_refused_in_one_line(tmp_path, cache):
    """A sharded checkpoint moved under a run of another size, and a whole one likewise, are refused
    naming a tensor and both shapes; a pickle planted in a sharded checkpoint's index is refused
    naming the file, and its payload never runs."""
    spec = _spec(tokens=2 * PER_STEP, eval_points=1)
    store = _sharded_checkpoint(tmp_path, cache, spec)
    source = store.run(spec.run_id).checkpoint_dir
    other = dataclasses.replace(spec, model=resolve_model(ModelSpec(family="llama", size="80k")))
    shutil.copytree(source, store.run(other.run_id).checkpoint_dir)
    with pytest.raises(UserError, match=r"holds shape .* for trunk/model\..*but the model has shape .*another model config") as err:
        _trainer(store, other).resume()
    assert "\n" not in str(err.value)

    whole = _store(tmp_path, cache, "whole")
    trainer = _trainer(whole, spec)
    trainer.save()
    shutil.copytree(trainer.run.checkpoint_dir, whole.run(other.run_id).checkpoint_dir)
    with pytest.raises(UserError, match="another model config"):
        _trainer(whole, other).resume()

    index = next(source.glob(f"sharded-*/{METADATA}"))
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    index.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UserError, match=r"not a checkpoint index this toolkit reads: it names posix\.system") as err:
        _trainer(store, spec).resume()
    assert str(index) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="refused"):
        read_metadata(index)
    assert not marker.exists()


def test_engine_settings_are_checked_with_one_line():
    for field, value, expected in (("strategy", "zero3", "engine.strategy"), ("checkpoint_every", "often", "engine.checkpoint_every"),
                                   ("collective_timeout", "30", "engine.collective_timeout"), ("gpu_memory", "lots", "engine.gpu_memory"),
                                   ("activation_checkpointing", "maybe", "engine.activation_checkpointing")):
        with pytest.raises(UserError, match=expected):
            EngineSpec(**{field: value}).validate()
    assert EngineSpec(checkpoint_every="500 steps").checkpoint_interval() == ("steps", 500)
    assert EngineSpec(checkpoint_every="10m").checkpoint_interval() == ("seconds", 600.0)
    assert EngineSpec().checkpoint_interval() is None
