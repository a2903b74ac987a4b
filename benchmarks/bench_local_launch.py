"""The local executor's start-up per run: runs forked from the pre-imported trainer against fresh
Python processes, on the same small runs, in one process, side by side.

    python benchmarks/bench_local_launch.py [--runs 6] [--tokens 20000] [--corpus tiny] [--max-parallel 2]

Trains ``--runs`` small text runs (sizes 2x8 … on the ``tiny`` corpus, prepared once beforehand)
twice into two fresh stores: with ``preload`` (:mod:`scaling.launch.zygote`) and without. Prints
each launch's wall time, their ratio and the seconds saved per run (the imports a fresh process
pays before its first step). The losses of both launches are compared too: forking changes how a
process starts, not what it computes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def launch(root: Path, cache: Path, args: argparse.Namespace, preload: bool) -> tuple[float, list[float]]:
    """(wall seconds, final train loss of each run) of one launch into a new store at ``root``."""
    from scaling.launch.local import LocalExecutor
    from scaling.models import resolve_model
    from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec
    from scaling.store import Store

    root.mkdir(parents=True)
    os.symlink(cache, root / "cache")
    store = Store(root)
    specs = [RunSpec(model=resolve_model(ModelSpec(family="llama", size=f"2x{8 + 8 * i}")),
                     data=DataSpec(mode="text", corpus=args.corpus, context=32),
                     train=TrainSpec(tokens=args.tokens, batch_size=8, eval_points=1, val_windows=8), sweep="bench").validate()
             for i in range(args.runs)]
    executor = LocalExecutor(store, {"max_parallel": args.max_parallel, "preload": preload}, say=lambda line: None)
    start = time.perf_counter()
    handles = executor.submit(specs)
    wall = time.perf_counter() - start
    if any(h.action != "done" for h in handles):
        raise SystemExit(f"a run did not finish: {[(h.run_id, str(h.action)) for h in handles]}; see {root}/runs/*/train.log")
    return wall, [store.run(s.run_id).metrics()[-1]["loss_train"] for s in specs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6, help="runs per launch (sizes 2x8, 2x16, …)")
    ap.add_argument("--tokens", type=int, default=20_000, help="training tokens per run")
    ap.add_argument("--corpus", default="tiny", help="corpus preset (prepared once, before timing)")
    ap.add_argument("--max-parallel", type=int, default=2, help="runs trained at once")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from scaling.data import prepare_data
    from scaling.spec import DataSpec

    print(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        prepare_data(DataSpec(mode="text", corpus=args.corpus, context=32), cache, seed=0, progress=False)
        results = {}
        for preload in (False, True):
            results[preload] = launch(Path(tmp) / f"store-{preload}", cache, args, preload)
    (fresh_wall, fresh_loss), (fork_wall, fork_loss) = results[False], results[True]
    print(f"{args.runs} runs of {args.tokens:,} tokens, {args.max_parallel} at a time")
    print(f"{'':24s} {'fresh processes':>16s} {'forked (preload)':>17s} {'ratio':>7s}")
    print(f"{'launch wall time (s)':24s} {fresh_wall:16.1f} {fork_wall:17.1f} {fresh_wall / fork_wall:7.2f}")
    per_run = (fresh_wall - fork_wall) * args.max_parallel / args.runs
    print(f"saved per run (s, ~ start-up): {per_run:.1f}")
    print(f"final losses identical: {fresh_loss == fork_loss}")


if __name__ == "__main__":
    main()
