"""Back-testing: fit on the runs below a compute threshold, predict the larger held-out runs.

The error of a held-out run is |predicted - observed| / observed (absolute relative error of
the loss); the summary gives its mean, median and maximum. C = 6*N*D unless given.
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
    """The fit on the small runs, one row per held-out point (run_id, n, d, c, observed,
    predicted, abs_rel_error) and the aggregate errors (mean, median, max, counts)."""

    fit: FitResult
    held_out: pd.DataFrame
    summary: dict


def backtest(n, d, y, threshold_c: float, *, c=None, u=None, run_id=None, **fit_options) -> Backtest:
    """Fit on points with C <= ``threshold_c`` FLOPs and predict those above it.

    n: parameters, d: tokens, y: loss; c: FLOPs (default 6*N*D); u: unique tokens
    (data-constrained law); run_id: labels for the table (and bootstrap units); ``fit_options``
    go to :func:`scaling.fit.fit_law` (Approach 3 only: it predicts losses).
    """
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, y))
    c = 6.0 * n * d if c is None else np.asarray(c, dtype=float)
    inputs = {"n": n, "d": d, "c": c, "u": None if u is None else np.asarray(u, dtype=float)}
    if fit_options.get("approach", 3) != 3:
        raise UserError("back-testing needs an Approach-3 law, which predicts the loss of every run")
    train = c <= threshold_c
    if not (~train).any():
        raise UserError(f"no run has C above {threshold_c:.4g} FLOPs (largest {c.max():.4g}); lower the threshold")
    if train.sum() == 0:
        raise UserError(f"no run has C at or below {threshold_c:.4g} FLOPs (smallest {c.min():.4g}); raise the threshold")
    runs = np.asarray(run_id) if run_id is not None else None
    part = {k: (None if v is None else v[train]) for k, v in inputs.items()}
    fit = fit_law(part.pop("n"), part.pop("d"), y[train], run_id=None if runs is None else runs[train], **part,
                  **fit_options)
    test = ~train
    predicted = fit.predict(**{k: v[test] for k, v in inputs.items() if v is not None})
    err = np.abs(predicted - y[test]) / y[test]
    table = pd.DataFrame({"run_id": runs[test] if runs is not None else np.flatnonzero(test),
                          "n": n[test], "d": d[test], "c": c[test], "observed": y[test],
                          "predicted": predicted, "abs_rel_error": err})
    summary = {"threshold_c": float(threshold_c), "n_train": int(train.sum()), "n_test": int(test.sum()),
               "mean_abs_rel_error": float(err.mean()), "median_abs_rel_error": float(np.median(err)),
               "max_abs_rel_error": float(err.max())}
    return Backtest(fit, table.sort_values("c").reset_index(drop=True), summary)
