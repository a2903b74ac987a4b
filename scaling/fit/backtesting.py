"""Back-testing as the scaling-law papers do it: fit on part of the data, predict the rest.

What is held out:

- by compute: every point with C > ``threshold_c`` FLOPs (C = 6*N*D unless given);
- by a mask (``held_out``, e.g. the rows matching ``--holdout-where params_total>=1e9``);
- with ``tail`` = f, only the last fraction f of each held-out run's trajectory (points with
  tokens above (1 - f) of that run's largest): the rest of the run is fitted. Without a threshold
  or mask every run is a held-out run (predict each run's tail from its head and the other runs).

The error of a held-out point is |predicted - observed| / |observed| (absolute relative error);
the summary gives its mean, median and maximum. When the fit is bootstrapped, every refit's
parameters predict every held-out point: each prediction gets a percentile interval, and so do
the mean and the maximum error (computed per refit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit.fitting import fit_law
from scaling.fit.result import FitResult


@dataclass(frozen=True)
class Backtest:
    """The fit on the training points, one row per held-out point (run_id, n, d, c, observed,
    predicted, abs_rel_error, and predicted_lo/predicted_hi with bootstrap), and the aggregate
    errors (mean, median, max, counts, and their intervals with bootstrap)."""

    fit: FitResult
    held_out: pd.DataFrame
    summary: dict


def holdout_mask(n_rows: int, *, c=None, threshold_c: float | None = None, held_out=None, tail: float | None = None,
                 run_id=None, tokens=None) -> tuple[np.ndarray, str]:
    """Boolean test mask and a description of the rule (see module docstring)."""
    test = np.zeros(n_rows, dtype=bool)
    rules = []
    if threshold_c is not None:
        test |= np.asarray(c, dtype=float) > threshold_c
        rules.append(f"C > {threshold_c:.4g} FLOPs")
    if held_out is not None:
        test |= np.asarray(held_out, dtype=bool)
        rules.append("the hold-out filter")
    if tail is None:
        if not rules:
            raise UserError("a back-test needs a hold-out rule: --holdout-above FLOPS, --holdout-where COND or "
                            "--holdout-tail F")
        return test, " or ".join(rules)
    if not 0 < tail < 1:
        raise UserError(f"--holdout-tail {tail!r}: expected a fraction between 0 and 1 (e.g. 0.3)")
    if run_id is None or tokens is None:
        raise UserError("--holdout-tail needs a run id column (--run-id) and the tokens of every evaluation point")
    runs = pd.factorize(np.asarray(run_id))[0]
    tokens = np.asarray(tokens, dtype=float)
    last = pd.Series(tokens).groupby(runs).transform("max").to_numpy()
    held_runs = pd.Series(test if rules else np.ones(n_rows, dtype=bool)).groupby(runs).transform("any").to_numpy()
    runs_text = f"each run with a point matching {' or '.join(rules)}" if rules else "every run"
    return held_runs & (tokens > (1 - tail) * last), f"the last {tail:.0%} of the tokens of {runs_text}"


def backtest(n, d, y, threshold_c: float | None = None, *, c=None, u=None, x=None, inputs=None, run_id=None,
             held_out=None, tail: float | None = None, level: float = 0.95, **fit_options) -> Backtest:
    """Fit on the points not held out and predict the held-out ones (see module docstring).

    n: parameters, d: tokens, y: loss (or metric); c: FLOPs (default 6*N*D); u, x, inputs: other
    inputs of the law; run_id: labels for the table (bootstrap units, runs for ``tail``);
    threshold_c / held_out / tail: the hold-out rule; ``fit_options`` go to
    :func:`scaling.fit.fit_law` (Approach 3 only: it predicts every point).
    """
    if fit_options.get("approach", 3) != 3:
        raise UserError("back-testing needs an Approach-3 law, which predicts the loss of every run")
    y = np.asarray(y, dtype=float)
    arrays = {"n": n, "d": d, "c": c, "u": u, "x": x}
    arrays = {k: None if v is None else np.asarray(v, dtype=float) for k, v in arrays.items()}
    if arrays["c"] is None and arrays["n"] is not None and arrays["d"] is not None:
        arrays["c"] = 6.0 * arrays["n"] * arrays["d"]
    extra = {k: np.asarray(v, dtype=float) for k, v in (inputs or {}).items()}
    test, rule = holdout_mask(len(y), c=arrays["c"], threshold_c=threshold_c, held_out=held_out, tail=tail,
                              run_id=run_id, tokens=arrays["d"])
    by_compute = held_out is None and tail is None
    if not test.any():
        if by_compute:
            raise UserError(f"no run has C above {threshold_c:.4g} FLOPs (largest {arrays['c'].max():.4g}); "
                            "lower the threshold")
        raise UserError(f"no point is held out by {rule}; loosen the hold-out rule")
    if test.all():
        if by_compute:
            raise UserError(f"no run has C at or below {threshold_c:.4g} FLOPs (smallest {arrays['c'].min():.4g}); "
                            "raise the threshold")
        raise UserError(f"every point is held out by {rule}; nothing is left to fit")
    train = ~test
    runs = None if run_id is None else np.asarray(run_id)

    def part(mask):
        return ({k: None if v is None else v[mask] for k, v in arrays.items()},
                {k: v[mask] for k, v in extra.items()} or None)

    train_arrays, train_extra = part(train)
    fit = fit_law(train_arrays.pop("n"), train_arrays.pop("d"), y[train], run_id=None if runs is None else runs[train],
                  inputs=train_extra, level=level, **train_arrays, **fit_options)
    test_arrays, test_extra = part(test)
    given = {k: v for k, v in {**test_arrays, **(test_extra or {})}.items() if v is not None}
    predicted = fit.predict(**given)
    observed = y[test]
    err = np.abs(predicted - observed) / np.abs(observed)
    table = pd.DataFrame({"run_id": runs[test] if runs is not None else np.flatnonzero(test),
                          **{k: v for k, v in test_arrays.items() if k in ("n", "d", "c") and v is not None},
                          "observed": observed, "predicted": predicted, "abs_rel_error": err})
    summary = {"rule": rule, "threshold_c": None if threshold_c is None else float(threshold_c),
               "n_train": int(train.sum()), "n_test": int(test.sum()),
               "mean_abs_rel_error": float(err.mean()), "median_abs_rel_error": float(np.median(err)),
               "max_abs_rel_error": float(err.max()), "rmse": float(np.sqrt(np.mean((predicted - observed) ** 2)))}
    draws = [fit.predict(params=p, **given) for p in fit.sample_params()]
    if draws:
        draws = np.array(draws)
        q = [50 * (1 - level), 50 * (1 + level)]
        table["predicted_lo"], table["predicted_hi"] = np.nanpercentile(draws, q, axis=0)
        errors = np.abs(draws - observed) / np.abs(observed)
        summary["level"] = level
        summary["mean_abs_rel_error_interval"] = [float(v) for v in np.nanpercentile(errors.mean(axis=1), q)]
        summary["max_abs_rel_error_interval"] = [float(v) for v in np.nanpercentile(errors.max(axis=1), q)]
    order = "c" if "c" in table.columns else "observed"
    return Backtest(fit, table.sort_values(order, kind="stable").reset_index(drop=True), summary)
