"""`scaling demo`: the whole study on the embedded demo sweep, end to end.

plan → data (build the corpus once) → launch (local) → collect → fit → figures → summary, into
``results/demo/``. Running it again skips every finished run.

The analysis follows the demo's conventions (see ``sweeps/demo.yaml``): N is the non-embedding
parameter count (at 10⁴–10⁵ parameters the vocabulary rows of an interleaved model outnumber its
transformer blocks, and the two variants' vocabularies differ fivefold), compute is C = 6·N·D in
that N, and the loss is ``loss_val_speech_only``, measured on the same speech-only validation units
for both variants. Per variant it fits Approach 3 (the parametric law) and Approach 2 (IsoFLOP
parabolas), both with bootstrap intervals, and back-tests Approach 3 on the largest budget; each
fit's full report goes to ``fit_<mode>*.txt`` beside its JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "sweeps" / "demo.yaml"
#: ``--large``: the shape ladder and budgets continued upwards (five to seven sizes per budget in the demo's D/N window)
LARGE = ["grid.model.size=[2x16,2x20,2x24,2x32,2x40,3x40,3x48,4x48,4x56,4x64,5x64]", "budget.flops=[1e11,3e11,1e12,3e12]"]
#: the demo's analysis conventions (module doc)
PARAMS, TOKENS, COMPUTE, LOSS = "params_non_embedding", "tokens", "flops_6nd_nonembed", "loss_val_speech_only"
#: bootstrap resamples of whole runs behind every interval
BOOTSTRAP = 200
#: the figures and tables of the study (`scaling figures` draws the rest, e.g. training curves per size)
FIGURES = ["isoflop", "allocation", "loss_vs_compute", "fig1", "fig4", "isoloss", "residuals", "backtest", "table"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", default=str(DEMO), help="sweep file (default: the embedded demo, sweeps/demo.yaml)")
    p.add_argument("--store", default=None, help="store root (default: results/demo)")
    p.add_argument("--large", action="store_true", help="a larger grid (11 sizes × 4 IsoFLOP budgets; a few hours on 2 cores)")
    p.add_argument("--max-parallel", type=int, default=None, help="runs trained at once (default 2)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="sweep overrides, as for `scaling launch`")


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    from scaling.cli import main as cli
    from scaling.sweep import load_sweep

    start = time.monotonic()
    overrides = (LARGE if args.large else []) + list(args.overrides)
    store_args = ["--store", args.store] if args.store else []
    sweep_args = [args.sweep, *overrides, *store_args]
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
    results = [fit_variant(cli, table, store, mode, produced) for mode in sorted({r.data.mode for r in sweep.runs})]
    _step("figures")
    figures = store / "figures"
    conventions = ["--params", PARAMS, "--tokens", TOKENS, "--compute", COMPUTE, "--loss", LOSS]
    if cli(["figures", str(table), "--out", str(figures), *conventions, "--only", *FIGURES]) == 0:
        produced.append(f"{figures}/")
    _step("summary")
    from scaling.commands.demo_summary import summary

    results = [r for r in results if r is not None]
    if results:
        largest = max(float(r.minima["c"].max()) for r in results)
        print(summary(results, LOSS, PARAMS, COMPUTE, largest), flush=True)
    print(f"\ndemo finished in {time.monotonic() - start:.0f}s: " + ", ".join(produced), flush=True)
    return launched


def fit_variant(cli, table: Path, store: Path, mode: str, produced: list[str]):
    """Approach 3 and Approach 2 with bootstrap intervals and the back-test for ``data_mode=mode``;
    a line per fit here, the full reports in ``fit_<mode>*.txt``. Returns the variant's
    :class:`~scaling.commands.demo_summary.VariantResult`, or None when it has no usable rows."""
    from scaling.atomic import atomic_write
    from scaling.commands.demo_summary import VariantResult, best_per_budget, read_fit
    from scaling.errors import UserError
    from scaling.figures.table import variant_label
    from scaling.fit.table import load_table

    where = f"data_mode={mode}"
    try:
        n, d, y, kept = load_table(table, n=PARAMS, d=TOKENS, y=LOSS, where=[where])
    except UserError as exc:
        print(f"{where}: nothing to fit ({exc})", flush=True)
        return None
    minima = best_per_budget(n, 6.0 * n * d, y)
    budgets = [f"{c:.3g}" for c in minima["c"]]
    common = [str(table), "--n", PARAMS, "--d", TOKENS, "--y", LOSS, "--where", where]
    fits = {
        "approach3": (f"fit_{mode}", ["--bootstrap", str(BOOTSTRAP), *[a for c in budgets for a in ("--target-c", c)]]),
        "approach2": (f"fit_{mode}_approach2", ["--approach", "2", "--bootstrap", str(BOOTSTRAP)]),
    }
    if len(budgets) >= 2:  # fit below the largest budget, predict it
        threshold = (minima["c"].iloc[-2] * minima["c"].iloc[-1]) ** 0.5
        fits["backtest"] = (f"backtest_{mode}", ["--holdout-above", f"{threshold:.6g}"])
    written = {}
    for kind, (name, extra) in fits.items():
        out, report = store / f"{name}.json", store / f"{name}.txt"
        out.unlink(missing_ok=True)
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = cli(["fit", *common, *extra, "--json", str(out)])
        atomic_write(report, captured.getvalue())
        state = "written" if code == 0 else "did not succeed (the message above says why)"
        print(f"{where}: {kind}: {out} {state}; report in {report}", flush=True)
        if code == 0:
            produced.append(str(out))
        written[kind] = read_fit(out)
    init = str(kept["init"].iloc[0]) if "init" in kept.columns else ""
    return VariantResult(variant_label(mode, init), minima, written["approach3"], written["approach2"], written.get("backtest"))
