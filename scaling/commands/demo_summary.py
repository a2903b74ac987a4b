"""What the demo found, from its results table and fit files: the lines ``scaling demo`` ends with.

* :func:`best_per_budget`: for each IsoFLOP budget the run with the lowest loss and whether it
  lies strictly inside the sizes trained at that budget (an optimum the grid brackets) or at its
  smallest or largest size (the grid does not bracket it: extend the sizes);
* :func:`summary`: per variant, those minima; the compute-optimal exponents of Approach 2
  (IsoFLOP parabolas) and Approach 3 (the parametric law) side by side with their bootstrap
  intervals; the back-test error on the held-out largest budget; and which variant puts more of
  a budget into parameters, with intervals.

Budgets are grouped as Approach 2 groups them (:func:`scaling.fit.isoflop.group_budgets`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.fit.isoflop import group_budgets
from scaling.spec import human


def best_per_budget(n, c, y, budget_rtol: float = 0.05) -> pd.DataFrame:
    """One row per compute budget (ascending): ``c`` (geometric mean of its runs' FLOPs), ``runs``,
    ``n_min`` / ``n_max`` (smallest and largest size trained at it), ``n_best`` and ``loss_best``
    (the lowest loss), and ``position``: ``inside`` when ``n_min < n_best < n_max``, else
    ``smallest`` or ``largest``. ``n``: parameters, ``c``: FLOPs, ``y``: loss, one value per run."""
    n, c, y = (np.asarray(v, dtype=float) for v in (n, c, y))
    labels = group_budgets(c, budget_rtol)
    rows = []
    for g in range(labels.max() + 1 if labels.size else 0):
        sel = np.flatnonzero(labels == g)
        best = sel[np.argmin(y[sel])]
        lo, hi = n[sel].min(), n[sel].max()
        position = "smallest" if n[best] == lo else "largest" if n[best] == hi else "inside"
        rows.append({"c": float(np.exp(np.log(c[sel]).mean())), "runs": int(sel.size), "n_min": lo, "n_max": hi,
                     "n_best": float(n[best]), "loss_best": float(y[best]), "position": position})
    return pd.DataFrame(rows, columns=["c", "runs", "n_min", "n_max", "n_best", "loss_best", "position"])


@dataclass(frozen=True)
class VariantResult:
    """What the demo measured for one variant: its label, minima per budget (:func:`best_per_budget`)
    and the fit files it wrote (JSON dicts as :meth:`scaling.fit.FitResult.to_json` writes them;
    None where that fit did not succeed)."""

    label: str
    minima: pd.DataFrame
    approach3: dict | None
    approach2: dict | None
    backtest: dict | None


def read_fit(path: Path) -> dict | None:
    """A fit JSON written by ``scaling fit --json``, or None when the file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _value(fit: dict | None, name: str, target_c: float | None = None) -> tuple[float, tuple[float, float] | None]:
    """(estimate, interval or None) of a parameter or derived quantity of a fit JSON (at
    ``target_c`` FLOPs for the quantities tagged ``@C``); nan when absent."""
    if fit is None:
        return math.nan, None
    if name in fit["params"]:
        value = fit["params"][name]
    else:
        from scaling.fit.allocation import derived_quantities

        targets = () if target_c is None else (target_c,)
        value = derived_quantities(fit["params"], fit["law"], fit["approach"], targets).get(name, math.nan)
    interval = fit.get("intervals", {}).get(name)
    return float(value), tuple(interval) if interval else None


def _with_interval(value: float, interval, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}f}"
    return text + (f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else "")


def _count_with_interval(value: float, interval) -> str:
    if not math.isfinite(value):
        return "—"
    return human(value) + (f" [{human(interval[0])}, {human(interval[1])}]" if interval else "")


def _warnings(fit: dict | None) -> list[str]:
    return list((fit or {}).get("diagnostics", {}).get("warnings", []))


def summary(results: list[VariantResult], loss: str, params: str, compute: str, target_c: float) -> str:
    """The demo's closing summary (see the module doc). ``target_c``: the budget (FLOPs) at which
    the variants' compute-optimal sizes are compared (the demo's largest)."""
    level = next((f"{r.approach3['provenance'].get('level') or 0.95:.0%}" for r in results if r.approach3), "95%")
    out = [f"loss {loss}; N = {params}; C = {compute}; intervals: {level} bootstrap over runs", "",
           "best run per IsoFLOP budget:"]
    out.append(f"  {'variant':<26}{'C (FLOPs)':>11}{'runs':>6}{'sizes':>16}{'best N':>9}{'loss':>9}  position")
    for r in results:
        for row in r.minima.itertuples():
            where = "inside the sizes" if row.position == "inside" else f"at the {row.position} size: not bracketed"
            out.append(f"  {r.label:<26}{row.c:>11.3g}{row.runs:>6}{human(row.n_min) + '–' + human(row.n_max):>16}"
                       f"{human(row.n_best):>9}{row.loss_best:>9.4f}  {where}")
    out += ["", "compute-optimal exponents, N* ∝ C^a and D* ∝ C^b:",
            f"  {'variant':<26}{'a (Approach 2)':>24}{'a (Approach 3)':>24}{'b (Approach 3)':>24}"]
    for r in results:
        a2, a3, b3 = _value(r.approach2, "a"), _value(r.approach3, "a"), _value(r.approach3, "b")
        out.append(f"  {r.label:<26}{_with_interval(*a2):>24}{_with_interval(*a3):>24}{_with_interval(*b3):>24}")
    out += ["", f"Approach 3, the law fitted below the largest budget, predicting it (back-test):"]
    for r in results:
        test = (r.backtest or {}).get("backtest", {}).get("summary")
        out.append(f"  {r.label:<26}" + (f"mean error {test['mean_abs_rel_error']:.2%}, max {test['max_abs_rel_error']:.2%} "
                                         f"on {test['n_test']} held-out runs (fitted on {test['n_train']})" if test else "not run"))
    tag = f"n_opt@{target_c:.3g}"
    sized = [(r.label, *_value(r.approach3, tag, target_c)) for r in results if r.approach3]
    if sized:
        out += ["", f"compute-optimal size at C = {target_c:.3g} FLOPs (Approach 3):"]
        out += [f"  {label:<26}N* = {_count_with_interval(value, interval)}" for label, value, interval in sized]
        out.append("  " + _verdict(sized))
    for r in results:
        for kind, fit in (("Approach 3", r.approach3), ("Approach 2", r.approach2)):
            out += [f"warning: {r.label}, {kind}: {w}" for w in _warnings(fit)]
        if r.approach3 is None:
            out.append(f"warning: {r.label}: no Approach-3 fit (see the fit step above)")
        if r.approach2 is None:
            out.append(f"warning: {r.label}: no Approach-2 fit (see the fit step above)")
    return "\n".join(out)


def _verdict(sized: list[tuple[str, float, tuple[float, float] | None]]) -> str:
    """Which variant wants the larger model at the compared budget, and whether the intervals separate them."""
    finite = [s for s in sized if math.isfinite(s[1])]
    if len(finite) < 2:
        return "one variant only: nothing to compare"
    (big, n_big, i_big), (small, n_small, i_small) = sorted(finite, key=lambda s: -s[1])[:2]
    ratio = f"{n_big / n_small:.2g}×"
    if i_big and i_small and i_big[0] > i_small[1]:
        return f"{big} puts more of the budget into parameters ({ratio}); the intervals do not overlap"
    if i_big and i_small:
        return f"{big} puts more of the budget into parameters ({ratio}), but the intervals overlap"
    return f"{big} puts more of the budget into parameters ({ratio}; no intervals)"
