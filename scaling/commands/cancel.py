"""`scaling cancel SWEEP [RUN ...]`: cancel the queued and running jobs of a sweep, or of some of its runs.

RUN is a run id, an id prefix or a run name (see `scaling status`). Without RUN every run of the
sweep is cancelled, including the text-LM pre-training runs it launched. The executor whose
records the store holds does it (:func:`scaling.launch.executors.recorded_executor`): SLURM
cancels the jobs in one ``scancel`` call; the local executor sends SIGTERM to the processes of this
host that train the runs. A running job saves a checkpoint before it exits, so `scaling launch`
later resumes the run where it stopped. The store keeps everything.
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
    from scaling.launch.executors import open_executor, recorded_executor
    from scaling.runs.graph import with_dependencies

    sweep, store = open_sweep(args)
    specs = with_dependencies(list(sweep.runs))
    if args.runs:
        chosen = []
        for name in args.runs:
            matches = [s for s in specs if s.run_id.startswith(name) or s.name == name]
            if len(matches) != 1:
                what = "is ambiguous: matches " + ", ".join(s.run_id for s in matches) if matches else "is not a run of this sweep"
                raise UserError(f"run {name!r} {what}; expected a run id, id prefix or name from `scaling status {args.sweep}`")
            chosen.append(matches[0].run_id)
        specs = [s for s in specs if s.run_id in chosen]
    executor = open_executor(recorded_executor(store), store, sweep=sweep.name, source=sweep.source)
    cancelled = executor.cancel(executor.handles(specs))
    if not cancelled:
        print(f"sweep {sweep.name}: no queued or running job ({executor.name}) for {len(specs)} run(s); nothing cancelled")
        return 0
    names = {s.run_id: s.name for s in specs}
    for handle in cancelled:
        print(f"cancelled job {handle.job}  {names.get(handle.run_id, handle.run_id)} ({handle.run_id})")
    print(f"sweep {sweep.name}: cancelled {len(cancelled)} job(s); checkpoints are kept, `scaling launch {args.sweep}` resumes")
    return 0
