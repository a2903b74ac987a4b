"""Profile-likelihood intervals of any parameter of an Approach-3 fit.

The profile of parameter theta at value v is the best objective with theta held at v and every
other parameter refitted (warm-started from the neighbouring profile point). The interval at
``level`` is where the profile statistic (:mod:`scaling.fit.likelihood`: an F test for least
squares as in lmfit's ``conf_interval``, a likelihood ratio otherwise) stays below its quantile.
The profile is walked in the parameter's optimisation coordinate (log for parameters fitted as
logarithms): steps double from 1e-3*(1 + |t|) until the statistic crosses the threshold, then the
crossing is found by Brent's method to 1e-6 relative in the coordinate. A side where the statistic
never crosses (the parameter is not bounded by the data, or a refit fails) is reported open
(None), which is itself the answer: the data do not bound it on that side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from scaling.errors import UserError
from scaling.fit.generic import Solution
from scaling.fit.parametric import Parametric

MAX_DOUBLINGS = 40


@dataclass(frozen=True)
class ProfileInterval:
    """``lo``/``hi`` in natural units (None: open on that side), the ``level``, the criterion in
    words, and the profile points walked (natural value, statistic)."""

    name: str
    estimate: float
    lo: float | None
    hi: float | None
    level: float
    criterion: str
    points: list[tuple[float, float]]

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return {"estimate": self.estimate, "lo": self.lo, "hi": self.hi, "level": self.level,
                "criterion": self.criterion, "points": [list(p) for p in self.points]}


def profile_interval(fitter: Parametric, solution: Solution, name: str, level: float = 0.95) -> ProfileInterval:
    """The profile interval of parameter ``name`` of ``solution`` (fitted by ``fitter``)."""
    law = fitter.law
    p = law.parameter(name)
    c = fitter.constraints
    if name in c.fixed:
        raise UserError(f"--profile {name}: {name} is fixed (--fix), so it has no interval")
    if c.tie and name in c.tie:
        raise UserError(f"--profile {name}: {name} is tied ({c.tie[0]}={c.tie[1]}); profiles of tied parameters are not supported")
    if not 0 < level < 1:
        raise UserError(f"interval level {level} must be between 0 and 1")
    comparison = fitter.comparison(solution)
    threshold = comparison.threshold(level)
    t_hat = float(np.log(solution.params[name]) if p.log else solution.params[name])
    to_natural = np.exp if p.log else (lambda t: t)
    points: list[tuple[float, float]] = []
    warm = {"solution": solution}

    def statistic(t: float) -> float:
        try:
            sol = fitter.with_fixed(name, float(to_natural(t))).refit(warm["solution"])
        except UserError:
            return np.nan
        warm["solution"] = sol
        value = comparison.statistic(sol.objective, fitter.residuals(sol.params))
        points.append((float(to_natural(t)), value))
        return value - threshold

    ends = []
    for sign in (-1.0, 1.0):
        warm["solution"] = solution
        ends.append(_crossing(statistic, t_hat, sign, c.bounds.get(name), p.log))
    lo, hi = (None if e is None else float(to_natural(e)) for e in ends)
    return ProfileInterval(name, float(solution.params[name]), lo, hi, level, comparison.describe(),
                           sorted(points))


def _crossing(excess, t_hat: float, sign: float, bound, log: bool) -> float | None:
    """Where ``excess`` (statistic - threshold, negative at t_hat) turns positive on one side."""
    limit = None
    if bound is not None:
        value = bound[0] if sign < 0 else bound[1]
        if np.isfinite(value) and (value > 0 or not log):
            limit = float(np.log(value) if log else value)
    step = 1e-3 * (1 + abs(t_hat))
    inside = t_hat
    for _ in range(MAX_DOUBLINGS):
        t = t_hat + sign * step
        if limit is not None and sign * (t - limit) >= 0:
            t = limit
        e = excess(t)
        if not np.isfinite(e):
            return None
        if e > 0:
            return brentq(lambda s: _finite(excess(s)), min(inside, t), max(inside, t), xtol=1e-12,
                          rtol=1e-6)
        if t == limit:
            return None
        inside = t
        step *= 2
    return None


def _finite(value: float) -> float:
    """A failed refit inside a bracket counts as beyond the threshold."""
    return value if np.isfinite(value) else 1.0
