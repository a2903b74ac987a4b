"""Atomic store writes, torn lines, leases, and collect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from scaling.atomic import atomic_write, atomic_write_json
from scaling.collect import collect
from scaling.errors import UserError
from scaling.spec import RunSpec
from scaling.store import Lease, LeaseHeld, Store, append_jsonl, read_jsonl, rewrite_jsonl


def test_json_write_is_atomic_under_failure(tmp_path):
    target = tmp_path / "status.json"
    atomic_write_json(target, {"state": "running"})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(target, {"state": Boom()})  # fails mid-serialisation
    assert json.loads(target.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary left behind


def test_atomic_write_takes_bytes_text_and_writers(tmp_path):
    """Bytes and text as they are; numpy and torch through a writer; a writer that fails half-way
    leaves the old file whole and no temporary behind; files are readable by others (0644)."""
    import numpy as np
    import torch

    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    atomic_write(tmp_path / "t.txt", "é\n")
    array = np.arange(5, dtype=np.uint32)
    atomic_write(tmp_path / "a.npy", lambda f: np.save(f, array))
    atomic_write(tmp_path / "s.pt", lambda f: torch.save({"w": torch.ones(2)}, f))
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01" and (tmp_path / "t.txt").read_text(encoding="utf-8") == "é\n"
    assert np.array_equal(np.load(tmp_path / "a.npy"), array)
    assert torch.equal(torch.load(tmp_path / "s.pt")["w"], torch.ones(2))
    assert (tmp_path / "a.npy").stat().st_mode & 0o777 == 0o644

    def half(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "b.bin", half)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.bin", "s.pt", "t.txt"]


def test_jsonl_reader_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')  # a crash mid-append
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    rewrite_jsonl(path, lambda r: r["step"] <= 1)
    assert read_jsonl(path) == [{"step": 1}]


def test_lease_is_exclusive_and_a_dead_holder_is_broken(tmp_path):
    store = Store(tmp_path)
    run = store.register(RunSpec())
    first = Lease(run).acquire()
    with pytest.raises(LeaseHeld):
        Lease(run).acquire()
    first.release()
    # a holder on this host that no longer exists (killed with SIGKILL) leaves a stale lease
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.lease_file.write_text(json.dumps({"host": os.uname().nodename, "pid": proc.pid}))
    Lease(run).acquire().release()
    # a heartbeat older than the ttl is stale too, whoever held it
    run.lease_file.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(LeaseHeld):
        Lease(run, ttl=60).acquire()
    old = time.time() - 120
    os.utime(run.lease_file, (old, old))
    Lease(run, ttl=60).acquire().release()


def test_register_keeps_existing_runs_and_unknown_run_is_an_error(tmp_path):
    store = Store(tmp_path)
    spec = RunSpec()
    run = store.register(spec)
    run.update_status(state="done")
    store.register(spec)
    assert run.status()["state"] == "done"
    with pytest.raises(UserError, match="unknown run 'nope'"):
        store.find_run("nope")
    assert store.find_run(spec.run_id[:6]).run_id == spec.run_id


def test_unwritable_store_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="not writable"):
        Store(blocker / "store").ensure_writable()


def test_collect_writes_one_row_per_eval_point(tmp_path):
    store = Store(tmp_path)
    spec = RunSpec()
    run = store.register(spec)
    for step in (5, 10):
        append_jsonl(run.evals_file, {"step": step, "tokens": step * 100, "loss_val": 3.0 - step / 10, "params_total": 1000})
    run.update_status(state="done")
    df, paths = collect(store)
    assert list(df["step"]) == [5, 10] and list(df["final"]) == [False, True]
    assert df["model_family"].iloc[0] == "llama" and df["train_tokens"].iloc[0] == spec.train.tokens
    assert {p.suffix for p in paths} == {".csv", ".parquet"}
    import pandas as pd

    assert len(pd.read_parquet(paths[1])) == 2
