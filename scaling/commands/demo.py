"""`scaling demo`: the whole study on the embedded demo sweep, end to end.

plan → data (build the corpus once) → launch (local) → collect → fit (one law per variant) →
figures, into ``results/demo/``.
Running it again skips every finished run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "sweeps" / "demo.yaml"
LARGE = ["grid.model.size=[40k,80k,160k,320k,640k]", "budget.flops=[1e11,3e11,1e12,3e12]"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", default=str(DEMO), help="sweep file (default: the embedded demo, sweeps/demo.yaml)")
    p.add_argument("--store", default=None, help="store root (default: results/demo)")
    p.add_argument("--large", action="store_true", help="a larger grid (5 sizes × 4 IsoFLOP budgets; a few hours on 2 cores)")
    p.add_argument("--max-parallel", type=int, default=None, help="runs trained at once (default 2)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="sweep overrides, as for `scaling launch`")


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    from scaling.cli import main as cli

    start = time.monotonic()
    overrides = (LARGE if args.large else []) + list(args.overrides)
    store_args = ["--store", args.store] if args.store else []
    sweep_args = [args.sweep, *overrides, *store_args]
    from scaling.sweep import load_sweep

    sweep = load_sweep(args.sweep, overrides)
    store = Path(args.store or sweep.store_root)

    _step("plan")
    if cli(["plan", *sweep_args]) != 0:
        return 1
    _step("data")
    for corpus in sorted({r.data.corpus for r in sweep.runs}):
        if cli(["data", "build", corpus, "--cache", str(store / "cache")]) != 0:
            return 1
    _step("launch")
    parallel = ["--max-parallel", str(args.max_parallel)] if args.max_parallel else []
    launched = cli(["launch", *sweep_args, "--executor", "local", *parallel])
    _step("collect")
    if cli(["collect", str(store), "--sweep", sweep.name]) != 0:
        return 1
    table = store / "results.csv"
    produced = [str(table)]
    _step("fit")
    for mode in sorted({r.data.mode for r in sweep.runs}):
        out = store / f"fit_{mode}.json"
        code = cli(["fit", str(table), "--law", "chinchilla", "--n", "params_total", "--d", "tokens", "--y", "loss_val",
                    "--where", f"data_mode={mode}", "--bootstrap", "200", "--json", str(out)])
        if code == 0:
            produced.append(str(out))
        else:
            print(f"fit for data_mode={mode} did not succeed (see the message above); continuing", flush=True)
    _step("figures")
    figures = store / "figures"
    if cli(["figures", str(table), "--out", str(figures)]) == 0:
        produced.append(f"{figures}/")
    print(f"\ndemo finished in {time.monotonic() - start:.0f}s: " + ", ".join(produced), flush=True)
    return launched
