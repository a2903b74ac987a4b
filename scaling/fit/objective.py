"""Fit objectives on log-residuals r = log(predicted) - log(observed).

- ``huber``: sum_i rho_delta(r_i), rho_delta(r) = r^2/2 for |r| <= delta, delta*(|r| - delta/2)
  beyond (Hoffmann et al. 2022 use delta = 1e-3).
- ``mse``: sum_i r_i^2 / 2 (least squares; Huber with delta = inf).
- ``huber-ml``: the negative log-likelihood of a Huber density with a free scale sigma,
  p(r) = exp(-rho_delta(r/sigma)) / (sigma * Z(delta)), as in Besiroglu et al. (2024)'s headline
  fit; sigma is fitted with the law and reported.

Sums are weighted by optional point weights (bootstrap multiplicities).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

from scaling.errors import unknown_choice

LOSSES = ("huber", "mse", "huber-ml")


def check_loss(loss: str) -> str:
    """Validate an objective name (one of LOSSES)."""
    if loss not in LOSSES:
        raise unknown_choice("loss", loss, LOSSES)
    return loss


def huber(r, delta: float) -> np.ndarray:
    """Huber function of threshold ``delta`` (``np.inf`` gives r^2/2), elementwise."""
    ar = np.abs(np.asarray(r, dtype=float))
    c = np.minimum(ar, delta)
    return c * (ar - 0.5 * c)


def huber_log_normaliser(delta: float) -> float:
    """log Z(delta), Z = integral of exp(-rho_delta(z)) dz = sqrt(2 pi)(2 Phi(delta) - 1) + 2 exp(-delta^2/2)/delta."""
    return float(np.log(np.sqrt(2 * np.pi) * (2 * ndtr(delta) - 1) + 2 * np.exp(-0.5 * delta * delta) / delta))


def huber_nll(r, delta: float, log_sigma: float, weights=None) -> float:
    """Negative log-likelihood of residuals under the Huber density with scale exp(log_sigma)."""
    w = np.ones_like(np.asarray(r, float)) if weights is None else np.asarray(weights, float)
    return float(w @ huber(np.asarray(r) * np.exp(-log_sigma), delta) + w.sum() * (log_sigma + huber_log_normaliser(delta)))


def best_log_sigma(r, delta: float, weights=None) -> float:
    """The scale (log sigma) that maximises the Huber likelihood of fixed residuals ``r``."""
    r = np.asarray(r, float)
    w = np.ones_like(r) if weights is None else np.asarray(weights, float)
    mean_abs = max(float(w @ np.abs(r)) / w.sum(), 1e-300)
    # Laplace limit sigma = delta*mean|r| and Gaussian limit sigma = rms(r) bracket the optimum.
    centre = np.log(mean_abs * min(delta, 1.0))
    res = minimize_scalar(lambda s: huber_nll(r, delta, s, w), bounds=(centre - 10, centre + 10),
                          method="bounded", options={"xatol": 1e-12})
    return float(res.x)


def log_likelihood(r, delta: float = 1e-3, weights=None) -> float:
    """Huber log-likelihood of residuals with the scale profiled out (goodness of fit, as in
    Besiroglu et al. 2024: higher is better)."""
    return -huber_nll(r, delta, best_log_sigma(r, delta, weights), weights)
