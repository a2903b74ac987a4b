"""`scaling cancel SWEEP [RUN ...]`: cancel the queued and running SLURM jobs of a sweep, or of some of its runs.

RUN is a run id, an id prefix or a run name (see `scaling status`). Without RUN every run of the
sweep is cancelled, including the text-LM pre-training runs it launched. Jobs are cancelled in one
``scancel`` call; a running job gets SIGTERM and saves a checkpoint before it exits, so
`scaling launch` later resumes the run where it stopped. The store keeps everything.
"""

from __future__ import annotations

import argparse

from scaling.commands.common import open_sweep


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep file (YAML) that was launched, e.g. sweeps/demo.yaml")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids, id prefixes or names to cancel (default: every run of the sweep)")
    p.add_argument("--store", default=None, help="store root (default: the sweep's `store`, else results/<sweep name>)")
    p.add_argument("--override", "-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override the sweep was launched with (repeatable), e.g. -o grid.model.size=[1M,3M]")


def run(args: argparse.Namespace) -> int:
    from scaling.errors import UserError
    from scaling.launch.local import order_with_dependencies
    from scaling.launch.slurm import cancel_runs

    sweep, store = open_sweep(args)
    specs = order_with_dependencies(list(sweep.runs))
    if args.runs:
        chosen = []
        for name in args.runs:
            matches = [s for s in specs if s.run_id.startswith(name) or s.name == name]
            if len(matches) != 1:
                what = "is ambiguous: matches " + ", ".join(s.run_id for s in matches) if matches else "is not a run of this sweep"
                raise UserError(f"run {name!r} {what}; expected a run id, id prefix or name from `scaling status {args.sweep}`")
            chosen.append(matches[0].run_id)
        run_ids = [s.run_id for s in specs if s.run_id in chosen]
    else:
        run_ids = [s.run_id for s in specs]
    cancelled = cancel_runs(store, run_ids)
    if not cancelled:
        print(f"sweep {sweep.name}: no queued or running SLURM job for {len(run_ids)} run(s); nothing cancelled")
        return 0
    names = {s.run_id: s.name for s in specs}
    for job in cancelled:
        print(f"cancelled job {job.job}  {names.get(job.run, job.run)} ({job.run})")
    print(f"sweep {sweep.name}: cancelled {len(cancelled)} job(s); checkpoints are kept, `scaling launch {args.sweep}` resumes")
    return 0
