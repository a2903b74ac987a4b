"""The demo's grid logic and closing summary, on simulated IsoFLOP sweeps with known laws."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.commands.demo_summary import VariantResult, best_per_budget, summary
from scaling.fit import fit_law
from scaling.fit.allocation import chinchilla_constants, compute_optimal
from scaling.fit.simulation import simulate

BUDGETS = [3e10, 1e11, 3e11]
SIZES = np.geomspace(1e4, 1.6e5, 7)
# two laws whose optima fall inside SIZES at every budget; the first wants larger models
WIDE = {"E": 1.0, "A": 100.0, "B": 400.0, "alpha": 0.35, "beta": 0.42}
LEAN = {"E": 1.0, "A": 100.0, "B": 600.0, "alpha": 0.35, "beta": 0.42}


def _ladder(params, noise=0.002, seed=0):
    """A simulated IsoFLOP grid whose runs are grouped per size, as decay branches share their trunk's run id."""
    df = simulate(params, SIZES, c_grid=BUDGETS, noise=noise, seed=seed)
    return df.assign(run_id=[f"size-{n:.0f}" for n in df["params_total"]])


def test_best_per_budget_says_where_the_minimum_lies():
    n = np.array([1, 2, 4, 1, 2, 4, 1, 2, 4], dtype=float) * 1e4
    c = np.repeat([1e10, 1e11, 1e12], 3) * (1 + np.array([0, 1e-4, -1e-4] * 3))  # budgets met to rounding
    y = np.array([3.0, 3.1, 3.2, 2.9, 2.8, 2.85, 2.7, 2.6, 2.5])
    m = best_per_budget(n, c, y)
    assert list(m["position"]) == ["smallest", "inside", "largest"]
    assert list(m["runs"]) == [3, 3, 3] and list(m["n_best"]) == [1e4, 2e4, 4e4]
    assert m["c"].to_numpy() == pytest.approx([1e10, 1e11, 1e12], rel=1e-4)
    assert list(m["loss_best"]) == [3.0, 2.8, 2.5]


def test_simulated_demo_grid_brackets_every_optimum():
    for params in (WIDE, LEAN):
        df = _ladder(params, noise=0.0)
        m = best_per_budget(df["params_total"], df["flops_6nd"], df["loss_val"])
        assert (m["position"] == "inside").all() and len(m) == len(BUDGETS)
        exact = compute_optimal(params, np.array(BUDGETS)).n_opt
        # the best size is the grid point nearest the true optimum, within one grid step
        step = SIZES[1] / SIZES[0]
        assert np.all(np.abs(np.log(m["n_best"] / exact)) <= np.log(step))


def _variant(label, params, boot=40):
    df = _ladder(params)
    n, d, y, runs = (df[k].to_numpy() for k in ("params_total", "tokens", "loss_val", "run_id"))
    a3 = fit_law(n, d, y, run_id=runs, bootstrap=boot, targets_c=[BUDGETS[-1]])
    a2 = fit_law(n, d, y, approach=2, run_id=runs, bootstrap=boot, on_bad="skip")
    held = 6 * n * d > 2e11
    bt = fit_law(n[~held], d[~held], y[~held])
    err = np.abs(bt.predict(n[held], d[held]) - y[held]) / y[held]
    backtest = {"backtest": {"summary": {"mean_abs_rel_error": err.mean(), "max_abs_rel_error": err.max(),
                                         "n_test": int(held.sum()), "n_train": int((~held).sum())}}}
    minima = best_per_budget(n, 6 * n * d, y)
    return VariantResult(label, minima, a3.to_json(), a2.to_json(), backtest)


def test_summary_puts_both_approaches_side_by_side_and_names_the_larger_model():
    wide, lean = _variant("Wide", WIDE), _variant("Lean", LEAN)
    text = summary([wide, lean], "loss_val", "params_total", "flops_6nd", BUDGETS[-1])
    assert text.count("inside the sizes") == 2 * len(BUDGETS) and "not bracketed" not in text
    true_a = chinchilla_constants(WIDE)["a"]
    row = next(line for line in text.splitlines() if line.strip().startswith("Wide") and "[" in line and "N*" not in line)
    a2, a3 = (float(x) for x in row.split()[1::3][:2])
    # 0.2 % log-normal noise on a 7 x 3 grid: both approaches recover a to a few hundredths
    assert a3 == pytest.approx(true_a, abs=0.05) and a2 == pytest.approx(true_a, abs=0.1)
    assert "Wide puts more of the budget into parameters" in text and "the intervals do not overlap" in text
    assert "back-test" in text and "held-out runs" in text
    assert "not determined" not in text and "warning: Wide, Approach 3" not in text


def test_summary_flags_an_optimum_outside_the_sizes_and_a_missing_fit():
    lean = _variant("Lean", LEAN, boot=0)
    outside = lean.minima.assign(position=["smallest"] + ["inside"] * (len(BUDGETS) - 1))
    text = summary([VariantResult("Lean", outside, lean.approach3, None, None)], "loss_val", "params_total", "flops_6nd",
                   BUDGETS[-1])
    assert "at the smallest size: not bracketed" in text
    assert "warning: Lean: no Approach-2 fit" in text and "one variant only" in text
