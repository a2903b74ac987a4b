"""Approach 2 (IsoFLOP profiles, Hoffmann et al. 2022): group runs by compute budget, fit a
parabola of loss against log N within each budget, take its minimum, then fit the power laws
N*(C) = k_n*C^a and D*(C) = k_d*C^b to the minima.

Budgets: runs whose C = 6*N*D (or a given C column) lies within a relative tolerance
``budget_rtol`` of the smallest C of a group share that budget; the budget's C is the geometric
mean of its members. A budget with fewer than 3 runs, a parabola that opens downwards, or a
minimum at or beyond the smallest/largest N sampled cannot locate an optimum: that is a
:class:`Approach2Refusal` naming the budget (or, with ``on_bad="skip"``, a recorded skip).

Options: ``window=K`` fits each parabola to the K sampled sizes each side of the budget's lowest
loss only (far-off sizes bend the parabola; Hoffmann et al. fit near the minimum); ``weights``
weigh the runs in the parabola fits (inverse variances of their loss). Papers that publish the
compute-optimal pairs (C, N*) themselves are fitted by :func:`optimal_pairs_fit`, optionally
weighted by inverse variances of log N*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit.powerlaw import PowerLaw, power_law_fit


class Approach2Refusal(UserError):
    """A budget cannot give an IsoFLOP minimum (too few points, no interior minimum)."""


@dataclass(frozen=True)
class Approach2Result:
    """Per-budget minima (DataFrame: c, n_opt, d_opt, loss_opt, points, curvature) and the
    fitted power laws ``n_law`` (N* = k*C^gamma, gamma = a) and ``d_law`` (D*, gamma = b).
    ``skipped`` lists the refusals that ``on_bad="skip"`` turned into skips."""

    minima: pd.DataFrame
    n_law: PowerLaw
    d_law: PowerLaw
    skipped: list[str] = field(default_factory=list)


def group_budgets(c, rtol: float = 0.05) -> np.ndarray:
    """Budget label (0, 1, ...) of each compute value: sorted values join the current group while
    within a factor (1 + rtol) of its smallest member."""
    c = np.asarray(c, dtype=float)
    order = np.argsort(c, kind="stable")
    labels = np.empty(c.size, dtype=int)
    group, start = -1, -np.inf
    for i in order:
        if c[i] > start * (1 + rtol):
            group, start = group + 1, c[i]
        labels[i] = group
    return labels


def approach2(n, d_or_c, y, *, compute: bool = False, budget_rtol: float = 0.05, min_points: int = 3,
              on_bad: str = "raise", window: int | None = None, weights=None) -> Approach2Result:
    """IsoFLOP fit. ``n``: parameters; ``d_or_c``: tokens (C = 6*N*D) or, with ``compute=True``,
    FLOPs; ``y``: loss. ``on_bad``: ``raise`` an :class:`Approach2Refusal` for a budget without an
    interior minimum, or ``skip`` it (recorded in ``skipped``). ``window``: K sizes each side of a
    budget's lowest loss; ``weights``: per-run weights of the parabola fits. Needs 2+ usable budgets."""
    if on_bad not in ("raise", "skip"):
        raise UserError(f"on_bad={on_bad!r}; expected 'raise' or 'skip'")
    if window is not None and (int(window) != window or window < 1):
        raise UserError(f"window={window!r}; expected a positive whole number of sizes each side of the minimum")
    n = np.asarray(n, dtype=float)
    c = np.asarray(d_or_c, dtype=float) if compute else 6.0 * n * np.asarray(d_or_c, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    labels = group_budgets(c, budget_rtol)
    rows, skipped = [], []
    for g in range(labels.max() + 1 if labels.size else 0):
        sel = labels == g
        budget = float(np.exp(np.mean(np.log(c[sel]))))
        try:
            rows.append(_budget_minimum(n[sel], y[sel], w[sel], budget, min_points, window))
        except Approach2Refusal as exc:
            if on_bad == "raise":
                raise
            skipped.append(str(exc))
    if len(rows) < 2:
        raise Approach2Refusal(f"approach 2 needs at least 2 budgets with an interior minimum, found {len(rows)}"
                               + (f" ({len(skipped)} skipped)" if skipped else ""))
    minima = pd.DataFrame(rows)
    minima["d_opt"] = minima["c"] / (6 * minima["n_opt"])
    n_law = power_law_fit(minima["c"], minima["n_opt"])
    d_law = power_law_fit(minima["c"], minima["d_opt"])
    return Approach2Result(minima[["c", "n_opt", "d_opt", "loss_opt", "points", "curvature"]], n_law, d_law, skipped)


def _budget_minimum(n, y, w, budget, min_points, window):
    tag = f"budget C={budget:.4g} FLOPs"
    if window is not None:
        order = np.argsort(n, kind="stable")
        i = int(np.argmin(y[order]))
        near = order[max(0, i - window):i + window + 1]
        n, y, w = n[near], y[near], w[near]
        tag += f" (window of {window} sizes each side of the lowest loss)"
    if n.size < min_points or np.unique(n).size < 3:
        raise Approach2Refusal(f"{tag} has {np.unique(n).size} distinct model sizes; a parabola minimum needs at least 3")
    x = np.log(n)
    curv, lin, const = np.polyfit(x, y, 2, w=np.sqrt(w))
    if curv <= 0:
        raise Approach2Refusal(f"{tag}: loss vs log N curves downwards (no minimum); sample sizes around the optimum")
    x_opt = -lin / (2 * curv)
    if not (x.min() < x_opt < x.max()):
        side = "smallest" if x_opt <= x.min() else "largest"
        raise Approach2Refusal(f"{tag}: the parabola minimum N={np.exp(x_opt):.4g} is at or beyond the {side} "
                               f"model sampled ({np.exp(x.min()):.4g}..{np.exp(x.max()):.4g}); extend the sizes")
    return {"c": budget, "n_opt": float(np.exp(x_opt)), "loss_opt": float(const - lin * lin / (4 * curv)),
            "points": int(n.size), "curvature": float(curv)}


def optimal_pairs_fit(c, n_opt, weights=None) -> Approach2Result:
    """Power laws N* = k_n*C^a and D* = C/(6 N*) = k_d*C^b fitted to given compute-optimal pairs
    (C FLOPs, N* parameters), as papers publish them; ``weights`` are inverse variances of log N*
    (the same weights serve log D*, whose variance is that of log N*)."""
    c = np.asarray(c, dtype=float)
    n_opt = np.asarray(n_opt, dtype=float)
    d_opt = c / (6 * n_opt)
    minima = pd.DataFrame({"c": c, "n_opt": n_opt, "d_opt": d_opt, "loss_opt": np.nan, "points": 1,
                           "curvature": np.nan})
    return Approach2Result(minima, power_law_fit(c, n_opt, weights=weights), power_law_fit(c, d_opt, weights=weights))
