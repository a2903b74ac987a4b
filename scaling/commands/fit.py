"""``scaling fit TABLE``: fit a scaling law to a results table or any CSV and print it.

Prints the parameters (7 significant digits, with bootstrap intervals when asked), the
compute-optimal N*(C), D*(C) and tokens per parameter at a few budgets, the optimiser's
diagnostics, and a closing line saying what was written where. Heavy imports happen in ``run``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from scaling.atomic import atomic_write_json
from scaling.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``scaling fit``."""
    parser.add_argument("table", metavar="TABLE", help="results table or any CSV/Parquet with N, D (or C) and loss columns")
    parser.add_argument("--law", default="chinchilla",
                        help="law to fit: chinchilla (E + A/N^alpha + B/D^beta), kaplan, kaplan_compute, data_constrained")
    parser.add_argument("--approach", type=int, choices=(1, 2, 3), default=3,
                        help="1: envelope of training curves; 2: IsoFLOP parabolas; 3: parametric fit of every run (default)")
    parser.add_argument("--n", default="params_total", metavar="COL", help="column of parameter counts N (default params_total)")
    parser.add_argument("--d", default="tokens", metavar="COL", help="column of training tokens D (default tokens)")
    parser.add_argument("--y", default="loss_val", metavar="COL", help="column of losses in nats (default loss_val)")
    parser.add_argument("--c", default=None, metavar="COL", help="column of FLOPs C; D is then derived as C/(6N)")
    parser.add_argument("--u", default=None, metavar="COL", help="column of unique tokens U (data_constrained law)")
    parser.add_argument("--run-id", default="run_id", metavar="COL",
                        help="column naming the run of each row: bootstrap resamples whole runs (default run_id, if present)")
    parser.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                        help="keep rows matching COL=VALUE (also !=, <, <=, >, >=); repeatable")
    parser.add_argument("--all-rows", action="store_true",
                        help="fit every evaluation point, not only rows with final=true")
    parser.add_argument("--include-diverged", action="store_true", help="keep rows whose status is diverged")
    parser.add_argument("--loss", default="huber", choices=("huber", "mse", "huber-ml"),
                        help="objective on log-residuals: Huber sum (default), least squares, or Huber likelihood with free scale")
    parser.add_argument("--delta", type=float, default=1e-3, help="Huber threshold on log-residuals (default 1e-3)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="hold a parameter fixed, e.g. --fix E=1.69 (natural units); repeatable")
    parser.add_argument("--tie", default=None, metavar="P=Q", help="force two parameters equal, e.g. --tie alpha=beta")
    parser.add_argument("--exhaustive", action="store_true",
                        help="run every grid start to convergence and count how many reach the best (slower)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="K",
                        help="resample whole runs K times for percentile intervals (e.g. 1000)")
    parser.add_argument("--level", type=float, default=0.95, help="coverage of bootstrap intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")
    parser.add_argument("--target-c", type=float, action="append", default=None, metavar="FLOPS",
                        help="compute budget for the allocation table; repeatable (default: powers of ten over the data and beyond)")
    parser.add_argument("--holdout-above", type=float, default=None, metavar="FLOPS",
                        help="back-test: fit on runs with C <= FLOPS and report the error on the larger runs")
    parser.add_argument("--budget-rtol", type=float, default=0.05,
                        help="Approach 2: runs within this relative compute difference share a budget (default 0.05)")
    parser.add_argument("--skip-bad-budgets", action="store_true",
                        help="Approach 2: skip budgets without an interior minimum instead of refusing")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="print the allocation of another fit beside this one: a shipped reference law "
                             "(e.g. chinchilla_unrounded, cuervo_marxer_speech) or a fit JSON; repeatable")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the fit (full precision, with provenance) to OUT")


def run(args: argparse.Namespace) -> int:
    """Load, fit, print, and write the JSON if asked."""

    from scaling.fit.backtesting import backtest
    from scaling.fit.fitting import fit_law
    from scaling.fit.table import load_table

    compared = _compared_fits(args.compare)
    n, d, y, kept = load_table(args.table, n=args.n, d=args.d, y=args.y, c=args.c, where=args.where,
                               all_rows=args.all_rows or args.approach == 1, include_diverged=args.include_diverged,
                               extra=[args.u] if args.u else [])
    selection = kept.attrs["selection"]
    run_id = kept[args.run_id].astype(str).to_numpy() if args.run_id in kept.columns else None
    u = kept[args.u].to_numpy(dtype=float) if args.u else None
    c = 6.0 * n * d
    targets = args.target_c or _default_targets(c)
    options = dict(law=args.law, approach=args.approach, loss=args.loss, delta=args.delta,
                   fixed=_pairs(args.fix, "--fix", float), tie=_tie(args.tie), exhaustive=args.exhaustive,
                   budget_rtol=args.budget_rtol, on_bad="skip" if args.skip_bad_budgets else "raise",
                   bootstrap=args.bootstrap, seed=args.seed, level=args.level, targets_c=targets, selection=selection)
    extra = {}
    if args.holdout_above is not None:
        test = backtest(n, d, y, args.holdout_above, run_id=run_id, u=u, **options)
        fit = test.fit
        extra["backtest"] = {"summary": test.summary, "held_out": test.held_out.to_dict("records")}
    else:
        fit = fit_law(n, d, y, run_id=run_id, u=u, **options)
    print(_report(fit, args, selection["rows_read"], targets))
    if compared:
        print(_comparison({"this fit": fit, **compared}, targets))
    if args.holdout_above is not None:
        print(_backtest_report(test))
    if args.json:
        payload = fit.to_json()
        payload.update(extra)
        _write_json(Path(args.json), payload)
        print(f"wrote the fit to {args.json}")
    else:
        print("nothing written (pass --json OUT to save the fit with its provenance)")
    return 0


def _pairs(items, flag, cast):
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{flag} {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = cast(value)
        except ValueError:
            raise UserError(f"{flag} {item!r}: {value!r} is not a number") from None
    return out


def _tie(text):
    if text is None:
        return None
    parts = [p.strip() for p in text.split("=")]
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--tie {text!r}: expected P=Q, e.g. alpha=beta")
    return tuple(parts)


def _default_targets(c) -> list[float]:
    """Powers of ten from the median budget of the data to 100x its largest (at most 5)."""
    import numpy as np
    lo = math.ceil(math.log10(float(np.median(c))))
    hi = math.ceil(math.log10(float(np.max(c)))) + 2
    exps = list(range(lo, hi + 1))
    step = max(1, math.ceil(len(exps) / 5))
    return [10.0 ** e for e in exps[::step]]


def _g(x: float) -> str:
    """Seven significant digits."""
    return f"{x:.7g}" if math.isfinite(x) else "nan"


def _report(fit, args, rows_read, targets) -> str:
    import numpy as np

    from scaling.fit.allocation import compute_optimal, derived_quantities
    from scaling.fit.laws import get_law

    prov, diag = fit.provenance, fit.diagnostics
    lines = []
    how = {1: "Approach 1 (envelope of training curves)", 2: "Approach 2 (IsoFLOP parabolas)"}.get(fit.approach) \
        or f"Approach 3 ({_objective_name(prov)})"
    lines.append(f"{fit.law} law, {how}: {fit.n_points} points of {rows_read} rows in {args.table}")
    excluded = prov.get("selection", {}).get("excluded", {})
    if excluded:
        lines.append("  excluded: " + "; ".join(f"{v} with {k}" for k, v in excluded.items()))
    if fit.approach == 3:
        lines.append(f"  {get_law(fit.law).formula}")
    level = prov.get("level")
    head = f"{'parameter':<12}{'estimate':>16}" + (f"   {level:.0%} interval" if fit.intervals else "")
    lines += ["", head]
    for name, value in fit.params.items():
        lines.append(f"{name:<12}{_g(value):>16}" + _interval(fit.intervals.get(name)))
    lines.append(f"{'objective':<12}{fit.objective:>16.7g}")
    if "huber_ml" in diag:
        lines.append(f"{'log sigma':<12}{diag['huber_ml']['log_sigma']:>16.7g}   (log-likelihood {diag['huber_ml']['log_likelihood']:.7g})")
    lines += ["", "compute-optimal allocation (C = 6*N*D):"]
    try:
        derived = derived_quantities(fit.params, fit.law, fit.approach, ())
        lines.append("  " + ", ".join(f"{k} = {_g(v)}{_interval(fit.intervals.get(k), short=True)}" for k, v in derived.items()))
        alloc = compute_optimal(fit, np.asarray(targets, dtype=float))
        lines.append(f"  {'C (FLOPs)':>10}{'N*':>24}{'D*':>24}{'D*/N*':>20}{'loss':>12}")
        for i, cval in enumerate(targets):
            tag = f"@{cval:.3g}"
            lines.append(f"  {cval:>10.3g}{_g(alloc.n_opt[i]):>24}{_g(alloc.d_opt[i]):>24}"
                         f"{alloc.tokens_per_param[i]:>20.6g}{_g(alloc.loss[i]):>12}")
            if fit.intervals.get("n_opt" + tag):
                lines.append(f"  {'':>10}" + "".join(
                    f"{_short_interval(fit.intervals[k + tag]):>{w}}"
                    for k, w in (("n_opt", 24), ("d_opt", 24), ("tokens_per_param", 20))))
    except UserError as exc:
        lines.append(f"  none: {exc}")
    lines += ["", "diagnostics:"] + ["  " + s for s in _diagnostics(fit)]
    for w in diag.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _objective_name(prov) -> str:
    loss = prov.get("loss")
    if loss == "mse":
        return "least squares on log loss"
    if loss == "huber-ml":
        return f"Huber likelihood with free scale, delta={prov.get('delta'):g}"
    return f"Huber sum on log loss, delta={prov.get('delta'):g}"


def _interval(pair, short: bool = False) -> str:
    if not pair:
        return ""
    text = f"[{_g(pair[0])}, {_g(pair[1])}]"
    return f" {text}" if short else f"   {text}"


def _short_interval(pair) -> str:
    return f"[{pair[0]:.4g}, {pair[1]:.4g}]"


def _diagnostics(fit) -> list[str]:
    diag = fit.diagnostics
    out = []
    if fit.approach == 3:
        starts = diag.get("starts")
        out.append(f"{diag.get('reached_best')} of {diag.get('reached_best_of')} refined starts reached the best objective "
                   f"({starts} starts; {diag.get('mode', diag.get('optimizer'))})")
        conv = "converged" if diag.get("converged") else "NOT converged"
        detail = f"Newton decrement {diag['newton_decrement']:.2g}, " if "newton_decrement" in diag else ""
        out.append(f"{conv}: {detail}gradient norm {diag.get('gradient_norm', float('nan')):.2g}")
        if "polish" in diag:
            out.append(f"L-BFGS-B cross-check from the optimum: relative improvement {diag['polish']['relative_improvement']:.2g}")
        minima = diag.get("minima", [])
        if len(minima) > 1:
            out.append(f"{len(minima)} distinct minima among refined starts; next best is {minima[1]['relative_to_best']:.3g} "
                       "above the best (relative)")
    elif fit.approach == 2:
        out.append(f"{len(diag['minima'])} budgets with an interior minimum" +
                   (f"; skipped: {' | '.join(diag['skipped'])}" if diag.get("skipped") else ""))
        for m in diag["minima"]:
            out.append(f"  C={m['c']:.4g}: N*={_g(m['n_opt'])} loss*={_g(m['loss_opt'])} ({m['points']} runs)")
    else:
        out.append(f"{len(diag['envelope'])} envelope points; "
                   f"{len({e['run_id'] for e in diag['envelope']})} runs are best somewhere")
    boot = diag.get("bootstrap")
    if boot:
        out.append(f"bootstrap: {boot['resamples'] - boot['failed']} of {boot['resamples']} refits over "
                   f"{boot['units']} {boot['unit']}s (seed {fit.provenance.get('seed')})")
    return out


def _compared_fits(names) -> dict:
    """--compare REF values: shipped Chinchilla-form reference laws (params) or fit JSON files."""
    from scaling.fit.references import REFERENCE_LAWS, reference_law
    from scaling.fit.result import FitResult

    fits = {}
    for name in names:
        if name in REFERENCE_LAWS or not Path(name).is_file():
            ref = reference_law(name)
            if ref.law != "chinchilla":
                raise UserError(f"--compare {name}: reference law {name} has no chinchilla parameters")
            fits[name] = ref.params
        else:
            try:
                fits[name] = FitResult.from_json(json.loads(Path(name).read_text(encoding="utf-8")))
            except json.JSONDecodeError as exc:
                raise UserError(f"--compare {name}: not JSON ({exc.msg})") from None
    return fits


def _comparison(fits, targets) -> str:
    """Allocations of several fits at the same budgets (ratios relative to the first)."""
    from scaling.fit.allocation import compare_allocations

    table = compare_allocations(fits, targets)
    lines = ["", "compared allocations (ratios relative to this fit):",
             f"  {'C (FLOPs)':>10}  {'fit':<24}{'N*':>14}{'D*':>14}{'D*/N*':>10}{'N* ratio':>10}{'D* ratio':>10}"]
    for row in table.itertuples():
        lines.append(f"  {row.c:>10.3g}  {str(row.fit):<24}{row.n_opt:>14.5g}{row.d_opt:>14.5g}"
                     f"{row.tokens_per_param:>10.4g}{row.n_ratio:>10.4g}{row.d_ratio:>10.4g}")
    return "\n".join(lines)


def _backtest_report(test) -> str:
    s = test.summary
    lines = ["", f"back-test: fitted on {s['n_train']} points with C <= {s['threshold_c']:.4g}, "
                 f"predicted {s['n_test']} held-out points",
             f"  absolute relative error of the loss: mean {s['mean_abs_rel_error']:.4g}, "
             f"median {s['median_abs_rel_error']:.4g}, max {s['max_abs_rel_error']:.4g}",
             f"  {'run':<16}{'C':>12}{'observed':>12}{'predicted':>12}{'error':>10}"]
    for row in test.held_out.itertuples():
        lines.append(f"  {str(row.run_id):<16}{row.c:>12.4g}{row.observed:>12.6g}{row.predicted:>12.6g}{row.abs_rel_error:>10.3%}")
    return "\n".join(lines)


def _write_json(path: Path, payload: dict) -> None:
    """Write atomically: a temporary file in the same directory, then rename."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"--json {str(path)!r}: directory {str(directory)!r} does not exist")
    try:
        atomic_write_json(path, payload, indent=2, sort_keys=False)
    except OSError as exc:
        raise UserError(f"--json {str(path)!r}: cannot write ({exc.strerror})") from None
