"""``fit_law``: one entry point for Approaches 1-3, with optional bootstrap, profile intervals and
full provenance."""

from __future__ import annotations

import datetime as _dt
from importlib.metadata import PackageNotFoundError, version
from typing import Mapping

import numpy as np
import scipy

from scaling.errors import UserError
from scaling.fit.curves import approach1 as _approach1
from scaling.fit.generic import Constraints
from scaling.fit.isoflop import approach2 as _approach2
from scaling.fit.isoflop import group_budgets, optimal_pairs_fit
from scaling.fit.laws import Law, get_law
from scaling.fit.objective import check_loss, check_space
from scaling.fit.parametric import Parametric
from scaling.fit.result import FitResult
from scaling.fit.screen import SCREEN_ROWS
from scaling.fit.starts import start_grid
from scaling.fit.uncertainty import bootstrap as _bootstrap

INPUT_NAMES = {"n": "N (parameters)", "d": "D (tokens)", "c": "C (FLOPs)", "u": "U (unique tokens)",
               "m": "M (tokens per parameter, D/N)", "x": "X (the input of a downstream law, e.g. a loss)"}
MIN_BUDGETS = 4      # an allocation exponent resting on fewer budgets gets a warning


def fit_law(n, d, y, law: str | Law = "chinchilla", approach: int = 3, *, c=None, u=None, x=None,
            inputs: Mapping[str, np.ndarray] | None = None, run_id=None, space: str | None = None,
            loss: str = "huber", delta: float = 1e-3, fixed: Mapping[str, float] | None = None,
            tie: tuple[str, str] | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
            starts=None, start: Mapping[str, float] | None = None,
            grid: Mapping[str, tuple[float, float, int]] | None = None, screen_iterations: int = 20,
            candidates: int = 16, exhaustive: bool = False, screen_rows: int | None = SCREEN_ROWS,
            budget_rtol: float = 0.05, on_bad: str = "raise", window: int | None = None, weights=None,
            optimal_pairs: bool = False, bootstrap: int = 0, seed: int = 0, level: float = 0.95, targets_c=(),
            unique_tokens: float | None = None, profile=(), report: bool = False,
            selection: dict | None = None) -> FitResult:
    """Fit a scaling law to runs and return a :class:`FitResult`.

    n: parameters per point; d: training tokens; y: loss (nats/token) or, for downstream laws, the
    metric; c: FLOPs (default 6*N*D); u: unique tokens (``data_constrained``); x: the input of a
    downstream law (``task_exponential``, ``task_sigmoid``; a loss); inputs: more named inputs
    (columns bound to symbols of an expression law); M = D/N is derived. run_id: run of each
    point (Approach 1 curves; bootstrap units).
    law: a name in :data:`scaling.fit.laws.LAWS`, an expression such as ``E + A/N**alpha`` or a
    :class:`Law`; approach: 1 (envelope of training curves), 2 (IsoFLOP parabolas) or 3
    (parametric fit of every run).
    Approach 3: ``space`` log | loss (default: the law's), ``loss`` huber | mse | huber-ml,
    ``delta`` the Huber threshold in residual units, ``fixed`` natural-unit values by name, ``tie``
    a pair (p, q) forced equal, ``bounds`` natural-unit (lo, hi) by name; ``starts`` replaces the
    start grid, ``start`` (one value) and ``grid`` ((lo, hi, count)) override a parameter's grid;
    ``screen_iterations``/``candidates``/``exhaustive``/``screen_rows`` tune the multi-start (see
    :mod:`scaling.fit.approach3`, :mod:`scaling.fit.generic`); ``profile`` names parameters that
    get profile-likelihood intervals at ``level``; ``report`` adds lmfit's fit report (text) to the
    diagnostics.
    Approach 2: ``budget_rtol`` groups budgets, ``on_bad`` raise | skip for budgets without an
    interior minimum, ``window`` keeps K points each side of a budget's lowest loss, ``weights``
    weigh rows (inverse variances), ``optimal_pairs`` fits given (C, N*) rows directly.
    bootstrap: number of resamples of whole runs (within budgets for Approach 2; 0 = none), with
    ``seed``, interval ``level`` and derived quantities at ``targets_c`` FLOPs (and
    ``unique_tokens`` for the data-constrained allocation). selection: description of the data
    selection, recorded in the provenance.
    """
    law = get_law(law, tuple(inputs or {}))
    if optimal_pairs and y is None:
        y = np.ones(len(np.atleast_1d(n)))      # the pairs are the data; there is no loss to read
    if approach not in (1, 2, 3):
        raise UserError(f"approach {approach!r} is not one of 1, 2, 3")
    check_loss(loss)
    space = check_space(space or law.space)
    if not (delta > 0):
        raise UserError(f"delta={delta!r}; expected a positive Huber threshold")
    y = _positive("y (loss)", y) if space == "log" or approach != 3 else _finite("y (the fitted quantity)", y)
    arrays = {"n": n, "d": d, "c": c, "u": u, "x": x}
    given = {k: _positive(INPUT_NAMES[k], v, len(y)) for k, v in arrays.items() if v is not None and k != "x"}
    if x is not None:
        given["x"] = _finite(INPUT_NAMES["x"], x, len(y))
    if "c" not in given and "n" in given and "d" in given:
        given["c"] = 6.0 * given["n"] * given["d"]
    if "n" in given and "d" in given:
        given["m"] = given["d"] / given["n"]
    for name, values in dict(inputs or {}).items():
        given[name] = _finite(f"input {name}", values, len(y))
    targets_c = tuple(float(t) for t in np.atleast_1d(targets_c))

    if approach == 3:
        misplaced = [k for k, v in (("window", window), ("weights", weights), ("optimal pairs", optimal_pairs))
                     if v is not None and v is not False]
        if misplaced:
            raise UserError(f"{', '.join(misplaced)} apply to Approach 2 only (--approach 2)")
        fitted = _approach3(law, given, y, space=space, loss=loss, delta=delta, fixed=fixed, tie=tie, bounds=bounds,
                            starts=starts, start=start, grid=grid, screen_iterations=screen_iterations,
                            candidates=candidates, exhaustive=exhaustive, screen_rows=screen_rows,
                            profile=profile, level=level, report=report)
    else:
        misplaced = [k for k, v in (("fixed", fixed), ("tie", tie), ("bounds", bounds), ("starts", starts),
                                    ("start", start), ("grid", grid), ("profile", profile), ("report", report)) if v]
        misplaced += [k for k, v in (("loss", loss != "huber"), ("space", space != "log")) if v]
        if misplaced:
            raise UserError(f"{', '.join(misplaced)} apply to Approach 3 only; approach {approach} fits power laws "
                            "to compute-optimal points")
        fitted = _power_laws(approach, given, y, run_id, budget_rtol=budget_rtol, on_bad=on_bad, window=window,
                             weights=weights, optimal_pairs=optimal_pairs)
    params, objective, diagnostics, refit, strata, provenance_extra = fitted
    if approach == 3 and unique_tokens is None and "u" in law.inputs:
        unique_tokens = float(np.max(given["u"]))
    provenance = {
        "law": law.name, "formula": law.formula, "expression": law.expression, "bound": sorted(inputs or {}),
        "approach": approach, "space": space if approach == 3 else None,
        "loss": loss if approach == 3 else None, "delta": delta if approach == 3 and loss != "mse" else None,
        "fixed": dict(fixed or {}), "tie": list(tie) if tie else None,
        "bounds": {k: list(v) for k, v in (bounds or {}).items()}, **provenance_extra,
        "budget_rtol": budget_rtol if approach == 2 else None,
        "bootstrap": int(bootstrap), "seed": int(seed), "level": level if bootstrap else None,
        "targets_c": list(targets_c), "unique_tokens": unique_tokens, "selection": selection or {}, **_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    name = law.name if approach == 3 else "allocation"
    fit = FitResult(name, {k: float(v) for k, v in params.items()}, float(objective), int(len(y)),
                    approach, {}, diagnostics, provenance, law_definition=law if approach == 3 else None)
    if bootstrap:
        fit = _with_bootstrap(fit, given, y, run_id, strata, refit, int(bootstrap), seed, level, targets_c)
    return fit


def _approach3(law: Law, given, y, *, space, loss, delta, fixed, tie, bounds, starts, start, grid, screen_iterations,
               candidates, exhaustive, screen_rows, profile, level, report):
    """Fit an Approach-3 law; returns (params, objective, diagnostics, refit, strata, provenance)."""
    from scaling.fit.profile import profile_interval

    missing = [k for k in law.inputs if k not in given]
    if missing:
        raise UserError(f"law {law.name} needs {', '.join(INPUT_NAMES.get(k, k) for k in missing)}")
    constraints = Constraints(dict(fixed or {}), tuple(tie) if tie else None, dict(bounds or {}))
    fitter = Parametric(law, {k: given[k] for k in law.inputs}, y, space, loss, delta, constraints,
                        screen_iterations, candidates, screen_rows)
    _check_design(law, fitter, y)
    rows = start_grid(law, None, start, grid) if (start or grid) else starts
    sol = fitter.fit(rows, exhaustive=exhaustive)
    diagnostics = dict(sol.diagnostics)
    diagnostics["engine"] = "batched Newton (scaling.fit.lse)" if fitter.fast else "lmfit (scaling.fit.generic)"
    diagnostics["goodness"] = fitter.goodness(sol.params)
    rival = fitter.rival_warning(sol, level)
    diagnostics["warnings"] = list(diagnostics.get("warnings", [])) + ([rival] if rival else [])
    if diagnostics.get("at_bounds"):
        diagnostics["warnings"].append(f"{', '.join(diagnostics['at_bounds'])} ended at a bound (--bound): the "
                                       "estimate is the bound, not a minimum inside it")
    if profile:
        diagnostics["profile"] = {name: profile_interval(fitter, sol, name, level).to_json() for name in profile}
    if report:
        diagnostics["lmfit_report"] = fitter.report(sol)

    def refit(w):
        return fitter.refit(sol, np.repeat(np.arange(len(y)), w.astype(int))).params

    extra = {"starts": _describe_starts(starts, start, grid, law), "engine": diagnostics["engine"]}
    return sol.params, sol.objective, diagnostics, refit, None, extra


def _power_laws(approach, given, y, run_id, *, budget_rtol, on_bad, window, weights, optimal_pairs):
    """Approaches 1 and 2; returns (params, objective, diagnostics, refit, strata, provenance)."""
    n, c, d = given.get("n"), given.get("c"), given.get("d")
    if n is None:
        raise UserError(f"approach {approach} needs N (parameters)")
    if c is None:
        raise UserError(f"approach {approach} needs C (FLOPs) or D (tokens)")
    w = None if weights is None else _positive("weights", weights, len(y))
    strata = None
    if approach == 2 and optimal_pairs:
        def run_fit(idx):
            res = optimal_pairs_fit(c[idx], n[idx], None if w is None else w[idx])
            return res, {"minima": res.minima.to_dict("records"), "skipped": []}
    elif approach == 2:
        strata = group_budgets(c, budget_rtol)

        def run_fit(idx):
            res = _approach2(n[idx], c[idx], y[idx], compute=True, budget_rtol=budget_rtol, on_bad=on_bad,
                             window=window, weights=None if w is None else w[idx])
            return res, {"minima": res.minima.to_dict("records"), "skipped": res.skipped}
    else:
        if run_id is None or d is None:
            raise UserError("approach 1 needs a run id and tokens seen for every evaluation point")
        if window is not None or w is not None or optimal_pairs:
            raise UserError("window, weights and optimal pairs apply to Approach 2 only")
        runs = np.asarray(run_id).astype(str)

        def run_fit(idx):
            res = _approach1(_copy_labels(runs, idx), n[idx], d[idx], y[idx])
            return res, {"envelope": res.envelope.to_dict("records")}
    res, diagnostics = run_fit(np.arange(len(y)))
    params = {"k_n": res.n_law.k, "a": res.n_law.gamma, "k_d": res.d_law.k, "b": res.d_law.gamma}
    objective = float(res.n_law.n_points * (res.n_law.rmse ** 2 + res.d_law.rmse ** 2))
    points = res.n_law.n_points
    diagnostics.update({"sum_of": "squared log residuals of the N* and D* power laws", "budgets": points,
                        "goodness": {"space": "log", "r2": res.n_law.r2, "rmse": res.n_law.rmse}, "warnings": []})
    if points < MIN_BUDGETS:
        diagnostics["warnings"].append(
            f"the allocation exponents rest on {points} {'budgets' if approach == 2 else 'envelope points'}; "
            f"with fewer than {MIN_BUDGETS} the power law has at most {max(points - 2, 0)} degree(s) of freedom "
            "and its exponent is poorly determined")

    def refit(wts):
        r, _ = run_fit(np.repeat(np.arange(len(y)), wts.astype(int)))
        return {"k_n": r.n_law.k, "a": r.n_law.gamma, "k_d": r.d_law.k, "b": r.d_law.gamma}

    extra = {"starts": None, "window": window, "weighted": w is not None, "optimal_pairs": bool(optimal_pairs)}
    return params, objective, diagnostics, refit, strata, extra


def _with_bootstrap(fit, given, y, run_id, strata, refit, n_boot, seed, level, targets_c) -> FitResult:
    boot = _bootstrap(given.get("n"), given.get("d"), y, fit, groups=run_id, n_boot=n_boot, seed=seed, level=level,
                      targets_c=targets_c, refit=refit, strata=strata)
    diagnostics = dict(fit.diagnostics)
    diagnostics["bootstrap"] = {"resamples": boot.n_boot, "failed": boot.n_failed, "units": boot.n_units,
                                "unit": "run" if run_id is not None else "row", "level": boot.level,
                                "stratified": strata is not None, "standard_errors": boot.standard_errors,
                                **boot.diagnostics}
    diagnostics["warnings"] = diagnostics["warnings"] + boot.warnings
    samples = {k: [float(v) for v in boot.samples[k]] for k in fit.params if k in boot.samples}
    return FitResult(fit.law, fit.params, fit.objective, fit.n_points, fit.approach, dict(boot.intervals),
                     diagnostics, fit.provenance, samples, fit.law_definition)


def _describe_starts(starts, start, grid, law: Law) -> str:
    if start or grid:
        parts = [f"{k}={v:g}" for k, v in (start or {}).items()]
        parts += [f"{k}={lo:g}:{hi:g}:{count}" for k, (lo, hi, count) in (grid or {}).items()]
        return f"{law.name} start grid with {', '.join(parts)}"
    if starts is None:
        return "Hoffmann et al. 4,500-point grid" if law.name == "chinchilla" else f"{law.name} start grid"
    count = 1 if isinstance(starts, Mapping) else len(starts)
    return f"{count} given start{'s' if count != 1 else ''}"


def _positive(name: str, values, length: int | None = None) -> np.ndarray:
    return _finite(name, values, length, positive=True)


def _finite(name: str, values, length: int | None = None, positive: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if length is not None and arr.size != length:
        raise UserError(f"{name} has {arr.size} values but the loss has {length}; expected one per point")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{name} at point {i} is {float(arr[i])!r}; expected a {'positive ' if positive else ''}"
                        "finite number")
    return arr


def _check_design(law: Law, fitter: Parametric, y) -> None:
    """Enough points for the free parameters, and inputs that vary."""
    if len(y) < fitter.free + 1:
        raise UserError(f"{len(y)} points cannot fit {fitter.free} free parameters of law {law.name}; "
                        f"need at least {fitter.free + 1}")
    for k in law.inputs:
        distinct = np.unique(fitter.inputs[k])
        if distinct.size < 2:
            raise UserError(f"{INPUT_NAMES.get(k, k)} is constant ({distinct[0]:.6g}) across all {len(y)} points; "
                            f"law {law.name} needs it to vary")


def _copy_labels(runs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Run labels of resampled rows, made distinct for each copy of a run drawn more than once."""
    labels = runs[idx]
    copy = np.zeros(len(idx), dtype=int)
    seen: dict[tuple[str, int], int] = {}
    for j, (run, i) in enumerate(zip(labels, idx)):
        key = (run, int(i))
        copy[j] = seen.get(key, 0)
        seen[key] = copy[j] + 1
    return np.char.add(np.char.add(labels, "#"), copy.astype(str))


def _versions() -> dict:
    try:
        own = version("scaling")
    except PackageNotFoundError:
        own = None
    return {"scaling_version": own, "numpy_version": np.__version__, "scipy_version": scipy.__version__}
