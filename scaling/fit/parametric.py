"""Approach 3 for any law: which engine fits it, and the refits that bootstrap and profile need.

The Chinchilla law in log space, unbounded, is fitted by the batched Newton engine
(:func:`scaling.fit.approach3.fit_chinchilla`), which is the faster; every other case (other laws,
user-defined and expression laws, ``space='loss'``, bounds, other ties) by the lmfit engine
(:func:`scaling.fit.generic.fit_generic`). Both give a :class:`~scaling.fit.generic.Solution`
with natural-unit parameters, the objective and diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from scaling.fit.approach3 import fit_chinchilla
from scaling.fit.generic import Constraints, Problem, Solution, fit_generic, lmfit_report
from scaling.fit.laws import LAWS, Law
from scaling.fit.likelihood import Comparison
from scaling.fit.minima import rival_minima
from scaling.fit.objective import residuals as space_residuals
from scaling.fit.screen import SCREEN_ROWS
from scaling.fit.starts import explicit_starts


@dataclass(frozen=True)
class Parametric:
    """What an Approach-3 fit minimises: a law, its inputs (arrays by name), observations ``y``,
    the objective (``space``, ``loss``, ``delta`` in residual units), constraints, and the
    multi-start settings."""

    law: Law
    inputs: Mapping[str, np.ndarray]
    y: np.ndarray
    space: str = "log"
    loss: str = "huber"
    delta: float = 1e-3
    constraints: Constraints = field(default_factory=Constraints)
    screen_iterations: int = 20
    candidates: int = 16
    screen_rows: int | None = SCREEN_ROWS

    @property
    def fast(self) -> bool:
        """True when the batched Newton engine applies (Chinchilla, log space, no bounds, alpha=beta tie at most)."""
        tie = self.constraints.tie
        return (self.law is LAWS["chinchilla"] and self.space == "log" and not self.constraints.bounds
                and (tie is None or set(tie) == {"alpha", "beta"}))

    @property
    def free(self) -> int:
        """Number of free parameters."""
        c = self.constraints
        return len(self.law.parameters) - len(c.fixed) - (1 if c.tie else 0)

    def fit(self, starts=None, exhaustive: bool = False) -> Solution:
        """Fit from ``starts`` ((S, k) optimisation coordinates, natural-unit dicts, or None for
        the law's grid)."""
        if self.fast:
            c = self.constraints
            return fit_chinchilla(self.inputs["n"], self.inputs["d"], self.y, loss=self.loss, delta=self.delta,
                                  fixed=dict(c.fixed) or None, tie=("alpha", "beta") if c.tie else None,
                                  starts=starts, screen_iterations=self.screen_iterations, candidates=self.candidates,
                                  exhaustive=exhaustive, screen_rows=self.screen_rows)
        from scaling.fit.starts import start_grid

        rows = start_grid(self.law, starts)
        sol, _ = fit_generic(self.law, self.inputs, self.y, rows, space=self.space, loss=self.loss, delta=self.delta,
                             constraints=self.constraints, candidates=min(self.candidates, 8),
                             screen_iterations=self.screen_iterations, exhaustive=exhaustive,
                             screen_rows=self.screen_rows)
        return sol

    def restricted(self, rows: np.ndarray) -> "Parametric":
        """The same fit on a subset (or a resample with repeats) of the points."""
        return replace(self, inputs={k: v[rows] for k, v in self.inputs.items()}, y=self.y[rows])

    def with_fixed(self, name: str, value: float) -> "Parametric":
        """The same fit with parameter ``name`` held at ``value`` (natural units)."""
        c = self.constraints
        return replace(self, constraints=Constraints({**c.fixed, name: value}, c.tie,
                                                     {k: v for k, v in c.bounds.items() if k != name}))

    def refit(self, solution: Solution, rows: np.ndarray | None = None) -> Solution:
        """Refit from the solution's parameters and its other minima (bootstrap, profile)."""
        starts = [solution.params] + [{k: m[k] for k in self.law.names}
                                      for m in solution.diagnostics.get("minima", [])[1:]]
        part = self if rows is None else self.restricted(rows)
        return part.fit(explicit_starts(self.law, starts))

    def residuals(self, params: Mapping[str, float]) -> np.ndarray:
        """Residuals (in the fit's space) of natural-unit ``params`` (NaN where the law is undefined)."""
        with np.errstate(all="ignore"):
            return space_residuals(self.law.predict(dict(params), self.inputs), self.y, self.space)

    def comparison(self, solution: Solution) -> Comparison:
        """How other parameter vectors compare with ``solution`` (see :mod:`scaling.fit.likelihood`)."""
        delta = self.delta if self.loss != "mse" else np.inf
        return Comparison(self.loss, delta, int(self.y.size), self.free, solution.objective,
                          self.residuals(solution.params))

    def rival_warning(self, solution: Solution, level: float = 0.95) -> str | None:
        """The warning that another refined minimum fits as well as the best (None if none does);
        minima are Huber-sum (or least-squares) minima, so they are compared on that objective."""
        minima = solution.diagnostics.get("minima", [])
        if len(minima) < 2:
            return None
        loss = "huber" if self.loss == "huber-ml" else self.loss
        first = minima[0]
        comparison = replace(self.comparison(solution), loss=loss, f_best=first["objective"],
                             r_best=self.residuals({k: first[k] for k in self.law.names}))
        _, warning = rival_minima(minima, self.law, comparison, self.residuals, level)
        return warning

    def goodness(self, params: Mapping[str, float]) -> dict:
        """R^2 and RMSE of the fit in its space, and the mean absolute relative error of y."""
        r = self.residuals(params)
        observed = np.log(self.y) if self.space == "log" else self.y
        total = float(np.sum((observed - observed.mean()) ** 2))
        pred = self.law.predict(dict(params), self.inputs)
        return {"space": self.space, "r2": 1.0 - float(np.sum(r * r)) / total if total > 0 else float("nan"),
                "rmse": float(np.sqrt(np.mean(r * r))),
                "mean_abs_rel_error": float(np.mean(np.abs(pred - self.y) / np.abs(self.y)))}

    def report(self, solution: Solution) -> str:
        """lmfit's fit report at the solution (statistics, standard errors, correlations)."""
        delta = np.inf if self.loss == "mse" else self.delta
        threshold = solution.diagnostics.get("huber_ml", {}).get("threshold")
        problem = Problem(self.law, self.inputs, self.y, self.space, delta, self.constraints)
        return lmfit_report(problem, solution.params, threshold)
