"""The SLURM executor: submit a sweep's unfinished runs as job arrays through Submitit, and return.

One launch:

1. refreshes the manifest with ONE queue query (:func:`scaling.launch.manifest.refresh`);
2. decides per run: done → skip; a live job → skip (relaunch is idempotent); trained by a live
   process elsewhere (its lease) → skip; ``max_attempts`` submissions used up (cancelled jobs do
   not count) → give up; a text LM it starts from failed → blocked; otherwise submit (a failed or
   interrupted run is resubmitted);
3. checks every request before submitting anything: the partition exists, a node can hold it,
   compute nodes can see the store, and ``sbatch --test-only`` accepts it (account, QoS,
   constraint, …): bad input is one line and nothing is half-submitted;
4. snapshots the code (:mod:`scaling.launch.snapshot`) and submits arrays — one per group of
   runs with equal resources and dependencies, split below MaxArraySize, each capped at
   ``%array_parallelism`` running tasks — with ``sbatch`` calls spaced ``submit_interval`` apart
   and retried on transient errors (5 tries, back-off from 2·submit_interval, doubling); runs
   that start from a text LM pre-trained in the same launch wait for it (``--dependency=afterok``,
   cancelled if it fails);
5. appends each array's jobs to the manifest as soon as ``sbatch`` has returned their ids.

Launches of one store are serialised by a lock; the run lease still guarantees one writer per run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scaling.errors import UserError
from scaling.launch import scheduler
from scaling.launch.manifest import JobRecord, Manifest, refresh, store_lock
from scaling.launch.resources import Resources, SlurmSettings, resources_for
from scaling.launch.scheduler import SchedulerError, TransientSchedulerError, slurm_available, with_retries
from scaling.launch.snapshot import Snapshot, prune_snapshots, snapshot_code
from scaling.spec import RunSpec
from scaling.store import FINAL_STATES, Lease, RunDir, Store, now
from scaling.sweep import Sweep

__all__ = ["launch_slurm", "slurm_available", "overview", "cancel_runs", "settings_flags"]

LOCAL_FILESYSTEMS = ("tmpfs", "ramfs", "devtmpfs")
LOCAL_PREFIXES = ("/tmp/", "/var/tmp/", "/dev/shm/")
ACTION_LABELS = {"done": "done", "live": "queued or running", "elsewhere": "trained elsewhere", "gave-up": "given up",
                 "blocked": "blocked"}


@dataclass
class Decision:
    """What launch does with one run: 'submit' or a reason to leave it, plus what it waits for."""

    spec: RunSpec
    action: str  # submit | done | live | elsewhere | gave-up | blocked
    detail: str = ""
    after_jobs: tuple[str, ...] = ()  # live jobs of its dependencies
    after_runs: tuple[str, ...] = ()  # dependencies submitted in this launch
    wave: int = 0


@dataclass
class ArrayPlan:
    """One sbatch call: runs sharing resources and dependencies."""

    runs: list[RunSpec]
    resources: Resources
    after_jobs: tuple[str, ...]
    after_runs: tuple[str, ...]
    wave: int
    job_ids: list[str] = field(default_factory=list)


def settings_flags(args: argparse.Namespace) -> dict:
    """The slurm settings given on the command line (None where not given)."""
    extra = {}
    for item in getattr(args, "sbatch", None) or []:
        key, sep, value = item.partition("=")
        if not key:
            raise UserError(f"--sbatch {item!r}: expected KEY=VALUE (or KEY for a flag), e.g. --sbatch exclude=node3")
        extra[key.lstrip("-")] = value if sep else True
    flags = {name: getattr(args, name, None) for name in ("partition", "account", "qos", "constraint", "gpus_per_run",
                                                          "tasks_per_run", "cpus_per_task", "mem_per_task", "time",
                                                          "array_parallelism", "max_attempts")}
    return {**flags, "sbatch": extra or None}


def lease_holder(run: RunDir) -> str | None:
    """Who holds the run's lease, when a live process does (read-only: the lease is not touched)."""
    return Lease(run).live_holder()


def decide(store: Store, specs: list[RunSpec], jobs_by_run: dict[str, list[JobRecord]], queue: dict,
           settings: SlurmSettings) -> list[Decision]:
    """One decision per run (dependencies first), from the store, the manifest and the queue."""
    from scaling.train.entry import dependencies

    decisions: dict[str, Decision] = {}
    for spec in specs:
        run = store.run(spec.run_id)
        status = run.status()
        jobs = jobs_by_run.get(spec.run_id, [])
        live = [j.job for j in jobs if j.job in queue and queue[j.job].live]
        attempts = sum(1 for j in jobs if not (j.cancelled or j.scheduler_state == "CANCELLED"))
        if status.get("state") in FINAL_STATES:
            decisions[spec.run_id] = Decision(spec, "done", status["state"])
        elif live:
            decisions[spec.run_id] = Decision(spec, "live", f"job {live[-1]} {queue[live[-1]].state}", after_jobs=(live[-1],))
        elif holder := lease_holder(run):
            decisions[spec.run_id] = Decision(spec, "elsewhere", f"held by {holder}")
        elif attempts >= settings.max_attempts:
            why = status.get("error") or (jobs[-1].scheduler_state if jobs else "")
            decisions[spec.run_id] = Decision(spec, "gave-up", f"{attempts} attempts (slurm.max_attempts); last: {why}")
        else:
            after_jobs, after_runs, wave, blocked = [], [], 0, ""
            for dep in dependencies(spec):
                d = decisions[dep.run_id]  # dependencies come first in ``specs``
                if d.action == "done" and d.detail == "done":
                    continue
                if d.action == "live":
                    after_jobs.extend(d.after_jobs)
                elif d.action == "submit":
                    after_runs.append(dep.run_id)
                    wave = max(wave, d.wave + 1)
                else:
                    blocked = f"its text LM {dep.run_id} " + ("diverged" if d.action == "done" else f"is {d.action}: {d.detail}")
            decisions[spec.run_id] = (Decision(spec, "blocked", blocked) if blocked else
                                      Decision(spec, "submit", f"attempt {attempts + 1}", tuple(after_jobs), tuple(after_runs), wave))
    return list(decisions.values())


def plan_arrays(decisions: list[Decision], settings: SlurmSettings, partition: scheduler.Partition,
                max_array_size: int) -> list[ArrayPlan]:
    """Group the runs to submit into arrays (wave, resources, dependencies), split below ``max_array_size``."""
    groups: dict[tuple, list[RunSpec]] = {}
    for d in decisions:
        if d.action == "submit":
            key = (d.wave, resources_for(d.spec, settings, partition), d.after_jobs, d.after_runs)
            groups.setdefault(key, []).append(d.spec)
    size = min(max_array_size, settings.max_array_size or max_array_size)
    arrays = []
    for (wave, res, after_jobs, after_runs), runs in sorted(groups.items(), key=lambda kv: kv[0][0]):
        for start in range(0, len(runs), size):
            arrays.append(ArrayPlan(runs[start:start + size], res, after_jobs, after_runs, wave))
    return arrays


def check_store_visible(root: Path, partition: scheduler.Partition) -> None:
    """UserError when the store is on a node-local filesystem and the partition has other nodes."""
    import socket

    here = socket.gethostname().split(".")[0]
    if all(node.split(".")[0] == here for node in partition.nodes):
        return
    path = str(root.resolve()) + "/"
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 2] \
        if Path("/proc/mounts").exists() else []
    fstype = max((m for m in mounts if path.startswith(m[0].rstrip("/") + "/")), key=lambda m: len(m[0]), default=["/", ""])[1]
    if fstype in LOCAL_FILESYSTEMS or path.startswith(LOCAL_PREFIXES):
        raise UserError(f"store {str(root)!r} is on a node-local filesystem ({fstype or 'local'}) that the compute nodes of partition "
                        f"{partition.name!r} cannot see; expected a shared filesystem path (use --store)")


def validate(arrays: list[ArrayPlan], say: Callable[[str], None]) -> None:
    """``sbatch --test-only`` once per distinct request; UserError with SLURM's reason if it is refused."""
    seen: set[Resources] = set()
    for array in arrays:
        if array.resources in seen:
            continue
        seen.add(array.resources)
        flags = array.resources.sbatch_flags()
        reason = with_retries(lambda: scheduler.test_submission(flags), say=say)
        if reason:
            names = ", ".join(s.name for s in array.runs[:3]) + (", ..." if len(array.runs) > 3 else "")
            raise UserError(f"SLURM refuses the request for {len(array.runs)} run(s) ({names}): {reason}; "
                            f"request was: {' '.join(flags)}")


def submit_array(store_root: Path, array: ArrayPlan, settings: SlurmSettings, snapshot: Snapshot, sweep: str,
                 dependency: list[str]) -> list[str]:
    """One sbatch call through Submitit; returns the job keys in run order. Stray files of a failed call are removed."""
    import submitit

    from scaling.launch.slurm_job import TrainJob

    res = array.resources
    folder = store_root / "slurm" / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    options = res.sbatch_options()
    additional = {k: v for k, v in options.items() if k not in ("time", "nodes", "ntasks-per-node")}
    additional.update({"requeue": True, "chdir": str(snapshot.path)})
    if dependency:
        additional.update({"dependency": "afterok:" + ":".join(dependency), "kill-on-invalid-dep": "yes"})
    setup = [f"export PYTHONPATH={shlex.quote(str(snapshot.path))}${{PYTHONPATH:+:$PYTHONPATH}}",
             "export HF_HUB_OFFLINE=1", f"export OMP_NUM_THREADS={res.cpus_per_task}", *res.setup]
    srun_args = [f"--cpus-per-task={res.cpus_per_task}"] + (["--kill-on-bad-exit=1"] if res.tasks > 1 else [])
    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=settings.max_requeues, python=settings.python or None)
    executor.update_parameters(job_name=f"scaling-{sweep}", time=res.time_min, nodes=res.nodes, ntasks_per_node=res.tasks_per_node,
                               signal_delay_s=settings.signal_delay, array_parallelism=settings.array_parallelism,
                               setup=setup, srun_args=srun_args, additional_parameters=additional)
    calls = [TrainJob(str(store_root), spec.run_id, max_requeues=settings.max_requeues) for spec in array.runs]
    before = set(folder.iterdir())
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # Submitit echoes sbatch's stderr; the error below carries it
            jobs = executor.submit_array(calls)
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
        for stray in set(folder.iterdir()) - before:
            if stray.is_file() or stray.is_symlink():
                stray.unlink()
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise (TransientSchedulerError if scheduler.is_transient(message) else SchedulerError)(f"sbatch failed: {message}") from None
    return [job.job_id for job in jobs]


def launch_slurm(store: Store, sweep: Sweep, args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    """Submit every unfinished run of ``sweep`` that has no live job; return at once (exit status)."""
    from scaling.launch.local import order_with_dependencies

    settings = SlurmSettings.from_config(sweep.config.get("slurm"), settings_flags(args))
    root = store.root.resolve()
    store = Store(root)
    specs = order_with_dependencies(list(sweep.runs))
    store.record_sweep(sweep.name, [r.run_id for r in sweep.runs], sweep.source)
    for spec in specs:
        store.register(spec)
    manifest = Manifest(store)
    with store_lock(store, "launch"):
        queue = refresh(manifest, lambda ids: with_retries(lambda: scheduler.query_jobs(ids), say=say))
        removed = [] if getattr(args, "dry_run", False) else prune_snapshots(store, {r.snapshot for r in manifest.jobs().values() if r.open})
        if removed:
            say(f"removed {len(removed)} code snapshot(s) no queued or running job uses: {', '.join(removed)}")
        decisions = decide(store, specs, manifest.by_run(), queue, settings)
        todo = [d for d in decisions if d.action == "submit"]
        arrays: list[ArrayPlan] = []
        if todo:
            cluster = with_retries(scheduler.cluster_info, say=say)
            partition = cluster.partition(settings.partition or None)
            check_store_visible(root, partition)
            arrays = plan_arrays(decisions, settings, partition, cluster.max_array_size)
            validate(arrays, say)
            if getattr(args, "dry_run", False):
                print_plan(sweep, decisions, arrays, settings, say, submitted=False)
                return 0
            snapshot = snapshot_code(store)
            submit_all(store, manifest, arrays, settings, snapshot, sweep.name, say)
    print_plan(sweep, decisions, arrays, settings, say, submitted=True)
    return 0


def submit_all(store: Store, manifest: Manifest, arrays: list[ArrayPlan], settings: SlurmSettings, snapshot: Snapshot,
               sweep: str, say: Callable[[str], None]) -> None:
    """Submit the arrays in wave order, throttled; record each in the manifest as soon as it exists."""
    throttle = scheduler.Throttle(settings.submit_interval)
    job_of_run: dict[str, str] = {}
    for i, array in enumerate(arrays):
        dependency = list(array.after_jobs) + [job_of_run[r] for r in array.after_runs]

        def call() -> list[str]:
            with throttle:
                return submit_array(store.root, array, settings, snapshot, sweep, dependency)

        try:
            array.job_ids = with_retries(call, delay=max(0.2, 2 * settings.submit_interval), say=say)
        except SchedulerError as exc:
            done = sum(len(a.runs) for a in arrays[:i])
            raise UserError(f"{exc}; {done} run(s) in {i} array(s) were submitted before this and are recorded in the manifest "
                            f"(`scaling launch` again submits the rest)") from None
        stamp = now()
        manifest.record_submitted([JobRecord(job=job, array=job.split("_")[0], run=spec.run_id, sweep=sweep, submitted=stamp,
                                             snapshot=snapshot.id, commit=snapshot.commit, resources=array.resources.as_dict())
                                   for spec, job in zip(array.runs, array.job_ids)])
        job_of_run.update({spec.run_id: job for spec, job in zip(array.runs, array.job_ids)})


def print_plan(sweep: Sweep, decisions: list[Decision], arrays: list[ArrayPlan], settings: SlurmSettings,
               say: Callable[[str], None], submitted: bool) -> None:
    """The arrays (submitted or to submit) and a one-line count of every decision."""
    from scaling.commands.common import table

    if arrays:
        rows = []
        for a in arrays:
            array_id = a.job_ids[0].split("_")[0] if a.job_ids else "-"
            cap = f"%{min(len(a.runs), settings.array_parallelism)}" if len(a.runs) > 1 else ""
            after = ",".join(a.after_jobs) + ("," if a.after_jobs and a.after_runs else "") + (f"{len(a.after_runs)} text LM(s)" if a.after_runs else "")
            rows.append([array_id, f"{len(a.runs)}{cap}", a.resources.describe(), after or "-",
                         ", ".join(s.name for s in a.runs[:2]) + (", ..." if len(a.runs) > 2 else "")])
        say(table(rows, ["array", "runs", "resources", "after", "first runs"]))
    for d in decisions:
        if d.action in ("gave-up", "blocked", "elsewhere"):
            say(f"{d.action:9s} {d.spec.name} ({d.spec.run_id}): {d.detail}")
    counts = {}
    for d in decisions:
        counts[d.action] = counts.get(d.action, 0) + 1
    n = counts.pop("submit", 0)
    verb = "submitted" if submitted else "would submit (dry run)"
    rest = ", ".join(f"{c} {ACTION_LABELS[a]}" for a, c in sorted(counts.items()))
    say(f"sweep {sweep.name}: {verb} {n} run(s) in {len(arrays)} array(s)" + (f"; {rest}" if rest else "")
        + f"; follow with `scaling status {sweep.source}`")


# ----------------------------------------------------------------------------- status and cancel
@dataclass
class Overview:
    """The manifest's jobs by run and the queue's entries after one refresh (warning: why the queue was not read)."""

    jobs_by_run: dict[str, list[JobRecord]]
    queue: dict[str, scheduler.QueueEntry]
    warning: str = ""

    def latest(self, run_id: str) -> JobRecord | None:
        jobs = self.jobs_by_run.get(run_id)
        return jobs[-1] if jobs else None


def overview(store: Store) -> Overview:
    """Refresh the manifest with one queue query (none when no job is open) and return what is known.

    A scheduler that cannot be reached is reported in ``warning``; the manifest is then left as it is.
    """
    manifest = Manifest(store)
    if not manifest.exists():
        return Overview({}, {})
    try:
        queue = refresh(manifest, scheduler.query_jobs)
        warning = ""
    except SchedulerError as exc:
        queue, warning = {}, f"queue not read ({exc}); job states are the manifest's last word"
    return Overview(manifest.by_run(), queue, warning)


def cancel_runs(store: Store, run_ids: list[str]) -> list[JobRecord]:
    """Cancel the live jobs of these runs in one scancel call; record it; return the cancelled jobs."""
    manifest = Manifest(store)
    if not manifest.exists():
        return []
    wanted = set(run_ids)
    with store_lock(store, "launch"):
        queue = refresh(manifest, scheduler.query_jobs)
        live = [j for j in manifest.jobs().values() if j.run in wanted and j.job in queue and queue[j.job].live]
        if live:
            with_retries(lambda: scheduler.cancel_jobs([j.job for j in live]))
            manifest.record_cancelled([j.job for j in live])
    return live

