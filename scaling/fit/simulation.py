"""Simulate a sweep from a known law: the test harness of the fitter, and a planning tool
("would my planned sweep pin the exponent down?").

Losses are the law's prediction times log-normal noise: log L = log L_true + noise * eps,
eps ~ N(0, 1), so ``noise`` is the standard deviation of the log-loss (0.01 ~ 1% scatter).
The table has the columns of a results table (params_total, tokens, flops_6nd = 6*N*D,
loss_val, run_id, final, status), so everything that reads results tables reads it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit.allocation import chinchilla_constants
from scaling.fit.fitting import fit_law
from scaling.fit.laws import Law, get_law


def simulate(params: Mapping[str, float], n_grid, d_grid=None, noise: float = 0.01, seed: int = 0, *,
             c_grid=None, law: str | Law = "chinchilla", curve_points: int = 1) -> pd.DataFrame:
    """A results table of runs at every N in ``n_grid`` x every D in ``d_grid`` (tokens), or,
    with ``c_grid`` instead, every N x every IsoFLOP budget C (D = C/(6N)).

    params: natural-unit parameters of ``law``; noise: std of log loss; seed: numpy seed;
    curve_points > 1 adds intermediate evaluations at D*k/curve_points (k = 1..curve_points)
    with ``final`` true only on the last one (noise independent per point).
    """
    law = get_law(law)
    if law.inputs != ("n", "d"):
        raise UserError(f"simulate needs a law of N and D; {law.name} reads {', '.join(law.inputs)}")
    missing = [k for k in law.names if k not in params]
    if missing:
        raise UserError(f"params lack {', '.join(missing)} for law {law.name}")
    if (d_grid is None) == (c_grid is None):
        raise UserError("give exactly one of d_grid (tokens) or c_grid (FLOPs budgets)")
    if noise < 0 or curve_points < 1:
        raise UserError(f"noise={noise} must be >= 0 and curve_points={curve_points} >= 1")
    n_grid = np.atleast_1d(np.asarray(n_grid, dtype=float))
    second = np.atleast_1d(np.asarray(d_grid if c_grid is None else c_grid, dtype=float))
    if np.any(n_grid <= 0) or np.any(second <= 0):
        raise UserError("grid values must be positive")
    nn, ss = np.meshgrid(n_grid, second, indexing="ij")
    n_run = nn.ravel()
    d_run = ss.ravel() if c_grid is None else ss.ravel() / (6 * n_run)
    fractions = np.arange(1, curve_points + 1) / curve_points
    run_index = np.repeat(np.arange(n_run.size), curve_points)
    n_pt = n_run[run_index]
    d_pt = d_run[run_index] * np.tile(fractions, n_run.size)
    rng = np.random.default_rng(seed)
    loss = law.predict(dict(params), {"n": n_pt, "d": d_pt}) * np.exp(noise * rng.standard_normal(n_pt.size))
    return pd.DataFrame({
        "run_id": [f"sim-{i:04d}" for i in run_index],
        "params_total": n_pt, "tokens": d_pt, "flops_6nd": 6 * n_pt * d_pt, "loss_val": loss,
        "final": np.tile(fractions == 1.0, n_run.size), "status": "done",
    })


def simulate_fits(params: Mapping[str, float], n_grid, d_grid=None, noise: float = 0.01, seed: int = 0, *,
                  c_grid=None, repeats: int = 20, **fit_options) -> pd.DataFrame:
    """Fit ``repeats`` independent simulations of a planned sweep (Chinchilla law, Approach 3)
    and return one row of fitted parameters and allocation exponents a, b per repeat: the spread
    shows how well the sweep pins the law down. ``fit_options`` go to :func:`scaling.fit.fit_law`."""
    rows = []
    for r in range(repeats):
        df = simulate(params, n_grid, d_grid, noise, seed + r, c_grid=c_grid)
        fit = fit_law(df["params_total"].to_numpy(), df["tokens"].to_numpy(), df["loss_val"].to_numpy(), **fit_options)
        constants = chinchilla_constants(fit.params)
        rows.append({"repeat": r, **fit.params, "a": constants["a"], "b": constants["b"]})
    return pd.DataFrame(rows)
