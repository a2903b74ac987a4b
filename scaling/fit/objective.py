"""Fit objectives on residuals r in one of two spaces: ``log`` (r = log(predicted) - log(observed),
the default of every loss law) or ``loss`` (r = predicted - observed, in the units of the fitted
quantity, as ``scipy.optimize.curve_fit`` fits).

- ``huber``: sum_i rho_delta(r_i), rho_delta(r) = r^2/2 for |r| <= delta, delta*(|r| - delta/2)
  beyond (Hoffmann et al. 2022 use delta = 1e-3).
- ``mse``: sum_i r_i^2 / 2 (least squares; Huber with delta = inf).
- ``huber-ml``: the negative log-likelihood of a Huber density with a free scale sigma,
  p(r) = exp(-rho_delta(r/sigma)) / (sigma * Z(delta)), as in Besiroglu et al. (2024)'s headline
  fit; sigma is fitted with the law and reported.

Sums are weighted by optional point weights (bootstrap multiplicities). ``delta`` is in the units
of the residuals (log loss, or the loss itself).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

from scaling.errors import unknown_choice

LOSSES = ("huber", "mse", "huber-ml")
SPACES = ("log", "loss")


def check_loss(loss: str) -> str:
    """Validate an objective name (one of LOSSES)."""
    if loss not in LOSSES:
        raise unknown_choice("loss", loss, LOSSES)
    return loss


def check_space(space: str) -> str:
    """Validate an objective space (one of SPACES)."""
    if space not in SPACES:
        raise unknown_choice("space", space, SPACES)
    return space


def residuals(predicted, observed, space: str) -> np.ndarray:
    """Residuals of ``predicted`` against ``observed`` (broadcasting) in ``space``; NaN where the
    prediction is undefined (non-positive in log space, or not finite)."""
    with np.errstate(all="ignore"):
        pred = np.asarray(predicted, dtype=float)
        if space == "log":
            r = np.log(np.where(pred > 0, pred, np.nan)) - np.log(observed)
        else:
            r = pred - observed
    return np.where(np.isfinite(r), r, np.nan)


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


def huber_ml_path(solve_at, residuals, z, delta: float, weights=None, max_rounds: int = 200):
    """Maximise the Huber likelihood with free scale sigma, starting from a Huber-sum optimum z.

    At fixed sigma the likelihood is the Huber sum with threshold delta*sigma (rho_delta(r/sigma)
    = rho_{delta sigma}(r)/sigma^2), and at fixed law parameters sigma is a 1-D optimum. The
    threshold is lowered from delta by halves towards delta*sigma (a continuation: when
    delta*sigma is tiny the problem is almost least absolute deviations, which Newton cannot take
    in one jump), then the two are alternated to a fixed point. ``solve_at(delta_eff, z)`` returns
    the Huber-sum optimum from z; ``residuals(z)`` the residuals. The returned info holds
    ``log_sigma``, ``rounds``, ``log_likelihood`` and ``threshold`` (the final delta*sigma).
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
    return z, {"log_sigma": float(log_sigma), "rounds": rounds, "threshold": float(threshold),
               "log_likelihood": -huber_nll(r, delta, log_sigma, weights)}
