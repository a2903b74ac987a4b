"""Distinct minima among the refined starts of a multi-start fit, and the warning that another
minimum fits as well as the best (the data then do not single out one parameter vector)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from scaling.fit.laws import Law
from scaling.fit.likelihood import Comparison

SAME_POINT = 1e-4   # coordinates this close (relative, max-norm) are one minimum
LIMIT = 5           # minima listed


def distinct_minima(params: Sequence[dict], objectives, law: Law, limit: int = LIMIT) -> list[dict]:
    """The ``limit`` best distinct minima, best first: natural parameters with ``objective`` and
    ``relative_to_best`` (objective / best - 1). Non-finite objectives are left out."""
    objectives = np.asarray(objectives, dtype=float)
    order = [i for i in np.argsort(objectives) if np.isfinite(objectives[i])]
    if not order:
        return []
    f_best = objectives[order[0]]
    out, coords = [], []
    for i in order:
        with np.errstate(divide="ignore"):
            z = law.to_coordinates(params[i])
        if any(np.abs(z - c).max() <= SAME_POINT * (1 + np.abs(z).max()) for c in coords):
            continue
        coords.append(z)
        out.append({**params[i], "objective": float(objectives[i]),
                    "relative_to_best": float(objectives[i] / f_best - 1) if f_best > 0 else 0.0})
        if len(out) == limit:
            break
    return out


def rival_minima(minima: list[dict], law: Law, comparison: Comparison,
                 residuals: Callable[[dict], np.ndarray], level: float = 0.95) -> tuple[list[dict], str | None]:
    """Annotate every other minimum with its ``statistic`` against the best (see
    :mod:`scaling.fit.likelihood`) and return the warning when one is below the ``level``
    threshold, i.e. fits as well as the best at that level with different parameters."""
    threshold = comparison.threshold(level)
    near = []
    for m in minima[1:]:
        params = {k: m[k] for k in law.names}
        m["statistic"] = comparison.statistic(m["objective"], residuals(params))
        if m["statistic"] <= threshold:
            near.append(m)
    if not near:
        return minima, None
    first = near[0]
    differ = ", ".join(f"{k} {minima[0][k]:.4g} vs {first[k]:.4g}" for k in law.names
                       if abs(first[k] - minima[0][k]) > 1e-3 * (abs(minima[0][k]) + 1e-12))
    return minima, (f"{len(near)} other minim{'um' if len(near) == 1 else 'a'} fit{'s' if len(near) == 1 else ''} as well "
                    f"as the best at the {level:.0%} level ({comparison.describe()}: {first['statistic']:.3g} <= "
                    f"{threshold:.3g}) with different parameters ({differ}); the data do not single out one parameter vector")
