"""Every shipped law, expression laws and user laws recover known parameters from data simulated
from them, and every law with an allocation gives it (the others say why not).

Tolerances: on noise-free data a fit stops when the predicted further decrease of the objective
is below 1e-10 of it or 1e-30 per point, i.e. residuals of ~1e-15: the parameters are then exact
up to the conditioning of the law on the design (< 1e6 here), so 1e-6 relative is many orders
above the solver's error and above float64 rounding differences between CPUs.
"""

from __future__ import annotations

import numpy as np
import pytest

from scaling.errors import UserError
from scaling.fit import compute_optimal, fit_law, get_law, reference_law

EXACT = 1e-6
CHINCHILLA = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.34, "beta": 0.34}


def overtraining_design():
    """Eight sizes x eight token multipliers M = D/N from 5 to 640 (Gadre et al.'s range)."""
    n, m = np.meshgrid(np.geomspace(1e7, 7e9, 8), [5, 10, 20, 40, 80, 160, 320, 640.0], indexing="ij")
    return n.ravel(), (m * n).ravel()


def test_overtraining_law_recovers_its_parameters():
    truth = {"E": 1.9, "a": 800.0, "b": 300.0, "eta": 0.15}
    n, d = overtraining_design()
    y = get_law("overtraining").predict(truth, {"c": 6 * n * d, "m": d / n})
    fit = fit_law(n, d, y, law="overtraining")
    assert fit.params == pytest.approx(truth, rel=EXACT)
    assert fit.diagnostics["converged"] and fit.diagnostics["engine"].startswith("lmfit")


def test_overtraining_law_is_chinchilla_with_equal_exponents():
    # alpha = beta = 2*eta, a = A*6^eta, b = B*6^eta (C = 6ND, M = D/N; see scaling.fit.laws).
    n, d = overtraining_design()
    fit = fit_law(n, d, get_law("chinchilla").predict(CHINCHILLA, {"n": n, "d": d}), law="overtraining")
    eta = CHINCHILLA["alpha"] / 2
    expected = {"E": 1.8, "a": 480.0 * 6 ** eta, "b": 2100.0 * 6 ** eta, "eta": eta}
    assert fit.params == pytest.approx(expected, rel=EXACT)
    # Its compute-optimal multiplier is (b/a)^(1/(2 eta)) = D*/N* of the Chinchilla law.
    m_opt = fit.params["b"] / fit.params["a"]
    chin = compute_optimal(CHINCHILLA, 1e22)
    assert compute_optimal(fit, 1e22).tokens_per_param == pytest.approx(m_opt ** (1 / (2 * eta)), rel=1e-6)
    assert compute_optimal(fit, 1e22).n_opt == pytest.approx(chin.n_opt, rel=1e-5)


@pytest.mark.parametrize("name, truth", [
    ("task_exponential", {"eps": 0.9, "k": 4.0, "gamma": 0.8}),
    ("task_sigmoid", {"a": 0.6, "k": -4.0, "L0": 2.6, "b": 0.25}),
])
def test_downstream_laws_recover_their_parameters(name, truth):
    x = np.linspace(2.0, 4.0, 30)
    fit = fit_law(None, None, get_law(name).predict(truth, {"x": x}), law=name, x=x)
    assert fit.params == pytest.approx(truth, rel=EXACT)
    assert fit.provenance["space"] == "loss"            # fitted on the metric itself, as curve_fit does
    with pytest.raises(UserError, match=f"no allocation for law {name}"):
        compute_optimal(fit, 1e22)


def test_kaplan_compute_law_has_no_allocation():
    c = np.geomspace(1e17, 1e22, 12)
    truth = {"E": 1.7, "Cc": 2.3e8, "alpha_c": 0.05}
    fit = fit_law(None, None, get_law("kaplan_compute").predict(truth, {"c": c}), law="kaplan_compute", c=c)
    assert fit.params == pytest.approx(truth, rel=EXACT)
    with pytest.raises(UserError, match="reads only c, so every split of a budget"):
        compute_optimal(fit, 1e22)


def test_expression_law_matches_the_shipped_law():
    n, d = overtraining_design()
    y = get_law("chinchilla").predict(dict(CHINCHILLA, beta=0.3), {"n": n, "d": d})
    expr = fit_law(n, d, y, law="E + A/N**alpha + B/D**beta",
                   grid={"A": (10.0, 1e4, 4), "B": (10.0, 1e4, 4), "alpha": (0.1, 0.6, 3), "beta": (0.1, 0.6, 3)},
                   start={"E": 1.5})
    assert expr.params == pytest.approx(dict(CHINCHILLA, beta=0.3), rel=EXACT)
    assert expr.predict(n[:3], d[:3]) == pytest.approx(y[:3], rel=1e-12)
    assert expr.provenance["expression"] == "E + A/N**alpha + B/D**beta"
    # an expression law with a bound column
    t = d * 0.25
    bound = fit_law(n, d, 2.0 + 50.0 / t ** 0.2, law="E + K/T**g", inputs={"T": t}, start={"E": 1.0, "K": 10.0, "g": 0.3})
    assert bound.params == pytest.approx({"E": 2.0, "K": 50.0, "g": 0.2}, rel=EXACT)
    with pytest.raises(UserError, match="uses none of the inputs"):
        fit_law(n, d, y, law="E + A*q")


def test_data_constrained_allocation_uses_unique_tokens():
    ref = reference_law("muennighoff_data_constrained").params
    n, d, u = (a.ravel() for a in np.meshgrid(np.geomspace(1e8, 9e9, 5), np.geomspace(1e10, 5e11, 5), [1e10, 4e10],
                                              indexing="ij"))
    fit = fit_law(n, d, get_law("data_constrained").predict(ref, {"n": n, "d": d, "u": u}), law="data_constrained",
                  u=u, fixed={k: ref[k] for k in ("E", "A", "B", "alpha", "beta")}, targets_c=[1e22])
    assert fit.provenance["unique_tokens"] == 4e10                 # default: the largest U in the data
    scarce = compute_optimal(fit, 1e22, unique_tokens=1e9)
    plenty = compute_optimal(fit, 1e22, unique_tokens=1e15)
    # With plenty of unique data the law is Chinchilla's; with 1e9 unique tokens excess parameters
    # lose value faster than repeated tokens (rn_star < rd_star), so the optimum trains a smaller
    # model for more epochs (Muennighoff et al. 2023, Sec. 5: allocate compute to epochs first).
    chin = compute_optimal({k: ref[k] for k in ("E", "A", "B", "alpha", "beta")}, 1e22)
    assert plenty.n_opt == pytest.approx(chin.n_opt, rel=1e-4)
    assert scarce.n_opt < plenty.n_opt and scarce.tokens_per_param > 2 * plenty.tokens_per_param
    grid = np.geomspace(scarce.n_opt / 3, scarce.n_opt * 3, 2001)
    losses = get_law("data_constrained").predict(fit.params, {"n": grid, "d": 1e22 / (6 * grid), "u": np.full_like(grid, 1e9)})
    assert scarce.loss <= losses.min() + 1e-12
    with pytest.raises(UserError, match="needs the number of unique tokens"):
        compute_optimal(fit.params, 1e22, law="data_constrained")
