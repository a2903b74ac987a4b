"""Scaling laws as data: a name, the inputs it reads, its parameters and its formula.

Conventions: N is parameters (count), D is training tokens (count), C is training compute in
FLOPs (C = 6*N*D unless a column says otherwise), U is unique tokens (data-constrained law),
M = D/N is the token multiplier (over-training law), X is the input of a downstream law (a loss
in nats), and the predicted quantity is a loss in nats per token (or, for the task laws, an error
rate or accuracy in [0, 1]). Input names in code: ``n``, ``d``, ``c``, ``u``, ``m``, ``x``.

A law is fitted by default in its ``space``: ``log`` (residuals of log(prediction), so it must
predict positive values) or ``loss`` (residuals of the prediction itself, as ``curve_fit`` does).
A parameter marked ``log`` is optimised as its logarithm (it is positive); its ``grid`` gives
start values in those optimisation coordinates.

Shipped laws:

- ``chinchilla``: L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022).
- ``kaplan``: L = E + ((Nc/N)^(alpha_n/alpha_d) + Dc/D)^alpha_d (Kaplan et al. 2020, Eq. 1.5,
  with an irreducible term E).
- ``kaplan_compute``: L = E + (Cc/C)^alpha_c (Kaplan et al. 2020, L(C) with an irreducible term).
- ``data_constrained``: Muennighoff et al. (2023): the Chinchilla form with effective data
  D' = U + U*Rd*(1 - exp(-R_D/Rd)), R_D = D/U - 1 repeated epochs, and effective parameters
  N' = U_N + U_N*Rn*(1 - exp(-R_N/Rn)), U_N = min(N, N_opt(U)), R_N = N/U_N - 1, where
  N_opt(U) is the compute-optimal size for U tokens under the same law's base parameters.
- ``overtraining``: Gadre et al. (2024), Eq. 4: L(C, M) = E + (a*M^eta + b*M^-eta)*C^-eta, the
  reducible loss at a fixed token multiplier M = D/N being a power law in C with one exponent.
  It is the Chinchilla law with alpha = beta = 2*eta, a = A*6^eta, b = B*6^eta.
- ``task_exponential``: Gadre et al. (2024), Eq. 5: Err(L) = eps - k*exp(-gamma*L), top-1 error
  against a loss L (fitted on the error itself by default).
- ``task_sigmoid``: Acc(L) = a/(1 + exp(-k*(L - L0))) + b, accuracy against a loss L, with a > 0
  (k < 0 when accuracy falls as the loss grows); fitted on the accuracy itself by default.

User-defined forms: build a :class:`Law` with a ``predict`` function (and optionally its
``jacobian`` with respect to the natural parameters) and pass it wherever a law name is taken.
Power laws of metrics against compute live in :mod:`scaling.fit.powerlaw`.
"""

from __future__ import annotations

import numpy as np

from scaling.errors import unknown_choice
from scaling.fit.expression import expression_law, is_expression
from scaling.fit.law import Arrays, Law, Parameter

__all__ = ["Arrays", "Law", "Parameter", "LAWS", "get_law"]


def _chinchilla(p, x):
    return p["E"] + p["A"] * np.asarray(x["n"], float) ** -p["alpha"] + p["B"] * np.asarray(x["d"], float) ** -p["beta"]


def _chinchilla_jacobian(p, x):
    n_term = np.asarray(x["n"], float) ** -p["alpha"]
    d_term = np.asarray(x["d"], float) ** -p["beta"]
    return {"E": np.ones_like(n_term), "A": n_term, "B": d_term,
            "alpha": -p["A"] * n_term * np.log(x["n"]), "beta": -p["B"] * d_term * np.log(x["d"])}


def _kaplan(p, x):
    ratio = (p["Nc"] / np.asarray(x["n"], float)) ** (p["alpha_n"] / p["alpha_d"])
    return p["E"] + (ratio + p["Dc"] / np.asarray(x["d"], float)) ** p["alpha_d"]


def _kaplan_compute(p, x):
    return p["E"] + (p["Cc"] / np.asarray(x["c"], float)) ** p["alpha_c"]


def _kaplan_compute_jacobian(p, x):
    t = (p["Cc"] / np.asarray(x["c"], float)) ** p["alpha_c"]
    return {"E": np.ones_like(t), "Cc": p["alpha_c"] * t / p["Cc"],
            "alpha_c": t * np.log(p["Cc"] / np.asarray(x["c"], float))}


def _data_constrained(p, x):
    n, d, u = (np.asarray(x[k], float) for k in ("n", "d", "u"))
    alpha, beta = p["alpha"], p["beta"]
    # Compute-optimal size for U tokens under the base law: D_opt = U  =>  C/6 = (U*G)^(1/b).
    G = (alpha * p["A"] / (beta * p["B"])) ** (1.0 / (alpha + beta))
    a_exp, b_exp = beta / (alpha + beta), alpha / (alpha + beta)
    n_opt = G * (u * G) ** (a_exp / b_exp)
    u_n = np.minimum(n, n_opt)
    r_n = n / u_n - 1.0
    r_d = np.maximum(d / u - 1.0, 0.0)
    n_eff = u_n + u_n * p["rn_star"] * (1.0 - np.exp(-r_n / p["rn_star"]))
    d_eff = np.minimum(d, u) + u * p["rd_star"] * (1.0 - np.exp(-r_d / p["rd_star"]))
    return p["E"] + p["A"] / n_eff ** alpha + p["B"] / d_eff ** beta


def _overtraining(p, x):
    c, m = np.asarray(x["c"], float), np.asarray(x["m"], float)
    return p["E"] + (p["a"] * m ** p["eta"] + p["b"] * m ** -p["eta"]) * c ** -p["eta"]


def _overtraining_jacobian(p, x):
    c, m = np.asarray(x["c"], float), np.asarray(x["m"], float)
    up, down, cc = m ** p["eta"], m ** -p["eta"], c ** -p["eta"]
    reducible = (p["a"] * up + p["b"] * down) * cc
    return {"E": np.ones_like(reducible), "a": up * cc, "b": down * cc,
            "eta": (p["a"] * up - p["b"] * down) * cc * np.log(m) - reducible * np.log(c)}


def _task_exponential(p, x):
    return p["eps"] - p["k"] * np.exp(-p["gamma"] * np.asarray(x["x"], float))


def _task_exponential_jacobian(p, x):
    lx = np.asarray(x["x"], float)
    decay = np.exp(-p["gamma"] * lx)
    return {"eps": np.ones_like(decay), "k": -decay, "gamma": p["k"] * lx * decay}


def _task_sigmoid(p, x):
    return p["a"] * _logistic(p["k"] * (np.asarray(x["x"], float) - p["L0"])) + p["b"]


def _task_sigmoid_jacobian(p, x):
    shift = np.asarray(x["x"], float) - p["L0"]
    s = _logistic(p["k"] * shift)
    slope = p["a"] * s * (1 - s)
    return {"a": s, "k": slope * shift, "L0": -slope * p["k"], "b": np.ones_like(s)}


def _logistic(t):
    """1/(1 + exp(-t)) without overflow for large |t|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(t, float)))


_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)
_LOG_COEF = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_LOG_E = (-1.0, -0.5, 0.0, 0.5, 1.0)

CHINCHILLA = Law(
    "chinchilla", ("n", "d"),
    (Parameter("E", True, _LOG_E), Parameter("A", True, _LOG_COEF), Parameter("B", True, _LOG_COEF),
     Parameter("alpha", False, _EXP), Parameter("beta", False, _EXP)),
    "L = E + A/N^alpha + B/D^beta", _chinchilla, _chinchilla_jacobian)

LAWS: dict[str, Law] = {
    law.name: law for law in (
        CHINCHILLA,
        Law("kaplan", ("n", "d"),
            (Parameter("E", True, (-0.5, 0.5)), Parameter("Nc", True, (20.0, 30.0)),
             Parameter("Dc", True, (20.0, 30.0)), Parameter("alpha_n", False, (0.1, 0.4)),
             Parameter("alpha_d", False, (0.1, 0.4))),
            "L = E + ((Nc/N)^(alpha_n/alpha_d) + Dc/D)^alpha_d", _kaplan),
        Law("kaplan_compute", ("c",),
            (Parameter("E", True, (-0.5, 0.25, 1.0)), Parameter("Cc", True, (20.0, 35.0, 50.0)),
             Parameter("alpha_c", False, (0.03, 0.1, 0.3))),
            "L = E + (Cc/C)^alpha_c", _kaplan_compute, _kaplan_compute_jacobian),
        # Exponents start away from 0: N_opt(U) divides by alpha + beta.
        Law("data_constrained", ("n", "d", "u"),
            (Parameter("E", True, (-0.5, 0.5)), Parameter("A", True, (5.0, 10.0)), Parameter("B", True, (5.0, 10.0)),
             Parameter("alpha", False, (0.3, 0.6)), Parameter("beta", False, (0.3, 0.6)),
             Parameter("rd_star", True, (1.0, 3.0)), Parameter("rn_star", True, (0.5, 2.5))),
            "L = E + A/N'^alpha + B/D'^beta, D' = U + U*Rd*(1-exp(-R_D/Rd)), N' likewise",
            _data_constrained),
        Law("overtraining", ("c", "m"),
            (Parameter("E", True, (-0.5, 0.5)), Parameter("a", True, (0.0, 5.0, 10.0)),
             Parameter("b", True, (0.0, 5.0, 10.0)), Parameter("eta", False, (0.05, 0.15, 0.3))),
            "L = E + (a*M^eta + b*M^-eta)*C^-eta, M = D/N", _overtraining, _overtraining_jacobian),
        Law("task_exponential", ("x",),
            (Parameter("eps", False, (0.5, 0.8, 1.0)), Parameter("k", True, (-2.0, 0.0, 2.0, 4.0)),
             Parameter("gamma", False, (0.3, 1.0, 3.0))),
            "Err = eps - k*exp(-gamma*L)", _task_exponential, _task_exponential_jacobian, space="loss"),
        Law("task_sigmoid", ("x",),
            # a > 0 (fitted as log a): a/(1 + e^(-k t)) + b = -a/(1 + e^(k t)) + a + b would otherwise give
            # every fit a mirror-image twin with the same objective
            (Parameter("a", True, (np.log(0.3), np.log(0.7))), Parameter("k", False, (-10.0, -3.0, -1.0)),
             Parameter("L0", False, (1.0, 2.0, 3.0, 4.0, 5.0)), Parameter("b", False, (0.0, 0.25))),
            "Acc = a/(1 + exp(-k*(L - L0))) + b", _task_sigmoid, _task_sigmoid_jacobian, space="loss"),
    )
}


def get_law(law: str | Law, bound: tuple[str, ...] = ()) -> Law:
    """The :class:`Law` called ``law`` (a Law passes through), or the law an expression such as
    ``E + A/N**alpha`` writes (see :mod:`scaling.fit.expression`; ``bound`` names extra input
    symbols). Unknown names raise UserError."""
    if isinstance(law, Law):
        return law

    if is_expression(law):
        return expression_law(law, bound)
    if law not in LAWS:
        raise unknown_choice("law", law, LAWS)
    return LAWS[law]
