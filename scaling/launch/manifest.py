"""The SLURM manifest of a store: which jobs were submitted for which runs, and how they ended.

It lives in the store (``<store>/slurm/manifest.jsonl``), so any later command on any machine
that sees the store knows what is queued, running, done or failed. It is an append-only event
log, one whole JSON line per event, written under a short lock:

* ``submit``: ``{job, array, run, sweep, snapshot, commit, resources, time}`` — written only
  after ``sbatch`` returned the job id, so the manifest never claims a job that does not exist;
* ``cancel``: ``{job, time}`` — ``scaling cancel`` asked SLURM to cancel the job;
* ``end``: ``{job, scheduler_state, run_state, time}`` — the queue no longer runs the job
  (absent from it, or in a final state), seen by one of the batched queue queries.

Folding the events gives one :class:`JobRecord` per job. A job without an ``end`` event is
*open*: the next refresh asks the queue about it (see :func:`refresh`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from scaling.errors import UserError
from scaling.launch.scheduler import QueueEntry
from scaling.store import Lease, LeaseHeld, RunDir, Store, append_jsonl, now, read_jsonl


@dataclass
class JobRecord:
    """One submitted job (an array task or a plain job) for one run, folded from the events."""

    job: str
    array: str
    run: str
    sweep: str
    submitted: str
    snapshot: str = ""
    commit: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    ended: str = ""
    scheduler_state: str = ""  # SLURM's final word (COMPLETED, TIMEOUT, ...) or 'gone' when unseen
    run_state: str = ""  # the run's state when the job ended

    @property
    def open(self) -> bool:
        """Not yet seen to have left the queue."""
        return not self.ended


@contextlib.contextmanager
def store_lock(store: Store, name: str, timeout: float = 120.0) -> Iterator[None]:
    """Hold the store-wide lock ``name`` (a :class:`Lease` under ``<store>/slurm/locks/``), waiting up to ``timeout`` s."""
    lock_dir = RunDir(store.root / "slurm" / "locks" / name)
    lock_dir.path.mkdir(parents=True, exist_ok=True)
    lease = Lease(lock_dir, ttl=60.0, owner={"lock": name})
    deadline = time.monotonic() + timeout
    while True:
        try:
            lease.acquire()
            break
        except LeaseHeld as held:
            if time.monotonic() > deadline:
                raise UserError(f"the {name} lock of store {str(store.root)!r} is held by {held} for more than {timeout:.0f}s; "
                                f"expected it to be released (remove {lock_dir.lease_file} if that process is gone)") from None
            time.sleep(0.1)
    try:
        yield
    finally:
        lease.release()


class Manifest:
    """The job manifest of one store (see the module docstring)."""

    def __init__(self, store: Store):
        self.store = store
        self.path = store.root / "slurm" / "manifest.jsonl"

    def exists(self) -> bool:
        return self.path.exists()

    def jobs(self) -> dict[str, JobRecord]:
        """Every job ever submitted to this store, by job key, in submission order."""
        jobs: dict[str, JobRecord] = {}
        for event in read_jsonl(self.path):
            kind, key = event.get("event"), event.get("job")
            if kind == "submit":
                jobs[key] = JobRecord(job=key, array=event["array"], run=event["run"], sweep=event.get("sweep", ""),
                                      submitted=event["time"], snapshot=event.get("snapshot", ""),
                                      commit=event.get("commit", ""), resources=event.get("resources", {}))
            elif key in jobs and kind == "cancel":
                jobs[key].cancelled = True
            elif key in jobs and kind == "end" and not jobs[key].ended:
                jobs[key].ended = event["time"]
                jobs[key].scheduler_state = event.get("scheduler_state", "")
                jobs[key].run_state = event.get("run_state", "")
        return jobs

    def by_run(self) -> dict[str, list[JobRecord]]:
        """Jobs of each run, oldest first."""
        out: dict[str, list[JobRecord]] = {}
        for job in self.jobs().values():
            out.setdefault(job.run, []).append(job)
        return out

    def _append(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(self.store, "manifest"):
            for event in events:
                append_jsonl(self.path, event)

    def record_submitted(self, records: list[JobRecord]) -> None:
        """Append one ``submit`` event per job (call only once sbatch has returned the ids)."""
        self._append([{"event": "submit", "job": r.job, "array": r.array, "run": r.run, "sweep": r.sweep, "time": r.submitted,
                       "snapshot": r.snapshot, "commit": r.commit, "resources": r.resources} for r in records])

    def record_cancelled(self, jobs: list[str]) -> None:
        self._append([{"event": "cancel", "job": j, "time": now()} for j in jobs])

    def record_ended(self, ended: dict[str, tuple[str, str]]) -> None:
        """``ended``: job key → (scheduler state or 'gone', run state at that moment)."""
        self._append([{"event": "end", "job": j, "scheduler_state": s, "run_state": r, "time": now()}
                      for j, (s, r) in ended.items()])


def refresh(manifest: Manifest, query: Callable[[list[str]], dict[str, QueueEntry]]) -> dict[str, QueueEntry]:
    """Ask the queue about every open job in ONE call, record the jobs that ended, return the entries.

    The call names the arrays (not each task), so its length grows with the number of arrays.
    With no open job, the queue is not asked at all. A job is recorded as ended when the queue
    shows it in a final state, or no longer shows it.
    """
    open_jobs = [j for j in manifest.jobs().values() if j.open]
    if not open_jobs:
        return {}
    entries = query(sorted({j.array for j in open_jobs}))
    ended = {}
    for job in open_jobs:
        entry = entries.get(job.job)
        if entry is None or not entry.live:
            run = manifest.store.run(job.run)
            ended[job.job] = (entry.state if entry else "gone", run.status().get("state", "pending"))
    try:
        manifest.record_ended(ended)
    except OSError:  # a store this user may read but not write: the next refresh asks about these jobs again
        pass
    return entries
