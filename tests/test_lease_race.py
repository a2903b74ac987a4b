"""Many processes racing to take over one stale lease: at most one may ever hold it.

Each trial leaves a lease whose holder is dead (a pid on this host that has exited), then releases
the racers at once through a barrier; every racer that acquires keeps the lease until all have
tried. Workers are started once (spawn: no fork of a process that may have loaded torch) and run
every trial, so a thousand trials take seconds.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

from scaling.store import Lease, LeaseHeld, RunDir

TRIALS = 1000
RACERS = 4


def _racer(root: str, trials: int, start, end, wins) -> None:
    for trial in range(trials):
        start.wait()
        lease = None
        try:
            lease = Lease(RunDir(Path(root) / f"t{trial}")).acquire()
            with wins.get_lock():
                wins[trial] += 1
        except LeaseHeld:
            pass
        end.wait()  # hold the lease until every racer has tried
        if lease is not None:
            lease.release()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_no_two_processes_take_over_one_stale_lease(tmp_path):
    ctx = mp.get_context("spawn")
    start, end = ctx.Barrier(RACERS + 1), ctx.Barrier(RACERS + 1)
    wins = ctx.Array("i", TRIALS)
    stale = json.dumps({"host": os.uname().nodename, "pid": _dead_pid()})
    for trial in range(TRIALS):
        run = tmp_path / f"t{trial}"
        run.mkdir()
        (run / "lease").write_text(stale)
    workers = [ctx.Process(target=_racer, args=(str(tmp_path), TRIALS, start, end, wins)) for _ in range(RACERS)]
    for w in workers:
        w.start()
    try:
        for _ in range(TRIALS):
            start.wait(timeout=60)
            end.wait(timeout=60)
    finally:
        for w in workers:
            w.join(timeout=60)
    assert all(w.exitcode == 0 for w in workers)
    counts = list(wins)
    assert max(counts) == 1, f"{sum(c > 1 for c in counts)} of {TRIALS} trials had several holders"
    assert min(counts) == 1, f"{counts.count(0)} of {TRIALS} trials left the stale lease unbroken"
