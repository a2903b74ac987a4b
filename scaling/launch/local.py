"""The local executor: train runs as child processes of this command, a few at a time.

Each run is ``python -m scaling.train.entry STORE RUN_ID --threads K`` with its output appended to
``runs/<id>/train.log``; its exit status is its :class:`~scaling.runs.outcome.Outcome`. By default
the runs are forked from one pre-imported process per launch (:mod:`scaling.launch.zygote`: the
same entry point and arguments, without seconds of imports per run); ``preload: false``
(``--no-preload``), or a host with a CUDA device, starts each as a fresh interpreter. Runs
whose text LM (``init_from: pretrain:…``) is not done wait for it. A run another process holds
(its lease is live) is left to that process: two launches of one sweep never train the same run
at once, and relaunching resumes unfinished runs from their checkpoints and skips finished ones.
``cancel`` sends SIGTERM to the training processes of this host (they checkpoint and stop).

Why not Submitit's ``LocalExecutor``: it starts every job at once, with no cap on how many run
together and no order between jobs, and keeps its own pickles and logs beside the store; the
dependency order, the cap, the leases and the progress lines would still be ours to write, so
plain child processes are simpler.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from scaling.errors import UserError
from scaling.launch.protocol import Handle, RunState, StateReport
from scaling.launch.zygote import ForkedRun, Zygote, preload_modules
from scaling.runs.graph import dependencies
from scaling.runs.outcome import Outcome
from scaling.spec import EngineSpec, MirrorSpec, RunSpec, from_dict
from scaling.store import FINAL_STATES, Lease, LeaseHeld, RunDir, Store, now, observed_state

TRAINER_MODULE = "scaling.train.entry"
ZYGOTE_MODULE = "scaling.launch.zygote"


@dataclass(frozen=True)
class LocalSettings:
    """max_parallel: runs trained at once; threads: torch threads per run (0: cores / max_parallel);
    preload: fork the runs from a process that imported the trainer once (:mod:`scaling.launch.zygote`)."""

    max_parallel: int = 2
    threads: int = 0
    preload: bool = True


class LocalExecutor:
    """Trains runs here (see the module docstring). ``sweep`` names the runs' sweep in messages."""

    name = "local"

    def __init__(self, store: Store, options: Mapping[str, Any], *, dry_run: bool = False, sweep: str = "",
                 source: str = "", mirrors: MirrorSpec = MirrorSpec(), engine: EngineSpec = EngineSpec(),
                 say: Callable[[str], None] = print, poll: float = 0.5):
        self.store, self.dry_run, self.mirrors, self.say, self.poll = store, dry_run, mirrors, say, poll
        self.engine = engine.validate()
        self.label = f"sweep {sweep}" if sweep else "runs"
        self.settings = from_dict(LocalSettings, {k: v for k, v in options.items() if v is not None}, "local")
        self._zygote: Zygote | None = None
        if self.settings.max_parallel < 1:
            raise UserError(f"max_parallel = {self.settings.max_parallel} (--max-parallel, or the sweep's max_parallel): "
                            "expected at least 1 run at a time")
        if self.settings.threads < 0:
            raise UserError(f"--threads = {self.settings.threads}: expected a positive number of torch threads per run "
                            "(0 or none: cores / max_parallel)")

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def has_records(cls, store: Store) -> bool:
        return True

    def submit(self, runs: Sequence[RunSpec]) -> list[Handle]:
        """Train every run that is not finished, at most ``max_parallel`` at once, and wait for all.
        Each handle's action is the run's outcome, or ``blocked`` (its text LM did not finish here)."""
        parallel = self.settings.max_parallel
        threads = self.settings.threads or max(1, (os.cpu_count() or 1) // parallel)
        ended: dict[str, Handle] = {}
        todo: list[RunSpec] = []
        for spec in runs:
            run = self.store.register(spec)
            if run.status().get("state") in FINAL_STATES:
                ended[spec.run_id] = Handle(spec.run_id, action=Outcome.SKIPPED, detail=run.status()["state"])
            else:
                todo.append(spec)
        if self.dry_run:
            for spec in todo:
                self.say(f"would train {spec.name} ({spec.run_id}) tokens {spec.train.tokens:,}")
            self.say(f"{self.label}: would train {len(todo)} run(s) here, {parallel} at a time (dry run); "
                     f"{len(ended)} already finished")
            return [ended.get(s.run_id, Handle(s.run_id, action="would-train")) for s in runs]
        self.say(f"launching {self.label}: {len(runs)} runs, {parallel} at a time, store {self.store.root}")
        if ended:
            self.say(f"{len(ended)} run(s) already finished: skipped")
        progress = _Progress(len(todo))
        active: dict[str, tuple[subprocess.Popen, RunSpec, float]] = {}
        try:
            self._train(todo, active, ended, progress, parallel, threads)
        finally:
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None
        for spec in todo:
            ended[spec.run_id] = Handle(spec.run_id, action="blocked", detail="its text LM is trained elsewhere")
        return self._summarise([ended[s.run_id] for s in runs])

    def _train(self, todo: list[RunSpec], active: dict, ended: dict[str, Handle], progress: "_Progress",
               parallel: int, threads: int) -> None:
        """Start the runs of ``todo`` as their text LMs finish, ``parallel`` at a time, until none can start."""
        while todo or active:
            self._reap(active, ended, progress)
            for spec in list(todo):
                if len(active) >= parallel:
                    break
                waiting = self._waits_for(spec, ended)
                if waiting == "a failed text LM":
                    todo.remove(spec)
                    ended[spec.run_id] = Handle(spec.run_id, action="blocked", detail="its text LM did not finish here")
                    self.say(f"blocked  {spec.name} ({spec.run_id}): its text LM did not finish here")
                if waiting != "nothing":
                    continue
                todo.remove(spec)
                active[spec.run_id] = (self._start(spec, threads, todo), spec, time.monotonic())
                self.say(f"start    {spec.name} ({spec.run_id}) tokens {spec.train.tokens:,}")
            if active:
                time.sleep(self.poll)
            elif todo:  # nothing can start: dependencies are held elsewhere
                break

    def _reap(self, active: dict, ended: dict[str, Handle], progress: "_Progress") -> None:
        """Record the outcome of every training process that has ended, with a progress line."""
        for run_id, (proc, spec, started) in list(active.items()):
            code = proc.poll()
            if code is None:
                continue
            del active[run_id]
            outcome = Outcome.from_exit_code(code)
            ended[run_id] = Handle(run_id, job=f"{socket.gethostname()}:{proc.pid}", action=outcome)
            if outcome == Outcome.BUSY:
                self.say(f"{progress} {spec.name} ({run_id}) is being trained by another process: left to it")
                continue
            if outcome == Outcome.FAILED:
                record_failure(self.store.run(run_id), code)
            progress.finished += 1
            self.say(f"{progress} {outcome:8s} {spec.name} ({run_id}) in {time.monotonic() - started:.0f}s "
                     f"{self._detail(run_id, outcome)}".rstrip())

    def _waits_for(self, spec: RunSpec, ended: dict[str, Handle]) -> str:
        """What keeps ``spec`` from starting: ``nothing``, ``a text LM`` (not done yet) or ``a failed
        text LM`` (failed, diverged, or trained by another process that this launch cannot wait for)."""
        deps = dependencies(spec)
        states = [self.store.run(d.run_id).status().get("state") for d in deps]
        if any(s in ("failed", "diverged") for s in states) or any(d.run_id in ended and ended[d.run_id].action == Outcome.BUSY for d in deps):
            return "a failed text LM"
        return "a text LM" if any(s != "done" for s in states) else "nothing"

    def _summarise(self, handles: list[Handle]) -> list[Handle]:
        """Say what the launch did, in one line; returns ``handles``."""
        n = Counter(h.action for h in handles)
        self.say(f"{self.label}: {n[Outcome.DONE]} trained, {n[Outcome.SKIPPED]} already done, {n[Outcome.FAILED]} failed, "
                 f"{n[Outcome.DIVERGED]} diverged, {n[Outcome.STOPPED]} stopped, {n[Outcome.BUSY]} running elsewhere, "
                 f"{n['blocked']} blocked; logs in {self.store.root}/runs/<run_id>/train.log")
        return handles

    def _start(self, spec: RunSpec, threads: int, waiting: Sequence[RunSpec] = ()) -> "subprocess.Popen | ForkedRun":
        """The training process of ``spec``: forked from the zygote (started on first use, with the
        model code of this run and of those ``waiting``), or a fresh interpreter without ``preload``."""
        args = [str(self.store.root), spec.run_id, "--threads", str(threads),
                *self.mirrors.trainer_flags(), *self.engine.trainer_flags()]
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
        log_file = self.store.run(spec.run_id).log_file
        if self.settings.preload and not cuda_host():
            try:
                if self._zygote is None:
                    families = {spec.model.family, *(s.model.family for s in waiting)}
                    self._zygote = Zygote(preload_modules(families), env)
                return self._zygote.start(args, log_file, env, spec.run_id)
            except OSError as exc:  # the zygote could not start or died: fresh interpreters from now on
                self.say(f"the pre-imported trainer process failed ({exc}); starting each run as a new process")
                self.settings = replace(self.settings, preload=False)
        with open(log_file, "a") as log:
            return subprocess.Popen([sys.executable, "-m", TRAINER_MODULE, *args], stdout=log, stderr=subprocess.STDOUT, env=env)

    def _detail(self, run_id: str, outcome: Outcome) -> str:
        run = self.store.run(run_id)
        summary = run.summary() or {}
        if outcome == Outcome.DONE and "loss_val" in summary:
            return f"loss_val {summary['loss_val']:.4f}"
        return run.status().get("error") or ""

    def handles(self, runs: Sequence[RunSpec]) -> list[Handle]:
        """One handle per run; ``job`` is the training process (``host:pid``) when one holds the run."""
        handles = []
        for spec in runs:
            owner = Lease(self.store.run(spec.run_id)).live_owner() if self.store.run(spec.run_id).path.is_dir() else None
            handles.append(Handle(spec.run_id, job=f"{owner.get('host')}:{owner.get('pid')}" if owner else ""))
        return handles

    def state(self, handles: Sequence[Handle]) -> StateReport:
        """The store's state of each run; the ``job`` column is the SLURM job that last trained it, if any."""
        states = []
        for h in handles:
            run = self.store.run(h.run_id)
            status = run.status() if run.spec_file.exists() else {"state": "new"}
            states.append(RunState(h.run_id, observed_state(run, status), status.get("error") or status.get("note") or "",
                                   (("job", status.get("job_id") or "-"),)))
        return StateReport(states)

    def cancel(self, handles: Sequence[Handle]) -> list[Handle]:
        """SIGTERM to the processes of this host that train these runs (each checkpoints and stops);
        returns the handles of those signalled. Processes on other hosts are left alone."""
        here = socket.gethostname()
        cancelled = []
        for h in handles:
            host, _, pid = h.job.rpartition(":")
            if host == here and pid.isdigit() and _is_trainer_of(int(pid), self.store.run(h.run_id)):
                os.kill(int(pid), signal.SIGTERM)
                cancelled.append(h)
        return cancelled


@dataclass
class _Progress:
    """``[finished/total]`` of a launch's progress lines."""

    total: int
    finished: int = 0

    def __str__(self) -> str:
        return f"[{self.finished}/{self.total}]"


def cuda_host() -> bool:
    """Whether this host has a CUDA device: its runs then start as new processes, never forked from
    the zygote (CUDA cannot be used in a process forked after it was initialised, and beside GPU
    runs the seconds of imports the zygote saves do not matter)."""
    import torch

    return torch.cuda.is_available()


def record_failure(run: RunDir, exit_code: int) -> None:
    """Mark ``run`` failed, with why, after its training process ended with ``exit_code`` without
    recording it (killed, or its disk full): the signal that killed it, or the last line of its
    train.log (an exception's). Done under the run's lease, and only while status.json still says
    running: a run another process has taken over meanwhile is left to it."""
    try:
        lease = Lease(run).acquire()
    except LeaseHeld:
        return
    try:
        if run.status().get("state") != "running":
            return
        if exit_code < 0:
            reason = f"killed by {_signal_name(-exit_code)}"
        else:
            lines = run.log_file.read_bytes()[-4096:].decode("utf-8", "replace").strip().splitlines() if run.log_file.exists() else []
            reason = f"exit status {exit_code}" + (f": {lines[-1].strip()}" if lines else "")
        run.update_status(state="failed", error=reason, finished=now())
    finally:
        lease.release()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _is_trainer_of(pid: int, run: RunDir) -> bool:
    """Whether process ``pid`` of this host is ``scaling.train.entry`` training ``run`` (so that a
    lease left by a dead process whose pid was reused never makes us signal a stranger): its command
    line names both, or it is a child of the zygote that bears the run id as its process name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        comm = Path(f"/proc/{pid}/comm").read_bytes().strip()
    except OSError:
        return False
    if TRAINER_MODULE.encode() in args and run.run_id.encode() in args:
        return True
    return ZYGOTE_MODULE.encode() in args and comm == run.run_id.encode()[:15]
