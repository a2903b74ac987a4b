"""`scaling launch SWEEP`: train every run of a sweep that is not finished.

Relaunching is safe: finished runs are skipped, unfinished ones resume from their checkpoint,
and a run another process is training is left to it. The local executor trains the runs here and
waits for them; the SLURM executor (:mod:`scaling.launch.slurm`) submits job arrays and returns.
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
    g = p.add_argument_group("SLURM executor", "override the sweep's `slurm:` section (see docs/slurm.md); "
                             "any other setting as an override, e.g. slurm.time_factor=3")
    g.add_argument("--partition", default=None, help="partition to submit to (default: the cluster's default partition)")
    g.add_argument("--account", default=None, help="account to charge (sbatch --account)")
    g.add_argument("--qos", default=None, help="quality of service (sbatch --qos)")
    g.add_argument("--constraint", default=None, help="node features required (sbatch --constraint), e.g. a100")
    g.add_argument("--gpus-per-run", type=int, default=None, help="GPUs per run, one task per GPU (default 0: CPU only)")
    g.add_argument("--tasks-per-run", type=int, default=None, help="CPU-only runs: data-parallel processes per run (default 1)")
    g.add_argument("--cpus-per-task", type=int, default=None, help="CPUs (and torch threads) per task (default: 8 with GPUs, else 1)")
    g.add_argument("--mem-per-task", default=None, help="memory per task, e.g. 32G (default: 2 GiB + 20 bytes per parameter)")
    g.add_argument("--time", default=None, help="time limit of every job, e.g. 90, 45m, 2h, 1-00:00:00 (default: estimated from FLOPs)")
    g.add_argument("--array-parallelism", type=int, default=None, help="at most this many tasks of one array run at once (%%k; default 16)")
    g.add_argument("--max-attempts", type=int, default=None, help="submissions per run before relaunch gives up on it (default 3)")
    g.add_argument("--sbatch", action="append", default=None, metavar="KEY=VALUE", help="extra sbatch option, repeatable, e.g. --sbatch exclude=node3")
    g.add_argument("--dry-run", action="store_true", help="check the requests with SLURM and print the arrays, but submit nothing")


def run(args: argparse.Namespace) -> int:
    from scaling.errors import UserError

    sweep, store = open_sweep(args)
    store.ensure_writable()
    executor = args.executor or sweep.config.get("executor", "local")
    if executor not in EXECUTORS:
        raise UserError(f"executor = {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor in ("slurm", "auto"):
        from scaling.launch.slurm import launch_slurm, slurm_available

        if slurm_available():
            return launch_slurm(store, sweep, args)
        if executor == "slurm":
            raise UserError("executor = 'slurm': no SLURM controller answers here (sbatch/squeue/scontrol missing, or `scontrol ping` "
                            "fails); expected a SLURM login node, or use --executor local")
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
