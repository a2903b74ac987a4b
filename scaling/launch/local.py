"""The local executor: train runs as child processes of this command, a few at a time.

Each run is ``python -m scaling.train.entry STORE RUN_ID --threads K`` with its output appended to
``runs/<id>/train.log``. Runs whose text LM (``init_from: pretrain:…``) is not done wait for it.
A run another process holds (its lease is live) is left to that process: two launches of one
sweep never train the same run at once, and relaunching resumes unfinished runs from their
checkpoints and skips finished ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from scaling.spec import RunSpec
from scaling.store import FINAL_STATES, Store

EXIT_STATES = {0: "done", 2: "failed", 3: "busy", 4: "diverged"}


@dataclass
class LaunchReport:
    """What a launch did, by run id."""

    skipped: list[str] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r for r, s in self.finished.items() if s == "failed"]

    @property
    def diverged(self) -> list[str]:
        return [r for r, s in self.finished.items() if s == "diverged"]


def order_with_dependencies(runs: list[RunSpec]) -> list[RunSpec]:
    """The runs plus the runs they depend on, dependencies first, each once."""
    from scaling.train.entry import dependencies

    out: dict[str, RunSpec] = {}
    for spec in runs:
        for dep in dependencies(spec):
            out.setdefault(dep.run_id, dep)
    for spec in runs:
        out.setdefault(spec.run_id, spec)
    return list(out.values())


def launch_local(store: Store, runs: list[RunSpec], max_parallel: int = 2, threads: int | None = None,
                 say: Callable[[str], None] = print, poll: float = 0.5) -> LaunchReport:
    """Train every run that is not finished, at most ``max_parallel`` at once; wait for all."""
    from scaling.train.entry import dependencies

    report = LaunchReport()
    threads = threads or max(1, (os.cpu_count() or 1) // max_parallel)
    todo: list[RunSpec] = []
    for spec in order_with_dependencies(runs):
        run = store.register(spec)
        if run.status().get("state") in FINAL_STATES:
            report.skipped.append(spec.run_id)
        else:
            todo.append(spec)
    total = len(todo)
    if report.skipped:
        say(f"{len(report.skipped)} run(s) already finished: skipped")
    active: dict[str, tuple[subprocess.Popen, RunSpec, float]] = {}
    done_count = 0
    while todo or active:
        for run_id, (proc, spec, started) in list(active.items()):
            code = proc.poll()
            if code is None:
                continue
            del active[run_id]
            state = EXIT_STATES.get(code, "failed")
            if state == "busy":
                report.busy.append(run_id)
                say(f"[{done_count}/{total}] {spec.name} ({run_id}) is being trained by another process: left to it")
                continue
            done_count += 1
            report.finished[run_id] = state
            status = store.run(run_id).status()
            summary = store.run(run_id).summary() or {}
            detail = f"loss_val {summary['loss_val']:.4f}" if state == "done" and "loss_val" in summary else status.get("error") or ""
            say(f"[{done_count}/{total}] {state:8s} {spec.name} ({run_id}) in {time.monotonic() - started:.0f}s {detail}".rstrip())
        for spec in list(todo):
            if len(active) >= max_parallel:
                break
            deps = [store.run(d.run_id).status().get("state") for d in dependencies(spec)]
            if any(s in ("failed", "diverged") for s in deps) or any(d.run_id in report.busy for d in dependencies(spec)):
                todo.remove(spec)
                report.blocked.append(spec.run_id)
                say(f"blocked  {spec.name} ({spec.run_id}): its text LM did not finish here")
                continue
            if any(s != "done" for s in deps):
                continue
            todo.remove(spec)
            run = store.run(spec.run_id)
            log = open(run.log_file, "a")
            cmd = [sys.executable, "-m", "scaling.train.entry", str(store.root), spec.run_id, "--threads", str(threads)]
            env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
            active[spec.run_id] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), spec, time.monotonic())
            log.close()
            say(f"start    {spec.name} ({spec.run_id}) tokens {spec.train.tokens:,}")
        if active:
            time.sleep(poll)
        elif todo:  # nothing can start: dependencies are held elsewhere
            break
    for spec in todo:
        report.blocked.append(spec.run_id)
    return report
