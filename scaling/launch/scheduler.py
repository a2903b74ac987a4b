"""The SLURM commands the launcher uses, each wrapped once: availability, cluster limits, a
dry-run submission, the batched queue query, cancellation, and retries of transient failures.

Conventions:

* A *job key* is the id SLURM prints: ``"<array id>_<index>"`` for an array task, ``"<id>"`` for a
  plain job. Submitit's ``Job.job_id`` holds the same strings.
* :func:`query_jobs` is the only way the toolkit reads the queue: one ``squeue`` call for any
  number of jobs (never one call per job, never ``sacct`` in a loop).
* Every command runs with a timeout. A controller that does not answer, or a missing client
  command, raises :class:`SchedulerError` (a :class:`UserError`: one line for people).
* Times are minutes (SLURM's unit for ``--time``); memory is MB.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

from scaling.errors import UserError, unknown_choice

# Job states after which a job will not run again (PREEMPTED and NODE_FAIL are left out: with
# requeueing enabled SLURM puts such jobs back in the queue).
TERMINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "BOOT_FAIL",
                             "DEADLINE", "REVOKED", "SPECIAL_EXIT"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"})
# Phrases in SLURM client errors that mean "try again later", not "your request is wrong".
TRANSIENT_MARKERS = ("socket timed out", "timed out", "unable to contact slurm controller", "connection refused",
                     "resource temporarily unavailable", "try again", "temporarily unable", "slurm_persist_conn",
                     "zero bytes were transmitted", "communication connection failure", "slurmctld is busy")

T = TypeVar("T")


class SchedulerError(UserError):
    """SLURM could not be asked, or answered with an error."""


class TransientSchedulerError(SchedulerError):
    """A SLURM call failed in a way that a later retry may fix (controller busy or unreachable)."""


def is_transient(message: str) -> bool:
    """True when a SLURM client error message says the controller was busy or unreachable."""
    text = message.lower()
    return any(marker in text for marker in TRANSIENT_MARKERS)


def run_slurm(args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run one SLURM client command; SchedulerError when it is missing or does not answer in time."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SchedulerError(f"`{args[0]}` not found: the SLURM client commands are not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise TransientSchedulerError(f"`{' '.join(args[:2])}` did not answer within {timeout:.0f}s (SLURM controller busy or down)") from None


def first_error_line(proc: subprocess.CompletedProcess) -> str:
    """The most telling line of a failed command's output (its last non-empty stderr line)."""
    lines = [line.strip() for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def check(proc: subprocess.CompletedProcess, what: str) -> str:
    """stdout of a finished command, or a SchedulerError (transient or not) naming ``what``."""
    if proc.returncode == 0:
        return proc.stdout
    message = f"{what} failed: {first_error_line(proc)}"
    raise (TransientSchedulerError if is_transient(message) else SchedulerError)(message)


def with_retries(call: Callable[[], T], attempts: int = 5, delay: float = 2.0, say: Callable[[str], None] | None = None) -> T:
    """``call()``, retried with exponential back-off (delay, 2·delay, …) on TransientSchedulerError."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransientSchedulerError as exc:
            if attempt == attempts:
                raise SchedulerError(f"{exc} (gave up after {attempts} tries)") from None
            wait = delay * 2 ** (attempt - 1)
            if say:
                say(f"SLURM busy ({exc}); retrying in {wait:.0f}s")
            time.sleep(wait)
    raise AssertionError("unreachable")


class Throttle:
    """Keeps ``interval`` seconds between the end of one call and the start of the next (``with throttle: ...``).

    Used around sbatch calls, so that a launch of many arrays does not flood the controller.
    """

    def __init__(self, interval: float):
        self.interval = interval
        self._last = float("-inf")

    def __enter__(self) -> "Throttle":
        pause = self._last + self.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        return self

    def __exit__(self, *exc: object) -> None:
        self._last = time.monotonic()


def slurm_available() -> bool:
    """True when the SLURM client commands are installed and a controller answers ``scontrol ping``."""
    if not (shutil.which("sbatch") and shutil.which("squeue") and shutil.which("scontrol")):
        return False
    try:
        proc = run_slurm(["scontrol", "ping"], timeout=15)
    except SchedulerError:
        return False
    return proc.returncode == 0 and "UP" in proc.stdout


# ----------------------------------------------------------------------------- cluster limits
@dataclass(frozen=True)
class Partition:
    """One partition as ``sinfo`` reports it: its nodes and the largest node's resources."""

    name: str
    default: bool
    up: bool
    max_time_min: int | None  # None: no limit
    nodes: tuple[str, ...]
    node_cpus: int
    node_mem_mb: int
    node_gpus: int


@dataclass(frozen=True)
class ClusterInfo:
    """What launch checks requests against: partitions and the largest allowed array."""

    partitions: dict[str, Partition]
    max_array_size: int

    def partition(self, name: str | None) -> Partition:
        """The named partition, or the default one; UserError naming the valid partitions otherwise."""
        if name is None:
            defaults = [p for p in self.partitions.values() if p.default]
            if not defaults:
                raise UserError(f"the cluster has no default partition; set slurm.partition to one of: {', '.join(sorted(self.partitions))}")
            return defaults[0]
        if name not in self.partitions:
            raise unknown_choice("slurm.partition", name, self.partitions)
        return self.partitions[name]


def parse_time_minutes(text: str) -> int | None:
    """SLURM time strings ('infinite', 'MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM:SS') → whole minutes."""
    text = text.strip()
    if text in ("infinite", "UNLIMITED", "NOT_SET", "n/a", ""):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    total = (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)
    return total


def parse_gpus(gres: str) -> int:
    """GPUs in a node's GRES string such as 'gpu:4', 'gpu:a100:8(S:0-1)', 'gpu:2,shard:8' or '(null)'."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from ``sinfo -h -N -o '%P|%N|%c|%m|%G|%l|%a'`` (one line per node and partition)."""
    rows: dict[str, dict] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        part, node, cpus, mem, gres, limit, avail = line.split("|")
        name = part.rstrip("*")
        row = rows.setdefault(name, {"default": part.endswith("*"), "up": avail == "up", "limit": parse_time_minutes(limit),
                                     "nodes": [], "cpus": 0, "mem": 0, "gpus": 0})
        if node not in row["nodes"]:
            row["nodes"].append(node)
        row["cpus"] = max(row["cpus"], int(re.sub(r"\D", "", cpus) or 0))
        row["mem"] = max(row["mem"], int(re.sub(r"\D", "", mem) or 0))
        row["gpus"] = max(row["gpus"], parse_gpus(gres))
    return {name: Partition(name, r["default"], r["up"], r["limit"], tuple(r["nodes"]), r["cpus"], r["mem"], r["gpus"])
            for name, r in rows.items()}


def cluster_info() -> ClusterInfo:
    """Partitions (``sinfo``) and MaxArraySize (``scontrol show config``): two calls, made once per launch."""
    partitions = parse_sinfo(check(run_slurm(["sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G|%l|%a"]), "sinfo"))
    config = check(run_slurm(["scontrol", "show", "config"]), "scontrol show config")
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
    if not partitions:
        raise SchedulerError("sinfo lists no partitions: the cluster has no nodes this account can use")
    return ClusterInfo(partitions, int(match.group(1)) if match else 1001)


def test_submission(options: Iterable[str]) -> str | None:
    """Ask SLURM whether it would accept a job with these sbatch options (``sbatch --test-only``).

    Nothing is queued. Returns None when the request is acceptable, else SLURM's reason (one line).
    """
    proc = run_slurm(["sbatch", "--test-only", *options, "--wrap", "true"])
    if proc.returncode == 0:
        return None
    reason = first_error_line(proc)
    if is_transient(reason):
        raise TransientSchedulerError(f"sbatch --test-only failed: {reason}")
    return reason


# ----------------------------------------------------------------------------- the queue
@dataclass(frozen=True)
class QueueEntry:
    """One job as the queue shows it: state (SLURM's word), elapsed time, pending reason."""

    job: str
    state: str
    elapsed: str
    reason: str

    @property
    def live(self) -> bool:
        """Queued, running or about to be requeued (not in a final state)."""
        return self.state not in TERMINAL_STATES

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """Entries by job key from ``squeue -h -r -t all -o '%i|%T|%M|%r'``."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            job, state, elapsed, reason = line.split("|", 3)
            out[job] = QueueEntry(job, state, elapsed, reason)
    return out


def query_jobs(job_ids: Iterable[str]) -> dict[str, QueueEntry]:
    """The queue entries of the given jobs and arrays, in ONE ``squeue`` call.

    ``job_ids`` may name whole arrays (``"123"``: every task of it) or single tasks. Jobs the
    controller has forgotten (ended longer ago than its MinJobAge) are simply absent. Recently ended
    jobs are present with their final state (``-t all``).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    proc = run_slurm(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%M|%r"])
    if proc.returncode != 0 and "Invalid job id" in (proc.stderr or ""):
        return {}  # squeue fails only when *none* of the ids is known: they all ended long ago
    return parse_squeue(check(proc, "squeue"))


def cancel_jobs(job_ids: Iterable[str]) -> None:
    """Cancel jobs (array tasks or whole arrays) in one ``scancel`` call; the jobs get SIGTERM first."""
    ids = sorted(set(job_ids))
    if ids:
        check(run_slurm(["scancel", *ids]), "scancel")
