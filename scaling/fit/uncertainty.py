"""Non-parametric bootstrap of a fit, resampling whole runs.

Checkpoints of one run are not independent observations, so the resampling unit is the run
(``groups``: one label per row, e.g. ``run_id``); without labels every row is its own unit.
Each resample draws as many units as there are, with replacement, and refits; a row's weight is
its unit's multiplicity. With ``strata`` (e.g. the compute budget of each row, for IsoFLOP fits)
units are drawn within each stratum, as many as it has, so that no budget loses its runs.
Intervals are percentile intervals of the refits, for the parameters and for derived quantities
(a, b, G, N*(C), D*(C), D/N and loss at target budgets).

A parameter is flagged weakly identified when its interval is wider than the estimate; a
coefficient fitted as its logarithm (E, A, B, ... of a law) is judged in log scale (interval wider
than a factor e, the same rule for the logarithm's width), and the intercepts k_n, k_d of the
allocation power laws N* = k_n C^a, D* = k_d C^b are not judged at all: they are N* and D* at
C = 1 FLOP, far outside any data, and their spread is the exponent's spread times ln C.

For the Chinchilla law (Approach 3, Huber or MSE) all resamples are refitted together by the
batched Newton solver of :mod:`scaling.fit.lse`, each from the full-data optimum, the other
minima it found and the grid starts that reached its best objective. Other laws and approaches
refit one resample at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.fit import lse
from scaling.fit.allocation import derived_quantities
from scaling.fit.approach3 import BEST_RTOL, chinchilla_starts, natural, parametrisation
from scaling.fit.generic import LOG_OVERFLOW
from scaling.fit.laws import CHINCHILLA
from scaling.fit.result import FitResult


@dataclass(frozen=True)
class BootstrapResult:
    """Refitted parameters and derived quantities (``samples``: one row per successful
    resample), ``intervals`` (percentile, at ``level``), ``standard_errors``, how many resamples
    there were and failed, how many units were resampled, and warnings about weakly identified
    quantities."""

    samples: pd.DataFrame
    intervals: dict[str, tuple[float, float]]
    standard_errors: dict[str, float]
    level: float
    n_boot: int
    n_failed: int
    n_units: int
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)


def resample_weights(groups, n_boot: int, seed: int, strata=None) -> tuple[np.ndarray, int]:
    """(n_boot, P) row weights: each resample draws the units (distinct ``groups`` labels, or
    rows when ``groups`` is the row count) with replacement, within each stratum when ``strata``
    labels the rows; a row's weight is how often its unit was drawn."""
    labels = np.arange(groups) if isinstance(groups, int) else pd.factorize(np.asarray(groups))[0]
    units = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    if strata is None:
        draws = rng.integers(0, units, size=(n_boot, units))
        counts = np.stack([np.bincount(row, minlength=units) for row in draws])
        return counts[:, labels].astype(float), units
    unit_stratum = np.zeros(units, dtype=int)
    unit_stratum[labels] = pd.factorize(np.asarray(strata))[0]
    counts = np.zeros((n_boot, units))
    for s in np.unique(unit_stratum):
        members = np.flatnonzero(unit_stratum == s)
        draws = members[rng.integers(0, members.size, size=(n_boot, members.size))]
        for b in range(n_boot):
            counts[b] += np.bincount(draws[b], minlength=units)
    return counts[:, labels], units


def bootstrap(n, d, y, fit: FitResult, *, groups=None, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
              targets_c=(), refit=None, strata=None) -> BootstrapResult:
    """Bootstrap ``fit`` (made by :func:`scaling.fit.fit_law` on these n, d, y).

    groups: resampling unit of each row (run ids); strata: stratum of each row (units are drawn
    within strata); n_boot: resamples; seed: numpy seed; level: interval coverage; targets_c:
    budgets (FLOPs) for derived N*, D*, D/N, loss; refit: ``refit(weights) -> params dict`` for
    laws/approaches without the batched path (:func:`scaling.fit.fit_law` supplies it).
    """
    if n_boot < 2:
        raise UserError(f"bootstrap needs at least 2 resamples, got {n_boot}")
    if not 0 < level < 1:
        raise UserError(f"interval level {level} must be between 0 and 1")
    y = np.asarray(y, dtype=float)
    weights, units = resample_weights(len(y) if groups is None else groups, n_boot, seed, strata)
    if units < 3:
        raise UserError(f"bootstrap needs at least 3 resampling units (runs), found {units}")
    prov = fit.provenance
    batched = (fit.law == "chinchilla" and fit.approach == 3 and prov.get("loss", "huber") != "huber-ml"
               and prov.get("space", "log") == "log" and not prov.get("bounds"))
    if batched:
        params, ok, diag = _batched_chinchilla(n, d, y, fit, weights)
    else:
        if refit is None:
            raise UserError(f"bootstrap of a {fit.law} Approach-{fit.approach} fit needs a refit function")
        params, ok = [], []
        for w in weights:
            try:
                p = refit(w)
                good = all(np.isfinite(v) for v in p.values())
            except UserError:
                p, good = {k: np.nan for k in fit.params}, False
            params.append(p)
            ok.append(good)
        diag = {"method": "one refit per resample"}
    rows = []
    for p, good in zip(params, ok):
        if not good:
            continue
        row = dict(p)
        try:
            row.update(derived_quantities(p, fit.law_definition or fit.law, fit.approach, targets_c,
                                          prov.get("unique_tokens")))
        except UserError:
            pass  # this resample's law has no allocation (e.g. a non-positive exponent): its parameters still count
        rows.append(row)
    samples = pd.DataFrame(rows)
    n_failed = int(n_boot - len(rows))
    if len(rows) < 2:
        raise UserError(f"only {len(rows)} of {n_boot} bootstrap refits succeeded; the data cannot support intervals")
    q = [50 * (1 - level), 50 * (1 + level)]
    intervals = {k: tuple(float(v) for v in np.nanpercentile(samples[k], q)) for k in samples.columns}
    errors = {k: float(np.nanstd(samples[k], ddof=1)) for k in samples.columns}
    warnings = _warnings(fit, intervals, level, n_failed, n_boot)
    return BootstrapResult(samples, intervals, errors, level, n_boot, n_failed, units, warnings, diag)


def _batched_chinchilla(n, d, y, fit, weights):
    prov = fit.provenance
    loss = prov.get("loss", "huber")
    tie = prov.get("tie")
    param = parametrisation(CHINCHILLA, prov.get("fixed") or None, tuple(tie) if tie else None)
    problem = lse.Problem.from_data(n, d, y, np.inf if loss == "mse" else prov.get("delta", 1e-3), weights)
    starts = [fit.params] + [{k: m[k] for k in ("E", "A", "B", "alpha", "beta")} for m in fit.diagnostics.get("minima", [])[1:]]
    starts += fit.diagnostics.get("best_starts", [])
    grid = chinchilla_starts(starts)
    z0 = param.to_free(grid, problem.m1, problem.m2)
    K, s0 = weights.shape[0], len(z0)
    rows = np.repeat(np.arange(K), s0)
    res = lse.minimise(problem, np.tile(z0, (K, 1)), param, rows=rows)
    stalled_ok = res.stalled & (res.decrement <= 1e-9 * res.f + lse.ABSOLUTE_FLOOR * len(y))
    f = np.where(res.converged | stalled_ok, res.f, np.inf).reshape(K, s0)
    best = np.argmin(f, axis=1)
    z_best = res.z.reshape(K, s0, -1)[np.arange(K), best]
    theta = param.to_original(z_best, problem.m1, problem.m2)
    # a resample whose coefficient ran away (exp overflows) has no parameters to report
    ok = np.isfinite(f[np.arange(K), best]) & np.all(np.abs(theta[:, :3]) <= LOG_OVERFLOW, axis=1)
    params = [natural(t) for t in theta]
    warm_not_best = int(np.sum(f[:, 0] > f[np.arange(K), best] * (1 + BEST_RTOL)))
    diag = {"method": "batched Newton over all resamples (scaling.fit.lse)", "starts_per_resample": s0,
            "warm_start_not_best": warm_not_best}
    return params, ok, diag


def _warnings(fit, intervals, level, n_failed, n_boot) -> list[str]:
    out = []
    log_scale = _log_fitted(fit)
    for name, value in fit.params.items():
        if name not in intervals or (fit.approach != 3 and name in ("k_n", "k_d")):
            continue
        lo, hi = intervals[name]
        if name in log_scale:
            if lo > 0 and np.log(hi / lo) > 1:
                out.append(f"{name} is weakly identified: its {level:.0%} interval ({lo:.4g}, {hi:.4g}) spans "
                           f"a factor {hi / lo:.3g} (more than e; {name} is fitted as its logarithm)")
        elif hi - lo > abs(value):
            out.append(f"{name} is weakly identified: its {level:.0%} interval ({lo:.4g}, {hi:.4g}) "
                       f"is wider than the estimate {value:.4g}")
    if n_failed > 0.01 * n_boot:
        out.append(f"{n_failed} of {n_boot} bootstrap refits failed and were left out")
    return out


def _log_fitted(fit) -> set[str]:
    """Names of the fit's parameters that are fitted as logarithms."""
    if fit.approach != 3:
        return set()
    try:
        return {p.name for p in fit.law_object().parameters if p.log}
    except UserError:
        return set()
