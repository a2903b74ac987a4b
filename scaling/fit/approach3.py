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
reach the best objective (slower). A best point that is not converged raises
:class:`FitDidNotConverge` rather than reporting an early stop.

Other laws (and user-defined ones) are fitted with scipy's ``least_squares`` (trust region;
``loss='huber'`` with ``f_scale=delta`` is exactly the Huber sum): every point of the law's start
grid takes a few evaluations, and the best few are run to convergence with tolerances at 1e-15.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.optimize import least_squares, minimize

from scaling.errors import UserError, unknown_choice
from scaling.fit import lse
from scaling.fit.laws import CHINCHILLA, Law
from scaling.fit.objective import best_log_sigma, huber, huber_nll

BEST_RTOL = 1e-9     # two objectives within this relative distance count as the same best
GENERIC_SCREEN_EVALS = 40   # least_squares evaluations per start when screening a generic law's grid
GENERIC_CANDIDATES = 4      # screened starts refined to convergence
MINIMA_RTOL = 1e-6   # distinct parameter vectors this close to the best are "several minima"


class FitDidNotConverge(UserError):
    """The best point of a fit is not a converged minimum (raised instead of reporting it)."""


@dataclass(frozen=True)
class Solution:
    """A fitted law: natural-unit parameters, the objective at them, and diagnostics."""

    params: dict[str, float]
    objective: float
    diagnostics: dict


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
    if isinstance(starts, Mapping):
        starts = [starts]
    rows = []
    for s in starts:
        if isinstance(s, Mapping):
            missing = [k for k in CHINCHILLA.names if k not in s]
            if missing:
                raise UserError(f"start {dict(s)} lacks {', '.join(missing)}; expected keys {', '.join(CHINCHILLA.names)}")
            s = CHINCHILLA.to_coordinates(s)
        s = np.asarray(s, dtype=float)
        if s.shape != (5,):
            raise UserError(f"a chinchilla start needs 5 values (log E, log A, log B, alpha, beta), got {s.tolist()}")
        rows.append([s[1], s[2], s[0], s[3], s[4]])
    return np.array(rows, dtype=float)


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


def check_parameter(law: Law, name: str, value: float) -> None:
    """Raise a UserError unless ``name`` is a parameter of ``law`` and ``value`` fits it."""
    by_name = {p.name: p for p in law.parameters}
    if name not in by_name:
        raise unknown_choice(f"parameter of law {law.name}", name, by_name)
    if not np.isfinite(value) or (by_name[name].log and value <= 0):
        raise UserError(f"fixed {name}={value} is invalid; expected a finite{' positive' if by_name[name].log else ''} number")


def fit_chinchilla(n, d, y, *, loss: str = "huber", delta: float = 1e-3, fixed=None, tie=None,
                   starts=None, screen_iterations: int = 20, candidates: int = 16,
                   exhaustive: bool = False, weights=None) -> Solution:
    """Fit L = E + A/N^alpha + B/D^beta with the Approach-3 recipe (see module docstring).

    n: parameters, d: tokens, y: loss (positive arrays); ``loss`` in huber | mse | huber-ml;
    ``delta`` is the Huber threshold on log-residuals; ``fixed`` natural-unit values by name;
    ``tie=('alpha', 'beta')`` forces alpha = beta; ``weights`` are point multiplicities.
    """
    param = parametrisation(CHINCHILLA, fixed, tie)
    problem = lse.Problem.from_data(n, d, y, np.inf if loss == "mse" else delta, weights)
    grid = chinchilla_starts(starts)
    best, diag = _multistart(problem, param, grid, screen_iterations, candidates, exhaustive)
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


def _multistart(problem, param, grid, screen_iterations, candidates, exhaustive):
    m1, m2 = problem.m1, problem.m2
    z0 = param.to_free(grid, m1, m2)
    diag = {"optimizer": "batched damped Newton with exact Hessian (scaling.fit.lse)",
            "starts": int(len(z0)), "free_parameters": list(param.free)}
    if exhaustive or len(z0) <= candidates:
        res = lse.minimise(problem, z0, param)
        origin = np.arange(len(z0))
        diag["mode"] = "exhaustive: every start run to convergence in float64"
    else:
        screen = lse.minimise(problem, z0, param, dtype=np.float32, max_iter=screen_iterations, rtol=1e-7)
        origin = _distinct(screen.z, screen.f, candidates)
        res = lse.minimise(problem, screen.z[origin], param)
        diag["mode"] = (f"screened: every start took up to {screen_iterations} Newton steps (float32), "
                        f"the {len(origin)} best distinct points were run to convergence (float64)")
        diag["screen_iterations"] = int(screen_iterations)
        diag["candidates"] = int(len(origin))
    order = np.argsort(res.f)
    f_best = float(res.f[order[0]])
    at_best = res.f <= f_best * (1 + BEST_RTOL)
    diag["reached_best"] = int(at_best.sum())
    diag["reached_best_of"] = int(len(res.f))
    diag["best_starts"] = [natural(row) for row in grid[origin[order[:4]][at_best[order[:4]]]]]
    best = _Point(res.z[order[0]].copy(), f_best)
    best, diag["polish"] = _polish(problem, param, best)
    best = _check_converged(problem, param, best, diag, int(res.iterations[order[0]]))
    diag["minima"] = _minima(problem, param, res, order)
    diag["warnings"] = _degeneracy_warnings(problem, param, best)
    return best, diag


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


def _distinct(z, f, k):
    """Indices of the ``k`` lowest-objective rows that differ from each other (max-norm > 1e-3)."""
    picked = []
    for i in np.argsort(f):
        if not np.isfinite(f[i]):
            break
        if all(np.abs(z[i] - z[j]).max() > 1e-3 for j in picked):
            picked.append(i)
            if len(picked) == k:
                break
    return np.array(picked, dtype=int)


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


def _minima(problem, param, res, order, limit: int = 5):
    """Distinct converged minima among the refined points, best first (natural parameters)."""
    out = []
    thetas = param.to_original(res.z, problem.m1, problem.m2)
    f_best = res.f[order[0]]
    for i in order:
        if not np.isfinite(res.f[i]):
            continue
        th = thetas[i]
        if any(np.abs(th - param.to_original(o["_z"], problem.m1, problem.m2)[0]).max() <= 1e-4 * (1 + np.abs(th).max())
               for o in out):
            continue
        out.append({"_z": res.z[i], **natural(th), "objective": float(res.f[i]),
                    "relative_to_best": float(res.f[i] / f_best - 1) if f_best > 0 else 0.0})
        if len(out) == limit:
            break
    for o in out:
        del o["_z"]
    return out


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


def huber_ml_path(solve_at, residuals, z, delta: float, weights=None, max_rounds: int = 200):
    """Maximise the Huber likelihood with free scale sigma, starting from a Huber-sum optimum z.

    At fixed sigma the likelihood is the Huber sum with threshold delta*sigma (rho_delta(r/sigma)
    = rho_{delta sigma}(r)/sigma^2), and at fixed law parameters sigma is a 1-D optimum. The
    threshold is lowered from delta by halves towards delta*sigma (a continuation: when
    delta*sigma is tiny the problem is almost least absolute deviations, which Newton cannot take
    in one jump), then the two are alternated to a fixed point. ``solve_at(delta_eff, z)`` returns
    the Huber-sum optimum from z; ``residuals(z)`` the log-residuals.
    """
    threshold = delta
    nll_prev = np.inf
    for rounds in range(1, max_rounds + 1):
        log_sigma = best_log_sigma(residuals(z), delta, weights)
        target = delta * np.exp(log_sigma)
        threshold = max(threshold / 2, target)
        z = solve_at(threshold, z)
        r = residuals(z)
        nll = huber_nll(r, delta, best_log_sigma(r, delta, weights), weights)
        if threshold == target and abs(nll_prev - nll) <= 1e-13 * abs(nll):
            break
        nll_prev = nll
    r = residuals(z)
    log_sigma = best_log_sigma(r, delta, weights)
    return z, {"log_sigma": float(log_sigma), "rounds": rounds,
               "log_likelihood": -huber_nll(r, delta, log_sigma, weights)}


def _residuals(problem, theta_c):
    theta_c = np.atleast_2d(theta_c)[0]
    u = np.stack([theta_c[0] - theta_c[3] * problem.x1, theta_c[1] - theta_c[4] * problem.x2,
                  np.full_like(problem.x1, theta_c[2])])
    return np.logaddexp.reduce(u, axis=0) - problem.ly


def fit_generic(law: Law, inputs: Mapping[str, np.ndarray], y, *, loss: str = "huber", delta: float = 1e-3,
                fixed=None, tie=None, starts=None) -> Solution:
    """Fit any :class:`Law` by least_squares from each start of its grid (or ``starts``: dicts
    of natural parameters or rows of optimisation coordinates), keeping the best.

    inputs: arrays named by ``law.inputs``; y: positive observed values; ``fixed``: natural-unit
    values by name; ``tie=(p, q)`` forces q = p. The objective is the Huber sum on log-residuals
    (``mse``: sum r^2/2; ``huber-ml`` adds a free scale, see :mod:`scaling.fit.objective`).
    """
    names = law.names
    fixed = dict(fixed or {})
    for k, v in fixed.items():
        check_parameter(law, k, v)
    if tie is not None:
        tie = tuple(tie)
        for k in tie:
            check_parameter(law, k, 1.0)
        if tie[1] in fixed or tie[0] in fixed:
            raise UserError(f"tie {tie} cannot be combined with fixing {tie[0]} or {tie[1]}")
    free = [i for i, p in enumerate(law.parameters) if p.name not in fixed and not (tie and p.name == tie[1])]
    base = law.to_coordinates({**{p: 1.0 for p in names}, **fixed})
    ly = np.log(np.asarray(y, float))
    x = {k: np.asarray(v, float) for k, v in inputs.items()}

    def full(zf):
        z = base.copy()
        z[free] = zf
        if tie:
            z[names.index(tie[1])] = z[names.index(tie[0])]
        return z

    def residual(zf):
        with np.errstate(all="ignore"):
            pred = law.predict(law.to_natural(full(zf)), x)
            r = np.log(pred) - ly
        return np.where(np.isfinite(r), r, 1e3)

    jac = "3-point"
    if law.jacobian is not None:
        def jac(zf):
            z = full(zf)
            p = law.to_natural(z)
            with np.errstate(all="ignore"):
                pred = law.predict(p, x)
                dp = law.jacobian(p, x)
            cols = np.stack([dp[q.name] * (p[q.name] if q.log else 1.0) for q in law.parameters], axis=1) / pred[:, None]
            if tie:
                cols[:, names.index(tie[0])] += cols[:, names.index(tie[1])]
            return np.nan_to_num(cols[:, free])

    start_rows = _generic_starts(law, starts, free)

    def solve(f_scale, z0, screen=False):
        kw = {"loss": "linear"} if not np.isfinite(f_scale) else {"loss": "huber", "f_scale": f_scale}
        if screen:
            return least_squares(residual, z0, jac=jac if law.jacobian else "2-point", method="trf",
                                 max_nfev=GENERIC_SCREEN_EVALS, **kw)
        return least_squares(residual, z0, jac=jac, method="trf", ftol=1e-15, xtol=1e-15, gtol=1e-15,
                             max_nfev=2000, **kw)

    def objective(res):
        value = huber(res.fun, d_eff).sum()
        return value if np.isfinite(value) else np.inf

    d_eff = np.inf if loss == "mse" else delta
    screened = [solve(d_eff, z0, screen=len(start_rows) > GENERIC_CANDIDATES) for z0 in start_rows]
    order = np.argsort([objective(r) for r in screened])
    refined = [solve(d_eff, screened[i].x) for i in order[:GENERIC_CANDIDATES]]
    objs = np.array([objective(r) for r in refined])
    best = refined[int(np.argmin(objs))]
    f_best = float(objs.min())
    diag = {"optimizer": "scipy least_squares (trf), ftol/xtol/gtol 1e-15", "starts": len(start_rows),
            "mode": f"every start took up to {GENERIC_SCREEN_EVALS} evaluations; the best {len(refined)} were "
                    "run to convergence" if len(start_rows) > GENERIC_CANDIDATES else "every start run to convergence",
            "reached_best": int((objs <= f_best * (1 + BEST_RTOL) + 1e-30 * len(ly)).sum()),
            "reached_best_of": len(refined),
            "converged": bool(best.status > 0), "free_parameters": [names[i] for i in free],
            "gradient_norm": float(np.linalg.norm(best.grad)), "message": best.message}
    z = best.x
    if loss == "huber-ml":
        z, diag["huber_ml"] = huber_ml_path(lambda dl, z0: solve(dl, z0).x, residual, z, delta)
        f_best = -diag["huber_ml"]["log_likelihood"]
    if not diag["converged"]:
        raise FitDidNotConverge(f"the {law.name} fit did not converge: {best.message}")
    return Solution(law.to_natural(full(z)), f_best, diag)


def _generic_starts(law: Law, starts, free) -> list[np.ndarray]:
    if starts is None:
        grids = [law.parameters[i].grid for i in free]
        return [np.array(s, dtype=float) for s in itertools.product(*grids)]
    if isinstance(starts, Mapping):
        starts = [starts]
    rows = []
    for s in starts:
        z = law.to_coordinates(s) if isinstance(s, Mapping) else np.asarray(s, dtype=float)
        if z.shape != (len(law.parameters),):
            raise UserError(f"a {law.name} start needs {len(law.parameters)} values ({', '.join(law.names)})")
        rows.append(z[free])
    return rows
