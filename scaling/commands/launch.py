"""`scaling launch SWEEP`: train every run of a sweep that is not finished.

Relaunching is safe: finished runs are skipped, unfinished ones resume from their checkpoint,
and a run another process is training is left to it.
"""

from __future__ import annotations

import argparse

from scaling.commands.common import add_sweep_arguments, open_sweep

EXECUTORS = ("local", "slurm", "auto")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)
    p.add_argument("--executor", choices=EXECUTORS, default=None, help="where runs train (default: the sweep's `executor`, else local)")
    p.add_argument("--max-parallel", type=int, default=None, help="local executor: runs trained at once (default: the sweep's max_parallel, else 2)")
    p.add_argument("--threads", type=int, default=None, help="local executor: torch threads per run (default: cores / max-parallel)")


def run(args: argparse.Namespace) -> int:
    from scaling.errors import UserError

    sweep, store = open_sweep(args)
    store.ensure_writable()
    executor = args.executor or sweep.config.get("executor", "local")
    if executor not in EXECUTORS:
        raise UserError(f"executor = {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor in ("slurm", "auto"):
        try:
            from scaling.launch.slurm import launch_slurm, slurm_available
        except ModuleNotFoundError:
            if executor == "slurm":
                raise UserError("executor = 'slurm': the SLURM executor is not part of this checkout") from None
        else:
            if executor == "slurm" or slurm_available():
                return launch_slurm(store, sweep, args)
    return launch_local_command(store, sweep, args)


def launch_local_command(store, sweep, args: argparse.Namespace) -> int:
    from scaling.errors import UserError
    from scaling.launch.local import launch_local

    parallel = args.max_parallel or int(sweep.config.get("max_parallel", 2))
    if parallel < 1:
        raise UserError(f"--max-parallel = {parallel}: expected at least 1")
    store.record_sweep(sweep.name, [r.run_id for r in sweep.runs], sweep.source)
    print(f"launching sweep {sweep.name}: {len(sweep.runs)} runs, {parallel} at a time, store {store.root}", flush=True)
    report = launch_local(store, list(sweep.runs), max_parallel=parallel, threads=args.threads,
                          say=lambda line: print(line, flush=True))
    done = sum(1 for s in report.finished.values() if s == "done")
    print(f"sweep {sweep.name}: {done} trained, {len(report.skipped)} already done, {len(report.failed)} failed, {len(report.diverged)} diverged, "
          f"{len(report.busy)} running elsewhere, {len(report.blocked)} blocked; logs in {store.root}/runs/<run_id>/train.log")
    return 1 if report.failed else 0
