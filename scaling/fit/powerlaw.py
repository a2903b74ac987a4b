"""Power laws of a quantity against compute, and the best-model-per-compute envelope.

``power_law_fit`` fits Q = k*C^gamma (ordinary least squares of log Q on log C) or the
saturating Q = q_inf + k*C^gamma (least squares in Q; the linear pair (q_inf, k) is solved
exactly for each gamma and gamma is found by a bounded 1-D search: variable projection).
C is in FLOPs (any positive x works); Q in its own units (loss in nats, accuracy in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scaling.errors import UserError, unknown_choice


@dataclass(frozen=True)
class PowerLaw:
    """Q = q_inf + k*C^gamma (q_inf = 0 for the pure law). ``rmse`` and ``r2`` are in log Q for
    the pure law and in Q for the saturating one (unweighted); ``n_points`` the number of points
    fitted."""

    k: float
    gamma: float
    q_inf: float = 0.0
    saturating: bool = False
    rmse: float = float("nan")
    n_points: int = 0
    r2: float = float("nan")

    def predict(self, c) -> np.ndarray:
        """Q at compute ``c`` (broadcasts)."""
        return self.q_inf + self.k * np.asarray(c, dtype=float) ** self.gamma


def power_law_fit(c, q, saturating: bool = False, gamma_bounds: tuple[float, float] = (-3.0, 3.0),
                  weights=None) -> PowerLaw:
    """Fit Q = k*C^gamma, or Q = q_inf + k*C^gamma with ``saturating=True`` (gamma searched
    within ``gamma_bounds``). Needs positive C (and positive Q for the pure law), and at least
    2 distinct C for the pure law (2 give an exact line), 4 points at 3 distinct C when saturating.
    ``weights`` (pure law only): inverse variances of log Q, for weighted least squares."""
    c = np.asarray(c, dtype=float)
    q = np.asarray(q, dtype=float)
    if c.shape != q.shape or c.ndim != 1:
        raise UserError(f"power_law_fit needs two 1-D arrays of one length, got shapes {c.shape} and {q.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(q))):
        raise UserError("power_law_fit got NaN or infinite values; drop those rows first")
    if np.any(c <= 0):
        raise UserError(f"compute must be positive, got C={float(c[c <= 0][0])!r}")
    need, distinct = (4, 3) if saturating else (2, 2)
    if c.size < need or np.unique(c).size < distinct:
        raise UserError(f"a {'saturating ' if saturating else ''}power law needs at least {need} points "
                        f"at {distinct} distinct C; got {c.size} points at {np.unique(c).size}")
    if not saturating:
        if np.any(q <= 0):
            raise UserError(f"a pure power law needs positive Q, got Q={float(q[q <= 0][0])!r}; try saturating=True")
        x, ly = np.log(c), np.log(q)
        w = None if weights is None else np.sqrt(np.asarray(weights, dtype=float))
        gamma, logk = np.polyfit(x, ly, 1, w=w)
        r = ly - (logk + gamma * x)
        return PowerLaw(float(np.exp(logk)), float(gamma), 0.0, False, float(np.sqrt(np.mean(r ** 2))), int(c.size),
                        _r2(r, ly))
    if weights is not None:
        raise UserError("weights apply to the pure power law only")
    c_ref = float(np.exp(np.mean(np.log(c))))      # rescale C so that C^gamma stays O(1)
    x = c / c_ref

    def solve(gamma):
        X = np.stack([np.ones_like(x), x ** gamma], axis=1)
        coef, *_ = np.linalg.lstsq(X, q, rcond=None)
        return coef, float(np.sum((X @ coef - q) ** 2))

    grid = np.linspace(*gamma_bounds, 601)
    grid = grid[grid != 0]
    sse = np.array([solve(g)[1] for g in grid])
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda g: solve(g)[1], bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    gamma = float(res.x)
    (q_inf, k_ref), sse_best = solve(gamma)
    r = q - (q_inf + k_ref * x ** gamma)
    return PowerLaw(float(k_ref * c_ref ** -gamma), gamma, float(q_inf), True,
                    float(np.sqrt(sse_best / c.size)), int(c.size), _r2(r, q))


def _r2(residuals, observed) -> float:
    """Coefficient of determination 1 - SSR/SST (NaN when the observations do not vary)."""
    total = float(np.sum((observed - np.mean(observed)) ** 2))
    return 1.0 - float(np.sum(residuals ** 2)) / total if total > 0 else float("nan")


def envelope(df: pd.DataFrame, x: str = "flops_6nd", y: str = "loss_val", lower_is_better: bool = True) -> pd.DataFrame:
    """The best-model-per-compute envelope: rows of ``df`` (sorted by ``x``) whose ``y`` beats
    every row with smaller or equal ``x`` (the Pareto front used by SIMS to compare model
    families). Rows with NaN in ``x`` or ``y`` are ignored."""
    for col in (x, y):
        if col not in df.columns:
            raise unknown_choice("column", col, df.columns)
    data = df[np.isfinite(pd.to_numeric(df[x], errors="coerce")) & np.isfinite(pd.to_numeric(df[y], errors="coerce"))]
    data = data.sort_values([x, y], ascending=[True, lower_is_better], kind="stable")
    values = data[y].to_numpy(dtype=float) * (1 if lower_is_better else -1)
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], values[:-1]]))
    return data[values < best_before].reset_index(drop=True)
