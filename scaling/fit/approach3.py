"""Approach 3: fit a parametric law L(N, D) to every run by minimising a robust objective on
log-residuals from a grid of starts, keeping the best (Hoffmann et al. 2022).

For the Chinchilla law the recipe is exact: parameters (a, b, e, alpha, beta) with A = e^a,
B = e^b, E = e^e; Huber (delta = 1e-3) on LSE(a - alpha log N, b - beta log D, e) - log L; the
4,500-start grid alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}.
It is solved by :mod:`scaling.fit.lse`:

1. screen: every start takes up to ``screen_iterations`` damped Newton steps, all at once
   (float32; starts that converge earlier stop);
2. refine: the ``candidates`` lowest distinct screened points are run to convergence in float64
   (Newton decrement <= 1e-14 of the objective: a tolerance relative to the objective's scale);
3. cross-check: scipy's L-BFGS-B, on the objective divided by its value and with tight
   tolerances, starts from the best point; any further decrease is reported.

``exhaustive=True`` instead runs every start to convergence in float64 and counts how many
reach the best objective (slower). A best point that is not converged, or whose coefficients
overflow (log A > 709: A = exp(log A) is inf), raises :class:`FitDidNotConverge` rather than
reporting it.

Large tables (more than ``screen_rows`` points, e.g. every checkpoint of many runs) are screened
on an evenly spaced subsample of the rows sorted by (N, D) (:func:`scaling.fit.screen.subsample`);
the candidates are run to convergence on the subsample, and its distinct minima are then run to
convergence on every row, so the objective is that of a full-data fit.

Other laws, other objective spaces and bounded fits go to :mod:`scaling.fit.generic` (lmfit).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.optimize import minimize

from scaling.errors import UserError
from scaling.fit import lse
from scaling.fit.generic import LOG_OVERFLOW, FitDidNotConverge, Solution, check_parameter, runaway_message
from scaling.fit.laws import CHINCHILLA, Law
from scaling.fit.minima import distinct_minima
from scaling.fit.objective import huber_ml_path
from scaling.fit.screen import SCREEN_ROWS, distinct, subsample
from scaling.fit.starts import explicit_starts

BEST_RTOL = 1e-9     # two objectives within this relative distance count as the same best
LSE_ORDER = [1, 2, 0, 3, 4]   # (log A, log B, log E, alpha, beta) from the law's (log E, log A, log B, alpha, beta)

__all__ = ["FitDidNotConverge", "Solution", "chinchilla_grid", "chinchilla_starts", "fit_chinchilla"]


def chinchilla_grid() -> np.ndarray:
    """Hoffmann et al.'s 4,500 starts as (a, b, e, alpha, beta) rows (a = log A, e = log E)."""
    g = CHINCHILLA.parameters
    by_name = {p.name: p.grid for p in g}
    rows = itertools.product(by_name["A"], by_name["B"], by_name["E"], by_name["alpha"], by_name["beta"])
    return np.array(list(rows), dtype=float)


def chinchilla_starts(starts) -> np.ndarray:
    """(S, 5) lse-order starts from None (the grid), dicts of natural parameters, or an array in
    the law's optimisation order (log E, log A, log B, alpha, beta)."""
    if starts is None:
        return chinchilla_grid()
    return explicit_starts(CHINCHILLA, starts)[:, LSE_ORDER]


def parametrisation(law: Law, fixed: Mapping[str, float] | None, tie: tuple[str, str] | None) -> lse.Parametrisation:
    """Chinchilla constraints in lse coordinates: ``fixed`` natural values, ``tie`` = (alpha, beta)."""
    internal = {"E": "e", "A": "a", "B": "b", "alpha": "alpha", "beta": "beta"}
    fixed_items = []
    for name, value in (fixed or {}).items():
        check_parameter(law, name, value)
        fixed_items.append((internal[name], float(np.log(value)) if name in ("E", "A", "B") else float(value)))
    if tie is not None and tuple(tie) != ("alpha", "beta"):
        raise UserError(f"tie {tuple(tie)} is not supported by the chinchilla fitter; expected ('alpha', 'beta')")
    if tie is not None and any(k in ("alpha", "beta") for k, _ in fixed_items):
        raise UserError("tie ('alpha', 'beta') cannot be combined with a fixed alpha or beta; fix both instead")
    return lse.Parametrisation(tuple(fixed_items), tie is not None)


def fit_chinchilla(n, d, y, *, loss: str = "huber", delta: float = 1e-3, fixed=None, tie=None,
                   starts=None, screen_iterations: int = 20, candidates: int = 16,
                   exhaustive: bool = False, weights=None, screen_rows: int | None = SCREEN_ROWS) -> Solution:
    """Fit L = E + A/N^alpha + B/D^beta with the Approach-3 recipe (see module docstring).

    n: parameters, d: tokens, y: loss (positive arrays); ``loss`` in huber | mse | huber-ml;
    ``delta`` is the Huber threshold on log-residuals; ``fixed`` natural-unit values by name;
    ``tie=('alpha', 'beta')`` forces alpha = beta; ``weights`` are point multiplicities;
    ``starts``: None (Hoffmann's grid), natural-unit dicts, or rows in the law's optimisation
    order; tables with more than ``screen_rows`` points are screened on a subsample.
    """
    param = parametrisation(CHINCHILLA, fixed, tie)
    problem = lse.Problem.from_data(n, d, y, np.inf if loss == "mse" else delta, weights)
    grid = chinchilla_starts(starts)
    rows = subsample([problem.x1, problem.x2], screen_rows) if screen_rows and weights is None else None
    best, diag = _multistart(problem, param, grid, screen_iterations, candidates, exhaustive, rows)
    if loss == "huber-ml":
        best, diag = _huber_ml(problem, param, best, diag)
    return Solution(natural(param.to_original(best.z, problem.m1, problem.m2)[0]), float(best.f), diag)


def natural(theta) -> dict[str, float]:
    """Chinchilla natural parameters of an lse-order row (a, b, e, alpha, beta)."""
    return {"E": float(np.exp(theta[2])), "A": float(np.exp(theta[0])), "B": float(np.exp(theta[1])),
            "alpha": float(theta[3]), "beta": float(theta[4])}


@dataclass(frozen=True)
class _Point:
    z: np.ndarray
    f: float


def _multistart(problem, param, grid, screen_iterations, candidates, exhaustive, rows=None):
    m1, m2 = problem.m1, problem.m2
    z0 = param.to_free(grid, m1, m2)
    diag = {"optimizer": "batched damped Newton with exact Hessian (scaling.fit.lse)",
            "starts": int(len(z0)), "free_parameters": list(param.free)}
    if exhaustive or len(z0) <= candidates:
        res = lse.minimise(problem, z0, param)
        origin = np.arange(len(z0))
        diag["mode"] = "exhaustive: every start run to convergence in float64"
    else:
        part = problem if rows is None else problem.restricted(rows)
        screen = lse.minimise(part, param.to_free(grid, part.m1, part.m2), param, dtype=np.float32,
                              max_iter=screen_iterations, rtol=1e-7)
        origin = distinct(screen.z, screen.f, candidates)
        if rows is None:
            res = lse.minimise(problem, screen.z[origin], param)
        else:
            on_part = lse.minimise(part, screen.z[origin], param)
            keep = distinct(on_part.z, on_part.f, candidates)
            theta = param.to_original(on_part.z[keep], part.m1, part.m2)
            res = lse.minimise(problem, param.to_free(theta, m1, m2), param)
            origin = origin[keep]
        diag["mode"] = (f"screened: every start took up to {screen_iterations} Newton steps (float32"
                        + (f", on {len(rows)} of {len(problem.ly)} rows" if rows is not None else "")
                        + f"), the {len(origin)} best distinct points were run to convergence (float64"
                        + (", on the subsample, then its distinct minima on every row" if rows is not None else "")
                        + ")")
        diag["screen_iterations"] = int(screen_iterations)
        diag["candidates"] = int(len(origin))
    order = np.argsort(res.f)
    f_best = float(res.f[order[0]])
    if not np.isfinite(f_best):
        raise FitDidNotConverge("the chinchilla law is undefined at every refined start; give starts with --start/--grid")
    at_best = res.f <= f_best * (1 + BEST_RTOL)
    diag["reached_best"] = int(at_best.sum())
    diag["reached_best_of"] = int(len(res.f))
    diag["best_starts"] = [natural(row) for row in grid[origin[order[:4]][at_best[order[:4]]]]]
    best = _Point(res.z[order[0]].copy(), f_best)
    _check_finite(problem, param, best.z)
    best, diag["polish"] = _polish(problem, param, best)
    best = _check_converged(problem, param, best, diag, int(res.iterations[order[0]]))
    thetas = param.to_original(res.z, m1, m2)
    diag["minima"] = distinct_minima([natural(t) for t in thetas], np.where(np.isfinite(res.f), res.f, np.inf), CHINCHILLA)
    diag["warnings"] = _degeneracy_warnings(problem, param, best)
    return best, diag


def _check_finite(problem, param, z) -> None:
    """Refuse a point whose log-coefficient overflows exp() (the term ran away)."""
    theta = param.to_original(z, problem.m1, problem.m2)[0]
    for name, k in (("A", 0), ("B", 1), ("E", 2)):
        if not (np.isfinite(theta[k]) and theta[k] <= LOG_OVERFLOW):
            raise FitDidNotConverge(runaway_message("chinchilla", name, theta[k], _steepest(theta)))


def _steepest(theta) -> str:
    steep = [f"{name}={theta[k]:.4g}" for name, k in (("alpha", 3), ("beta", 4)) if abs(theta[k]) > 3]
    return f" ({', '.join(steep)}: that term is a step between neighbouring inputs)" if steep else ""


def _degeneracy_warnings(problem, param, best) -> list[str]:
    """Warn when a term of the law is negligible everywhere or an exponent is implausible: the
    parameters of that term are then not determined by the data, whatever the optimiser says."""
    out = []
    J, o = param.affine(problem.m1, problem.m2)
    theta_c = best.z @ J.T + o
    u = np.stack([theta_c[0] - theta_c[3] * problem.x1, theta_c[1] - theta_c[4] * problem.x2,
                  np.full_like(problem.x1, theta_c[2])])
    share = np.exp(u - np.logaddexp.reduce(u, axis=0)).max(axis=1)
    for name, k in (("A/N^alpha", 0), ("B/D^beta", 1), ("E", 2)):
        if share[k] < 1e-3:
            out.append(f"the {name} term is at most {share[k]:.1e} of the predicted loss at every point: "
                       "its parameters are not determined by these data")
    for name, k in (("alpha", 3), ("beta", 4)):
        if not 0.01 <= theta_c[k] <= 3:
            out.append(f"{name}={theta_c[k]:.4g} is outside 0.01..3: that term is flat or vanishing over the "
                       "data, so it is confounded with E; treat its coefficient and exponent as undetermined")
    return out


def _polish(problem, param, best):
    """Cross-check the Newton optimum with L-BFGS-B on f/f(best) at tight tolerances."""
    J, o = param.affine(problem.m1, problem.m2)
    scale = best.f if best.f > 0 else 1.0

    def fun(z):
        f, g, _ = lse.evaluate(problem, z @ J.T + o)
        return f[0] / scale, (g[0] @ J) / scale

    res = minimize(fun, best.z, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
    f_new = float(res.fun) * scale
    improvement = (best.f - f_new) / best.f if best.f > 0 else 0.0
    info = {"method": "scipy L-BFGS-B on objective/objective(best), ftol 1e-15, gtol 1e-12",
            "relative_improvement": float(max(improvement, 0.0)), "iterations": int(res.nit)}
    if f_new < best.f:
        return _Point(np.asarray(res.x, float), f_new), info
    return best, info


def _check_converged(problem, param, best, diag, iterations):
    """Newton-refine the final point once more; refuse it unless it is a converged minimum."""
    final = lse.minimise(problem, best.z[None, :], param)
    z, f = final.z[0], float(final.f[0])
    J, o = param.affine(problem.m1, problem.m2)
    _, g, H = lse.evaluate(problem, z @ J.T + o)
    g, H = g[0] @ J, J.T @ H[0] @ J
    ev = np.linalg.eigvalsh(H)
    decrement = float(final.decrement[0])
    ok = bool(final.converged[0]) or (bool(final.stalled[0]) and decrement <= 1e-9 * f + lse.ABSOLUTE_FLOOR * len(problem.ly))
    diag.update({"converged": ok, "newton_decrement": decrement, "gradient_norm": float(np.linalg.norm(g)),
                 "iterations": iterations,
                 "hessian_eigenvalues": [float(v) for v in ev]})
    if not ok:
        raise FitDidNotConverge(
            f"the fit did not converge (after {final.iterations[0]} more Newton steps the objective {f:.6g} still "
            f"decreases by a relative {decrement / f:.2g} per step) along a flat direction moving mostly "
            f"{_flat_direction(param, H)}; the data do not pin these down: fix one (--fix NAME=VALUE) or add runs")
    return _Point(z, f) if f < best.f else best


def _flat_direction(param, H) -> str:
    """Names of the free coordinates that dominate the Hessian's flattest eigenvector."""
    ev, V = np.linalg.eigh(H)
    v = np.abs(V[:, 0])
    names = {"a": "A", "b": "B", "e": "E", "alpha": "alpha", "beta": "beta"}
    big = [names[param.free[i]] for i in np.argsort(-v) if v[i] >= 0.3 * v.max()]
    return ", ".join(big)


def _huber_ml(problem, param, best, diag):
    """Huber likelihood with a free scale for the Chinchilla law (see :func:`huber_ml_path`)."""
    J, o = param.affine(problem.m1, problem.m2)

    def solve_at(delta_eff, z):
        scaled = lse.Problem(problem.x1, problem.x2, problem.ly, problem.m1, problem.m2, delta_eff, problem.weights)
        return lse.minimise(scaled, z[None, :], param, rtol=1e-15).z[0]

    z, info = huber_ml_path(solve_at, lambda z: _residuals(problem, z @ J.T + o), best.z, problem.delta, problem.weights)
    diag = dict(diag)
    diag["huber_ml"] = {**info, "huber_sum_start": best.f}
    return _Point(z, -info["log_likelihood"]), diag


def _residuals(problem, theta_c):
    theta_c = np.atleast_2d(theta_c)[0]
    u = np.stack([theta_c[0] - theta_c[3] * problem.x1, theta_c[1] - theta_c[4] * problem.x2,
                  np.full_like(problem.x1, theta_c[2])])
    return np.logaddexp.reduce(u, axis=0) - problem.ly
