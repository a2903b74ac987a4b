"""The executor protocol: where runs train, and the one way ``launch``, ``status`` and ``cancel``
talk to it.

Shaped like Submitit's executors (``submit`` returns job handles, whose state can be asked and
which can be cancelled), for whole runs of a store:

* ``submit(runs) -> handles``: take the runs (dependencies first, as
  :func:`scaling.runs.graph.with_dependencies` orders them) and return one :class:`Handle` per
  run, saying what the executor did with it. The SLURM executor returns once ``sbatch`` has
  accepted the jobs; the local executor trains the runs in child processes of this one and
  returns when they have ended.
* ``handles(runs) -> handles``: the handles of runs submitted earlier, from the store's records
  (what a later ``scaling status`` or ``scaling cancel`` starts from).
* ``state(handles) -> StateReport``: where each run stands, from the store and the executor's
  own view (the queue), in as few scheduler queries as it can (SLURM: one).
* ``cancel(handles) -> handles``: stop the runs' live jobs (they save a checkpoint first);
  returns the handles of what was cancelled. The store keeps everything.

Executors are registered by name in :mod:`scaling.launch.executors`; the command line, not the
executors, turns flags into their settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from scaling.spec import RunSpec


@dataclass(frozen=True)
class Handle:
    """One run as an executor holds it.

    job: the executor's key of the run's latest job (a SLURM job key such as ``123_4``; the
    training process ``host:pid`` for the local executor), '' when it has none; action: what
    ``submit`` did with the run (the executor's word: an :class:`~scaling.runs.outcome.Outcome`
    for the local executor, ``submitted``, ``live``, ``blocked`` … for SLURM; '' for handles
    found later); detail: a few words on why.
    """

    run_id: str
    job: str = ""
    action: str = ""
    detail: str = ""


@dataclass(frozen=True)
class RunState:
    """Where one run stands: ``state`` (the store's state, or ``queued`` / ``running`` /
    ``cancelled`` as the executor sees its job), a ``note`` (the error, or why a job waits), and
    executor-specific ``columns`` (name, value) that ``scaling status`` shows after ``attempts``."""

    run_id: str
    state: str
    note: str = ""
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StateReport:
    """The states of some handles, in their order, and a ``warning`` ('' when none) when the
    executor could not ask its scheduler (the states are then the store's last word)."""

    states: list[RunState]
    warning: str = ""


class Executor(Protocol):
    """Where runs train (see the module docstring)."""

    name: str

    def submit(self, runs: Sequence[RunSpec]) -> list[Handle]: ...

    def handles(self, runs: Sequence[RunSpec]) -> list[Handle]: ...

    def state(self, handles: Sequence[Handle]) -> StateReport: ...

    def cancel(self, handles: Sequence[Handle]) -> list[Handle]: ...
