"""Faults recorded honestly: a full disk mid-checkpoint, a killed trainer, a trainer killed with its
launcher, a damaged checkpoint, temporary files of dead writers, file permissions. Faults are
injected deterministically ($SCALING_FAULT, :mod:`scaling.train.faults`): no race against training."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest
import torch

from scaling.atomic import atomic_write
from scaling.cli import main
from scaling.runs.timeline import Timeline
from scaling.store import Store
from scaling.sweep import load_sweep
from scaling.train.checkpoint import save_checkpoint
from tests.helpers import PYTHON, REPO, link_cache, write_sweep

TOKENS = 8 * 32 * 40  # 40 steps; evaluation points (and checkpoints) at steps 10, 20, 30, 40


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _sweep(tmp_path, cache):
    store = tmp_path / "store"
    link_cache(store, cache)
    path = write_sweep(tmp_path / "s.yaml", store, tokens=(TOKENS,))
    spec = load_sweep(path).runs[0]
    return path, spec, Store(store).run(spec.run_id)


def _cli(*args: str, fault: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", SCALING_FAULT=fault)
    return subprocess.run([PYTHON, "-m", "scaling.cli", *args], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def _trainer(store, run_id: str, fault: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", SCALING_FAULT=fault)
    return subprocess.run([PYTHON, "-m", "scaling.train.entry", str(store), run_id, "--threads", "1", "--checkpoint-every", "1000d"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def test_a_full_disk_mid_checkpoint_fails_the_run_with_the_reason_and_the_next_launch_resumes(tmp_path, cache):
    sweep, spec, run = _sweep(tmp_path, cache)
    out = _cli("launch", str(sweep), "--threads", "1", fault="enospc:checkpoint:2")
    assert out.returncode == 1, out.stdout + out.stderr
    status = run.status()
    assert status["state"] == "failed" and "No space left on device" in status["error"] and "latest.pt" in status["error"]
    assert "failed" in out.stdout and "No space left on device" in out.stdout  # the launch says why
    assert not list(run.checkpoint_dir.glob(".*.tmp"))  # the failed write left nothing behind
    first = Timeline.of(spec).eval_steps[0]
    out = _cli("launch", str(sweep), "--threads", "1")
    assert out.returncode == 0 and "1 trained" in out.stdout, out.stdout + out.stderr
    status = run.status()
    assert status["state"] == "done" and status["attempts"] == 2 and status["resumed_from_step"] == first
    steps = [r["step"] for r in run.metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == Timeline.of(spec).n_steps


def test_a_killed_trainer_is_marked_failed_by_its_launcher_and_a_damaged_checkpoint_is_set_aside(tmp_path, cache, capsys):
    sweep, spec, run = _sweep(tmp_path, cache)
    out = _cli("launch", str(sweep), "--threads", "1", fault="kill:step:15")
    assert out.returncode == 1, out.stdout + out.stderr
    assert run.status()["state"] == "failed" and run.status()["error"] == "killed by SIGKILL"
    assert "killed by SIGKILL" in out.stdout
    assert main(["status", str(sweep)]) == 0
    assert "failed" in capsys.readouterr().out
    checkpoint = run.checkpoint_dir / "latest.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # damaged: cut short
    out = _cli("launch", str(sweep), "--threads", "1")
    assert out.returncode == 0 and "1 trained" in out.stdout, out.stdout + out.stderr
    log = run.log_file.read_text()
    line = next(line for line in log.splitlines() if "cannot be read" in line)
    assert str(checkpoint) in line and "moved aside to latest.pt.corrupt-" in line and "starts again from scratch" in line
    assert len(list(run.checkpoint_dir.glob("latest.pt.corrupt-*"))) == 1 and checkpoint.exists()
    status = run.status()
    assert status["state"] == "done" and status["note"] == line.split(": ", 1)[1]
    steps = [r["step"] for r in run.metrics()]
    assert steps == sorted(set(steps)) and steps[0] == 10  # from scratch: every row once


def test_a_trainer_killed_with_its_launcher_reads_as_interrupted_and_its_temporary_files_go_at_the_next_start(tmp_path, cache,
                                                                                                              capsys):
    sweep, spec, run = _sweep(tmp_path, cache)
    Store(run.path.parents[1]).register(spec)
    out = _trainer(run.path.parents[1], spec.run_id, fault="kill:checkpoint:2")  # no launcher left to record it
    assert out.returncode == -9
    assert run.status()["state"] == "running"
    left = list(run.checkpoint_dir.glob(".latest.pt.*.tmp"))
    assert len(left) == 1
    assert main(["status", str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert " interrupted " in printed and "1 interrupted" in printed and " running " not in printed
    out = _trainer(run.path.parents[1], spec.run_id)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "removed 1 temporary file(s) of a writer that died: checkpoint/" in out.stdout and not left[0].exists()
    assert run.status()["state"] == "done" and run.status()["resumed_from_step"] == Timeline.of(spec).eval_steps[0]


def test_leftovers_are_removed_but_a_racing_lease_candidate_is_not(tmp_path):
    store = Store(tmp_path)
    run = store.run("r1")
    run.checkpoint_dir.mkdir(parents=True)
    (run.path / ".status.json.x1y2.tmp").write_text("{")
    (run.checkpoint_dir / ".latest.pt.abc.tmp").write_bytes(b"PK")
    (run.path / ".model.123.tmp").mkdir()
    (run.path / ".model.123.tmp" / "config.json").write_text("{}")
    fresh, old = run.path / ".lease.5.1.tmp", run.path / ".lease.6.1.tmp"
    fresh.write_text("{}")
    old.write_text("{}")
    os.utime(old, (time.time() - 300, time.time() - 300))
    removed = run.remove_leftovers(lease_ttl=120)
    assert sorted(removed) == [".lease.6.1.tmp", ".model.123.tmp", ".status.json.x1y2.tmp", "checkpoint/.latest.pt.abc.tmp"]
    assert fresh.exists() and sorted(p.name for p in run.path.iterdir()) == [".lease.5.1.tmp", "checkpoint"]


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask):
    """Written files (JSON, checkpoints) are 0666 less the umask, as any new file: a group-shared
    store (umask 002) stays group-writable, a private one (077) stays private; never a temporary
    file's 0600 regardless."""
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "status.json", "{}")
        save_checkpoint(tmp_path / "checkpoint", {"model": {"w": torch.ones(1)}})
    finally:
        os.umask(old)
    for path in (tmp_path / "status.json", tmp_path / "checkpoint" / "latest.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_two_writers_of_one_file_never_share_a_temporary_name(tmp_path):
    """A write that starts while another of the same file is half done (as two `scaling collect`
    at once): both complete, the last rename wins, nothing is left behind."""
    target = tmp_path / "results.csv"

    def outer(f):
        f.write(b"outer\n")
        atomic_write(target, b"inner\n")  # a second writer, in the middle of the first

    atomic_write(target, outer)
    assert target.read_bytes() == b"outer\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
