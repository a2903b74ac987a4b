"""Large tables (every checkpoint of many runs) are screened on a row subsample and refined on
every row: the objective is that of a fit screened on every row."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.fit import fit_law, simulate
from scaling.fit.screen import SCREEN_ROWS, subsample

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def test_subsample_is_spread_over_runs_and_trajectories():
    n = np.repeat([1e8, 1e9, 1e10], 1000)
    d = np.tile(np.arange(1, 1001) * 1e7, 3)
    rows = subsample([n, d], 300)
    assert len(rows) == 300 and len(np.unique(rows)) == 300
    for size in (1e8, 1e9, 1e10):                       # every run keeps its share, from start to end
        mine = d[rows][n[rows] == size]
        assert len(mine) == 100 and mine.min() <= 1e8 and mine.max() >= 9.9e9
    assert subsample([n[:200], d[:200]], 300) is None


def test_screening_a_subsample_gives_the_full_data_optimum():
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 3), c_grid=np.geomspace(1e18, 1e21, 2), noise=0.01, seed=0,
                  curve_points=100)
    n, d, y = (df[k].to_numpy() for k in ("params_total", "tokens", "loss_val"))
    assert len(y) == 600 > SCREEN_ROWS
    fast = fit_law(n, d, y)
    full = fit_law(n, d, y, screen_rows=None)
    assert f"on {SCREEN_ROWS} of 600 rows" in fast.diagnostics["mode"] and "of 600 rows" not in full.diagnostics["mode"]
    # Both end with Newton on every row to a decrement of 1e-14 of the objective: the same optimum
    # to far better than the 1e-9 that counts as "the same best" (approach3.BEST_RTOL).
    assert fast.objective == pytest.approx(full.objective, rel=1e-9)
    assert fast.params == pytest.approx(full.params, rel=1e-5)
