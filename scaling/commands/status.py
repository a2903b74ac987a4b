"""`scaling status SWEEP`: a table of the sweep's runs and their states.

States come from the store (each run's status.json and metrics log) and from the executor whose
records the store holds (:func:`scaling.launch.executors.recorded_executor`): when the sweep was
launched on SLURM, each run's latest job, and ONE batched queue query per refresh says which of
those jobs are queued or running (``--watch`` refreshes until nothing is left in the queue). A run
that is not finished shows as ``queued`` or ``running`` while its job is live.
"""

from __future__ import annotations

import argparse
import time

from scaling.commands.common import add_sweep_arguments, open_sweep
from scaling.formatting import format_rows, human

ACTIVE = ("queued", "running")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)
    p.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                   help="refresh every SECONDS until no run is queued or running (one scheduler query per refresh)")


def run(args: argparse.Namespace) -> int:
    from scaling.errors import UserError
    from scaling.launch.executors import open_executor, recorded_executor
    from scaling.runs.graph import with_dependencies

    if args.watch is not None and not 0 < args.watch < float("inf"):
        raise UserError(f"--watch {args.watch!r}: expected a positive number of seconds between refreshes")
    sweep, store = open_sweep(args)
    specs = with_dependencies(list(sweep.runs))
    executor = open_executor(recorded_executor(store), store, sweep=sweep.name, source=sweep.source)
    handles = executor.handles(specs)
    while True:
        counts = show(store, specs, executor.state(handles))
        print(f"\nsweep {sweep.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; store {store.root}", flush=True)
        if args.watch is None or not any(s in counts for s in ACTIVE):
            return 0
        time.sleep(args.watch)
        handles = executor.handles(specs)


def show(store, specs, report) -> dict[str, int]:
    """Print one table of the runs from the executor's report; return the count of each state."""
    rows, counts = [], {}
    for spec, state in zip(specs, report.states):
        run = store.run(spec.run_id)
        status = run.status() if run.spec_file.exists() else {}
        counts[state.state] = counts.get(state.state, 0) + 1
        metrics = run.metrics()
        last = metrics[-1] if metrics else {}
        tokens = status.get("tokens", last.get("tokens", 0)) or 0
        rows.append([spec.run_id, spec.name, state.state, status.get("attempts", 0), *(value for _, value in state.columns),
                     f"{human(tokens)}/{human(spec.train.tokens)}", f"{last['loss_train']:.4f}" if "loss_train" in last else "-",
                     state.note[:60]])
    columns = [name for name, _ in report.states[0].columns] if report.states else []
    print(format_rows(rows, ["run_id", "name", "state", "attempts", *columns, "tokens", "loss", "note"]))
    if report.warning:
        print(f"warning: {report.warning}")
    return counts
