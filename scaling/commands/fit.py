"""``scaling fit TABLE``: fit a scaling law to a results table or any CSV and print it.

Prints the parameters (7 significant digits, with bootstrap and profile intervals when asked),
R^2 and RMSE, the compute-optimal N*(C), D*(C) and tokens per parameter at a few budgets (or why
the law has none), the optimiser's diagnostics and distinct minima, back-tests, predictions and
chains, and a closing line saying what was written where. Heavy imports happen in ``run``; every
value a flag takes is checked there, so that a bad one is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from scaling.atomic import atomic_write_json, check_writable
from scaling.errors import UserError
from scaling.reading import read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``scaling fit``."""
    parser.add_argument("table", metavar="TABLE", help="results table or any CSV/Parquet with N, D (or C) and loss columns")
    law = parser.add_argument_group("law and objective")
    law.add_argument("--law", default="chinchilla",
                     help="law to fit: chinchilla (E + A/N^alpha + B/D^beta), kaplan, kaplan_compute, data_constrained, "
                          "overtraining (Gadre et al.: E + (a*M^eta + b*M^-eta)*C^-eta, M = D/N), task_exponential "
                          "(eps - k*exp(-gamma*X)), task_sigmoid (a/(1 + exp(-k*(X - L0))) + b), or an expression such "
                          "as 'E + A/N**alpha + B/D**beta' (N, D, C, U, M, X are the columns of --n, --d, --c, --u, D/N "
                          "and --x; other names are parameters)")
    law.add_argument("--approach", type=int, choices=(1, 2, 3), default=3,
                     help="1: envelope of training curves; 2: IsoFLOP parabolas; 3: parametric fit of every run (default)")
    law.add_argument("--space", default=None, choices=("log", "loss"),
                     help="objective on log-residuals (log; default for loss laws) or on residuals of y itself (loss, as "
                          "curve_fit does; default for the task laws)")
    law.add_argument("--loss", default="huber", choices=("huber", "mse", "huber-ml"),
                     help="objective: Huber sum (default), least squares, or Huber likelihood with free scale")
    law.add_argument("--delta", type=float, default=1e-3,
                     help="Huber threshold, in the units of the residuals (default 1e-3)")
    law.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                     help="hold a parameter fixed, e.g. --fix E=1.69 (natural units); repeatable")
    law.add_argument("--tie", default=None, metavar="P=Q", help="force two parameters equal, e.g. --tie alpha=beta")
    law.add_argument("--bound", action="append", default=[], metavar="NAME=LO:HI",
                     help="keep a parameter within [LO, HI] (natural units; inf allowed), e.g. --bound alpha=0:3; repeatable; "
                          "the output says when a parameter ends at its bound")
    law.add_argument("--start", action="append", default=[], metavar="NAME=VALUE",
                     help="start a parameter at this value instead of its default grid (natural units); repeatable")
    law.add_argument("--grid", action="append", default=[], metavar="NAME=LO:HI:COUNT",
                     help="start a parameter at COUNT values from LO to HI (log-spaced for parameters fitted as "
                          "logarithms, else linear) instead of its default grid; repeatable")
    law.add_argument("--exhaustive", action="store_true",
                     help="run every start to convergence and count how many reach the best (any law; slower)")
    law.add_argument("--screen-rows", default=None, metavar="ROWS",
                     help="tables with more rows screen their starts on an evenly spaced subsample of ROWS rows, then "
                          "refine on every row (default 512; 0: screen on every row)")
    cols = parser.add_argument_group("columns and rows")
    cols.add_argument("--n", default="params_total", metavar="COL", help="column of parameter counts N (default params_total)")
    cols.add_argument("--d", default="tokens", metavar="COL", help="column of training tokens D (default tokens)")
    cols.add_argument("--y", default="loss_val", metavar="COL",
                      help="column of the fitted quantity: a loss in nats, or a task metric (default loss_val)")
    cols.add_argument("--c", default=None, metavar="COL", help="column of FLOPs C; D is then derived as C/(6N)")
    cols.add_argument("--u", default=None, metavar="COL", help="column of unique tokens U (data_constrained law)")
    cols.add_argument("--x", default=None, metavar="COL",
                      help="column of the input X of a downstream law (task_exponential, task_sigmoid), e.g. loss_val")
    cols.add_argument("--bind", action="append", default=[], metavar="NAME=COL",
                      help="bind a symbol of an expression law to a column, e.g. --bind T=tokens_text; repeatable")
    cols.add_argument("--run-id", default="run_id", metavar="COL",
                      help="column naming the run of each row: bootstrap resamples whole runs (default run_id, if present)")
    cols.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                      help="keep rows matching COL=VALUE (also !=, <, <=, >, >=); repeatable")
    cols.add_argument("--all-rows", action="store_true",
                      help="fit every evaluation point, not only rows with final=true")
    cols.add_argument("--include-diverged", action="store_true", help="keep rows whose status is diverged")
    unc = parser.add_argument_group("uncertainty")
    unc.add_argument("--bootstrap", type=int, default=0, metavar="K",
                     help="resample whole runs K times for percentile intervals (e.g. 1000; within budgets for Approach 2)")
    unc.add_argument("--level", type=float, default=0.95, help="coverage of bootstrap and profile intervals (default 0.95)")
    unc.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")
    unc.add_argument("--profile", action="append", default=[], metavar="NAME",
                     help="profile-likelihood interval of a parameter (refit with it held along a profile); repeatable")
    unc.add_argument("--report", action="store_true",
                     help="print lmfit's fit report (statistics, standard errors, correlations) of the optimum")
    alloc = parser.add_argument_group("allocation, prediction and back-tests")
    alloc.add_argument("--target-c", type=float, action="append", default=None, metavar="FLOPS",
                       help="compute budget for the allocation table; repeatable (default: powers of ten over the data and beyond)")
    alloc.add_argument("--unique-tokens", default=None, metavar="U",
                       help="unique tokens for the data_constrained allocation (default: the largest U in the data)")
    alloc.add_argument("--at", action="append", default=[], metavar="NAME=VALUE,...",
                       help="predict at these inputs, e.g. --at N=6.9e9,D=1.38e11 (with intervals under --bootstrap); repeatable")
    alloc.add_argument("--chain", default=None, metavar="FIT.json",
                       help="a saved loss fit: --at points go through it to a loss, then through this (downstream) fit "
                            "to a metric, with bootstrap intervals through both")
    alloc.add_argument("--holdout-above", type=float, default=None, metavar="FLOPS",
                       help="back-test: fit on runs with C <= FLOPS and report the error on the larger runs")
    alloc.add_argument("--holdout-where", action="append", default=[], metavar="COND",
                       help="back-test: hold out the rows matching COND (as --where, e.g. params_total>=1e9); repeatable")
    alloc.add_argument("--holdout-tail", default=None, metavar="F",
                       help="back-test: hold out the last fraction F of each held-out run's tokens (every run without "
                            "--holdout-above/--holdout-where); implies --all-rows")
    iso = parser.add_argument_group("Approach 2")
    iso.add_argument("--budget-rtol", type=float, default=0.05,
                     help="runs within this relative compute difference share a budget (default 0.05)")
    iso.add_argument("--skip-bad-budgets", action="store_true",
                     help="skip budgets without an interior minimum instead of refusing")
    iso.add_argument("--window", default=None, metavar="K",
                     help="fit each parabola to the K sizes each side of the budget's lowest loss only")
    iso.add_argument("--weights", default=None, metavar="COL",
                     help="column of weights (inverse variances): of each run's loss in the parabolas, or of log N* with "
                          "--optimal-pairs")
    iso.add_argument("--optimal-pairs", action="store_true",
                     help="the table holds compute-optimal pairs (--c COL --n COL): fit N* = k_n*C^a to them directly")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="print the allocation of another fit beside this one: a shipped reference law "
                             "(e.g. chinchilla_unrounded, cuervo_marxer_speech) or a fit JSON; repeatable")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the fit (full precision, with provenance) to OUT")


def run(args: argparse.Namespace) -> int:
    """Load, fit, print, and write the JSON if asked."""
    from scaling.fit.backtesting import backtest
    from scaling.fit.chain import chain_predict, parse_points, predict_at
    from scaling.fit.fitting import fit_law
    from scaling.fit.laws import get_law
    from scaling.fit.report import backtest_report, comparison, fit_report, points_report
    from scaling.fit.starts import parse_grids, parse_starts
    from scaling.fit.table import apply_where, load_table

    _check_flags(args)
    if args.json:
        check_writable(args.json, "--json")
    binds = _pairs(args.bind, "--bind", str)
    law = get_law(args.law, tuple(binds))
    tail = _number(args.holdout_tail, "--holdout-tail")
    window = _whole(args.window, "--window", minimum=1)
    screen_rows = _whole(args.screen_rows, "--screen-rows", minimum=0)
    unique_tokens = _number(args.unique_tokens, "--unique-tokens", positive=True)
    points = parse_points(args.at)
    chained = _load_fit(args.chain, "--chain") if args.chain else None
    if chained is not None and not points:
        raise UserError("--chain needs the points to predict: --at N=VALUE,D=VALUE")
    compared = _compared_fits(args.compare)

    reads = set(law.inputs) if args.approach == 3 else {"n", "d"}
    needs_nd = bool(reads & {"n", "d", "c", "m"}) or args.optimal_pairs
    symbols = {"x": args.x, "u": args.u, **binds}
    for key in reads & {"x", "u"}:
        if symbols[key] is None:
            raise UserError(f"law {law.name} reads {'X' if key == 'x' else 'U'}: name its column with --{key} COL")
    extra = [col for key, col in symbols.items() if col and (key in reads or key in binds)]
    extra += [args.weights] if args.weights else []
    n, d, y, kept = load_table(args.table, n=args.n if needs_nd else None, d=args.d, c=args.c,
                               y=None if args.optimal_pairs else args.y, where=args.where,
                               all_rows=args.all_rows or args.approach == 1 or tail is not None,
                               include_diverged=args.include_diverged, extra=extra)
    if args.optimal_pairs and not args.c:
        raise UserError("--optimal-pairs needs the compute of each pair: --c COL (and --n COL for N*)")
    selection = kept.attrs["selection"]
    column = {key: kept[col].to_numpy(dtype=float) for key, col in symbols.items() if col and col in extra}
    run_id = kept[args.run_id].astype(str).to_numpy() if args.run_id in kept.columns else None
    targets = args.target_c or (_default_targets(6.0 * n * d) if n is not None else [])
    options = dict(law=law, approach=args.approach, space=args.space, loss=args.loss, delta=args.delta,
                   fixed=_pairs(args.fix, "--fix", float), tie=_tie(args.tie), bounds=_bounds(args.bound),
                   start=parse_starts(args.start), grid=parse_grids(args.grid), exhaustive=args.exhaustive,
                   budget_rtol=args.budget_rtol, on_bad="skip" if args.skip_bad_budgets else "raise", window=window,
                   weights=kept[args.weights].to_numpy(dtype=float) if args.weights else None,
                   optimal_pairs=args.optimal_pairs, bootstrap=args.bootstrap, seed=args.seed, level=args.level,
                   targets_c=targets, unique_tokens=unique_tokens, profile=tuple(args.profile), report=args.report,
                   selection=selection, u=column.get("u"), x=column.get("x"),
                   inputs={k: v for k, v in column.items() if k in binds} or None)
    if screen_rows is not None:
        options["screen_rows"] = screen_rows or None
    extra_out = {}
    test = None
    if args.holdout_above is not None or args.holdout_where or tail is not None:
        held = None
        if args.holdout_where:
            held = kept.index.isin(apply_where(kept, args.holdout_where, {}).index)
        test = backtest(n, d, y, args.holdout_above, run_id=run_id, held_out=held, tail=tail, **options)
        fit = test.fit
        extra_out["backtest"] = {"summary": test.summary, "held_out": test.held_out.to_dict("records")}
    else:
        fit = fit_law(n, d, y, run_id=run_id, **options)
    print(fit_report(fit, args.table, selection["rows_read"], targets))
    if compared:
        print(comparison({"this fit": fit, **compared}, targets))
    if test is not None:
        print(backtest_report(test))
    if points:
        table = chain_predict(chained, fit, points, args.level) if chained is not None else predict_at(fit, points, args.level)
        print(points_report(table, chained is not None, args.chain))
        extra_out["predictions"] = table.to_dict("records")
    if args.json:
        payload = fit.to_json()
        payload.update(extra_out)
        _write_json(Path(args.json), payload)
        print(f"wrote the fit to {args.json}")
    else:
        print("nothing written (pass --json OUT to save the fit with its provenance)")
    return 0


def _check_flags(args) -> None:
    """The numeric flags whose range is known before anything is read: one line naming a bad one."""
    for c in args.target_c or []:
        if not 0 < c < math.inf:
            raise UserError(f"--target-c {c!r}: expected a positive finite compute budget in FLOPs")
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap {args.bootstrap}: expected 0 or a positive number of resamples")
    if not 0 < args.level < 1:
        raise UserError(f"--level {args.level!r}: expected a coverage between 0 and 1, e.g. 0.95")
    for flag, value in (("--delta", args.delta), ("--budget-rtol", args.budget_rtol)):
        if not 0 < value < math.inf:
            raise UserError(f"{flag} {value!r}: expected a positive finite number")
    if args.holdout_above is not None and not 0 < args.holdout_above < math.inf:
        raise UserError(f"--holdout-above {args.holdout_above!r}: expected a positive finite compute in FLOPs")


def _pairs(items, flag, cast):
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise UserError(f"{flag} {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = cast(value.strip())
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


def _bounds(items) -> dict[str, tuple[float, float]]:
    out = {}
    for name, text in _pairs(items, "--bound", str).items():
        parts = text.split(":")
        try:
            lo, hi = (float(p) for p in parts)
        except ValueError:
            raise UserError(f"--bound {name}={text}: expected NAME=LO:HI with numbers (inf allowed), e.g. alpha=0:3") from None
        if not lo < hi:
            raise UserError(f"--bound {name}={text}: expected LO < HI")
        out[name] = (lo, hi)
    return out


def _number(text, flag, positive: bool = False):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected a number") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise UserError(f"{flag} {text!r}: expected a {'positive ' if positive else ''}finite number")
    return value


def _whole(text, flag, minimum: int):
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected a whole number >= {minimum}") from None
    if value < minimum:
        raise UserError(f"{flag} {text!r}: expected a whole number >= {minimum}")
    return value


def _default_targets(c) -> list[float]:
    """Powers of ten from the median budget of the data to 100x its largest (at most 5)."""
    import numpy as np
    lo = math.ceil(math.log10(float(np.median(c))))
    hi = math.ceil(math.log10(float(np.max(c)))) + 2
    exps = list(range(lo, hi + 1))
    step = max(1, math.ceil(len(exps) / 5))
    return [10.0 ** e for e in exps[::step]]


def _load_fit(path, flag):
    from scaling.fit.result import FitResult

    if not Path(path).is_file():
        raise UserError(f"{flag} {path!r}: no such file; expected a fit JSON written by scaling fit --json")
    data = read_json(path, f"{flag} fit", dict)
    try:
        return FitResult.from_json(data)
    except UserError as exc:
        raise UserError(f"{flag} {str(path)!r}: {exc}") from None


def _compared_fits(names) -> dict:
    """--compare REF values: shipped Chinchilla-form reference laws (params) or fit JSON files."""
    from scaling.fit.references import REFERENCE_LAWS, reference_law

    fits = {}
    for name in names:
        if name in REFERENCE_LAWS or not Path(name).is_file():
            ref = reference_law(name)
            if ref.law != "chinchilla":
                raise UserError(f"--compare {name}: reference law {name} has no chinchilla parameters")
            fits[name] = ref.params
        else:
            fits[name] = _load_fit(name, "--compare")
    return fits


def _write_json(path: Path, payload: dict) -> None:
    """Write atomically: a temporary file in the same directory, then rename."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"--json {str(path)!r}: directory {str(directory)!r} does not exist")
    try:
        atomic_write_json(path, payload, indent=2, sort_keys=False)
    except OSError as exc:
        raise UserError(f"--json {str(path)!r}: cannot write ({exc.strerror})") from None
