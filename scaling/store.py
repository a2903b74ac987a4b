"""The results store: one directory per run, every write atomic.

Files under a store root::

    runs/<run_id>/spec.json       the RunSpec (written once)
    runs/<run_id>/status.json     state, attempts, timestamps, host, progress (replaced atomically)
    runs/<run_id>/metrics.jsonl   one line per logging step (whole-line appends, flushed)
    runs/<run_id>/evals.jsonl     one line per evaluation point
    runs/<run_id>/summary.json    final numbers of a finished run
    runs/<run_id>/checkpoint/     latest checkpoint (written to a temporary name, then renamed)
    runs/<run_id>/lease           present while one process trains the run (heartbeat = mtime)
    runs/<run_id>/.lease.lock     locked (fcntl) while a process takes over or releases the lease
    runs/<run_id>/train.log       the run's own output
    sweeps/<name>.json            the run ids a sweep expanded to, and its source file
    cache/                        corpora, tokenizers, text LMs, built once by content hash
    tensorboard/, wandb/          mirrors of the runs' rows, when a sweep asks (scaling.train.mirrors)
    slurm/                        the SLURM executor's manifest, code snapshots and job logs

Readers tolerate a torn last line of a JSONL file (a crash mid-append loses only that line).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from scaling.atomic import atomic_write, atomic_write_json
from scaling.errors import UserError, safe_name
from scaling.reading import UnreadableFile, read_text
from scaling.reading import read_json as read_json_file
from scaling.spec import RunSpec, from_dict, to_dict

STATES = ("pending", "running", "done", "failed", "diverged")
FINAL_STATES = ("done", "diverged")


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one whole JSON line and flush it to disk."""
    line = json.dumps(row, sort_keys=True) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a JSONL file of objects; a torn or unparsable last line is ignored (a
    crash mid-append), any other bad line is a UserError naming the file and the line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = read_text(path, "log").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if i >= len(lines) - 2:  # the last line, torn by a crash
                break
            raise UnreadableFile(f"log {str(path)!r} line {i + 1} is not JSON ({exc.msg}: {line[:40]!r}); "
                                 "expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise UnreadableFile(f"log {str(path)!r} line {i + 1} holds a JSON {type(row).__name__}; expected one JSON object per line")
        rows.append(row)
    return rows


def rewrite_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Atomically rewrite ``path`` keeping only the rows for which ``keep`` is true."""
    path = Path(path)
    if not path.exists():
        return
    rows = [r for r in read_jsonl(path) if keep(r)]
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_json(path: Path, default: Any = None, what: str = "store file") -> Any:
    """The JSON object in ``path``, or ``default`` when the file does not exist; UserError naming
    the file when it is not a JSON object (damaged: empty, cut short, garbage)."""
    path = Path(path)
    if not path.exists():
        return default
    return read_json_file(path, what, dict)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class RunDir:
    """Paths and small accessors of one run directory."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    spec_file = property(lambda self: self.path / "spec.json")
    status_file = property(lambda self: self.path / "status.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    evals_file = property(lambda self: self.path / "evals.jsonl")
    summary_file = property(lambda self: self.path / "summary.json")
    checkpoint_dir = property(lambda self: self.path / "checkpoint")
    lease_file = property(lambda self: self.path / "lease")
    log_file = property(lambda self: self.path / "train.log")

    def spec(self) -> RunSpec:
        """The run's spec; UserError naming spec.json when it is missing, damaged or not a spec."""
        data = read_json(self.spec_file, what="run spec")
        if data is None:
            raise UserError(f"run spec {str(self.spec_file)!r} does not exist; expected a run directory written by scaling")
        try:
            return from_dict(RunSpec, data, "spec")
        except UserError as exc:
            raise UserError(f"run spec {str(self.spec_file)!r}: {exc}") from None

    def status(self) -> dict[str, Any]:
        """status.json (``pending``, 0 attempts when there is none yet); UserError naming it when damaged."""
        return read_json(self.status_file, default={"state": "pending", "attempts": 0}, what="run status")

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomic replace); stamps ``updated``."""
        status = self.status()
        status.update(fields, updated=now())
        atomic_write_json(self.status_file, status)
        return status

    def remove_leftovers(self, lease_ttl: float) -> list[str]:
        """Remove what writers that died left behind (temporary files and directories ``.*.tmp``
        of the run directory and its checkpoint directory) and return their names. Call it only
        while holding the run's lease: every writer of a run directory holds it, so no other
        temporary file belongs to a live writer. A lease candidate (``.lease.*.tmp``) belongs to a
        process racing for the lease; it lives microseconds, and is removed only when older than
        ``lease_ttl`` seconds."""
        removed = []
        for directory in (self.path, self.checkpoint_dir):
            for path in directory.glob(".*.tmp") if directory.is_dir() else ():
                try:
                    if path.name.startswith(".lease.") and time.time() - path.lstat().st_mtime < lease_ttl:
                        continue
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(str(path.relative_to(self.path)))
        return removed

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_file)

    def evals(self) -> list[dict[str, Any]]:
        return read_jsonl(self.evals_file)

    def summary(self) -> dict[str, Any] | None:
        return read_json(self.summary_file, what="run summary")


class Store:
    """A results store rooted at a directory (created on first write)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def ensure_writable(self) -> None:
        """Create the store layout, or raise UserError if the root cannot be written."""
        try:
            for sub in ("runs", "sweeps", "cache"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"store {str(self.root)!r} is not writable ({exc.strerror}); expected a directory you can write to") from None

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.root / "runs" / safe_name(run_id, "run id"))

    def find_run(self, run_id_or_name: str) -> RunDir:
        """The run with this id (or unique id prefix, or name); UserError if unknown."""
        runs = list(self.runs())
        exact = [r for r in runs if r.run_id == run_id_or_name]
        if exact:
            return exact[0]
        matches = [r for r in runs if r.run_id.startswith(run_id_or_name) or r.spec().name == run_id_or_name]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UserError(f"unknown run {run_id_or_name!r} in store {str(self.root)!r}; expected a run id, id prefix or run name (see `scaling status`)")
        raise UserError(f"run {run_id_or_name!r} is ambiguous in {str(self.root)!r}: matches {', '.join(r.run_id for r in matches)}")

    def runs(self) -> Iterator[RunDir]:
        base = self.root / "runs"
        if not base.exists():
            return
        for path in sorted(base.iterdir()):
            if (path / "spec.json").exists():
                yield RunDir(path)

    def register(self, spec: RunSpec) -> RunDir:
        """Create the run directory and its spec.json if new; an existing run is left as it is."""
        run = self.run(spec.run_id)
        run.path.mkdir(parents=True, exist_ok=True)
        if not run.spec_file.exists():
            atomic_write_json(run.spec_file, to_dict(spec))
        return run

    def record_sweep(self, name: str, run_ids: list[str], source: str) -> None:
        """Remember which runs a sweep expanded to (atomic replace; a record that already says so
        is left as it is, its ``updated`` stamp too)."""
        path = self.root / "sweeps" / f"{safe_name(name, 'sweep name')}.json"
        record = {"name": name, "runs": run_ids, "source": source}
        old = read_json(path, what="sweep record")
        if old is not None and {k: old.get(k) for k in record} == record:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {**record, "updated": now()})

    def sweep_runs(self, name: str) -> list[str]:
        path = self.root / "sweeps" / f"{safe_name(name, 'sweep name')}.json"
        data = read_json(path, what="sweep record")
        if data is None:
            known = sorted(p.stem for p in (self.root / "sweeps").glob("*.json"))
            raise UserError(f"no sweep {name!r} in store {str(self.root)!r}; known sweeps: {', '.join(known) or 'none'}")
        if not (isinstance(data.get("runs"), list) and all(isinstance(r, str) for r in data["runs"])):
            raise UnreadableFile(f"sweep record {str(path)!r} has no list of run ids 'runs'; expected the file `scaling launch` writes")
        return list(data["runs"])


class LeaseHeld(Exception):
    """Another live process holds the run's lease."""


class Lease:
    """Exclusive right to write one run directory, kept alive by a heartbeat.

    Taken by hard-linking a complete lease file (owner JSON) to ``lease``: ``link`` fails when the
    name exists, atomically on local disks and NFS alike, and readers never see a half-written
    lease. The holder touches it every ``ttl / 4`` seconds. A lease is stale when its heartbeat is
    older than ``ttl``, or when its holder is a process on this host that no longer exists (a
    kill -9). Taking over a stale lease (check, move it aside, link ours) and releasing one (check
    it is ours, remove it) happen under an exclusive ``fcntl`` lock on ``.lease.lock``, so no two
    processes can both judge one lease stale and both replace it; the kernel drops that lock when
    its process dies, so a crash inside it blocks nobody.
    """

    def __init__(self, run: RunDir, ttl: float = 120.0, owner: dict[str, Any] | None = None):
        self.run, self.ttl = run, ttl
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), **(owner or {})}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _owner(self) -> dict[str, Any] | None:
        """The lease file's owner record; None when there is none or it cannot be read."""
        try:
            info = json.loads(self.run.lease_file.read_bytes())
        except (FileNotFoundError, ValueError):  # ValueError: not JSON, not UTF-8
            return None
        return info if isinstance(info, dict) else None

    def _stale(self) -> bool:
        info = self._owner()
        try:
            age = time.time() - self.run.lease_file.stat().st_mtime
        except FileNotFoundError:
            return True
        if info is None:
            return True
        if age > self.ttl:
            return True
        if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
            try:
                os.kill(info["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    @contextlib.contextmanager
    def _takeover_lock(self) -> Iterator[None]:
        """Exclusive among the processes that replace or remove this run's lease (see the class)."""
        fd = os.open(self.run.path / ".lease.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without POSIX locks: O_EXCL creation still guards the common case
                pass
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the lock

    def _link(self, candidate: Path) -> bool:
        """Make ``candidate`` the lease if no lease exists; False if one does."""
        try:
            os.link(candidate, self.run.lease_file)
            return True
        except FileExistsError:
            return False

    def acquire(self) -> "Lease":
        candidate = self.run.path / f".lease.{self.owner['pid']}.{time.time_ns()}.tmp"
        candidate.write_text(json.dumps(self.owner))
        try:
            taken = self._link(candidate)
            if not taken:
                with self._takeover_lock():
                    if not self._stale():
                        raise LeaseHeld(self.holder())
                    try:
                        os.rename(self.run.lease_file, self.run.path / f".lease.stale.{os.getpid()}.{time.time_ns()}")
                    except FileNotFoundError:
                        pass  # its holder released it meanwhile
                    taken = self._link(candidate)
            if not taken:  # a new holder linked its lease after the stale one was moved aside
                raise LeaseHeld(self.holder())
        finally:
            candidate.unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def live_holder(self) -> str | None:
        """Who holds this run's lease when a live process does, else None (read-only)."""
        return self.holder() if self.live_owner() is not None else None

    def live_owner(self) -> dict[str, Any] | None:
        """The lease's owner record (host, pid, job_id …) when a live process holds it, else None (read-only)."""
        if not self.run.lease_file.exists() or self._stale():
            return None
        return self._owner()

    def holder(self) -> str:
        info = self._owner()
        if info is None:
            return "unknown"
        return f"{info.get('host')}:{info.get('pid')}" + (f" (job {info['job_id']})" if info.get("job_id") else "")

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                os.utime(self.run.lease_file)
            except FileNotFoundError:
                return

    def release(self) -> None:
        self._stop.set()
        with self._takeover_lock():
            info = self._owner() or {}  # none: already broken as stale, not ours to remove
            if info.get("pid") == self.owner["pid"] and info.get("host") == self.owner["host"]:
                self.run.lease_file.unlink(missing_ok=True)
        for stale in self.run.path.glob(".lease.stale.*"):
            stale.unlink(missing_ok=True)

    def __enter__(self) -> "Lease":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


#: what ``scaling status`` shows for a run whose status.json says running but that no live process trains
INTERRUPTED = "interrupted"


def observed_state(run: RunDir, status: dict[str, Any]) -> str:
    """The state of ``run`` for people: ``status["state"]``, except that a run marked running
    whose lease no live process holds reads :data:`INTERRUPTED` (its trainer died, or was killed
    with its launcher, before anyone could record why; a relaunch resumes it)."""
    state = status.get("state", "pending")
    if state == "running" and Lease(run).live_owner() is None:
        return INTERRUPTED
    return state
