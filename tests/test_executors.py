"""The executor protocol: both executors by name, local dry runs, and a local cancel that stops a
run (reported as stopped, not done) so that a relaunch resumes it."""

from __future__ import annotations

import inspect
import os
import subprocess
import time

import pytest

from scaling.launch.executors import EXECUTORS, open_executor, recorded_executor, resolve
from scaling.launch.manifest import JobRecord, Manifest
from scaling.launch.protocol import Executor
from scaling.store import Lease, Store
from scaling.sweep import load_sweep
from tests.helpers import PYTHON, REPO, link_cache, scaling, write_sweep


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_executors_are_registered_by_name_and_speak_the_protocol(tmp_path):
    assert set(EXECUTORS) == {"local", "slurm"}
    for cls in EXECUTORS.values():
        for method in ("submit", "handles", "state", "cancel"):
            assert list(inspect.signature(getattr(cls, method)).parameters)[1:] == list(
                inspect.signature(getattr(Executor, method)).parameters)[1:]
    assert resolve("local") == "local"
    store = Store(tmp_path)
    assert recorded_executor(store) == "local"
    Manifest(store).record_submitted([JobRecord(job="7", array="7", run="r", sweep="s", submitted="now")])
    assert recorded_executor(store) == "slurm"
    with pytest.raises(Exception, match="unknown executor 'k8s'"):
        open_executor("k8s", store)
    with pytest.raises(Exception, match="unknown key 'local.gpus'"):
        open_executor("local", store, {"gpus": 1})


def test_local_dry_run_trains_nothing(tmp_path, cache):
    store = tmp_path / "store"
    link_cache(store, cache)
    sweep = write_sweep(tmp_path / "s.yaml", store, sizes=("20k", "30k"))
    out = scaling("launch", str(sweep), "--dry-run", "--no-preload")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("would train llama-") == 2 and "would train 2 run(s) here" in out.stdout
    assert all(run.status()["state"] == "pending" for run in Store(store).runs())


def test_local_cancel_stops_a_run_that_a_relaunch_resumes(tmp_path, cache):
    store = tmp_path / "store"
    link_cache(store, cache)
    sweep_file = write_sweep(tmp_path / "s.yaml", store, sizes=("20k",), tokens=(8 * 32 * 3000,))
    run = Store(store).run(load_sweep(sweep_file).runs[0].run_id)
    launch = subprocess.Popen([PYTHON, "-m", "scaling.cli", "launch", str(sweep_file), "--threads", "1"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    deadline = time.time() + 300
    while not run.metrics() and time.time() < deadline and launch.poll() is None:  # training has started
        time.sleep(0.2)
    assert Lease(run).live_owner() is not None, "the run was not being trained"
    out = scaling("cancel", str(sweep_file))
    assert out.returncode == 0 and "cancelled job " in out.stdout, out.stdout + out.stderr
    report = launch.communicate(timeout=300)[0]
    assert launch.returncode == 0, report
    assert "stopped " in report and "0 trained" in report and "1 stopped" in report, report
    status = run.status()
    assert status["state"] == "pending" and status["tokens"] > 0 and (run.checkpoint_dir / "latest.pt").exists()
    assert "nothing cancelled" in scaling("cancel", str(sweep_file)).stdout  # no process trains it any more


def test_runs_forked_from_the_pre_imported_trainer_train_as_fresh_processes_do(tmp_path, cache, monkeypatch):
    """The zygote (scaling.launch.zygote) changes how a run's process starts, not what it computes:
    the same run, forked or started fresh, writes bit-identical metrics; its log and exit status
    reach the store as a fresh process's do, with a relative store path taken from the caller's
    directory and the caller's environment (a fault injected through $SCALING_FAULT)."""
    from scaling.launch.local import LocalExecutor
    from scaling.runs.outcome import Outcome

    metrics = {}
    for preload in (True, False):
        root = tmp_path / f"preload-{preload}"
        link_cache(root / "store", cache)
        sweep = load_sweep(write_sweep(root / "s.yaml", root / "store", tokens=(8 * 32 * 6,)))
        monkeypatch.chdir(root)
        store = Store("store")
        (handle,) = LocalExecutor(store, {"max_parallel": 1, "threads": 1, "preload": preload}, say=lambda line: None).submit(sweep.runs)
        run = store.run(sweep.runs[0].run_id)
        assert handle.action == Outcome.DONE and run.status()["state"] == "done", run.log_file.read_text()
        assert "done" in run.log_file.read_text().splitlines()[-1]
        metrics[preload] = [(r["step"], r["loss_train"]) for r in run.metrics()]
    assert metrics[True] == metrics[False] and len(metrics[True]) >= 2

    monkeypatch.setenv("SCALING_FAULT", "kill:step:2")
    root = tmp_path / "killed"
    link_cache(root / "store", cache)
    sweep = load_sweep(write_sweep(root / "s.yaml", root / "store", tokens=(8 * 32 * 6,)))
    store = Store(root / "store")
    (handle,) = LocalExecutor(store, {"max_parallel": 1, "threads": 1}, say=lambda line: None).submit(sweep.runs)
    assert handle.action == Outcome.FAILED
    assert store.run(sweep.runs[0].run_id).status()["error"] == "killed by SIGKILL"


def test_a_dead_zygote_or_a_cuda_host_leaves_runs_to_fresh_processes(tmp_path, cache, monkeypatch):
    """The zygote is an optimisation: if it dies, the launch goes on with a new process per run;
    on a host with a CUDA device it is not used at all (CUDA and fork do not mix)."""
    import signal

    from scaling.launch import local
    from scaling.launch.zygote import Zygote, preload_modules
    from scaling.runs.outcome import Outcome

    zygote = Zygote(preload_modules([]), dict(os.environ))
    zygote.proc.send_signal(signal.SIGKILL)
    zygote.proc.wait()
    with pytest.raises(OSError):
        zygote.start(["store", "run"], tmp_path / "log", dict(os.environ), "run")
    assert zygote.exit_code(2 ** 22 + 12345) == 1  # a child it can no longer report on, and gone
    zygote.close()

    said = []
    link_cache(tmp_path / "store", cache)
    sweep = load_sweep(write_sweep(tmp_path / "s.yaml", tmp_path / "store", sizes=("20k", "30k"), tokens=(8 * 32 * 3,)))
    executor = local.LocalExecutor(Store(tmp_path / "store"), {"max_parallel": 1, "threads": 1}, say=said.append)
    real_start = local.Zygote.start
    monkeypatch.setattr(local.Zygote, "start", lambda self, *a, **k: (self.proc.kill(), self.proc.wait(), real_start(self, *a, **k))[-1])
    handles = executor.submit(sweep.runs)
    assert [h.action for h in handles] == [Outcome.DONE, Outcome.DONE]
    assert any("starting each run as a new process" in line for line in said)

    monkeypatch.setattr(local, "cuda_host", lambda: True)
    monkeypatch.setattr(local, "Zygote", None)  # would fail if used
    for run in sweep.runs:
        Store(tmp_path / "store").run(run.run_id).update_status(state="pending")
    handles = local.LocalExecutor(Store(tmp_path / "store"), {"max_parallel": 1, "threads": 1}, say=said.append).submit(sweep.runs[:1])
    assert handles[0].action == Outcome.DONE
