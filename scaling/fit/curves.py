"""Approach 1 (Hoffmann et al. 2022): the minimum-loss envelope over training curves.

Each run contributes its loss curve against compute C = 6*N*D_seen (one row per evaluation
point: N fixed per run, D the tokens seen so far). At each of ``n_budgets`` log-spaced budgets
covered by at least two runs, every covering run's loss is interpolated (linearly in log C,
log loss) and the run with the lowest loss gives N*(C); D*(C) = C/(6*N*). Power laws
N*(C) = k_n*C^a and D*(C) = k_d*C^b are fitted to those envelope points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit.powerlaw import PowerLaw, power_law_fit


@dataclass(frozen=True)
class Approach1Result:
    """Envelope points (DataFrame: c, run_id, n_opt, d_opt, loss) and the power laws ``n_law``
    (gamma = a) and ``d_law`` (gamma = b)."""

    envelope: pd.DataFrame
    n_law: PowerLaw
    d_law: PowerLaw


def approach1(run_id, n, d, y, *, n_budgets: int = 100) -> Approach1Result:
    """Envelope of training curves. ``run_id``: run of each row; ``n``: parameters (constant
    within a run); ``d``: tokens seen at the evaluation; ``y``: loss there."""
    frame = pd.DataFrame({"run": np.asarray(run_id), "n": np.asarray(n, float), "d": np.asarray(d, float),
                          "y": np.asarray(y, float)})
    frame["c"] = 6.0 * frame["n"] * frame["d"]
    curves = []
    for run, rows in frame.groupby("run", sort=True):
        rows = rows.sort_values("c").drop_duplicates("c")
        if rows["n"].nunique() != 1:
            raise UserError(f"run {run!r} has {rows['n'].nunique()} different parameter counts; "
                            "approach 1 needs N constant within a run")
        if len(rows) >= 2:
            curves.append((run, float(rows["n"].iloc[0]), np.log(rows["c"].to_numpy()), np.log(rows["y"].to_numpy())))
    if len(curves) < 2:
        raise UserError(f"approach 1 needs loss curves (2+ evaluation points) of at least 2 runs, found {len(curves)}; "
                        "use --all-rows so that intermediate evaluations are kept")
    lo = np.array([cv[2][0] for cv in curves])
    hi = np.array([cv[2][-1] for cv in curves])
    budgets = np.linspace(lo.min(), hi.max(), n_budgets)
    points = []
    for x in budgets:
        covering = [i for i in range(len(curves)) if lo[i] <= x <= hi[i]]
        if len(covering) < 2:
            continue
        losses = [np.interp(x, curves[i][2], curves[i][3]) for i in covering]
        k = covering[int(np.argmin(losses))]
        run, n_run = curves[k][0], curves[k][1]
        c = float(np.exp(x))
        points.append({"c": c, "run_id": run, "n_opt": n_run, "d_opt": c / (6 * n_run), "loss": float(np.exp(min(losses)))})
    env = pd.DataFrame(points)
    if env.empty or env["n_opt"].nunique() < 2:
        raise UserError("approach 1: a single run is best at every budget, so N*(C) has no slope; "
                        "the curves must cross (train several sizes over overlapping budgets)")
    return Approach1Result(env, power_law_fit(env["c"], env["n_opt"]), power_law_fit(env["c"], env["d_opt"]))
