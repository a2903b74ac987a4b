"""`scaling launch SWEEP`: train every run of a sweep that is not finished.

Relaunching is safe: finished runs are skipped, unfinished ones resume from their checkpoint,
and a run another process is training is left to it. The local executor trains the runs here and
waits for them; the SLURM executor (:mod:`scaling.launch.slurm`) submits job arrays and returns.
"""

from __future__ import annotations

import argparse
import os

from scaling.commands.common import add_sweep_arguments, open_sweep
from scaling.errors import UserError
from scaling.launch.executors import CHOICES
from scaling.reading import TRUST_PICKLES_ENV

SLURM_FLAGS = ("partition", "account", "qos", "constraint", "gpus_per_run", "tasks_per_run", "cpus_per_task", "mem_per_task",
               "time", "array_parallelism", "max_attempts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)
    p.add_argument("--executor", choices=CHOICES, default=None, help="where runs train (default: the sweep's `executor`, else local)")
    p.add_argument("--max-parallel", type=int, default=None, help="local executor: runs trained at once (default: the sweep's max_parallel, else 2)")
    p.add_argument("--threads", type=int, default=None, help="local executor: torch threads per run (default: cores / max-parallel)")
    p.add_argument("--no-preload", action="store_true",
                   help="local executor: start every run as a new Python process (default: fork each from one process "
                        "that imported the trainer once, which saves seconds of imports per run)")
    g = p.add_argument_group("SLURM executor", "override the sweep's `slurm:` section (see docs/slurm.md); "
                             "any other setting as an override, e.g. slurm.time_factor=3")
    g.add_argument("--partition", default=None, help="partition to submit to (default: the cluster's default partition)")
    g.add_argument("--account", default=None, help="account to charge (sbatch --account)")
    g.add_argument("--qos", default=None, help="quality of service (sbatch --qos)")
    g.add_argument("--constraint", default=None, help="node features required (sbatch --constraint), e.g. a100")
    g.add_argument("--gpus-per-run", type=int, default=None, help="GPUs per run, one task per GPU (default 0: CPU only)")
    g.add_argument("--tasks-per-run", type=int, default=None, help="CPU-only runs: data-parallel processes per run (default 1)")
    g.add_argument("--cpus-per-task", type=int, default=None, help="CPUs (and torch threads) per task (default: 8 with GPUs, else 1)")
    g.add_argument("--mem-per-task", default=None, help="memory per task, e.g. 32G (default: 2 GiB + the training state per task, as `scaling plan` shows it)")
    g.add_argument("--time", default=None, help="time limit of every job, e.g. 90, 45m, 2h, 1-00:00:00 (default: estimated from FLOPs)")
    g.add_argument("--array-parallelism", type=int, default=None, help="at most this many tasks of one array run at once (%%k; default 16)")
    g.add_argument("--max-attempts", type=int, default=None, help="submissions per run before relaunch gives up on it (default 3)")
    g.add_argument("--sbatch", action="append", default=None, metavar="KEY=VALUE", help="extra sbatch option, repeatable, e.g. --sbatch exclude=node3")
    p.add_argument("--trust-pickles", action="store_true",
                   help="let init_from model directories load pickled weights (pytorch_model.bin), whose loading can run "
                        "code: only for files from authors you trust (default: safetensors only)")
    p.add_argument("--dry-run", action="store_true", help="train or submit nothing: say what would start (SLURM: check every "
                   "request with SLURM and print the arrays)")


def run(args: argparse.Namespace) -> int:
    from scaling.launch.executors import open_executor, resolve
    from scaling.runs.graph import with_dependencies
    from scaling.runs.outcome import Outcome

    if args.trust_pickles:
        os.environ[TRUST_PICKLES_ENV] = "1"  # the trainers this launch starts inherit it
    sweep, store = open_sweep(args)
    store.ensure_writable()
    name = resolve(args.executor or sweep.config.get("executor", "local"))
    executor = open_executor(name, store, executor_options(name, args, sweep.config), dry_run=args.dry_run,
                             sweep=sweep.name, source=sweep.source, mirrors=sweep.mirrors, engine=sweep.engine,
                             say=lambda line: print(line, flush=True))
    if not args.dry_run:
        store.record_sweep(sweep.name, [r.run_id for r in sweep.runs], sweep.source)
    handles = executor.submit(with_dependencies(list(sweep.runs)))
    return 1 if any(h.action == Outcome.FAILED for h in handles) else 0


def executor_options(name: str, args: argparse.Namespace, config: dict) -> dict:
    """The settings of executor ``name`` from the sweep file and the command line (flags win)."""
    if name == "local":
        return {"max_parallel": args.max_parallel if args.max_parallel is not None else config.get("max_parallel"),
                "threads": args.threads, "preload": False if getattr(args, "no_preload", False) else None}
    extra = {}
    for item in args.sbatch or []:
        key, sep, value = item.partition("=")
        if not key:
            raise UserError(f"--sbatch {item!r}: expected KEY=VALUE (or KEY for a flag), e.g. --sbatch exclude=node3")
        extra[key.lstrip("-")] = value if sep else True
    flags = {key: getattr(args, key) for key in SLURM_FLAGS}
    return {**(config.get("slurm") or {}), **{k: v for k, v in flags.items() if v is not None}, **({"sbatch": extra} if extra else {})}
