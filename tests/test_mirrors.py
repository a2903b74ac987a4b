"""Mirrors of a run's rows (TensorBoard, W&B offline): what they receive, and that a failing
mirror never fails the run."""

from __future__ import annotations

import sys

import pytest
import yaml

from scaling.errors import UserError
from scaling.spec import MirrorSpec, RunSpec
from scaling.store import Store
from scaling.sweep import load_sweep
from scaling.train.mirrors import Mirrors, open_mirrors
from tests.helpers import link_cache, scaling, write_sweep


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_a_sweep_mirrors_every_row_to_tensorboard(tmp_path, cache):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = tmp_path / "store"
    link_cache(store, cache)
    path = write_sweep(tmp_path / "s.yaml", store, tokens=(8 * 32 * 25,))
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "mirrors": {"tensorboard": True}}))
    out = scaling("launch", str(path))
    assert out.returncode == 0 and "1 trained" in out.stdout, out.stdout + out.stderr
    run = next(Store(store).runs())
    spec = run.spec()
    (logdir,) = (store / "tensorboard").iterdir()
    assert logdir.name == f"{spec.name}_{spec.run_id}"
    events = EventAccumulator(str(logdir))
    events.Reload()
    loss = events.Scalars("train/loss_train")
    assert [(e.step, pytest.approx(e.value)) for e in loss] == [(r["step"], r["loss_train"]) for r in run.metrics()]
    val = events.Scalars("eval/loss_val")
    assert [(e.step, pytest.approx(e.value)) for e in val] == [(r["step"], r["loss_val"]) for r in run.evals()]


def test_mirrors_are_checked_with_the_sweep(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", tmp_path / "store")
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "mirrors": {"tensorbord": True}}))
    with pytest.raises(UserError, match="unknown key 'mirrors.tensorbord'"):
        load_sweep(path)
    assert load_sweep(write_sweep(tmp_path / "t.yaml", tmp_path / "store")).mirrors == MirrorSpec()


def test_a_failing_mirror_is_dropped_and_never_fails_the_run(tmp_path, monkeypatch):
    said, seen = [], []

    class Broken:
        def __call__(self, kind, row):
            raise OSError("disk full")

        def close(self):
            raise AssertionError("a dropped mirror is not closed")

    class Recorder:
        def __call__(self, kind, row):
            seen.append((kind, row["step"]))

        def close(self):
            seen.append("closed")

    mirrors = Mirrors({"broken": Broken(), "kept": Recorder()}, said.append)
    mirrors("metrics", {"step": 1})
    mirrors("evals", {"step": 2})
    mirrors.close()
    assert seen == [("metrics", 1), ("evals", 2), "closed"] and len(said) == 1 and "mirror broken failed (OSError: disk full)" in said[0]
    monkeypatch.setitem(sys.modules, "wandb", None)  # W&B asked for but not installed
    run = Store(tmp_path).register(RunSpec())
    opened = open_mirrors(run, RunSpec(), MirrorSpec(wandb="demo"), said.append)
    assert opened is not None and opened.mirrors == {} and "mirror wandb failed (ModuleNotFoundError" in said[-1]
    assert "pip install 'scaling[wandb]'" in said[-1]
    opened("metrics", {"step": 1})
    assert open_mirrors(run, RunSpec(), MirrorSpec()) is None


def test_wandb_mirror_logs_offline_into_the_store(tmp_path):
    pytest.importorskip("wandb")
    spec = RunSpec(sweep="demo")
    run = Store(tmp_path).register(spec)
    said = []
    mirrors = open_mirrors(run, spec, MirrorSpec(wandb="scaling-test"), said.append)
    assert not said and set(mirrors.mirrors) == {"wandb"}
    for step in (1, 2, 3):
        mirrors("metrics", {"step": step, "loss_train": 4.0 / step, "branch": False})
    mirrors.close()
    assert not said
    (offline,) = (tmp_path / "wandb").glob(f"offline-run-*-{spec.run_id}")
    assert list(offline.glob("*.wandb"))
