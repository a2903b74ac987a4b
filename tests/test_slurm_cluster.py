"""The SLURM executor against a real cluster (in CI: the one-node cluster of .ci/slurm-up.sh).

Tiny models (20k-50k parameters, context 32, a few thousand to a few hundred thousand tokens) so
that each run trains in seconds; what takes time is SLURM itself (scheduling ticks, the ~11 s a
requeued job waits before it may start again) and Python start-up on 2 shared cores.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scaling.cli import main as cli
from scaling.launch.manifest import Manifest
from scaling.launch.slurm import cancel_runs
from scaling.store import Store
from scaling.sweep import load_sweep
from scaling.runs.timeline import Timeline
from tests.helpers import PYTHON, REPO, link_cache, scaling, write_sweep

pytestmark = pytest.mark.slurm


STORES: list[Path] = []


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The data cache every store of this module shares; on teardown, jobs a failed test left in the queue are cancelled."""
    yield tmp_path_factory.mktemp("slurm-cache")
    for store in STORES:
        runs = [run.run_id for run in Store(store).runs()]
        cancel_runs(Store(store), runs)


def make_sweep(tmp_path: Path, cache: Path, name: str, slurm: dict, sizes=("20k",), tokens=(4096,)) -> tuple[Path, Path]:
    """A tiny sweep with a ``slurm:`` section, in its own store that shares the data cache; (sweep file, store)."""
    store = tmp_path / f"store-{name}"
    STORES.append(store)
    link_cache(store, cache)
    path = write_sweep(tmp_path / f"{name}.yaml", store, name=name, sizes=sizes, tokens=tokens)
    config = yaml.safe_load(path.read_text())
    config["slurm"] = {"mem_per_task": "1G", "submit_interval": 0.2, **slurm}
    path.write_text(yaml.safe_dump(config))
    return path, store


def launch(sweep: Path, *flags: str) -> subprocess.CompletedProcess:
    out = scaling("launch", str(sweep), "--executor", "slurm", *flags)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def job_of(store: Path, run_id: str) -> str:
    return Manifest(Store(store)).by_run()[run_id][-1].job


def diagnostics(store: Path) -> str:
    logs = sorted((store / "slurm" / "jobs").glob("*/*_log.*"))
    tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-8:]) for p in logs[-4:])
    queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
    return f"queue:\n{queue}\n{tails}"


def wait_done(store: Path, run_ids: list[str], timeout: float, poll: float = 1.0,
              until: callable = None) -> None:
    """Wait until every run is done (or ``until()`` is true); fail fast, with the job logs, if one fails."""
    s = Store(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s.run(r).status().get("state") for r in run_ids]
        if "failed" in states:
            errors = [s.run(r).status().get("error") for r in run_ids]
            pytest.fail(f"a run failed: {errors}\n{diagnostics(store)}")
        if (until() if until else all(state == "done" for state in states)):
            return
        time.sleep(poll)
    pytest.fail(f"not finished after {timeout:.0f}s: {states}\n{diagnostics(store)}")


def assert_metrics_complete(store: Path, spec) -> None:
    """Every logging step exactly once (log every 10 steps, at evaluations and at the end), budget reached."""
    run = Store(store).run(spec.run_id)
    plan = Timeline.of(spec)
    expected = [s for s in range(1, plan.n_steps + 1) if s % 10 == 0 or s in plan.eval_steps or s == plan.n_steps]
    assert [r["step"] for r in run.metrics()] == expected
    assert [r["step"] for r in run.evals()] == list(plan.eval_steps)
    assert run.metrics()[-1]["tokens"] == spec.train.tokens


# ----------------------------------------------------------------------------- fast: no training
def test_bad_requests_are_refused_before_anything_is_submitted(tmp_path, cache, capsys):
    sweep, store = make_sweep(tmp_path, cache, "bad", {}, sizes=("20k", "30k"))
    queue_before = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    for flags, message in ((["--partition", "nope"], "unknown slurm.partition 'nope'"),
                           (["--cpus-per-task", "64"], "CPUs per node, but its largest node has"),
                           (["--mem-per-task", "100T"], "memory per node"),
                           (["--constraint", "a100"], "Invalid feature specification"),
                           (["--sbatch", "gres=gpu:1"], "Invalid generic resource")):
        assert cli(["launch", str(sweep), "--executor", "slurm", *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (flags, err)
    assert not (store / "slurm" / "manifest.jsonl").exists()
    assert subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout == queue_before


def test_relaunch_while_queued_submits_nothing_and_cancel_leaves_runs_resumable(tmp_path, cache, capsys):
    sweep, store = make_sweep(tmp_path, cache, "held", {}, sizes=("20k", "30k", "40k"))
    assert cli(["launch", str(sweep), "--executor", "slurm", "--sbatch", "hold"]) == 0  # queued, held: never starts
    first = capsys.readouterr().out
    assert "submitted 3 run(s) in 1 array(s)" in first
    manifest = Manifest(Store(store))
    jobs = list(manifest.jobs())
    assert cli(["launch", str(sweep), "--executor", "slurm", "--sbatch", "hold"]) == 0
    assert "submitted 0 run(s) in 0 array(s); 3 queued or running" in capsys.readouterr().out
    assert list(manifest.jobs()) == jobs
    assert cli(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "3 queued" in out and "JobHeldUser" in out
    runs = [j.run for j in manifest.jobs().values()]
    assert cli(["cancel", str(sweep), runs[0]]) == 0
    assert f"cancelled job {jobs[0]}" in capsys.readouterr().out
    cli(["status", str(sweep)])
    assert "1 cancelled, 2 queued" in capsys.readouterr().out
    assert cli(["cancel", str(sweep)]) == 0
    assert "cancelled 2 job(s)" in capsys.readouterr().out
    # cancelled jobs do not count as failed attempts: a relaunch submits the three runs again
    assert cli(["launch", str(sweep), "--executor", "slurm", "--sbatch", "hold"]) == 0
    assert "submitted 3 run(s)" in capsys.readouterr().out
    assert cli(["cancel", str(sweep)]) == 0
    assert len(manifest.jobs()) == 6 and all(j.cancelled for j in manifest.jobs().values())


# ----------------------------------------------------------------------------- slow: training on the cluster
@pytest.mark.slow
def test_twelve_run_sweep_in_capped_arrays_finishes_and_collects(tmp_path, cache):
    sizes = ("20k", "25k", "30k", "35k", "40k", "50k")
    sweep, store = make_sweep(tmp_path, cache, "twelve", {"max_array_size": 5, "array_parallelism": 1},
                              sizes=sizes, tokens=(1024, 2048))
    out = launch(sweep)
    arrays = re.findall(r"^(\d+)\s+(\d+)%1\s", out.stdout, re.MULTILINE)
    assert [n for _, n in arrays] == ["5", "5", "2"], out.stdout
    for array, _ in arrays:
        info = subprocess.run(["scontrol", "show", "job", array], capture_output=True, text=True).stdout
        assert "ArrayTaskThrottle=1" in info
    again = launch(sweep)  # the jobs are still queued (2 CPUs, %1 per array): nothing new
    assert "submitted 0 run(s)" in again.stdout and len(Manifest(Store(store)).jobs()) == 12

    # status --watch until the queue is empty, counting squeue calls through a wrapper
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True).stdout.strip()
    (wrap / "squeue").write_text(f'#!/bin/bash\necho call >> "{wrap}/calls"\nexec {real} "$@"\n')
    (wrap / "squeue").chmod(0o755)
    env = dict(os.environ, PATH=f"{wrap}:{os.environ['PATH']}")
    watch = subprocess.run([PYTHON, "-m", "scaling.cli", "status", str(sweep), "--watch", "3"],
                           capture_output=True, text=True, timeout=420, env=env, cwd=REPO)
    assert watch.returncode == 0, watch.stderr
    refreshes = watch.stdout.count("\nsweep twelve: ")
    calls = len((wrap / "calls").read_text().splitlines())
    assert 1 <= calls <= refreshes, (calls, refreshes)
    for block in watch.stdout.split("\nsweep twelve: "):
        running = re.findall(r"\s(\d+)_\d+ RUNNING\s", block)
        assert all(running.count(a) <= 1 for a in set(running)), block  # %1: one task per array at a time
    assert "12 done" in watch.stdout.rsplit("\nsweep twelve: ", 1)[1]

    collected = scaling("collect", str(store))
    assert collected.returncode == 0, collected.stderr
    table = pd.read_csv(store / "results.csv")
    assert table["run_id"].nunique() == 12 and set(table["status"]) == {"done"}
    jobs = [jobs[0] for jobs in Manifest(Store(store)).by_run().values()]
    assert len(jobs) == 12 and len({j.snapshot for j in jobs}) == 1
    code = store.resolve() / "slurm" / "code" / jobs[0].snapshot / "scaling"
    for run in Store(store).runs():  # the jobs ran the launch's snapshot, not the checkout
        assert f"code {code}" in run.log_file.read_text().splitlines()[0]


@pytest.mark.slow
def test_preempted_and_time_limited_runs_resume_from_their_checkpoints(tmp_path, cache):
    pre_sweep, pre_store = make_sweep(tmp_path, cache, "preempt", {}, sizes=("20k",), tokens=(400_000,))
    pre = load_sweep(pre_sweep).runs[0]
    launch(pre_sweep)
    run = Store(pre_store).run(pre.run_id)

    def tokens() -> int:
        rows = run.metrics()
        return rows[-1]["tokens"] if rows else 0

    wait_done(pre_store, [pre.run_id], 240, 0.2, until=lambda: tokens() >= 60_000)
    # With a 1-minute limit and signal_delay 10, SLURM sends USR2 20-50 s after the job starts (it checks
    # limits every 30 s, up to 30 s early): a budget of ~60 s of training at the speed measured here is
    # always cut at least once, whatever this machine's speed and load.
    speed = statistics.median(r["tokens_per_s"] for r in run.metrics()[-20:])
    lim_sweep, lim_store = make_sweep(tmp_path, cache, "limit", {"time": 1, "signal_delay": 10}, sizes=("25k",),
                                      tokens=(max(100_000, int(speed * 60) // 256 * 256),))
    lim = load_sweep(lim_sweep).runs[0]
    launch(lim_sweep)
    job = job_of(pre_store, pre.run_id)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # preemption notice: checkpoint and requeue
    wait_done(pre_store, [pre.run_id], 240, 0.5, until=lambda: "requeued after a SIGUSR2" in run.log_file.read_text())
    resumed_at = tokens()
    wait_done(pre_store, [pre.run_id], 240, 0.2, until=lambda: run.status().get("attempts", 0) >= 2 and tokens() >= resumed_at + 40_000)
    subprocess.run(["scontrol", "requeue", job], check=True)  # SLURM requeues: SIGTERM, checkpoint, exit, restart
    wait_done(pre_store, [pre.run_id], 300)
    wait_done(lim_store, [lim.run_id], 480)

    status = run.status()
    assert status["attempts"] >= 3 and status["resumed_from_step"] > 0, status
    assert run.log_file.read_text().count("run {}: stopped".format(pre.run_id)) >= 2
    assert_metrics_complete(pre_store, pre)
    limited = Store(lim_store).run(lim.run_id)
    assert limited.status()["attempts"] >= 2 and limited.status()["resumed_from_step"] > 0
    assert "requeued after a SIGUSR2" in limited.log_file.read_text()
    assert_metrics_complete(lim_store, lim)
    for store in (pre_store, lim_store):  # requeued in place: one job per run, ever
        assert [len(j) for j in Manifest(Store(store)).by_run().values()] == [1]


@pytest.mark.slow
def test_two_task_run_trains_data_parallel_with_gloo(tmp_path, cache):
    sweep, store = make_sweep(tmp_path, cache, "ddp", {"tasks_per_run": 2}, sizes=("30k",), tokens=(8192,))
    spec = load_sweep(sweep).runs[0]
    launch(sweep)
    wait_done(store, [spec.run_id], 240)
    run = Store(store).run(spec.run_id)
    assert run.status()["world_size"] == 2
    job = job_of(store, spec.run_id)
    assert "rank 1/2" in (store / "slurm" / "jobs" / job / f"{job}_1_log.out").read_text()
    assert_metrics_complete(store, spec)
    # the same spec trained by one local process reaches the same loss (floating-point noise apart)
    local_store = tmp_path / "store-local"
    link_cache(local_store, cache)
    local = scaling("launch", str(sweep), "--store", str(local_store), "--executor", "local")
    assert local.returncode == 0, local.stdout + local.stderr
    single = Store(local_store).run(spec.run_id).evals()[-1]["loss_val"]
    assert run.evals()[-1]["loss_val"] == pytest.approx(single, rel=1e-3)
