"""Screening many starts of any law at once, and the row subsample that large tables screen on.

:func:`screen` takes a few damped Gauss-Newton (Levenberg-Marquardt) steps from every start
together: residuals of all starts are one (S, P) array, the Jacobian comes from forward
differences (one more (S, P) array per free coordinate), and the Huber sum is handled by
iteratively reweighted least squares (weight min(1, delta/|r|) per point, so the step solves
(J^T W J + lambda diag) step = -J^T psi(r), psi the Huber derivative). A step is kept only if it
lowers the objective. It is a screen: which basin each start falls into; candidates are then
refined to convergence by the engine of the law (:mod:`scaling.fit.generic`, :mod:`scaling.fit.lse`).

:func:`subsample` picks the rows a large table is screened on: rows sorted by the law's inputs
(a run's checkpoints are adjacent) and taken evenly spaced, so every model size and every part of
the training curves keeps its share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

SCREEN_ROWS = 256             # tables larger than this are screened on a subsample of this many rows
_ELEMENTS = 1 << 21           # (starts x points x coordinates) per block: a few tens of MB of work arrays


@dataclass(frozen=True)
class ScreenResult:
    """End points ``z`` (S, k), objectives ``f`` (S,) (inf where undefined), and whether each
    start's predicted further decrease fell below the tolerance (``converged``)."""

    z: np.ndarray
    f: np.ndarray
    converged: np.ndarray


def subsample(keys: list[np.ndarray], limit: int = SCREEN_ROWS) -> np.ndarray | None:
    """Indices of ``limit`` rows evenly spaced in the order sorted by ``keys`` (1-D arrays of one
    length, the first varying slowest); None when there are at most ``limit`` rows."""
    size = len(keys[0])
    if size <= limit:
        return None
    order = np.lexsort(tuple(reversed([np.asarray(k) for k in keys])))
    return np.sort(order[np.linspace(0, size - 1, limit).round().astype(int)])


def huber_sum(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber sum over the last axis (r^2/2 within delta, delta*(|r| - delta/2) beyond); NaN
    residuals make the sum inf."""
    ar = np.abs(r)
    c = np.minimum(ar, delta)
    out = np.sum(c * (ar - 0.5 * c), axis=-1)
    return np.where(np.isfinite(out), out, np.inf)


def screen(residuals: Callable[[np.ndarray], np.ndarray], z0: np.ndarray, *, delta: float,
           lower: np.ndarray | None = None, upper: np.ndarray | None = None, max_iter: int = 20,
           rtol: float = 1e-7, floor: float = 0.0, max_step: float = 5.0,
           jacobian: Callable[[np.ndarray], np.ndarray] | None = None) -> ScreenResult:
    """Damped Gauss-Newton steps from every row of ``z0`` (S, k) on the Huber sum of
    ``residuals(z) -> (S, P)`` (NaN where undefined); ``delta`` = inf gives least squares.
    ``jacobian(z) -> (S, P, k)`` gives the residuals' derivatives (default: forward differences).
    Steps are capped at ``max_step`` (max-norm) and projected into [lower, upper]. A start stops
    when its predicted decrease is at most ``rtol`` * objective + ``floor``."""
    z0 = np.atleast_2d(np.asarray(z0, dtype=float))
    S, k = z0.shape
    lo = np.full(k, -np.inf) if lower is None else np.asarray(lower, float)
    hi = np.full(k, np.inf) if upper is None else np.asarray(upper, float)
    probe = residuals(z0[:1])
    block = max(1, _ELEMENTS // max(1, probe.shape[1] * (k + 1)))
    parts = [_screen_block(residuals, jacobian, np.clip(z0[i:i + block], lo, hi), delta, lo, hi, max_iter, rtol, floor,
                           max_step) for i in range(0, S, block)]
    return ScreenResult(*(np.concatenate(a) for a in zip(*parts)))


def _screen_block(residuals, jacobian, z, delta, lo, hi, max_iter, rtol, floor, max_step):
    S, k = z.shape
    z = z.copy()
    r = residuals(z)
    f = huber_sum(r, delta)
    lam = np.full(S, 1e-3)
    converged = np.zeros(S, dtype=bool)
    active = np.isfinite(f)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        g, H = _gauss_newton(residuals, jacobian, z[idx], r[idx], delta)
        step = _damped_step(g, H, lam[idx])
        dec = -0.5 * np.einsum("sk,sk->s", g, step)
        done = dec <= rtol * f[idx] + floor
        converged[idx[done]] = True
        active[idx[done]] = False
        keep = ~done
        idx, step = idx[keep], step[keep]
        if idx.size == 0:
            break
        size = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, max_step / np.maximum(size, 1e-300))[:, None]
        z_new = np.clip(z[idx] + step, lo, hi)
        r_new = residuals(z_new)
        f_new = huber_sum(r_new, delta)
        ok = f_new < f[idx]
        acc = idx[ok]
        z[acc], r[acc], f[acc] = z_new[ok], r_new[ok], f_new[ok]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
        rej = idx[~ok]
        lam[rej] *= 5.0
        active[rej[lam[rej] > 1e8]] = False
    return z, f, converged


def _gauss_newton(residuals, jacobian, z, r, delta):
    """Huber gradient J^T psi(r) and IRLS curvature J^T W J of (S, k) points (J from
    ``jacobian``, or by forward differences)."""
    S, k = z.shape
    if jacobian is not None:
        J = jacobian(z)
    else:
        h = 1e-7 * np.maximum(1.0, np.abs(z))
        J = np.empty((S, r.shape[1], k))
        for j in range(k):
            zj = z.copy()
            zj[:, j] += h[:, j]
            J[:, :, j] = (residuals(zj) - r) / h[:, j:j + 1]
    J = np.where(np.isfinite(J), J, 0.0)
    r = np.where(np.isfinite(r), r, 0.0)
    ar = np.abs(r)
    psi = np.clip(r, -delta, delta)
    w = np.where(ar <= delta, 1.0, delta / np.maximum(ar, 1e-300))
    Jt = J.transpose(0, 2, 1)
    g = (Jt @ psi[:, :, None])[:, :, 0]
    H = Jt @ (J * w[:, :, None])
    return g, H


def _damped_step(g, H, lam):
    """Solve (H + lam*diag(H) + tiny*I) step = -g for every row (pseudo-inverse where singular)."""
    diag = np.einsum("skk->sk", H)
    scale = np.maximum(diag.max(axis=1), 1e-300)
    A = H + (lam[:, None] * diag + 1e-12 * scale[:, None])[:, :, None] * np.eye(H.shape[1])
    try:
        return -np.linalg.solve(A, g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return -np.einsum("skl,sl->sk", np.linalg.pinv(A), g)


def distinct(z: np.ndarray, f: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest-objective rows of ``z`` that differ from each other by more
    than 1e-3 (max-norm, optimisation coordinates); rows with a non-finite objective are left out."""
    picked: list[int] = []
    for i in np.argsort(f):
        if not np.isfinite(f[i]):
            break
        if all(np.abs(z[i] - z[j]).max() > 1e-3 for j in picked):
            picked.append(int(i))
            if len(picked) == k:
                break
    return np.array(picked, dtype=int)
