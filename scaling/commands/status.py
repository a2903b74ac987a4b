"""`scaling status SWEEP`: a table of the sweep's runs and their states.

States come from the store (each run's status.json and metrics log). When the sweep was launched
on SLURM, the store's manifest adds each run's latest job, and ONE batched queue query per refresh
says which of those jobs are queued or running (``--watch`` refreshes until nothing is left in
the queue). A run that is not finished shows as ``queued`` or ``running`` while its job is live.
"""

from __future__ import annotations

import argparse
import time

from scaling.commands.common import add_sweep_arguments, open_sweep, table
from scaling.spec import human

ACTIVE = ("queued", "running")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)
    p.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                   help="refresh every SECONDS until no run is queued or running (one scheduler query per refresh)")


def run(args: argparse.Namespace) -> int:
    sweep, store = open_sweep(args)
    from scaling.launch.local import order_with_dependencies

    specs = order_with_dependencies(list(sweep.runs))
    while True:
        counts = show(store, specs)
        print(f"\nsweep {sweep.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; store {store.root}", flush=True)
        if args.watch is None or not any(s in counts for s in ACTIVE):
            return 0
        time.sleep(args.watch)


def show(store, specs) -> dict[str, int]:
    """Print one table of the runs (one refresh of the SLURM manifest, if any); return the count of each state."""
    from scaling.launch.slurm import overview

    view = overview(store)
    on_slurm = bool(view.jobs_by_run)
    rows, counts = [], {}
    for spec in specs:
        run = store.run(spec.run_id)
        status = run.status() if run.spec_file.exists() else {"state": "new"}
        state = status.get("state", "pending")
        job = view.latest(spec.run_id)
        entry = view.queue.get(job.job) if job else None
        note = status.get("error") or ""
        if state not in ("done", "diverged"):
            if entry is not None and entry.live:
                state = "running" if entry.running else "queued"
                note = note if entry.running or entry.reason in ("None", "") else entry.reason
            elif job is not None and job.cancelled:
                state = "cancelled"
        counts[state] = counts.get(state, 0) + 1
        metrics = run.metrics()
        last = metrics[-1] if metrics else {}
        tokens = status.get("tokens", last.get("tokens", 0)) or 0
        row = [spec.run_id, spec.name, state, status.get("attempts", 0)]
        if on_slurm:
            sched = entry.state if entry else (job.scheduler_state if job else "")
            row += [len(view.jobs_by_run.get(spec.run_id, [])), f"{job.job} {sched}".strip() if job else "-",
                    entry.elapsed if entry is not None and entry.running else "-"]
        else:
            row += [status.get("job_id") or "-"]
        row += [f"{human(tokens)}/{human(spec.train.tokens)}", f"{last['loss_train']:.4f}" if "loss_train" in last else "-", note[:60]]
        rows.append(row)
    header = ["run_id", "name", "state", "attempts"] + (["jobs", "job", "elapsed"] if on_slurm else ["job"]) + ["tokens", "loss", "note"]
    print(table(rows, header))
    if view.warning:
        print(f"warning: {view.warning}")
    return counts
