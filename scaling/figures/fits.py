"""The figures' view of :mod:`scaling.fit`: curves, bands and points ready to draw.

Every number here comes from the fitting engine (envelopes, power laws, Approach 2 and 3 fits,
bootstrap resampling of whole runs, compute-optimal allocations, reference laws); this module
evaluates those results on a grid and turns bootstrap refits into percentile bands (95 %).
Nothing is fitted here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit import (REFERENCE_LAWS, Approach2Result, FitResult, approach2, bootstrap, chinchilla_constants,
                         compute_optimal, fit_law, group_budgets, power_law_fit)
from scaling.fit import backtest as fit_backtest
from scaling.fit import envelope as best_per_compute
from scaling.fit.uncertainty import resample_weights
from scaling.figures.table import run_key

LEVEL = 0.95
GRID = 60
BUDGET_RTOL = 0.05  # the fitting engine's default tolerance for runs of one compute budget
# Reference laws drawn as allocations, with short labels for legends.
ALLOCATION_REFERENCES = {"chinchilla_unrounded": "Chinchilla (Hoffmann et al. 2022)",
                         "cuervo_marxer_speech": "textless SLMs (Cuervo & Marxer 2024)",
                         "muennighoff_text": "text LMs (Muennighoff et al. 2023)"}
TEXTLESS_METRICS = "cuervo_marxer_speech_metrics"
METRIC_NAMES = {"acc_sblimp": "sBLIMP", "acc_stc": "tSC", "acc_ssc": "sSC"}


@dataclass
class Curve:
    """A fitted curve on a grid, with its percentile band when bootstrap refits exist."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    label: str = ""


@dataclass(frozen=True)
class Trend:
    """A published metric trend Q ∝ C^gamma and where it comes from."""

    gamma: float
    source: str


def budgets(c) -> np.ndarray:
    """The compute budget of each value: runs within the fitting engine's tolerance of one another
    share a budget, labelled by the geometric mean of its members (FLOPs)."""
    c = np.asarray(c, dtype=float)
    labels = group_budgets(c, BUDGET_RTOL)
    means = {g: float(np.exp(np.mean(np.log(c[labels == g])))) for g in set(labels)}
    return np.array([means[g] for g in labels])


def grid(values, n: int = GRID) -> np.ndarray:
    """``n`` log-spaced points spanning the positive ``values``."""
    v = np.asarray(values, dtype=float)
    return np.geomspace(v.min(), v.max(), n)


def band(draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Percentile band (LEVEL) of curves from bootstrap refits; (None, None) with fewer than 2."""
    if len(draws) < 2:
        return None, None
    lo, hi = np.nanpercentile(np.vstack(draws), [50 * (1 - LEVEL), 50 * (1 + LEVEL)], axis=0)
    return lo, hi


def envelope(rows: pd.DataFrame, x: str, y: str, lower_is_better: bool) -> pd.DataFrame:
    """The best run per compute budget: columns ``x``, ``y`` and ``run`` of the rows of ``rows``
    that beat every run of a smaller budget, sorted by ``x``.

    Compute values within the fitting engine's budget tolerance count as one budget (runs planned
    at one IsoFLOP budget differ by rounding), so each budget contributes at most its best run.
    """
    slim = _slim(rows, x, y)
    env = best_per_compute(slim, x="budget", y=y, lower_is_better=lower_is_better)
    names = np.asarray(run_key(rows).to_numpy())[env["row"].to_numpy()]
    return pd.DataFrame({x: env[x].to_numpy(), y: env[y].to_numpy(), "run": names})


def _slim(rows: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Only the columns an envelope needs, all numeric (fast to resample): compute, its budget, the
    metric, the run as an integer code and the row's position in ``rows``."""
    c = rows[x].to_numpy(dtype=float)
    return pd.DataFrame({x: c, "budget": budgets(c), y: rows[y].to_numpy(dtype=float),
                         "run": pd.factorize(run_key(rows))[0], "row": np.arange(len(rows))})


def power_law_curve(rows: pd.DataFrame, c: str, q: str, lower_is_better: bool, ctx) -> Curve | None:
    """Q = k·C^γ fitted to the best-per-compute envelope of ``rows``, over its compute range.

    The band comes from resampling whole runs: each resample's envelope is refitted. Returns
    None when the envelope has fewer than 3 points.
    """
    slim = _slim(rows, c, q)
    env = best_per_compute(slim, x="budget", y=q, lower_is_better=lower_is_better)
    if len(env) < 3:
        return None
    law = power_law_fit(env[c], env[q])
    xs = grid(env[c])
    draws = []
    if ctx.bootstrap >= 2:
        weights, _ = resample_weights(slim["run"].to_numpy(), ctx.bootstrap, ctx.seed)
        for w in weights:
            sub = best_per_compute(slim[w > 0], x="budget", y=q, lower_is_better=lower_is_better)
            if len(sub) >= 3:
                draws.append(power_law_fit(sub[c], sub[q]).predict(xs))
    lo, hi = band(draws)
    return Curve(xs, law.predict(xs), lo, hi, f"∝ C^{law.gamma:.3f}")


def textless_trend(column: str) -> Trend | None:
    """Cuervo & Marxer's textless exponent γ of Q ∝ C^γ for sBLIMP, sSC or tSC columns, else None."""
    name = METRIC_NAMES.get(column)
    ref = REFERENCE_LAWS[TEXTLESS_METRICS]
    if name is None or name not in ref.exponents:
        return None
    return Trend(ref.exponents[name], "Cuervo & Marxer 2024")


@dataclass
class LawFit:
    """An Approach-3 Chinchilla fit of one variant's final runs, with its bootstrap refits."""

    fit: FitResult
    samples: pd.DataFrame  # one row of E, A, B, alpha, beta per successful resample (may be empty)

    def _params(self) -> list[dict]:
        keys = ("E", "A", "B", "alpha", "beta")
        return [dict(zip(keys, row)) for row in self.samples[list(keys)].to_numpy()] if len(self.samples) else []

    def frontier(self, c: np.ndarray) -> tuple[Curve, Curve, Curve]:
        """Compute-optimal loss, N* and D* along budgets ``c`` (FLOPs), each with its band."""
        best = compute_optimal(self.fit, c)
        draws = []
        for p in self._params():
            try:
                draws.append(compute_optimal(p, c))
            except UserError:
                continue
        curves = []
        for field_name in ("loss", "n_opt", "d_opt"):
            lo, hi = band([np.asarray(getattr(a, field_name)) for a in draws])
            curves.append(Curve(c, np.asarray(getattr(best, field_name)), lo, hi))
        return curves[0], curves[1], curves[2]

    def frontier_nd(self, n: np.ndarray) -> Curve:
        """The efficient frontier in the (N, D) plane: D at which N is compute-optimal, with band."""

        def d_of_n(params) -> np.ndarray:
            k = chinchilla_constants(params)
            return (n / k["G"]) ** (k["b"] / k["a"]) / k["G"]

        draws = []
        for p in self._params():
            try:
                draws.append(d_of_n(p))
            except UserError:
                continue
        lo, hi = band(draws)
        return Curve(n, d_of_n(self.fit.params), lo, hi)

    def predict(self, n, d) -> np.ndarray:
        """Predicted loss at parameters ``n`` and tokens ``d``."""
        return self.fit.predict(np.asarray(n, dtype=float), np.asarray(d, dtype=float))

    @property
    def label(self) -> str:
        p = self.fit.params
        return f"E={p['E']:.2f}, α={p['alpha']:.2f}, β={p['beta']:.2f}"


def law_fit(rows: pd.DataFrame, ctx, key: str, n_boot: int | None = None, label: str = "") -> LawFit:
    """Approach 3 (Chinchilla law, Hoffmann recipe) on ``rows`` with ``n_boot`` (default
    ctx.bootstrap) resamples of whole runs; cached in ``ctx.cache`` under ``key``. The fitting
    engine's warnings become notes (once, when the fit is made). Raises UserError when the fit
    is refused."""
    if key in ctx.cache:
        return ctx.cache[key]
    n_boot = ctx.bootstrap if n_boot is None else n_boot
    cols = ctx.columns
    n, d, y = (rows[k].to_numpy(dtype=float) for k in (cols.params, cols.tokens, cols.loss))
    runs = run_key(rows).to_numpy()
    fit = fit_law(n, d, y, law="chinchilla", approach=3, run_id=runs)
    samples, warnings = pd.DataFrame(), list(fit.diagnostics.get("warnings", []))
    if n_boot >= 2 and len(set(runs)) >= 3:
        with np.errstate(over="ignore"):  # unidentified resamples run to huge A or B; they are reported below
            boot = bootstrap(n, d, y, fit, groups=runs, n_boot=n_boot, seed=ctx.seed)
        samples, warnings = boot.samples, warnings + list(boot.warnings)
    for warning in warnings:
        ctx.note(f"{label}: {warning}" if label else warning)
    ctx.cache[key] = LawFit(fit, samples)
    return ctx.cache[key]


@dataclass
class IsoFlop:
    """Approach 2 on one variant: budget of each run, minima per budget, N*(C) and D*(C) with bands."""

    budget: np.ndarray  # per run: the geometric-mean compute of its budget
    result: Approach2Result
    n_curve: Curve
    d_curve: Curve
    resampled: list[pd.DataFrame]  # the minima of each bootstrap resample

    def parabola(self, c: float, n: np.ndarray) -> Curve | None:
        """The fitted loss-vs-log-N parabola of budget ``c`` at ``n``, with its bootstrap band;
        None if that budget gave no minimum."""

        def curve(minima: pd.DataFrame) -> np.ndarray | None:
            hit = minima[np.isclose(minima["c"], c, rtol=BUDGET_RTOL)]
            if hit.empty:
                return None
            row = hit.iloc[0]
            return row["loss_opt"] + row["curvature"] * (np.log(n) - np.log(row["n_opt"])) ** 2

        best = curve(self.result.minima)
        if best is None:
            return None
        lo, hi = band([y for y in map(curve, self.resampled) if y is not None])
        return Curve(n, best, lo, hi)


def isoflop(rows: pd.DataFrame, ctx) -> IsoFlop:
    """Approach 2 (IsoFLOP parabolas) on ``rows``: budgets without an interior minimum are skipped
    (their reasons become notes); parabolas and power laws get bands from resampling whole runs.
    Raises UserError (Approach2Refusal) when fewer than 2 budgets give a minimum."""
    cols = ctx.columns
    n, c, y = (rows[k].to_numpy(dtype=float) for k in (cols.params, cols.compute, cols.loss))
    result = approach2(n, c, y, compute=True, on_bad="skip")
    for reason in result.skipped:
        ctx.note(reason)
    cs = grid(result.minima["c"])
    draws_n, draws_d, resampled = [], [], []
    if ctx.bootstrap >= 2:
        # runs are drawn within their budget, so that no resample loses a budget's profile
        weights, _ = resample_weights(run_key(rows).to_numpy(), ctx.bootstrap, ctx.seed, strata=budgets(c))
        for w in weights:
            idx = np.repeat(np.arange(len(y)), w.astype(int))
            try:
                r = approach2(n[idx], c[idx], y[idx], compute=True, on_bad="skip")
            except UserError:
                continue
            resampled.append(r.minima)
            draws_n.append(r.n_law.predict(cs))
            draws_d.append(r.d_law.predict(cs))
    n_curve = Curve(cs, result.n_law.predict(cs), *band(draws_n), f"N* ∝ C^{result.n_law.gamma:.3f}")
    d_curve = Curve(cs, result.d_law.predict(cs), *band(draws_d), f"D* ∝ C^{result.d_law.gamma:.3f}")
    return IsoFlop(budgets(c), result, n_curve, d_curve, resampled)


def reference_allocations(c: np.ndarray) -> list[tuple[str, Curve, Curve]]:
    """(label, N*(C), D*(C)) of the shipped reference laws, for overlays."""
    out = []
    for name, label in ALLOCATION_REFERENCES.items():
        alloc = compute_optimal(REFERENCE_LAWS[name].params, c)
        out.append((label, Curve(c, np.asarray(alloc.n_opt)), Curve(c, np.asarray(alloc.d_opt))))
    return out


def backtest(rows: pd.DataFrame, ctx) -> tuple[pd.DataFrame, dict]:
    """Back-test Approach 3: fit on the runs below the largest compute budget, predict every run.

    Returns ``rows`` with ``predicted``, ``held_out`` and ``abs_rel_error`` columns, and the
    fitting engine's summary (threshold, counts, mean/median/max error of the held-out runs).
    """
    cols = ctx.columns
    n, d, y, c = (rows[k].to_numpy(dtype=float) for k in (cols.params, cols.tokens, cols.loss, cols.compute))
    budget = budgets(c)
    held = budget == budget.max()
    if held.all():
        raise UserError("a back-test needs runs below the largest compute budget; all runs share one budget")
    result = fit_backtest(n, d, y, float(c[~held].max()), c=c, run_id=run_key(rows).to_numpy())
    predicted = result.fit.predict(n, d)
    out = rows.assign(predicted=predicted, held_out=c > result.summary["threshold_c"],
                      abs_rel_error=np.abs(predicted - y) / y)
    return out, result.summary
