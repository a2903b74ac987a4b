"""How much worse one parameter vector fits than the best: the statistic behind profile
intervals and behind the warning that another minimum is as good as the best.

For an objective f minimised over k free parameters on P points, a vector with objective f'
(and residuals r') is compared with the best (f, r) by:

- ``mse`` (least squares, Gaussian errors of unknown variance): the F statistic
  (f'/f - 1)*(P - k), against F(1, P - k). This is lmfit's ``conf_interval`` criterion; for a law
  linear in its parameters the profile interval it gives is exactly the t interval.
- ``huber-ml`` (f is the Huber negative log-likelihood with a free scale): the likelihood ratio
  2*(f' - f), against chi-square with 1 degree of freedom (Wilks).
- ``huber`` (a Huber sum at a fixed threshold is not a likelihood): the likelihood ratio of the
  Huber density with its scale profiled out (Besiroglu et al. 2024's goodness of fit), evaluated
  at the residuals of both vectors, against chi-square(1). With residuals well inside delta this
  is the Gaussian ratio, well outside it the Laplace ratio: it follows the objective's own shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2
from scipy.stats import f as f_dist

from scaling.fit.objective import log_likelihood


@dataclass(frozen=True)
class Comparison:
    """The statistic of objective ``loss`` with ``delta`` (residual units), ``points`` P and
    ``free`` k parameters, relative to the best objective ``f_best`` with residuals ``r_best``."""

    loss: str
    delta: float
    points: int
    free: int
    f_best: float
    r_best: np.ndarray

    def statistic(self, f: float, r: np.ndarray) -> float:
        """How much worse (f, r) fits than the best (0 at the best, and within 1e-30 per point of
        it, where both fit exactly up to rounding; never negative)."""
        if not np.isfinite(f):
            return np.inf
        if f <= self.f_best + 1e-30 * self.points:
            return 0.0
        if self.loss == "mse":
            value = (f / self.f_best - 1.0) * max(self.points - self.free, 1) if self.f_best > 0 else np.inf * (f > 0)
        elif self.loss == "huber-ml":
            value = 2.0 * (f - self.f_best)
        else:
            value = 2.0 * (log_likelihood(self.r_best, self.delta) - log_likelihood(r, self.delta))
        return float(max(value, 0.0))

    def threshold(self, level: float) -> float:
        """The statistic's quantile at ``level`` (one parameter profiled or compared)."""
        if self.loss == "mse":
            return float(f_dist.ppf(level, 1, max(self.points - self.free, 1)))
        return float(chi2.ppf(level, 1))

    def describe(self) -> str:
        """The criterion in words, for reports."""
        if self.loss == "mse":
            return f"F test on the least-squares objective, F(1, {max(self.points - self.free, 1)})"
        if self.loss == "huber-ml":
            return "likelihood ratio of the Huber likelihood, chi-square(1)"
        return "likelihood ratio of the Huber density with free scale at each fit's residuals, chi-square(1)"
