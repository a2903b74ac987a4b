"""Downstream chains (loss law, then a task law of the loss), back-tests as the papers do them,
and goodness of fit, each checked against a hand computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaling.cli import main
from scaling.fit import backtest, fit_law, get_law, simulate
from scaling.fit.chain import chain_predict, predict_at

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
TASK = {"eps": 0.9, "k": 4.0, "gamma": 0.8}
BIG = {"n": 7e10, "d": 1.4e12}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    """Final rows of 30 runs with a loss (0.3% noise) and a top-1 error that follows
    task_exponential of that loss exactly."""
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 6), c_grid=np.geomspace(1e18, 1e22, 5), noise=0.003, seed=3)
    df["err"] = get_law("task_exponential").predict(TASK, {"x": df["loss_val"].to_numpy()})
    return df


@pytest.fixture(scope="module")
def stages(runs):
    loss_fit = fit_law(runs["params_total"], runs["tokens"], runs["loss_val"], run_id=runs["run_id"], bootstrap=100)
    task_fit = fit_law(None, None, runs["err"], law="task_exponential", x=runs["loss_val"], run_id=runs["run_id"],
                       bootstrap=100, seed=1)
    return loss_fit, task_fit


def test_downstream_law_recovers_its_parameters(stages):
    _, task_fit = stages
    # the error is an exact function of the observed loss: 1e-6 relative (see test_fit_laws)
    assert task_fit.params == pytest.approx(TASK, rel=1e-6)
    assert len(task_fit.samples["gamma"]) == 100


def test_chain_predicts_through_both_laws(stages):
    loss_fit, task_fit = stages
    table = chain_predict(loss_fit, task_fit, [BIG])
    row = table.iloc[0]
    by_hand_loss = get_law("chinchilla").predict(loss_fit.params, {"n": BIG["n"], "d": BIG["d"]})
    assert row["loss"] == pytest.approx(by_hand_loss, rel=1e-12)
    assert row["metric"] == pytest.approx(get_law("task_exponential").predict(task_fit.params, {"x": by_hand_loss}),
                                          rel=1e-12)
    # Draw j: loss from loss refit j, metric from task refit j at that loss.
    draws = [get_law("task_exponential").predict(t, {"x": get_law("chinchilla").predict(p, {"n": BIG["n"], "d": BIG["d"]})})
             for p, t in zip(loss_fit.sample_params(), task_fit.sample_params())]
    assert row["draws"] == 100
    assert [row["metric_lo"], row["metric_hi"]] == pytest.approx(np.percentile(draws, [2.5, 97.5]), rel=1e-12)
    truth = get_law("task_exponential").predict(TASK, {"x": get_law("chinchilla").predict(TRUE, BIG)})
    assert row["metric_lo"] < truth < row["metric_hi"]
    # a second stage without refits: the interval holds the first stage's spread only
    x = np.linspace(2.0, 4.0, 20)
    plain = fit_law(None, None, get_law("task_exponential").predict(TASK, {"x": x}), law="task_exponential", x=x)
    point_only = chain_predict(loss_fit, plain, [BIG]).iloc[0]
    assert point_only["draws"] == 100 and point_only["metric_lo"] < point_only["metric"] < point_only["metric_hi"]


def test_predictions_at_points_carry_bootstrap_intervals(stages):
    loss_fit, _ = stages
    table = predict_at(loss_fit, [BIG, {"n": 1e9, "d": 2e10}])
    draws = [get_law("chinchilla").predict(p, BIG) for p in loss_fit.sample_params()]
    assert [table["lo"][0], table["hi"][0]] == pytest.approx(np.percentile(draws, [2.5, 97.5]), rel=1e-12)


def test_cli_chain(runs, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    loss_json = tmp_path / "loss.json"
    assert main(["fit", str(path), "--bootstrap", "50", "--json", str(loss_json)]) == 0
    assert len(json.loads(loss_json.read_text())["samples"]["alpha"]) == 50
    capsys.readouterr()
    assert main(["fit", str(path), "--law", "task_exponential", "--x", "loss_val", "--y", "err", "--bootstrap", "50",
                 "--chain", str(loss_json), "--at", "N=7e10,D=1.4e12"]) == 0
    text = capsys.readouterr().out
    assert "task_exponential law, Approach 3 (Huber sum on y itself" in text
    assert "no allocation" not in text and "none: the fit reads no N or D" in text
    assert f"chain: loss from {loss_json}" in text and "n=7e+10, d=1.4e+12: loss" in text and "metric" in text


def test_backtest_by_a_column_matches_a_hand_computation(runs):
    n, d, y = (runs[k].to_numpy() for k in ("params_total", "tokens", "loss_val"))
    held = n >= 2e9
    test = backtest(n, d, y, held_out=held, run_id=runs["run_id"])
    own = fit_law(n[~held], d[~held], y[~held])
    pred = get_law("chinchilla").predict(own.params, {"n": n[held], "d": d[held]})
    err = np.abs(pred - y[held]) / y[held]
    s = test.summary
    assert (s["n_train"], s["n_test"]) == ((~held).sum(), held.sum())
    assert s["mean_abs_rel_error"] == pytest.approx(err.mean(), rel=1e-9)
    assert s["max_abs_rel_error"] == pytest.approx(err.max(), rel=1e-9)
    assert test.fit.params == pytest.approx(own.params, rel=1e-9)


def test_backtest_of_trajectory_tails_with_bootstrap_intervals():
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 5), c_grid=np.geomspace(1e18, 1e21, 4), noise=0.003, seed=5,
                  curve_points=10)
    n, d, y = (df[k].to_numpy() for k in ("params_total", "tokens", "loss_val"))
    test = backtest(n, d, y, tail=0.3, run_id=df["run_id"], bootstrap=50)
    last = df.groupby("run_id")["tokens"].transform("max").to_numpy()
    expected = d > 0.7 * last                      # the last 30% of every run's tokens: 3 of 10 points
    assert test.summary["n_test"] == expected.sum() == 3 * 20 and test.summary["n_train"] == 7 * 20
    assert "the last 30% of the tokens of every run" in test.summary["rule"]
    samples = test.fit.sample_params()
    draws = np.array([get_law("chinchilla").predict(p, {"n": n[expected], "d": d[expected]}) for p in samples])
    errors = np.abs(draws - y[expected]) / y[expected]
    assert test.summary["mean_abs_rel_error_interval"] == pytest.approx(np.percentile(errors.mean(axis=1), [2.5, 97.5]))
    assert "predicted_lo" in test.held_out.columns
    big = backtest(n, d, y, tail=0.3, held_out=n >= 1e9, run_id=df["run_id"])
    assert big.summary["n_test"] == (expected & (n >= 1e9)).sum()


def test_goodness_of_fit_matches_a_hand_computation(runs):
    n, d, y = (runs[k].to_numpy() for k in ("params_total", "tokens", "loss_val"))
    fit = fit_law(n, d, y)
    r = np.log(get_law("chinchilla").predict(fit.params, {"n": n, "d": d})) - np.log(y)
    ly = np.log(y)
    good = fit.diagnostics["goodness"]
    assert good["r2"] == pytest.approx(1 - np.sum(r ** 2) / np.sum((ly - ly.mean()) ** 2), rel=1e-12)
    assert good["rmse"] == pytest.approx(np.sqrt(np.mean(r ** 2)), rel=1e-12)


def test_cli_backtests(tmp_path, capsys):
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 5), c_grid=np.geomspace(1e18, 1e21, 4), noise=0.003, seed=5,
                  curve_points=10)
    path = tmp_path / "curves.csv"
    df.to_csv(path, index=False)
    assert main(["fit", str(path), "--holdout-where", "params_total>=1e9", "--bootstrap", "20"]) == 0
    text = capsys.readouterr().out
    assert "back-test: fitted on 12 points, predicted 8 held out (the hold-out filter)" in text
    assert "(95% bootstrap intervals)" in text and "goodness: R^2" in text
    assert main(["fit", str(path), "--holdout-tail", "0.3"]) == 0
    assert "predicted 60 held out (the last 30% of the tokens of every run)" in capsys.readouterr().out
