"""Several minima, exhaustive multi-starts for any law, profile-likelihood intervals, start
grids from the command line, and the objective on the loss itself."""

from __future__ import annotations

import lmfit
import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.stats import t as student_t

from scaling.cli import main
from scaling.errors import UserError
from scaling.fit import fit_law, get_law, simulate
from scaling.fit.starts import start_grid

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def test_a_two_minimum_landscape_is_reported_as_two_minima():
    # E + A/N^alpha + B/N^beta is symmetric under (A, alpha) <-> (B, beta): two minima with the
    # same objective and different parameters, whatever the noise.
    n = np.geomspace(1e6, 1e10, 40)
    y = (2.0 + 100.0 * n ** -0.3 + 1000.0 * n ** -0.6) * np.exp(0.002 * np.random.default_rng(1).standard_normal(40))
    fit = fit_law(n, None, y, law="E + A/N**alpha + B/N**beta", start={"E": 1.5},
                  grid={"A": (10.0, 1e4, 4), "B": (10.0, 1e4, 4), "alpha": (0.2, 0.7, 3), "beta": (0.2, 0.7, 3)})
    first, second = fit.diagnostics["minima"][:2]
    assert first["alpha"] == pytest.approx(second["beta"], rel=1e-5) and first["A"] == pytest.approx(second["B"], rel=1e-4)
    assert abs(first["alpha"] - second["alpha"]) > 0.1
    assert second["relative_to_best"] < 1e-8 and second["statistic"] < 1e-6
    assert any("fits as well as the best at the 95% level" in w for w in fit.diagnostics["warnings"])


def test_exhaustive_runs_every_start_of_any_law():
    kaplan = {"E": 1.5, "Nc": 1e8, "Dc": 1e9, "alpha_n": 0.35, "alpha_d": 0.4}
    df = simulate(kaplan, np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6), noise=0.0, law="kaplan")
    fit = fit_law(df["params_total"], df["tokens"], df["loss_val"], law="kaplan", exhaustive=True)
    assert fit.diagnostics["mode"].startswith("exhaustive") and fit.diagnostics["reached_best_of"] == 32
    assert 1 <= fit.diagnostics["reached_best"] <= 32
    assert fit.params == pytest.approx(kaplan, rel=1e-6)


def test_profile_interval_of_a_linear_law_is_the_t_interval():
    # For a law linear in its parameters with least squares, the F-test profile interval is
    # exactly b_hat +- t(0.975, P-2) * se: the same number by two routes. Brent's method stops at
    # 1e-6 relative in the coordinate, so the ends agree to 1e-5.
    rng = np.random.default_rng(0)
    x = np.linspace(1.0, 3.0, 25)
    y = 0.5 + 0.8 * x + 0.05 * rng.standard_normal(x.size)
    fit = fit_law(None, None, y, law="a + b*X", x=x, space="loss", loss="mse", profile=("b",))
    X = np.stack([np.ones_like(x), x], axis=1)
    coef, ssr, *_ = np.linalg.lstsq(X, y, rcond=None)
    se = np.sqrt(ssr[0] / (x.size - 2) * np.linalg.inv(X.T @ X)[1, 1])
    half = student_t.ppf(0.975, x.size - 2) * se
    profile = fit.diagnostics["profile"]["b"]
    assert fit.params["b"] == pytest.approx(coef[1], rel=1e-9)
    assert profile["lo"] == pytest.approx(coef[1] - half, rel=1e-5)
    assert profile["hi"] == pytest.approx(coef[1] + half, rel=1e-5)


def test_profile_interval_matches_lmfit_conf_interval():
    truth = {"eps": 0.9, "k": 4.0, "gamma": 0.8}
    x = np.linspace(2.0, 4.0, 30)
    y = get_law("task_exponential").predict(truth, {"x": x}) + 0.004 * np.random.default_rng(2).standard_normal(30)
    fit = fit_law(None, None, y, law="task_exponential", x=x, loss="mse", profile=("gamma", "eps"))
    params = lmfit.Parameters()
    for name, value in fit.params.items():
        params.add(name, value=value)
    mini = lmfit.Minimizer(lambda p: p["eps"] - p["k"] * np.exp(-p["gamma"] * x) - y, params)
    result = mini.minimize(method="leastsq")
    ci = lmfit.conf_interval(mini, result, p_names=["gamma", "eps"], sigmas=[0.95])
    for name in ("gamma", "eps"):
        ends = [value for prob, value in ci[name] if prob == 0.95]
        ours = fit.diagnostics["profile"][name]
        # lmfit's own root finding stops at rtol 5e-5 of the parameter: agree to 1e-3 relative.
        assert ours["lo"] == pytest.approx(ends[0], rel=1e-3) and ours["hi"] == pytest.approx(ends[1], rel=1e-3), name


def test_profile_interval_of_a_chinchilla_exponent_is_like_the_bootstrap():
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 8), c_grid=np.geomspace(1e18, 1e22, 6), noise=0.01, seed=4)
    fit = fit_law(df["params_total"], df["tokens"], df["loss_val"], run_id=df["run_id"], bootstrap=200,
                  profile=("alpha",), loss="mse")
    prof = fit.diagnostics["profile"]["alpha"]
    lo, hi = fit.intervals["alpha"]
    assert prof["lo"] < fit.params["alpha"] < prof["hi"]
    # Both estimate the same sampling spread; 200 resamples put ~15% noise on a 95% percentile
    # interval's width, so the widths agree within a factor 1.5.
    assert 1 / 1.5 < (prof["hi"] - prof["lo"]) / (hi - lo) < 1.5


def test_start_grids_from_values_and_ranges():
    law = get_law("chinchilla")
    grid = start_grid(law, start={"E": 2.0}, grid={"alpha": (0.1, 1.0, 4), "A": (1.0, 1e4, 5)})
    assert len(grid) == 1 * 5 * 6 * 4 * 5                          # E once, A five, B and beta as default
    assert np.exp(np.unique(grid[:, 1])) == pytest.approx(np.geomspace(1.0, 1e4, 5))   # A is fitted as log A
    assert np.unique(grid[:, 3]) == pytest.approx(np.linspace(0.1, 1.0, 4))
    with pytest.raises(UserError, match=r"--start A=0.0: A is fitted as log\(A\), so it must start positive"):
        start_grid(law, start={"A": 0.0})
    with pytest.raises(UserError, match="unknown parameter of law chinchilla 'gama'"):
        start_grid(law, grid={"gama": (0.1, 1.0, 3)})


@pytest.mark.parametrize("argv, message", [
    (["--start", "A=0"], "A is fitted as log(A), so it must start positive"),
    (["--start", "A"], "--start 'A': expected NAME=VALUE"),
    (["--grid", "alpha=0.1:1"], "expected NAME=LO:HI:COUNT"),
    (["--grid", "alpha=0.1:1:2.5"], "COUNT '2.5' must be a positive whole number"),
    (["--bound", "alpha=3:1"], "expected LO < HI"),
    (["--bound", "alpha=a:b"], "expected NAME=LO:HI with numbers"),
    (["--space", "linear"], None),
    (["--law", "E + A/N**alpha; import os"], "is not a single expression"),
    (["--law", "task_sigmoid"], "reads X: name its column with --x COL"),
    (["--window", "0"], "--window '0': expected a whole number >= 1"),
    (["--window", "2"], "window apply to Approach 2 only"),
    (["--holdout-tail", "1.5"], "expected a fraction between 0 and 1"),
    (["--holdout-tail", "x"], "--holdout-tail 'x': expected a number"),
    (["--unique-tokens", "-3"], "expected a positive finite number"),
    (["--screen-rows", "many"], "expected a whole number >= 0"),
    (["--at", "N=1e9,D"], "expected NAME=VALUE"),
    (["--chain", "/nonexistent.json", "--at", "N=1e9,D=1e10"], "no such file"),
    (["--profile", "gamma"], "unknown parameter of law chinchilla 'gamma'"),
    (["--holdout-where", "nosuch>1"], "unknown column in --where 'nosuch'"),
    (["--bind", "T"], "--bind 'T': expected NAME=VALUE"),
])
def test_bad_values_of_new_flags_are_one_line(tmp_path, capsys, argv, message):
    path = tmp_path / "t.csv"
    simulate(TRUE, np.geomspace(3e7, 1e10, 4), c_grid=[1e19, 1e20, 1e21], noise=0.002).to_csv(path, index=False)
    try:
        code = main(["fit", str(path), *argv])
    except SystemExit as exc:                 # argparse's own choices check (--space)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    if message is not None:
        assert len(err) == 1 and err[0].startswith("scaling fit: error:") and message in err[0], err


def test_least_squares_on_the_loss_itself_is_curve_fit():
    rng = np.random.default_rng(5)
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 8), c_grid=np.geomspace(1e18, 1e22, 6), noise=0.0)
    n, d = df["params_total"].to_numpy(), df["tokens"].to_numpy()
    y = df["loss_val"].to_numpy() + 0.01 * rng.standard_normal(len(df))   # additive noise: curve_fit's model

    def model(nd, E, A, B, alpha, beta):
        return E + A * nd[0] ** -alpha + B * nd[1] ** -beta

    popt, _ = curve_fit(model, np.stack([n, d]), y, p0=list(TRUE.values()), method="trf", x_scale="jac",
                        ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100000)
    fit = fit_law(n, d, y, space="loss", loss="mse")
    ssr = np.sum((model(np.stack([n, d]), *popt) - y) ** 2) / 2
    assert fit.objective <= ssr * (1 + 1e-9)                          # as good as curve_fit's optimum
    # Both converge to the one least-squares optimum; its conditioning (~1e6 along the A-alpha
    # ridge) turns the solvers' 1e-15 stopping tolerances into < 1e-5 relative in the parameters.
    assert fit.params == pytest.approx(dict(zip(TRUE, popt)), rel=1e-5)
    assert fit.provenance["space"] == "loss" and fit.diagnostics["engine"].startswith("lmfit")
    huber = fit_law(n, d, y, space="loss", delta=0.01)
    r = get_law("chinchilla").predict(huber.params, {"n": n, "d": d}) - y
    expected = np.sum(np.where(np.abs(r) <= 0.01, 0.5 * r * r, 0.01 * (np.abs(r) - 0.005)))
    assert huber.objective == pytest.approx(expected, rel=1e-12)
