"""The SLURM executor: submit a sweep's unfinished runs as job arrays through Submitit, and return.

:class:`SlurmExecutor` implements the executor protocol (:mod:`scaling.launch.protocol`).
One ``submit``:

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
``state`` refreshes the manifest with one queue query and says which runs' jobs are queued or
running; ``cancel`` cancels the live jobs of runs in one ``scancel`` call.
"""

from __future__ import annotations

import contextlib
import io
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from scaling.errors import UserError
from scaling.formatting import format_rows
from scaling.launch import scheduler
from scaling.launch.manifest import JobRecord, Manifest, refresh, store_lock
from scaling.launch.protocol import Handle, RunState, StateReport
from scaling.launch.resources import Resources, SlurmSettings, resources_for
from scaling.launch.scheduler import SchedulerError, TransientSchedulerError, slurm_available, with_retries
from scaling.launch.snapshot import Snapshot, prune_snapshots, snapshot_code
from scaling.runs.graph import dependencies
from scaling.spec import EngineSpec, MirrorSpec, RunSpec
from scaling.store import FINAL_STATES, Lease, RunDir, Store, now, observed_state

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
class ArrayRequest:
    """One sbatch call: runs sharing resources and dependencies."""

    runs: list[RunSpec]
    resources: Resources
    after_jobs: tuple[str, ...]
    after_runs: tuple[str, ...]
    wave: int
    job_ids: list[str] = field(default_factory=list)


def lease_holder(run: RunDir) -> str | None:
    """Who holds the run's lease, when a live process does (read-only: the lease is not touched)."""
    return Lease(run).live_holder()


def decide(store: Store, specs: list[RunSpec], jobs_by_run: dict[str, list[JobRecord]], queue: dict,
           settings: SlurmSettings) -> list[Decision]:
    """One decision per run (dependencies first), from the store, the manifest and the queue."""
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


def group_arrays(decisions: list[Decision], settings: SlurmSettings, partition: scheduler.Partition,
                 max_array_size: int, engine: EngineSpec = EngineSpec()) -> list[ArrayRequest]:
    """Group the runs to submit into arrays (wave, resources under ``engine``, dependencies), split
    below ``max_array_size``."""
    groups: dict[tuple, list[RunSpec]] = {}
    for d in decisions:
        if d.action == "submit":
            key = (d.wave, resources_for(d.spec, settings, partition, engine), d.after_jobs, d.after_runs)
            groups.setdefault(key, []).append(d.spec)
    size = min(max_array_size, settings.max_array_size or max_array_size)
    arrays = []
    for (wave, res, after_jobs, after_runs), runs in sorted(groups.items(), key=lambda kv: kv[0][0]):
        for start in range(0, len(runs), size):
            arrays.append(ArrayRequest(runs[start:start + size], res, after_jobs, after_runs, wave))
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


def validate(arrays: list[ArrayRequest], say: Callable[[str], None]) -> None:
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


def submit_array(store_root: Path, array: ArrayRequest, settings: SlurmSettings, snapshot: Snapshot, sweep: str,
                 mirrors: MirrorSpec, dependency: list[str], engine: EngineSpec = EngineSpec()) -> list[str]:
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
    calls = [TrainJob(str(store_root), spec.run_id, max_requeues=settings.max_requeues, mirrors=mirrors, engine=engine)
             for spec in array.runs]
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


class SlurmExecutor:
    """Runs train as SLURM jobs submitted through Submitit (see the module docstring).

    ``options``: the settings of :class:`~scaling.launch.resources.SlurmSettings` (the sweep's
    ``slurm:`` section merged with the command line's flags); ``dry_run``: check every request
    with SLURM but submit nothing; ``sweep`` / ``source``: the sweep's name (job names, manifest)
    and file (messages).
    """

    name = "slurm"

    def __init__(self, store: Store, options: Mapping[str, Any], *, dry_run: bool = False, sweep: str = "",
                 source: str = "", mirrors: MirrorSpec = MirrorSpec(), engine: EngineSpec = EngineSpec(),
                 say: Callable[[str], None] = print):
        self.settings = SlurmSettings.from_config(dict(options))
        self.engine = engine.validate()
        self.store = Store(store.root.resolve())  # jobs on other nodes find the store by an absolute path
        self.dry_run, self.sweep, self.source, self.mirrors, self.say = dry_run, sweep, source, mirrors, say

    @classmethod
    def available(cls) -> bool:
        """Whether a SLURM controller answers here."""
        return slurm_available()

    @classmethod
    def has_records(cls, store: Store) -> bool:
        """Whether jobs were ever submitted for this store (it has a SLURM manifest)."""
        return Manifest(store).exists()

    def submit(self, runs: Sequence[RunSpec]) -> list[Handle]:
        """Submit every unfinished run that has no live job; return at once. Each handle's action is
        the launch's decision: ``submitted`` (or ``would-submit`` in a dry run), ``done``, ``live``,
        ``elsewhere``, ``gave-up`` or ``blocked``."""
        store, settings, say = self.store, self.settings, self.say
        for spec in runs:
            store.register(spec)
        manifest = Manifest(store)
        with store_lock(store, "launch"):
            queue = refresh(manifest, lambda ids: with_retries(lambda: scheduler.query_jobs(ids), say=say))
            removed = [] if self.dry_run else prune_snapshots(store, {r.snapshot for r in manifest.jobs().values() if r.open})
            if removed:
                say(f"removed {len(removed)} code snapshot(s) no queued or running job uses: {', '.join(removed)}")
            decisions = decide(store, list(runs), manifest.by_run(), queue, settings)
            arrays: list[ArrayRequest] = []
            if any(d.action == "submit" for d in decisions):
                cluster = with_retries(scheduler.cluster_info, say=say)
                partition = cluster.partition(settings.partition or None)
                check_store_visible(store.root, partition)
                arrays = group_arrays(decisions, settings, partition, cluster.max_array_size, self.engine)
                validate(arrays, say)
                if not self.dry_run:
                    submit_all(store, manifest, arrays, settings, snapshot_code(store), self.sweep, self.mirrors, say, self.engine)
        print_arrays(self.sweep, self.source, decisions, arrays, settings, say, submitted=not self.dry_run)
        job_of = {spec.run_id: job for a in arrays for spec, job in zip(a.runs, a.job_ids)}
        return [Handle(d.spec.run_id, job=job_of.get(d.spec.run_id, d.after_jobs[-1] if d.action == "live" else ""),
                       action=("would-submit" if self.dry_run else "submitted") if d.action == "submit" else d.action,
                       detail=d.detail) for d in decisions]

    def handles(self, runs: Sequence[RunSpec]) -> list[Handle]:
        """One handle per run, naming its latest job in the store's manifest ('' when none)."""
        jobs = Manifest(self.store).by_run() if Manifest(self.store).exists() else {}
        return [Handle(spec.run_id, job=jobs[spec.run_id][-1].job if jobs.get(spec.run_id) else "") for spec in runs]

    def state(self, handles: Sequence[Handle]) -> StateReport:
        """Refresh the manifest with ONE queue query (none when no job is open) and merge it with the
        store: a run that is not finished is ``queued`` or ``running`` while its latest job is live,
        ``cancelled`` when that job was cancelled. Columns: jobs (submitted for the run), job (the
        latest and its scheduler state), elapsed (of a running job). A scheduler that cannot be asked
        is reported in the warning, and the manifest is then left as it is."""
        manifest = Manifest(self.store)
        try:
            queue, warning = (refresh(manifest, scheduler.query_jobs), "") if manifest.exists() else ({}, "")
        except SchedulerError as exc:
            queue, warning = {}, f"queue not read ({exc}); job states are the manifest's last word"
        jobs_by_run = manifest.by_run() if manifest.exists() else {}
        states = []
        for h in handles:
            run = self.store.run(h.run_id)
            status = run.status() if run.spec_file.exists() else {"state": "new"}
            state, note = observed_state(run, status), status.get("error") or ""
            jobs = jobs_by_run.get(h.run_id, [])
            job = jobs[-1] if jobs else None
            entry = queue.get(job.job) if job else None
            if state not in FINAL_STATES:
                if entry is not None and entry.live:
                    state = "running" if entry.running else "queued"
                    note = note if entry.running or entry.reason in ("None", "") else entry.reason
                elif job is not None and job.cancelled:
                    state = "cancelled"
            scheduler_state = entry.state if entry else (job.scheduler_state if job else "")
            states.append(RunState(h.run_id, state, note, (
                ("jobs", str(len(jobs))), ("job", f"{job.job} {scheduler_state}".strip() if job else "-"),
                ("elapsed", entry.elapsed if entry is not None and entry.running else "-"))))
        return StateReport(states, warning)

    def cancel(self, handles: Sequence[Handle]) -> list[Handle]:
        """Cancel the live jobs of these runs in one scancel call and record it; returns a handle per cancelled job."""
        return [Handle(j.run, job=j.job, action="cancelled") for j in cancel_runs(self.store, [h.run_id for h in handles])]


def submit_all(store: Store, manifest: Manifest, arrays: list[ArrayRequest], settings: SlurmSettings, snapshot: Snapshot,
               sweep: str, mirrors: MirrorSpec, say: Callable[[str], None], engine: EngineSpec = EngineSpec()) -> None:
    """Submit the arrays in wave order, throttled; record each in the manifest as soon as it exists."""
    throttle = scheduler.Throttle(settings.submit_interval)
    job_of_run: dict[str, str] = {}
    for i, array in enumerate(arrays):
        dependency = list(array.after_jobs) + [job_of_run[r] for r in array.after_runs]

        def call() -> list[str]:
            with throttle:
                return submit_array(store.root, array, settings, snapshot, sweep, mirrors, dependency, engine)

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


def print_arrays(sweep: str, source: str, decisions: list[Decision], arrays: list[ArrayRequest], settings: SlurmSettings,
                 say: Callable[[str], None], submitted: bool) -> None:
    """The arrays (submitted or to submit) and a one-line count of every decision."""
    if arrays:
        rows = []
        for a in arrays:
            array_id = a.job_ids[0].split("_")[0] if a.job_ids else "-"
            cap = f"%{min(len(a.runs), settings.array_parallelism)}" if len(a.runs) > 1 else ""
            after = ",".join(a.after_jobs) + ("," if a.after_jobs and a.after_runs else "") + (f"{len(a.after_runs)} text LM(s)" if a.after_runs else "")
            rows.append([array_id, f"{len(a.runs)}{cap}", a.resources.describe(), after or "-",
                         ", ".join(s.name for s in a.runs[:2]) + (", ..." if len(a.runs) > 2 else "")])
        say(format_rows(rows, ["array", "runs", "resources", "after", "first runs"]))
    for d in decisions:
        if d.action in ("gave-up", "blocked", "elsewhere"):
            say(f"{d.action:9s} {d.spec.name} ({d.spec.run_id}): {d.detail}")
    counts = {}
    for d in decisions:
        counts[d.action] = counts.get(d.action, 0) + 1
    n = counts.pop("submit", 0)
    verb = "submitted" if submitted else "would submit (dry run)"
    rest = ", ".join(f"{c} {ACTION_LABELS[a]}" for a, c in sorted(counts.items()))
    say(f"sweep {sweep}: {verb} {n} run(s) in {len(arrays)} array(s)" + (f"; {rest}" if rest else "")
        + f"; follow with `scaling status {source}`")


# ----------------------------------------------------------------------------- cancel
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

