"""What a SLURM job runs: one run of a store, trained by every task of the job (data-parallel).

:class:`TrainJob` is the callable Submitit pickles. On the compute node it

* sets up torch.distributed for a multi-task job from the SLURM environment alone (ranks from
  ``SLURM_PROCID``/``SLURM_NTASKS``, the master address is the job's first node, the port is
  derived from the job id so that jobs sharing a node do not collide; whatever the submitting
  shell exported is ignored);
* traps SIGUSR2 (the time-limit warning, sent ``signal_delay`` seconds before the limit, or a
  preemption notice through ``scancel --signal=USR2``), SIGTERM (``scancel``, ``scontrol requeue``,
  preemption) and SIGINT: training saves a checkpoint at the next step and returns ``stopped``;
* after SIGUSR2 requeues its own job (``scontrol requeue``; at most ``max_requeues`` times per
  job, counted by ``SLURM_RESTART_COUNT``) — the restarted job resumes from the run directory;
  after SIGTERM it just exits and lets SLURM requeue or cancel;
* waits for a lease that an earlier incarnation of the run still holds (a requeued or cancelled
  job finishing its checkpoint) for at most ``lease_wait`` seconds, so a run is never trained by
  two jobs at once.

The job fails (non-zero exit, SLURM state FAILED) when the run fails, when the lease stays held by
someone else, or when its requeues are used up; it completes when the run is done, diverged, or
stopped by the scheduler. Training progress goes to the job's Submitit log and to the run's
``train.log``.

Checkpointable: should SIGUSR2 arrive before training has started (while Submitit's own handler is
still installed), Submitit requeues the job with this same callable; the state that matters lives
in the run directory, not in the pickle.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import submitit

from scaling.launch.scheduler import check, run_slurm, with_retries
from scaling.launch.snapshot import package_dir
from scaling.runs.outcome import Outcome
from scaling.spec import EngineSpec, MirrorSpec
from scaling.train.signals import StopSignal


class TrainJob(submitit.helpers.Checkpointable):
    """Train run ``run_id`` of the store at ``store_root`` inside a SLURM job (see the module docstring)."""

    def __init__(self, store_root: str, run_id: str, max_requeues: int = 10, lease_wait: float = 150.0,
                 mirrors: MirrorSpec = MirrorSpec(), engine: EngineSpec = EngineSpec()):
        self.store_root = store_root
        self.run_id = run_id
        self.max_requeues = max_requeues
        self.lease_wait = lease_wait
        self.mirrors = mirrors
        self.engine = engine

    def __call__(self) -> str:
        from scaling.store import FINAL_STATES, Store
        from scaling.train.entry import train_run

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        stop = StopSignal().install()
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        set_distributed_env()
        run = Store(self.store_root).run(self.run_id)
        job = job_key()
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        log = RunLog(run.log_file if rank == 0 else None)
        log(f"job {job} (restart {restarts}) rank {rank}/{os.environ.get('SLURM_NTASKS', '1')} on {os.uname().nodename}: "
            f"run {self.run_id}, code {package_dir()}")
        if run.status().get("state") in FINAL_STATES:  # every rank decides alike, so none waits for the others
            log(f"run {self.run_id} is already {run.status()['state']}: nothing to do")
            return Outcome.SKIPPED.value
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
        deadline = time.monotonic() + self.lease_wait
        while True:
            state = train_run(self.store_root, self.run_id, threads=threads, should_stop=stop, progress=log.progress,
                              mirrors=self.mirrors, engine=self.engine)
            if state != Outcome.BUSY or stop() or time.monotonic() > deadline:
                break
            time.sleep(5)
        log(f"run {self.run_id}: {state}")
        if state == Outcome.BUSY:
            raise RuntimeError(f"run {self.run_id} is held by another process for more than {self.lease_wait:.0f}s "
                               f"(lease {run.lease_file}); this job leaves it to that process")
        if state == Outcome.STOPPED and stop.signum == signal.SIGUSR2 and rank == 0:
            if restarts >= self.max_requeues:
                raise RuntimeError(f"job {job} reached its time limit or was preempted {restarts + 1} times "
                                   f"(slurm.max_requeues = {self.max_requeues}); relaunch the sweep to continue from the checkpoint")
            requeue(os.environ["SLURM_JOB_ID"])
            log(f"job {job} requeued after a SIGUSR2 (time limit or preemption); it resumes from step {run.status().get('step')}")
            return "requeued"
        return state.value


class RunLog:
    """Prints job lines to stdout (the Submitit log) and, on rank 0, appends them to the run's train.log."""

    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")

    def progress(self, row: dict) -> None:
        from scaling.train.metrics import progress_line

        self(progress_line(row))


def job_key() -> str:
    """This job's key as the manifest writes it: '<array id>_<index>' for an array task, else the job id."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID", "")


def set_distributed_env() -> None:
    """The torch.distributed environment of this task, from SLURM alone.

    Ranks come from ``SLURM_PROCID``/``SLURM_NTASKS``, so torchrun's variables and any master
    address a submitting shell exported (sbatch passes its environment on) are dropped. A
    multi-task job sets MASTER_ADDR to its first node and MASTER_PORT to 20000 + job id mod 20000.
    """
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(key, None)
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        os.environ["MASTER_ADDR"] = submitit.JobEnvironment().hostnames[0]
        os.environ["MASTER_PORT"] = str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000)


def requeue(job_id: str) -> None:
    """Put this job back in the queue (``scontrol requeue``); SLURM restarts it under the same id."""
    with_retries(lambda: check(run_slurm(["scontrol", "requeue", job_id]), f"scontrol requeue {job_id}"), attempts=3)
