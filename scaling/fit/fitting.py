"""``fit_law``: one entry point for Approaches 1-3, with optional bootstrap and full provenance."""

from __future__ import annotations

import datetime as _dt
from importlib.metadata import PackageNotFoundError, version
from typing import Mapping

import numpy as np
import scipy

from scaling.errors import UserError
from scaling.fit.approach3 import MINIMA_RTOL, fit_chinchilla, fit_generic
from scaling.fit.curves import approach1 as _approach1
from scaling.fit.isoflop import approach2 as _approach2
from scaling.fit.laws import Law, get_law
from scaling.fit.objective import check_loss
from scaling.fit.result import FitResult
from scaling.fit.uncertainty import bootstrap as _bootstrap

_INPUT_NAMES = {"n": "N (parameters)", "d": "D (tokens)", "c": "C (FLOPs)", "u": "U (unique tokens)"}


def fit_law(n, d, y, law: str | Law = "chinchilla", approach: int = 3, *, c=None, u=None, run_id=None,
            loss: str = "huber", delta: float = 1e-3, fixed: Mapping[str, float] | None = None,
            tie: tuple[str, str] | None = None, starts=None, screen_iterations: int = 20, candidates: int = 16,
            exhaustive: bool = False, budget_rtol: float = 0.05, on_bad: str = "raise",
            bootstrap: int = 0, seed: int = 0, level: float = 0.95, targets_c=(),
            selection: dict | None = None) -> FitResult:
    """Fit a scaling law to runs and return a :class:`FitResult`.

    n: parameters per point; d: training tokens; y: loss (nats/token); all positive arrays.
    c: FLOPs (default 6*N*D; used by compute laws and Approach 2); u: unique tokens
    (``data_constrained``); run_id: run of each point (Approach 1 curves; bootstrap units).
    law: a name in :data:`scaling.fit.laws.LAWS` or a :class:`Law`; approach: 1 (envelope of
    training curves), 2 (IsoFLOP parabolas) or 3 (parametric fit of every run).
    Approach 3: ``loss`` huber | mse | huber-ml on log-residuals, ``delta`` the Huber threshold,
    ``fixed`` natural-unit values by name, ``tie`` a pair forced equal (('alpha', 'beta')),
    ``starts`` replaces the start grid, ``screen_iterations``/``candidates``/``exhaustive`` tune
    the multi-start (see :mod:`scaling.fit.approach3`). Approach 2: ``budget_rtol`` groups
    budgets, ``on_bad`` raise | skip for budgets without an interior minimum.
    bootstrap: number of resamples of whole runs (0 = none), with ``seed``, interval ``level``
    and derived quantities at ``targets_c`` FLOPs. selection: description of the data selection,
    recorded in the provenance.
    """
    law = get_law(law)
    if approach not in (1, 2, 3):
        raise UserError(f"approach {approach!r} is not one of 1, 2, 3")
    check_loss(loss)
    if not (delta > 0):
        raise UserError(f"delta={delta!r}; expected a positive Huber threshold")
    y = _positive("y (loss)", y)
    n = _positive(_INPUT_NAMES["n"], n, len(y)) if n is not None else None
    d = _positive(_INPUT_NAMES["d"], d, len(y)) if d is not None else None
    if c is None and n is not None and d is not None:
        c = 6.0 * n * d
    c = _positive(_INPUT_NAMES["c"], c, len(y)) if c is not None else None
    u = _positive(_INPUT_NAMES["u"], u, len(y)) if u is not None else None
    inputs = {"n": n, "d": d, "c": c, "u": u}
    targets_c = tuple(float(t) for t in np.atleast_1d(targets_c))

    if approach == 3:
        missing = [k for k in law.inputs if inputs[k] is None]
        if missing:
            raise UserError(f"law {law.name} needs {', '.join(_INPUT_NAMES[k] for k in missing)}")
        _check_design(law, inputs, y, fixed, tie)
        options = {"loss": loss, "delta": delta, "fixed": fixed, "tie": tie}
        if law.name == "chinchilla":
            sol = fit_chinchilla(n, d, y, starts=starts, screen_iterations=screen_iterations, candidates=candidates,
                                 exhaustive=exhaustive, **options)

            def refit(w):
                keep = w > 0
                return fit_chinchilla(n[keep], d[keep], y[keep], starts=[sol.params], weights=w[keep], **options).params
        else:
            law_inputs = {k: inputs[k] for k in law.inputs}
            sol = fit_generic(law, law_inputs, y, starts=starts, **options)

            def refit(w):
                idx = np.repeat(np.arange(len(y)), w.astype(int))
                return fit_generic(law, {k: v[idx] for k, v in law_inputs.items()}, y[idx],
                                   starts=[sol.params], **options).params
        params, objective, diagnostics = sol.params, sol.objective, dict(sol.diagnostics)
        near = [m for m in diagnostics.get("minima", [])[1:] if m["relative_to_best"] <= MINIMA_RTOL]
        diagnostics["warnings"] = list(diagnostics.get("warnings", [])) + ([
            f"{len(near)} other minima lie within {MINIMA_RTOL:g} of the best objective; "
            "the data do not single out one parameter vector"] if near else [])
        start_desc = _describe_starts(starts, law)
    else:
        misplaced = [k for k, v in (("fixed", fixed), ("tie", tie), ("starts", starts)) if v]
        if loss != "huber":
            misplaced.append("loss")
        if misplaced:
            raise UserError(f"{', '.join(misplaced)} apply to Approach 3 only; approach {approach} fits power laws "
                            "to compute-optimal points")
        if n is None:
            raise UserError(f"approach {approach} needs N (parameters)")
        if approach == 2:
            def run_fit(idx):
                res = _approach2(n[idx], c[idx], y[idx], compute=True, budget_rtol=budget_rtol, on_bad=on_bad)
                return res, {"minima": res.minima.to_dict("records"), "skipped": res.skipped}
        else:
            if run_id is None or d is None:
                raise UserError("approach 1 needs a run id and tokens seen for every evaluation point")
            runs = np.asarray(run_id).astype(str)

            def run_fit(idx):
                res = _approach1(_copy_labels(runs, idx), n[idx], d[idx], y[idx])
                return res, {"envelope": res.envelope.to_dict("records")}
        res, diagnostics = run_fit(np.arange(len(y)))
        params = {"k_n": res.n_law.k, "a": res.n_law.gamma, "k_d": res.d_law.k, "b": res.d_law.gamma}
        objective = float(res.n_law.n_points * (res.n_law.rmse ** 2 + res.d_law.rmse ** 2))
        diagnostics.update({"sum_of": "squared log residuals of the N* and D* power laws", "warnings": []})

        def refit(w):
            r, _ = run_fit(np.repeat(np.arange(len(y)), w.astype(int)))
            return {"k_n": r.n_law.k, "a": r.n_law.gamma, "k_d": r.d_law.k, "b": r.d_law.gamma}
        start_desc = None

    provenance = {
        "law": law.name, "formula": law.formula, "approach": approach,
        "loss": loss if approach == 3 else None, "delta": delta if approach == 3 and loss != "mse" else None,
        "fixed": dict(fixed or {}), "tie": list(tie) if tie else None, "starts": start_desc,
        "budget_rtol": budget_rtol if approach == 2 else None,
        "bootstrap": int(bootstrap), "seed": int(seed), "level": level if bootstrap else None,
        "targets_c": list(targets_c), "selection": selection or {}, **_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    fit = FitResult(law.name, {k: float(v) for k, v in params.items()}, float(objective), int(len(y)),
                    approach, {}, diagnostics, provenance)
    if bootstrap:
        boot = _bootstrap(n, d, y, fit, groups=run_id, n_boot=int(bootstrap), seed=seed, level=level,
                          targets_c=targets_c, refit=refit)
        diagnostics = dict(diagnostics)
        diagnostics["bootstrap"] = {"resamples": boot.n_boot, "failed": boot.n_failed, "units": boot.n_units,
                                    "unit": "run" if run_id is not None else "row", "level": boot.level,
                                    "standard_errors": boot.standard_errors, **boot.diagnostics}
        diagnostics["warnings"] = diagnostics["warnings"] + boot.warnings
        fit = FitResult(fit.law, fit.params, fit.objective, fit.n_points, fit.approach, dict(boot.intervals),
                        diagnostics, provenance)
    return fit


def _describe_starts(starts, law: Law) -> str:
    if starts is None:
        return "Hoffmann et al. 4,500-point grid" if law.name == "chinchilla" else f"{law.name} start grid"
    count = 1 if isinstance(starts, Mapping) else len(starts)
    return f"{count} given start{'s' if count != 1 else ''}"


def _positive(name: str, values, length: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if length is not None and arr.size != length:
        raise UserError(f"{name} has {arr.size} values but the loss has {length}; expected one per point")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{name} at point {i} is {float(arr[i])!r}; expected a positive finite number")
    return arr


def _check_design(law: Law, inputs, y, fixed, tie) -> None:
    """Enough points for the free parameters, and inputs that vary."""
    n_free = len(law.parameters) - len(fixed or {}) - (1 if tie else 0)
    if len(y) < n_free + 1:
        raise UserError(f"{len(y)} points cannot fit {n_free} free parameters of law {law.name}; need at least {n_free + 1}")
    for k in law.inputs:
        distinct = np.unique(inputs[k])
        if distinct.size < 2:
            raise UserError(f"{_INPUT_NAMES[k]} is constant ({distinct[0]:.6g}) across all {len(y)} points; "
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
