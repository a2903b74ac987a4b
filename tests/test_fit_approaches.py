"""Approaches 1 and 2, power laws of metrics against compute, the envelope, allocation and
back-tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.errors import UserError
from scaling.fit import (Approach2Refusal, approach1, approach2, backtest, chinchilla_constants, compare_allocations,
                         compute_optimal, envelope, fit_law, get_law, group_budgets, power_law_fit, simulate)

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
TRUE_A = chinchilla_constants(TRUE)["a"]


def isoflop(c_grid, sizes_per_budget=9, span=30.0, noise=0.0):
    """An IsoFLOP sweep centred on the true optimum of each budget (sizes x/ span around it)."""
    frames = []
    for i, c in enumerate(c_grid):
        n_opt = compute_optimal(TRUE, c).n_opt
        frames.append(simulate(TRUE, np.geomspace(n_opt / span, n_opt * span, sizes_per_budget), c_grid=[c],
                               noise=noise, seed=i).assign(run_id=lambda d, i=i: [f"b{i}-{k}" for k in range(len(d))]))
    return pd.concat(frames, ignore_index=True)


def test_approach2_recovers_the_allocation_exponents():
    df = isoflop(np.geomspace(1e18, 1e22, 5))
    res = approach2(df["params_total"], df["tokens"], df["loss_val"])
    assert len(res.minima) == 5 and not res.skipped
    assert res.n_law.gamma == pytest.approx(TRUE_A, abs=0.01)
    assert res.n_law.gamma + res.d_law.gamma == pytest.approx(1.0, abs=1e-9)   # C = 6 N D
    fit = fit_law(df["params_total"].to_numpy(), df["tokens"].to_numpy(), df["loss_val"].to_numpy(), approach=2)
    assert fit.params["a"] == pytest.approx(res.n_law.gamma)
    assert compute_optimal(fit, 1e22).n_opt == pytest.approx(compute_optimal(TRUE, 1e22).n_opt, rel=0.1)
    with pytest.raises(UserError, match="Approach-2 fit estimates the allocation"):
        fit.predict(1e9, 1e10)


def test_approach2_refuses_budgets_without_an_interior_minimum():
    df = isoflop([1e19, 1e20, 1e21])
    few = pd.concat([df, simulate(TRUE, [1e8, 2e8], c_grid=[1e23])], ignore_index=True)
    with pytest.raises(Approach2Refusal, match=r"budget C=1e\+23 FLOPs has 2 distinct model sizes"):
        approach2(few["params_total"], few["tokens"], few["loss_val"])
    n_opt = compute_optimal(TRUE, 1e22).n_opt
    edge = pd.concat([df, simulate(TRUE, np.geomspace(n_opt * 3, n_opt * 30, 5), c_grid=[1e22])], ignore_index=True)
    with pytest.raises(Approach2Refusal, match=r"budget C=1e\+22 FLOPs: the parabola minimum .* beyond the smallest"):
        approach2(edge["params_total"], edge["tokens"], edge["loss_val"])
    res = approach2(edge["params_total"], edge["tokens"], edge["loss_val"], on_bad="skip")
    assert len(res.minima) == 3 and "C=1e+22" in res.skipped[0]
    assert isinstance(Approach2Refusal("x"), UserError)
    with pytest.raises(Approach2Refusal, match="at least 2 budgets"):
        approach2(df["params_total"][:9], df["tokens"][:9], df["loss_val"][:9])


def test_budgets_are_grouped_within_a_tolerance():
    labels = group_budgets([1e20, 1.03e20, 0.99e20, 1e21, 1.04e21, 3e21])
    assert list(labels) == [0, 0, 0, 1, 1, 2]
    assert list(group_budgets([1e20, 1.2e20], rtol=0.05)) == [0, 1]


def test_approach1_envelope_of_training_curves():
    df = simulate(TRUE, np.geomspace(1e7, 1e10, 7), np.geomspace(1e9, 1e12, 4), noise=0.0, curve_points=25)
    res = approach1(df["run_id"], df["params_total"], df["tokens"], df["loss_val"])
    assert res.n_law.gamma == pytest.approx(TRUE_A, abs=0.03)
    assert (np.diff(res.envelope["loss"]) <= 1e-12).all()                 # the envelope only improves
    with pytest.raises(UserError, match="at least 2 runs"):
        approach1(["r"] * 3, [1e8] * 3, [1e9, 2e9, 3e9], [3.0, 2.9, 2.8])


def test_power_laws_of_metrics_against_compute():
    c = np.geomspace(1e18, 1e22, 9)
    pure = power_law_fit(c, 0.02 * c ** 0.021)
    assert pure.gamma == pytest.approx(0.021, rel=1e-9) and pure.k == pytest.approx(0.02, rel=1e-6)
    sat = power_law_fit(c, 0.9 - 40.0 * c ** -0.08, saturating=True)
    assert sat.q_inf == pytest.approx(0.9, rel=1e-6) and sat.gamma == pytest.approx(-0.08, rel=1e-5)
    assert sat.predict(1e20) == pytest.approx(0.9 - 40.0 * 1e20 ** -0.08, rel=1e-9)
    with pytest.raises(UserError, match="positive Q"):
        power_law_fit(c, -np.ones_like(c))
    with pytest.raises(UserError, match="at least 4 points"):
        power_law_fit(c[:3], c[:3], saturating=True)


def test_envelope_keeps_the_best_model_per_compute():
    df = pd.DataFrame({"flops_6nd": [1, 2, 2, 3, 4, 5], "loss_val": [5.0, 4.0, 4.5, 4.2, 3.0, np.nan],
                       "acc": [0.1, 0.3, 0.2, 0.4, 0.35, 0.5]})
    assert list(envelope(df)["loss_val"]) == [5.0, 4.0, 3.0]
    assert list(envelope(df, y="acc", lower_is_better=False)["acc"]) == [0.1, 0.3, 0.4, 0.5]
    with pytest.raises(UserError, match="unknown column 'los'"):
        envelope(df, y="los")


def test_closed_form_allocation_matches_numeric_minimum():
    c = 1e21
    alloc = compute_optimal(TRUE, c)
    log_n = np.linspace(np.log(alloc.n_opt) - 0.3, np.log(alloc.n_opt) + 0.3, 200001)
    loss = get_law("chinchilla").predict(TRUE, {"n": np.exp(log_n), "d": c / (6 * np.exp(log_n))})
    assert np.exp(log_n[np.argmin(loss)]) == pytest.approx(alloc.n_opt, rel=1e-4)
    assert alloc.n_opt * alloc.d_opt * 6 == pytest.approx(c, rel=1e-12)
    arr = compute_optimal(TRUE, [1e20, 1e21])
    assert arr.n_opt[1] == pytest.approx(alloc.n_opt) and arr.tokens_per_param.shape == (2,)
    kaplan = {"E": 1.5, "Nc": 1e8, "Dc": 1e9, "alpha_n": 0.35, "alpha_d": 0.4}
    numeric = compute_optimal(kaplan, c, law="kaplan")
    grid = get_law("kaplan").predict(kaplan, {"n": np.exp(log_n + np.log(numeric.n_opt / alloc.n_opt)),
                                              "d": c / (6 * np.exp(log_n + np.log(numeric.n_opt / alloc.n_opt)))})
    assert numeric.loss <= grid.min() + 1e-12
    table = compare_allocations({"ours": TRUE, "slower": dict(TRUE, beta=0.30)}, [1e21])
    assert list(table["fit"]) == ["ours", "slower"] and table["n_ratio"][0] == 1.0
    with pytest.raises(UserError, match="must both be positive"):
        compute_optimal(dict(TRUE, alpha=0.0), c)


def test_backtest_predicts_held_out_large_runs():
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 7), c_grid=np.geomspace(1e18, 1e22, 6), noise=0.003, seed=4)
    res = backtest(df["params_total"], df["tokens"], df["loss_val"], 1e21, run_id=df["run_id"])
    assert res.summary["n_test"] == 14 and res.summary["n_train"] == 28
    assert res.summary["max_abs_rel_error"] < 0.02
    assert (res.held_out["c"] > 1e21).all()
    with pytest.raises(UserError, match="no run has C above"):
        backtest(df["params_total"], df["tokens"], df["loss_val"], 1e30)
