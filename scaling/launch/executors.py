"""The executors, registered by name, and how a command picks one.

``local`` (:class:`~scaling.launch.local.LocalExecutor`) trains here; ``slurm``
(:class:`~scaling.launch.slurm.SlurmExecutor`) submits to a SLURM cluster; ``auto`` is ``slurm``
where a SLURM controller answers, else ``local``. Each implements :mod:`scaling.launch.protocol`;
an executor is added by writing that class and naming it in :data:`EXECUTORS`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from scaling.errors import UserError, unknown_choice
from scaling.launch.local import LocalExecutor
from scaling.launch.protocol import Executor
from scaling.launch.slurm import SlurmExecutor
from scaling.spec import EngineSpec, MirrorSpec
from scaling.store import Store

EXECUTORS: dict[str, type] = {"local": LocalExecutor, "slurm": SlurmExecutor}
CHOICES = (*EXECUTORS, "auto")


def resolve(name: str) -> str:
    """The executor ``name`` stands for (``auto``: slurm where a controller answers, else local);
    UserError for an unknown name, or for ``slurm`` where no controller answers."""
    if name not in CHOICES:
        raise unknown_choice("executor", name, CHOICES)
    if name == "auto":
        return "slurm" if SlurmExecutor.available() else "local"
    if not EXECUTORS[name].available():
        raise UserError(f"executor = {name!r}: no SLURM controller answers here (sbatch/squeue/scontrol missing, or `scontrol ping` "
                        "fails); expected a SLURM login node, or use --executor local")
    return name


def open_executor(name: str, store: Store, options: Mapping[str, Any] | None = None, *, dry_run: bool = False,
                  sweep: str = "", source: str = "", mirrors: MirrorSpec = MirrorSpec(),
                  engine: EngineSpec = EngineSpec(), say: Callable[[str], None] = print) -> Executor:
    """The executor registered as ``name`` on ``store``, with its settings ``options`` (field →
    value, None for unset; unknown fields are errors); ``dry_run``: check, submit nothing;
    ``sweep`` / ``source``: the sweep's name and file, for job names and messages; ``mirrors``:
    where the runs it trains also send their rows; ``engine``: how they train (strategy,
    checkpointing, intervals, timeouts)."""
    if name not in EXECUTORS:
        raise unknown_choice("executor", name, EXECUTORS)
    return EXECUTORS[name](store, options or {}, dry_run=dry_run, sweep=sweep, source=source, mirrors=mirrors, engine=engine,
                           say=say)


def recorded_executor(store: Store) -> str:
    """The executor whose records the store holds (SLURM's manifest), else ``local``: the one that
    ``status`` and ``cancel`` ask about the store's runs."""
    return next((name for name, cls in EXECUTORS.items() if name != "local" and cls.has_records(store)), "local")
