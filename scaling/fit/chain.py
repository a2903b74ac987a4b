"""Predictions of a fitted law at given inputs, and two-stage chains: a loss law predicts a larger
run's loss, a downstream law (``task_exponential``, ``task_sigmoid``, or any law of X) predicts
its metric from that loss (Gadre et al. 2024, Sec. 4).

Uncertainty is carried by the bootstrap refits of each stage (``FitResult.samples``): refit j of
the loss law gives the loss L_j, and refit j of the downstream law turns L_j into the metric, so the
interval of the metric holds both stages' spread. When the stages have different numbers of
refits the first min(K1, K2) are paired; a stage without refits contributes its point estimate.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit.result import FitResult


def parse_points(items: Sequence[str]) -> list[dict[str, float]]:
    """``--at`` items such as ``N=6.9e9,D=1.38e11`` as dicts of law inputs (names lower-cased:
    n, d, c, u, m, x)."""
    points = []
    for item in items:
        point = {}
        for part in item.split(","):
            if "=" not in part:
                raise UserError(f"--at {item!r}: expected NAME=VALUE[,NAME=VALUE...], e.g. N=6.9e9,D=1.38e11")
            name, value = (s.strip() for s in part.split("=", 1))
            try:
                point[name.lower() if len(name) == 1 else name] = float(value)
            except ValueError:
                raise UserError(f"--at {item!r}: {value!r} is not a number") from None
        points.append(point)
    return points


def predict_at(fit: FitResult, points: Sequence[Mapping[str, float]], level: float = 0.95) -> pd.DataFrame:
    """The fit's prediction at every point (a dict of inputs), with a percentile interval from
    its bootstrap refits when it has them (columns ``predicted``, ``lo``, ``hi``)."""
    rows = []
    for point in points:
        value = float(_predict(fit, point))
        lo, hi = _interval([_predict(fit, point, p) for p in fit.sample_params()], level)
        rows.append({**point, "predicted": value, "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def chain_predict(loss_fit: FitResult, task_fit: FitResult, points: Sequence[Mapping[str, float]],
                  level: float = 0.95) -> pd.DataFrame:
    """Loss of ``loss_fit`` at every point, then the metric of ``task_fit`` at that loss, with
    intervals carried through both stages (see module docstring). Columns: the point's inputs,
    ``loss``, ``loss_lo``, ``loss_hi``, ``metric``, ``metric_lo``, ``metric_hi``, ``draws``."""
    if "x" not in task_fit.law_object().inputs:
        raise UserError(f"the second stage (law {task_fit.law}) does not read X, the loss predicted by the first")
    first, second = loss_fit.sample_params(), task_fit.sample_params()
    draws = min(len(first), len(second)) if first and second else max(len(first), len(second))
    rows = []
    for point in points:
        loss = float(_predict(loss_fit, point))
        metric = float(task_fit.predict(x=np.array(loss)))
        losses, metrics = [], []
        for j in range(draws):
            lj = float(_predict(loss_fit, point, first[j] if first else None))
            losses.append(lj)
            metrics.append(float(task_fit.predict(x=np.array(lj), params=second[j] if second else None)))
        loss_lo, loss_hi = _interval(losses, level) if first else (np.nan, np.nan)
        metric_lo, metric_hi = _interval(metrics, level)
        rows.append({**point, "loss": loss, "loss_lo": loss_lo, "loss_hi": loss_hi, "metric": metric,
                     "metric_lo": metric_lo, "metric_hi": metric_hi, "draws": draws})
    return pd.DataFrame(rows)


def _predict(fit: FitResult, point: Mapping[str, float], params=None):
    inputs = {k: np.array(float(v)) for k, v in point.items()}
    return fit.predict(params=params, **inputs)


def _interval(values, level: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
