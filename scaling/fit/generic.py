"""Fitting any law (shipped, defined in Python, or written as an expression) with lmfit.

lmfit is used where it is the better tool: its ``Parameters`` carry fixed values (``vary=False``),
ties (``expr``) and bounds (``min``/``max``), its ``Minimizer`` runs scipy's trust-region
``least_squares`` on them (``loss='huber'`` with ``f_scale=delta`` is exactly the Huber sum), and
its ``fit_report`` describes the result. Parameters marked ``log`` in the law are lmfit
parameters named ``log_<name>`` holding the logarithm.

The multi-start: every start of the grid takes up to ``screen_iterations`` batched Gauss-Newton
steps (:func:`scaling.fit.screen.screen`, on a row subsample for large tables), the ``candidates``
best distinct end points are refined to convergence with lmfit on every row (ftol, xtol, gtol
1e-15), and the best is kept. ``exhaustive`` runs every start to convergence instead.

A fit is accepted only if it is a converged minimum: parameters that overflow, a predicted further
decrease (Gauss-Newton decrement) above ``CONVERGED_RTOL`` of the objective, or a parameter at the
edge of what the law can express (the objective still falls as it moves on, or does not notice a
ten-fold change of it, e.g. a decay constant of 1e16) raise :class:`FitDidNotConverge` with one
line naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import lmfit
import numpy as np

from scaling.errors import UserError
from scaling.fit.laws import Law
from scaling.fit.objective import huber_ml_path
from scaling.fit.objective import residuals as space_residuals
from scaling.fit.screen import SCREEN_ROWS, distinct, huber_sum, screen, subsample

# Remaining decrease the Gauss-Newton model predicts, relative to the objective, below which a fit
# counts as converged. For least squares, a shift of s standard errors in a parameter raises the
# objective by about s^2/P of itself, so 1e-10 leaves every parameter within sqrt(2e-10*P) (1e-4
# for P = 100) of its standard error from the optimum.
CONVERGED_RTOL = 1e-10
ABSOLUTE_FLOOR = 1e-30        # per point: rounding of a squared residual, for exact fits
LOG_OVERFLOW = 709.0          # exp() of a log-coordinate above this is inf in float64
CANDIDATES = 8
_TIGHT = 1e-15               # tolerances of the final refinement (ftol, xtol, gtol of least_squares)
_LOOSE = 1e-10               # tolerances of the candidates' refinement; the best is then run at _TIGHT


class FitDidNotConverge(UserError):
    """The best point of a fit is not a converged minimum (raised instead of reporting it)."""


@dataclass(frozen=True)
class Constraints:
    """Fixed parameters (natural units), a tie (p, q) making q equal to p, and bounds
    (natural units, lo < hi; either may be infinite)."""

    fixed: Mapping[str, float] = field(default_factory=dict)
    tie: tuple[str, str] | None = None
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Solution:
    """A fitted law: natural-unit parameters, the objective at them, and diagnostics."""

    params: dict[str, float]
    objective: float
    diagnostics: dict


def coordinate_name(p) -> str:
    """The lmfit name of a law parameter: ``log_<name>`` when it is fitted as its logarithm."""
    return f"log_{p.name}" if p.log else p.name


class Problem:
    """A law, its data and an objective, in the law's optimisation coordinates.

    inputs: arrays named by ``law.inputs``; y: observations; space: ``log`` or ``loss``;
    delta: Huber threshold in residual units (``np.inf``: least squares). Free coordinates
    exclude fixed parameters and the second parameter of a tie.
    """

    def __init__(self, law: Law, inputs: Mapping[str, np.ndarray], y, space: str, delta: float,
                 constraints: Constraints = Constraints()):
        self.law, self.space, self.delta, self.constraints = law, space, float(delta), constraints
        self.inputs = {k: np.asarray(inputs[k], dtype=float) for k in law.inputs}
        self.y = np.asarray(y, dtype=float)
        names = law.names
        fixed = dict(constraints.fixed)
        for name, value in fixed.items():
            check_parameter(law, name, value)
        self.tie = None
        if constraints.tie is not None:
            p, q = constraints.tie
            lp, lq = law.parameter(p), law.parameter(q)
            if p in fixed or q in fixed:
                raise UserError(f"tie {p}={q} cannot be combined with fixing {p} or {q}; fix both instead")
            if lp.log != lq.log:
                raise UserError(f"tie {p}={q}: {p} and {q} are fitted on different scales (one as its logarithm)")
            self.tie = (names.index(p), names.index(q))
        self.base = np.array([law.to_coordinates({**{n: 1.0 for n in names}, **fixed})])[0]
        self.free = [i for i, n in enumerate(names) if n not in fixed and not (self.tie and i == self.tie[1])]
        self.lower = np.full(len(names), -np.inf)
        self.upper = np.full(len(names), np.inf)
        for name, (lo, hi) in dict(constraints.bounds).items():
            p = law.parameter(name)
            if not lo < hi:
                raise UserError(f"--bound {name}={lo:g}:{hi:g}: expected LO < HI")
            if p.log and hi <= 0:
                raise UserError(f"--bound {name}={lo:g}:{hi:g}: {name} is positive (fitted as its logarithm)")
            i = names.index(name)
            self.lower[i] = np.log(lo) if p.log and lo > 0 else (-np.inf if p.log else lo)
            self.upper[i] = np.log(hi) if p.log else hi
        self._batched = True

    @property
    def broadcasts(self) -> bool:
        """Whether the law has so far evaluated many parameter vectors in one call."""
        return self._batched

    @property
    def free_names(self) -> list[str]:
        """Names of the free parameters, in the law's order."""
        return [self.law.names[i] for i in self.free]

    def full(self, zf: np.ndarray) -> np.ndarray:
        """(S, k) coordinates of (S, k_free) free coordinates (fixed and tied filled in)."""
        zf = np.atleast_2d(zf)
        z = np.repeat(self.base[None, :], zf.shape[0], axis=0)
        z[:, self.free] = zf
        if self.tie:
            z[:, self.tie[1]] = z[:, self.tie[0]]
        return z

    def free_of(self, z: np.ndarray) -> np.ndarray:
        """Free coordinates of (S, k) coordinate rows, clipped into the bounds."""
        z = np.atleast_2d(np.asarray(z, dtype=float))
        return np.clip(z[:, self.free], self.lower[self.free], self.upper[self.free])

    def natural(self, zf: np.ndarray) -> dict[str, float]:
        """Natural-unit parameters of one free-coordinate vector."""
        return self.law.to_natural(self.full(zf)[0])

    def predict(self, z: np.ndarray) -> np.ndarray:
        """(S, P) predictions of (S, k) coordinate rows (one law call when the law broadcasts)."""
        z = np.atleast_2d(z)
        if self._batched:
            params = {p.name: (np.exp(z[:, i]) if p.log else z[:, i])[:, None] for i, p in enumerate(self.law.parameters)}
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(self.law.predict(params, self.inputs), dtype=float)
                if out.shape == (z.shape[0], self.y.size):
                    return out
            except (ValueError, TypeError, IndexError):
                pass
            self._batched = False
        rows = []
        for row in z:
            with np.errstate(all="ignore"):
                try:
                    rows.append(np.broadcast_to(np.asarray(self.law.predict(self.law.to_natural(row), self.inputs),
                                                           dtype=float), self.y.shape))
                except (ValueError, ZeroDivisionError, OverflowError, FloatingPointError):
                    rows.append(np.full(self.y.shape, np.nan))
        return np.stack(rows)

    def residuals(self, zf: np.ndarray) -> np.ndarray:
        """(S, P) residuals (NaN where the law is undefined) of (S, k_free) free coordinates."""
        return space_residuals(self.predict(self.full(zf)), self.y, self.space)

    def objective(self, zf: np.ndarray) -> float:
        """Huber sum (or r^2/2 sum) at one free-coordinate vector; inf where undefined."""
        return float(huber_sum(self.residuals(zf)[0], self.delta))

    def jacobian(self, zf: np.ndarray) -> np.ndarray:
        """(P, k_free) derivatives of the residuals in free coordinates: the law's analytic
        Jacobian when it has one, else central differences."""
        zf = np.asarray(zf, dtype=float)
        z = self.full(zf)[0]
        law = self.law
        if law.jacobian is not None:
            p = law.to_natural(z)
            with np.errstate(all="ignore"):
                pred = np.asarray(law.predict(p, self.inputs), dtype=float)
                dp = law.jacobian(p, self.inputs)
                cols = np.stack([np.broadcast_to(dp[q.name], pred.shape) * (p[q.name] if q.log else 1.0)
                                 for q in law.parameters], axis=1)
                if self.space == "log":
                    cols = cols / pred[:, None]
        else:
            h = 1e-6 * np.maximum(1.0, np.abs(z))
            shifted = np.concatenate([z + np.diag(h), z - np.diag(h)])        # all 2k points in one call
            r = space_residuals(self.predict(shifted), self.y, self.space)
            cols = ((r[:len(z)] - r[len(z):]) / (2 * h[:, None])).T
        if self.tie:
            cols[:, self.tie[0]] += cols[:, self.tie[1]]
        cols = cols[:, self.free]
        return np.where(np.isfinite(cols), cols, 0.0)

    def batched_jacobian(self, zf: np.ndarray) -> np.ndarray:
        """(S, P, k_free) derivatives of the residuals at (S, k_free) free coordinates from the
        law's analytic Jacobian (one call for all rows; the law must have one and broadcast)."""
        z = self.full(zf)
        law = self.law
        p = {q.name: (np.exp(z[:, i]) if q.log else z[:, i])[:, None] for i, q in enumerate(law.parameters)}
        with np.errstate(all="ignore"):
            pred = np.asarray(law.predict(p, self.inputs), dtype=float)
            dp = law.jacobian(p, self.inputs)
            J = np.stack([np.broadcast_to(dp[q.name] * (p[q.name] if q.log else 1.0), pred.shape)
                          for q in law.parameters], axis=2)
            if self.space == "log":
                J = J / pred[:, :, None]
        if self.tie:
            J[:, :, self.tie[0]] += J[:, :, self.tie[1]]
        return J[:, :, self.free]

    def restricted(self, rows: np.ndarray) -> "Problem":
        """The same problem on a subset (or a resample with repeats) of the rows."""
        return Problem(self.law, {k: v[rows] for k, v in self.inputs.items()}, self.y[rows], self.space,
                       self.delta, self.constraints)


def check_parameter(law: Law, name: str, value: float) -> None:
    """Raise a UserError unless ``name`` is a parameter of ``law`` and ``value`` fits it."""
    p = law.parameter(name)
    if not np.isfinite(value) or (p.log and value <= 0):
        raise UserError(f"fixed {name}={value} is invalid; expected a finite{' positive' if p.log else ''} number")


def lmfit_parameters(problem: Problem, zf: np.ndarray) -> lmfit.Parameters:
    """lmfit Parameters at free coordinates ``zf``: fixed ones do not vary, a tied one follows
    its partner through ``expr``, bounds become ``min``/``max`` (coordinates)."""
    z = problem.full(zf)[0]
    params = lmfit.Parameters()
    free = set(problem.free)
    for i, p in enumerate(problem.law.parameters):
        params.add(coordinate_name(p), value=float(z[i]), vary=i in free,
                   min=float(problem.lower[i]), max=float(problem.upper[i]))
    if problem.tie:
        src, dst = problem.tie
        params[coordinate_name(problem.law.parameters[dst])].expr = coordinate_name(problem.law.parameters[src])
    return params


@dataclass(frozen=True)
class Refined:
    """A point refined by lmfit: free coordinates, the objective there, and lmfit's result."""

    zf: np.ndarray
    f: float
    result: lmfit.minimizer.MinimizerResult | None


def refine(problem: Problem, zf0: np.ndarray, delta: float | None = None, tol: float = _TIGHT) -> Refined:
    """Run lmfit's least_squares (trust region) from ``zf0`` to convergence on the Huber sum with
    threshold ``delta`` (default the problem's; inf: least squares); ``tol`` is its ftol, xtol
    and gtol."""
    delta = problem.delta if delta is None else delta
    names = [coordinate_name(p) for p in problem.law.parameters]
    free_names = [names[i] for i in problem.free]

    def coordinates(params):
        return np.array([params[n].value for n in free_names])

    def residual(params):
        r = problem.residuals(coordinates(params))[0]
        return np.where(np.isfinite(r), r, 1e3)

    def jacobian(params):
        return problem.jacobian(coordinates(params))

    # Shipped laws are fitted in coordinates chosen to be well scaled (logs of coefficients);
    # an expression's parameters are natural values of any size, so its steps are scaled by the
    # Jacobian's columns (which stalls on shipped laws whose columns vanish at an edge).
    kws = {"ftol": tol, "xtol": tol, "gtol": tol, "x_scale": "jac" if problem.law.expression else 1.0}
    kws.update({"loss": "linear"} if not np.isfinite(delta) else {"loss": "huber", "f_scale": delta})
    if not free_names:
        return Refined(np.zeros(0), problem.objective(np.zeros(0)), None)
    minimizer = lmfit.Minimizer(residual, lmfit_parameters(problem, zf0))
    try:
        with np.errstate(all="ignore"):
            result = minimizer.minimize(method="least_squares", jac=jacobian, max_nfev=4000, **kws)
    except ValueError:          # the trust region stepped to NaN (a start where the law is degenerate)
        return Refined(zf0, np.inf, None)
    zf = coordinates(result.params)
    return Refined(zf, problem.objective(zf), result)


def fit_generic(law: Law, inputs: Mapping[str, np.ndarray], y, starts: np.ndarray, *, space: str = "log",
                loss: str = "huber", delta: float = 1e-3, constraints: Constraints = Constraints(),
                candidates: int = CANDIDATES, screen_iterations: int = 20, exhaustive: bool = False,
                screen_rows: int | None = SCREEN_ROWS) -> tuple[Solution, Problem]:
    """Fit ``law`` from ``starts`` ((S, k) optimisation coordinates), keeping the best converged
    minimum (see module docstring). Returns the solution and the problem it solved."""
    from scaling.fit.minima import distinct_minima

    problem = Problem(law, inputs, y, space, np.inf if loss == "mse" else delta, constraints)
    z0 = np.unique(problem.free_of(starts), axis=0)
    floor = ABSOLUTE_FLOOR * problem.y.size
    problem.predict(problem.full(z0[:2]))                     # finds out whether the law broadcasts
    analytic = law.jacobian is not None and problem.broadcasts
    diag = {"optimizer": f"lmfit Minimizer (scipy least_squares, trust region): candidates to ftol/xtol/gtol "
                         f"{_LOOSE:g}, the best to {_TIGHT:g}",
            "starts": int(len(z0)), "free_parameters": problem.free_names}
    if exhaustive:
        scr = screen(problem.residuals, z0, delta=problem.delta, lower=problem.lower[problem.free],
                     upper=problem.upper[problem.free], max_iter=500, rtol=1e-12, floor=floor,
                     jacobian=problem.batched_jacobian if analytic else None)
        origin = distinct(scr.z, scr.f, len(z0))
        points = scr.z[origin]
        diag["mode"] = "exhaustive: every start run to convergence, every distinct end point refined"
    elif len(z0) > candidates:
        rows = subsample([problem.inputs[k] for k in law.inputs], screen_rows) if screen_rows else None
        part = problem if rows is None else problem.restricted(rows)
        scr = screen(part.residuals, z0, delta=problem.delta, lower=problem.lower[problem.free],
                     upper=problem.upper[problem.free], max_iter=screen_iterations,
                     jacobian=part.batched_jacobian if analytic else None)
        origin = distinct(scr.z, scr.f, candidates)
        points = scr.z[origin]
        diag["mode"] = (f"screened: every start took up to {screen_iterations} Gauss-Newton steps"
                        + (f" on {len(rows)} of {problem.y.size} rows" if rows is not None else "")
                        + f", the {len(origin)} best distinct end points were refined")
    else:
        scr, origin, points = None, np.arange(len(z0)), z0
        diag["mode"] = "every start refined to convergence"
    if len(points) == 0:
        raise FitDidNotConverge(f"the {law.name} law cannot be evaluated at any start (every prediction is undefined"
                                f"{' or non-positive in log space' if space == 'log' else ''}); give starts with --start/--grid")
    refined = [refine(problem, z, tol=_LOOSE) for z in points]
    fs = np.array([r.f for r in refined])
    order = np.argsort(fs)
    refined[order[0]] = refine(problem, refined[order[0]].zf)
    fs[order[0]] = refined[order[0]].f
    best = refined[order[0]]
    f_best = float(fs[order[0]])
    if not np.isfinite(f_best):
        raise FitDidNotConverge(f"the {law.name} law is undefined at every refined start; give starts with --start/--grid")
    same = fs <= f_best * (1 + 1e-9) + floor
    if scr is not None and exhaustive:
        diag["reached_best"] = int(np.sum(scr.f <= f_best * (1 + 1e-9) + floor))
        diag["reached_best_of"] = int(len(z0))
    else:
        diag["reached_best"], diag["reached_best_of"] = int(same.sum()), int(len(refined))
    zf, objective = best.zf, f_best
    if loss == "huber-ml":
        zf, diag["huber_ml"] = huber_ml_path(lambda d, z: refine(problem, z, d).zf, lambda z: problem.residuals(z)[0],
                                             zf, delta)
        objective = -diag["huber_ml"]["log_likelihood"]
    diag.update(check_converged(problem, zf, diag.get("huber_ml", {}).get("threshold")))
    diag["minima"] = distinct_minima([problem.natural(r.zf) for r in refined], fs, problem.law)
    return Solution(problem.natural(zf), float(objective), diag), problem


def check_converged(problem: Problem, zf: np.ndarray, delta: float | None = None) -> dict:
    """Diagnostics of a refined point; raises FitDidNotConverge unless it is a finite, converged
    minimum of the Huber sum at ``delta`` (default the problem's) (parameters at an active bound
    count as converged there)."""
    law, names = problem.law, problem.free_names
    delta = problem.delta if delta is None else delta
    z = problem.full(zf)[0]
    overflow = [p.name for i, p in enumerate(law.parameters) if p.log and abs(z[i]) > LOG_OVERFLOW]
    if overflow or not np.all(np.isfinite(z)):
        name = overflow[0] if overflow else law.names[int(np.flatnonzero(~np.isfinite(z))[0])]
        raise FitDidNotConverge(runaway_message(law.name, name, z[law.names.index(name)]))
    r = problem.residuals(zf)[0]
    f = float(huber_sum(r, delta))
    J = problem.jacobian(zf)
    ar = np.abs(r)
    psi = np.clip(r, -delta, delta)
    w = np.where(ar <= delta, 1.0, delta / np.maximum(ar, 1e-300))
    g = J.T @ psi
    H = J.T @ (w[:, None] * J)
    lo, hi = problem.lower[problem.free], problem.upper[problem.free]
    span = 1e-9 * (1 + np.abs(zf))
    at_bound = ((zf <= lo + span) & (g > 0)) | ((zf >= hi - span) & (g < 0))
    inside = ~at_bound
    gi, Hi = g[inside], H[np.ix_(inside, inside)]
    decrement = float(0.5 * gi @ np.linalg.pinv(Hi) @ gi) if gi.size else 0.0
    floor = ABSOLUTE_FLOOR * r.size
    diag = {"converged": True, "newton_decrement": decrement, "gradient_norm": float(np.linalg.norm(gi)),
            "at_bounds": [names[i] for i in np.flatnonzero(at_bound)]}
    tol = CONVERGED_RTOL * f + floor
    for i in np.flatnonzero(inside):
        verdict = _edge(problem, zf, i, f, delta, tol)
        if verdict:
            raise FitDidNotConverge(
                f"the {law.name} fit did not converge: {names[i]} = {problem.natural(zf)[names[i]]:.4g} {verdict}; "
                f"it sits at the edge of what the law can express and the data do not bound it: fix it "
                f"(--fix {names[i]}=VALUE) or bound it (--bound {names[i]}=LO:HI)")
    if decrement <= tol:
        return diag
    raise FitDidNotConverge(
        f"the {law.name} fit did not converge: the objective {f:.6g} would still fall by a relative "
        f"{decrement / max(f, 1e-300):.2g} along a flat direction; fix a parameter (--fix NAME=VALUE) or add runs")


def _edge(problem: Problem, zf: np.ndarray, i: int, f: float, delta: float, tol: float) -> str | None:
    """Why free coordinate ``i`` is not at an interior minimum, or None: the objective keeps
    falling as it moves on in one direction (one and two steps of ln 10 in a log coordinate, of
    max(1, |z|) otherwise; both directions are tried, since near an edge the gradient's sign is
    rounding noise), or a step either way changes the objective by less than ``tol``."""
    p = problem.law.parameter(problem.free_names[i])
    step = np.log(10.0) if p.log else max(1.0, abs(zf[i]))
    lo, hi = problem.lower[problem.free], problem.upper[problem.free]

    def objective_at(shift):
        z = zf.copy()
        z[i] += shift
        if not lo[i] <= z[i] <= hi[i]:
            return None
        return float(huber_sum(problem.residuals(z)[0], delta))

    one = {s: objective_at(s * step) for s in (1.0, -1.0)}
    for s in (1.0, -1.0):
        two = objective_at(2 * s * step) if one[s] is not None and one[s] < f else None
        if two is not None and two <= one[s]:
            direction = "grows" if s > 0 else "shrinks"
            return f"runs towards {'+inf' if s > 0 else ('0' if p.log else '-inf')}: the objective still falls as it {direction}"
    if all(v is not None and abs(v - f) <= tol for v in one.values()):
        return (f"has no effect on the fit: changing it {'ten-fold' if p.log else f'by {step:.3g}'} either way moves "
                f"the objective by less than {CONVERGED_RTOL:g} of itself")
    return None


def runaway_message(law: str, name: str, coordinate: float, detail: str = "") -> str:
    """One line refusing a fit whose log-coordinate ``name`` overflowed (or is not finite);
    ``detail`` says more about the term (inserted before the remedy)."""
    return (f"the {law} fit ran away: log {name} = {coordinate:.6g}, so {name} = exp({coordinate:.4g}) is not a finite "
            f"number{detail}; the data do not determine that term: fix a parameter (--fix NAME=VALUE) or bound one "
            f"(--bound NAME=LO:HI)")


def lmfit_report(problem: Problem, params: Mapping[str, float], delta: float | None = None) -> str:
    """lmfit's fit report of ``problem`` at natural-unit ``params`` (a converged optimum: lmfit
    is run from it on the same objective, which gives its statistics, standard errors and
    correlations). ``log_<name>`` rows are natural logarithms."""
    zf = problem.free_of(problem.law.to_coordinates(params)[None, :])[0]
    result = refine(problem, zf, delta).result
    if result is None:
        return "no free parameter: nothing to report"
    return lmfit.fit_report(result)
