"""`scaling status SWEEP`: a table of the sweep's runs and their states."""

from __future__ import annotations

import argparse

from scaling.commands.common import add_sweep_arguments, open_sweep, table
from scaling.spec import human


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)


def run(args: argparse.Namespace) -> int:
    sweep, store = open_sweep(args)
    from scaling.launch.local import order_with_dependencies

    rows, counts = [], {}
    for spec in order_with_dependencies(list(sweep.runs)):
        run = store.run(spec.run_id)
        status = run.status() if run.spec_file.exists() else {"state": "new"}
        state = status.get("state", "pending")
        counts[state] = counts.get(state, 0) + 1
        metrics = run.metrics()
        last = metrics[-1] if metrics else {}
        tokens = status.get("tokens", last.get("tokens", 0)) or 0
        rows.append([spec.run_id, spec.name, state, status.get("attempts", 0), status.get("job_id") or "-",
                     f"{human(tokens)}/{human(spec.train.tokens)}", f"{last['loss_train']:.4f}" if "loss_train" in last else "-",
                     (status.get("error") or "")[:60]])
    print(table(rows, ["run_id", "name", "state", "attempts", "job", "tokens", "loss", "error"]))
    print(f"\nsweep {sweep.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; store {store.root}")
    return 0
