"""Training runs end to end: exact budgets, kill -9 and resume, concurrent launches, divergence."""

from __future__ import annotations

import math
import os
import signal
import subprocess

import pytest

from scaling.store import Store
from scaling.sweep import load_sweep
from scaling.runs.timeline import Timeline
from tests.helpers import PYTHON, REPO, link_cache, scaling, write_sweep


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _store(tmp_path, cache, name="store"):
    store = tmp_path / name
    link_cache(store, cache)
    return store


def test_plan_of_a_budget_is_exact():
    from scaling.spec import RunSpec, TrainSpec, DataSpec

    plan = Timeline.of(RunSpec(data=DataSpec(context=32), train=TrainSpec(tokens=1000, batch_size=8, eval_points=3)))
    assert plan.n_steps == math.ceil(1000 / 256) and plan.last_step_tokens == 1000 - 3 * 256
    assert plan.eval_steps[-1] == plan.n_steps


def test_run_stops_exactly_at_budget_and_collects(tmp_path, cache):
    store = _store(tmp_path, cache)
    sweep = write_sweep(tmp_path / "s.yaml", store, tokens=(5000,))
    out = scaling("launch", str(sweep))
    assert out.returncode == 0, out.stderr + out.stdout
    assert "1 trained" in out.stdout
    run = next(Store(store).runs())
    evals = run.evals()
    assert evals[-1]["tokens"] == 5000 and evals[-1]["tokens_text"] == 5000
    assert evals[-1]["flops_6nd"] == 6 * evals[-1]["params_total"] * 5000
    assert run.status()["state"] == "done" and (run.path / "model" / "config.json").exists()
    again = scaling("launch", str(sweep))
    assert "1 run(s) already finished: skipped" in again.stdout and "0 trained" in again.stdout
    out = scaling("collect", str(store))
    assert out.returncode == 0 and "collected" in out.stdout
    import pandas as pd

    df = pd.read_csv(store / "results.csv")
    assert len(df) == 4 and df["final"].sum() == 1 and set(df["status"]) == {"done"}


def _train(store, run_id, *extra, fault: str = ""):
    """``python -m scaling.train.entry`` on one run; ``fault``: a $SCALING_FAULT (scaling.train.faults)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", SCALING_FAULT=fault)
    return subprocess.Popen([PYTHON, "-m", "scaling.train.entry", str(store), run_id, "--threads", "1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)


KILL_TOKENS = 8 * 32 * 160  # 160 steps, 4 evaluation points (each one a checkpoint)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache):
    """One run of KILL_TOKENS trained without interruption: what every killed run must end as."""
    root = tmp_path_factory.mktemp("straight")
    store = _store(root, cache)
    spec = load_sweep(write_sweep(root / "s.yaml", store, sizes=("50k",), tokens=(KILL_TOKENS,))).runs[0]
    Store(store).register(spec)
    proc = _train(store, spec.run_id)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    return spec, Store(store).run(spec.run_id)


@pytest.mark.parametrize("fault", ["step", "checkpoint"])
def test_kill_9_mid_training_resumes_to_the_same_result(tmp_path, cache, straight, fault):
    """kill -9 at a chosen point (deterministic fault injection, no race against training): after
    the step 3 steps past the first checkpoint, or inside the second checkpoint's write (its
    temporary file half done). The next start removes the dead writer's temporary file, resumes
    from the first checkpoint, and ends bit-identical to the uninterrupted run."""
    spec, done = straight
    store = _store(tmp_path, cache)
    run = Store(store).register(spec)
    first = Timeline.of(spec).eval_steps[0]
    proc = _train(store, spec.run_id, "--checkpoint-every", "1000d",  # checkpoints at evaluation points only
                  fault=f"kill:step:{first + 3}" if fault == "step" else "kill:checkpoint:2")
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == -signal.SIGKILL, output
    assert run.status()["state"] == "running"
    assert [r["step"] for r in run.evals()][-1] == (first if fault == "step" else 2 * first)
    leftovers = list(run.checkpoint_dir.glob(".latest.pt.*.tmp"))
    assert len(leftovers) == (fault == "checkpoint")
    proc = _train(store, spec.run_id)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert not any(p.exists() for p in leftovers) and ("temporary file(s) of a writer that died" in output) == bool(leftovers)
    assert run.status()["attempts"] == 2 and run.status()["resumed_from_step"] == first
    steps = [r["step"] for r in run.metrics()]
    assert steps == sorted(set(steps)) == [r["step"] for r in done.metrics()]
    assert [r["loss_train"] for r in run.metrics()] == [r["loss_train"] for r in done.metrics()]
    assert [r["loss_val"] for r in run.evals()] == [r["loss_val"] for r in done.evals()]  # bit-identical


def test_two_concurrent_launches_never_train_a_run_twice(tmp_path, cache):
    store = _store(tmp_path, cache)
    sweep = write_sweep(tmp_path / "s.yaml", store, sizes=("20k", "30k"), tokens=(20000,))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [PYTHON, "-m", "scaling.cli", "launch", str(sweep), "--max-parallel", "2", "--threads", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    runs = list(Store(store).runs())
    assert len(runs) == 2
    for run in runs:
        assert run.status()["state"] == "done" and run.status()["attempts"] == 1
        steps = [r["step"] for r in run.metrics()]
        assert steps == sorted(set(steps))


def test_divergence_marks_the_run_and_keeps_it(tmp_path, cache):
    store = _store(tmp_path, cache)
    sweep = write_sweep(tmp_path / "s.yaml", store, tokens=(5000,), extra_base={"train": {"lr": 1e10, "min_lr": 0}})
    out = scaling("launch", str(sweep))
    assert out.returncode == 0 and "1 diverged" in out.stdout
    run = next(Store(store).runs())
    assert run.status()["state"] == "diverged" and run.status()["diverged_step"] >= 1
    assert run.evals()[-1]["diverged"] is True


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: {train: {lr: fast}}\ngrid: {model.size: [20k]}\nbudget: {tokens: [1e4]}\n")
    for args in (["plan", str(bad)], ["launch", str(tmp_path / "none.yaml")], ["collect", str(tmp_path / "nostore")],
                 ["status", str(bad)], ["plan", str(bad), "train.lr"]):
        out = scaling(*args)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith(f"scaling {args[0]}: error: ")
