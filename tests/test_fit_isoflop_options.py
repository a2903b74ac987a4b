"""Approach 2 as papers run it: a window around each budget's minimum, weights, given optimal
pairs, bootstrap within budgets, and the number of budgets an exponent rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.cli import main
from scaling.fit import approach2, chinchilla_constants, compute_optimal, fit_law, simulate
from scaling.fit.uncertainty import resample_weights

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
TRUE_A = chinchilla_constants(TRUE)["a"]
BUDGETS = np.geomspace(1e18, 1e22, 5)


def isoflop(span: float, sizes: int = 9, noise: float = 0.0, budgets=BUDGETS) -> pd.DataFrame:
    """``sizes`` model sizes from n*/span to n*·span around each budget's true optimum."""
    frames = []
    for i, c in enumerate(budgets):
        n_opt = compute_optimal(TRUE, c).n_opt
        frames.append(simulate(TRUE, np.geomspace(n_opt / span, n_opt * span, sizes), c_grid=[c], noise=noise, seed=i)
                      .assign(run_id=lambda d, i=i: [f"b{i}-{k}" for k in range(len(d))]))
    return pd.concat(frames, ignore_index=True)


def arrays(df):
    return df["params_total"].to_numpy(), df["tokens"].to_numpy(), df["loss_val"].to_numpy()


def test_window_keeps_the_parabola_near_the_minimum():
    # The same 15 sizes (1e7..1e11) at every budget, as a real IsoFLOP grid: each budget's optimum
    # sits elsewhere in the range, loss against log N is not a parabola over four decades, and the
    # exponent is biased by 0.016. Two sizes each side of the lowest loss (a factor 14 in N) leave
    # a parabola error of ~4e-4 in the exponent; 2e-3 gives that a factor 5.
    df = simulate(TRUE, np.geomspace(1e7, 1e11, 15), c_grid=np.geomspace(1e19, 1e21, 5), noise=0.0)
    n, d, y = arrays(df)
    wide = approach2(n, d, y)
    near = approach2(n, d, y, window=2)
    assert abs(wide.n_law.gamma - TRUE_A) > 0.01
    assert near.n_law.gamma == pytest.approx(TRUE_A, abs=2e-3)
    assert (near.minima["points"] == 5).all()


def test_weights_discount_a_noisy_run():
    df = isoflop(30.0)
    n, d, y = arrays(df)
    y = y.copy()
    y[4] *= 1.2                                                 # the central run of the first budget, 20% off
    keep = np.arange(len(y)) != 4
    without = approach2(n[keep], d[keep], y[keep]).n_law.gamma
    weights = np.ones_like(y)
    weights[4] = 1e-12                                          # its variance is 1e12 times the others'
    assert abs(approach2(n, d, y).n_law.gamma - without) > 1e-4                 # it moves the exponent by 5e-4
    # weighted least squares with weight 1e-12 is the fit without that run up to ~1e-12 relative
    assert approach2(n, d, y, weights=weights).n_law.gamma == pytest.approx(without, rel=1e-9)
    assert approach2(n, d, y, weights=np.full_like(y, 3.0)).n_law.gamma == pytest.approx(approach2(n, d, y).n_law.gamma,
                                                                                           rel=1e-12)


def test_given_optimal_pairs_are_fitted_directly():
    c = np.geomspace(1e19, 1e23, 6)
    n_opt = compute_optimal(TRUE, c).n_opt
    fit = fit_law(n_opt, c / (6 * n_opt), None, approach=2, optimal_pairs=True)
    assert fit.params["a"] == pytest.approx(TRUE_A, rel=1e-10)       # exact pairs: exact power law
    assert fit.params["a"] + fit.params["b"] == pytest.approx(1.0, rel=1e-12)
    noisy = n_opt * np.exp(np.array([0.1, -0.1, 0.05, 0.0, -0.05, 0.2]))
    w = np.array([1.0, 1.0, 4.0, 4.0, 4.0, 0.25])                   # inverse variances of log N*
    weighted = fit_law(noisy, c / (6 * noisy), None, approach=2, optimal_pairs=True, weights=w)
    slope, _ = np.polyfit(np.log(c), np.log(noisy), 1, w=np.sqrt(w))
    assert weighted.params["a"] == pytest.approx(slope, rel=1e-12)


def test_bootstrap_within_budgets_loses_no_budget():
    df = isoflop(30.0, noise=0.005)
    n, d, y = arrays(df)
    fit = fit_law(n, d, y, approach=2, run_id=df["run_id"].to_numpy(), bootstrap=200)
    boot = fit.diagnostics["bootstrap"]
    # Resampling all 45 runs at once leaves a budget with under 3 sizes in 13 of these 200
    # resamples (and 26 fail in all); within budgets each keeps 9 draws of its own runs, and only
    # resamples whose parabola minimum leaves the sampled sizes fail (6 of 200).
    weights, _ = resample_weights(df["run_id"], 200, 0, strata=np.repeat(np.arange(5), 9))
    assert (weights.reshape(200, 5, 9).sum(axis=2) == 9).all()
    assert boot["stratified"] and boot["failed"] <= 10
    assert fit.diagnostics["budgets"] == 5 and not [w for w in fit.diagnostics["warnings"] if "budgets" in w]


def test_few_budgets_are_warned_about(tmp_path, capsys):
    df = isoflop(30.0, budgets=BUDGETS[:3])
    fit = fit_law(*arrays(df), approach=2)
    assert any("rest on 3 budgets" in w for w in fit.diagnostics["warnings"])
    pairs = tmp_path / "pairs.csv"
    c = np.geomspace(1e19, 1e23, 6)
    pd.DataFrame({"C": c, "N_opt": compute_optimal(TRUE, c).n_opt, "w": 1.0}).to_csv(pairs, index=False)
    assert main(["fit", str(pairs), "--approach", "2", "--optimal-pairs", "--c", "C", "--n", "N_opt",
                 "--weights", "w"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("compute-optimal allocation N*(C) = k_n*C^a, D*(C) = k_d*C^b, Approach 2 (given compute-optimal pairs)")
    assert "6 given optimal pairs give the exponents" in text
    path = tmp_path / "iso.csv"
    isoflop(1000.0, sizes=13).to_csv(path, index=False)
    assert main(["fit", str(path), "--approach", "2", "--window", "2"]) == 0
    assert "window of 2 sizes each side" in capsys.readouterr().out
