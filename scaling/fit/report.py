"""Text reports of fits for ``scaling fit``: parameters with intervals, goodness of fit,
allocation, diagnostics and minima, comparisons, back-tests and predictions. Numbers are printed
with 7 significant digits (4 in wide tables)."""

from __future__ import annotations

import math

import numpy as np

from scaling.errors import UserError


def g7(x: float) -> str:
    """Seven significant digits ('nan' for non-finite values)."""
    return f"{x:.7g}" if x is not None and math.isfinite(x) else "nan"


def fit_report(fit, table: str, rows_read: int, targets) -> str:
    """The whole report of one fit (see module docstring)."""
    prov, diag = fit.provenance, fit.diagnostics
    lines = [_header(fit, table, rows_read)]
    excluded = prov.get("selection", {}).get("excluded", {})
    if excluded:
        lines.append("  excluded: " + "; ".join(f"{v} with {k}" for k, v in excluded.items()))
    if fit.approach == 3:
        lines.append(f"  {prov.get('formula') or fit.law}")
    if prov.get("bounds"):
        lines.append("  bounds: " + ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in prov["bounds"].items()))
    if prov.get("fixed"):
        lines.append("  fixed: " + ", ".join(f"{k} = {v:g}" for k, v in prov["fixed"].items()))
    lines += ["", _parameter_table(fit)]
    lines.append(f"{'objective':<12}{fit.objective:>16.7g}")
    if "huber_ml" in diag:
        lines.append(f"{'log sigma':<12}{diag['huber_ml']['log_sigma']:>16.7g}   "
                     f"(log-likelihood {diag['huber_ml']['log_likelihood']:.7g})")
    good = diag.get("goodness")
    if good:
        unit = "log" if good["space"] == "log" else "y"
        lines.append(f"goodness: R^2 {good['r2']:.6g}, RMSE {good['rmse']:.4g} (in {unit} units)"
                     + (f", mean |relative error| {good['mean_abs_rel_error']:.4g}" if "mean_abs_rel_error" in good else ""))
    lines += ["", *_allocation(fit, targets)]
    lines += ["", "diagnostics:"] + ["  " + s for s in _diagnostics(fit)]
    if diag.get("lmfit_report"):
        lines += ["", "lmfit fit report (log_X rows are natural logarithms of X):", diag["lmfit_report"]]
    lines += [f"warning: {w}" for w in diag.get("warnings", [])]
    return "\n".join(lines)


def _header(fit, table, rows_read) -> str:
    prov = fit.provenance
    if fit.approach == 3:
        return f"{fit.law} law, Approach 3 ({_objective_name(prov)}): {fit.n_points} points of {rows_read} rows in {table}"
    if fit.approach == 2:
        how = "given compute-optimal pairs" if prov.get("optimal_pairs") else "IsoFLOP parabolas" + "".join(
            [f", window of {prov['window']} sizes each side" if prov.get("window") else "",
             ", weighted" if prov.get("weighted") else ""])
    else:
        how = "envelope of training curves"
    return (f"compute-optimal allocation N*(C) = k_n*C^a, D*(C) = k_d*C^b, Approach {fit.approach} ({how}): "
            f"{fit.n_points} points of {rows_read} rows in {table}")


def _objective_name(prov) -> str:
    space = "log loss" if prov.get("space", "log") == "log" else "y itself"
    loss = prov.get("loss")
    if loss == "mse":
        return f"least squares on {space}"
    if loss == "huber-ml":
        return f"Huber likelihood with free scale on {space}, delta={prov.get('delta'):g}"
    return f"Huber sum on {space}, delta={prov.get('delta'):g}"


def _parameter_table(fit) -> str:
    level = fit.provenance.get("level") or fit.diagnostics.get("bootstrap", {}).get("level")
    profile = fit.diagnostics.get("profile", {})
    head = f"{'parameter':<12}{'estimate':>16}" + (f"   {level:.0%} interval (bootstrap)    " if fit.intervals else "")
    if profile:
        p_level = next(iter(profile.values()))["level"]
        head += f"   {p_level:.0%} interval (profile)"
    lines = [head]
    for name, value in fit.params.items():
        line = f"{name:<12}{g7(value):>16}" + (f"   {_pair(fit.intervals.get(name)):<28}" if fit.intervals else "")
        if name in profile:
            lo, hi = profile[name]["lo"], profile[name]["hi"]
            line += f"   [{'open' if lo is None else g7(lo)}, {'open' if hi is None else g7(hi)}]"
        lines.append(line)
    return "\n".join(lines)


def _pair(pair) -> str:
    return f"[{g7(pair[0])}, {g7(pair[1])}]" if pair else ""


def _allocation(fit, targets) -> list[str]:
    from scaling.fit.allocation import compute_optimal, derived_quantities

    lines = ["compute-optimal allocation (C = 6*N*D):"]
    if not len(targets):
        return lines + ["  none: the fit reads no N or D"]
    try:
        law = fit.law_object() if fit.approach == 3 else fit.law
        derived = derived_quantities(fit.params, law, fit.approach, (), fit.provenance.get("unique_tokens"))
        alloc = compute_optimal(fit, np.asarray(targets, dtype=float))
    except UserError as exc:
        return lines + [f"  none: {exc}"]
    if derived:
        lines.append("  " + ", ".join(f"{k} = {g7(v)}{' ' + _pair(fit.intervals.get(k)) if fit.intervals.get(k) else ''}"
                                      for k, v in derived.items()))
    if fit.provenance.get("unique_tokens") and fit.approach == 3 and "u" in fit.law_object().inputs:
        lines.append(f"  at U = {fit.provenance['unique_tokens']:.4g} unique tokens")
    lines.append(f"  {'C (FLOPs)':>10}{'N*':>24}{'D*':>24}{'D*/N*':>20}{'loss':>12}")
    for i, cval in enumerate(targets):
        tag = f"@{cval:.3g}"
        lines.append(f"  {cval:>10.3g}{g7(alloc.n_opt[i]):>24}{g7(alloc.d_opt[i]):>24}"
                     f"{alloc.tokens_per_param[i]:>20.6g}{g7(alloc.loss[i]):>12}")
        if fit.intervals.get("n_opt" + tag):
            lines.append(f"  {'':>10}" + "".join(f"{_short(fit.intervals[k + tag]):>{w}}"
                                                 for k, w in (("n_opt", 24), ("d_opt", 24), ("tokens_per_param", 20))))
    return lines


def _short(pair) -> str:
    return f"[{pair[0]:.4g}, {pair[1]:.4g}]"


def _diagnostics(fit) -> list[str]:
    diag = fit.diagnostics
    out = []
    if fit.approach == 3:
        out.append(f"{diag.get('reached_best')} of {diag.get('reached_best_of')} refined starts reached the best objective "
                   f"({diag.get('starts')} starts; {diag.get('mode', diag.get('optimizer'))})")
        detail = f"Newton decrement {diag['newton_decrement']:.2g}, " if "newton_decrement" in diag else ""
        out.append(f"{'converged' if diag.get('converged') else 'NOT converged'} ({diag.get('engine', '')}): {detail}"
                   f"gradient norm {diag.get('gradient_norm', float('nan')):.2g}")
        if "polish" in diag:
            out.append(f"L-BFGS-B cross-check from the optimum: relative improvement {diag['polish']['relative_improvement']:.2g}")
        minima = diag.get("minima", [])
        if len(minima) > 1:
            out.append(f"{len(minima)} distinct minima among refined starts (best first):")
            names = list(fit.params)
            for m in minima:
                stat = f", statistic {m['statistic']:.3g}" if "statistic" in m else ""
                out.append("  " + ", ".join(f"{k}={m[k]:.5g}" for k in names if k in m)
                           + f"; objective {m['objective']:.7g} (+{m['relative_to_best']:.3g} relative{stat})")
        for name, p in diag.get("profile", {}).items():
            out.append(f"profile of {name}: {len(p['points'])} refits; {p['criterion']}")
    elif fit.approach == 2:
        what = "given optimal pairs" if fit.provenance.get("optimal_pairs") else "budgets with an interior minimum"
        out.append(f"{diag.get('budgets', len(diag['minima']))} {what} give the exponents" +
                   (f"; skipped: {' | '.join(diag['skipped'])}" if diag.get("skipped") else ""))
        for m in diag["minima"]:
            runs = f" ({m['points']} runs)" if m.get("points", 1) > 1 else ""
            out.append(f"  C={m['c']:.4g}: N*={g7(m['n_opt'])} loss*={g7(m['loss_opt'])}{runs}")
    else:
        out.append(f"{len(diag['envelope'])} envelope points; "
                   f"{len({e['run_id'] for e in diag['envelope']})} runs are best somewhere")
    boot = diag.get("bootstrap")
    if boot:
        out.append(f"bootstrap: {boot['resamples'] - boot['failed']} of {boot['resamples']} refits over "
                   f"{boot['units']} {boot['unit']}s{' (within budgets)' if boot.get('stratified') else ''} "
                   f"(seed {fit.provenance.get('seed')})")
    return out


def comparison(fits, targets) -> str:
    """Allocations of several fits at the same budgets (ratios relative to the first)."""
    from scaling.fit.allocation import compare_allocations

    table = compare_allocations(fits, targets)
    lines = ["", "compared allocations (ratios relative to this fit):",
             f"  {'C (FLOPs)':>10}  {'fit':<24}{'N*':>14}{'D*':>14}{'D*/N*':>10}{'N* ratio':>10}{'D* ratio':>10}"]
    for row in table.itertuples():
        lines.append(f"  {row.c:>10.3g}  {str(row.fit):<24}{row.n_opt:>14.5g}{row.d_opt:>14.5g}"
                     f"{row.tokens_per_param:>10.4g}{row.n_ratio:>10.4g}{row.d_ratio:>10.4g}")
    return "\n".join(lines)


def backtest_report(test) -> str:
    """The held-out points with their errors, and the aggregate errors (with intervals)."""
    s = test.summary
    level = s.get("level")
    mean_i = f" {_short(s['mean_abs_rel_error_interval'])}" if "mean_abs_rel_error_interval" in s else ""
    max_i = f" {_short(s['max_abs_rel_error_interval'])}" if "max_abs_rel_error_interval" in s else ""
    lines = ["", f"back-test: fitted on {s['n_train']} points, predicted {s['n_test']} held out ({s['rule']})",
             f"  absolute relative error: mean {s['mean_abs_rel_error']:.4g}{mean_i}, median "
             f"{s['median_abs_rel_error']:.4g}, max {s['max_abs_rel_error']:.4g}{max_i}"
             + (f" ({level:.0%} bootstrap intervals)" if level else "") + f"; RMSE {s['rmse']:.4g}"]
    table = test.held_out
    cols = [c for c in ("n", "d", "c") if c in table.columns]
    head = f"  {'run':<16}" + "".join(f"{c.upper():>12}" for c in cols) + f"{'observed':>12}{'predicted':>12}"
    lines.append(head + (f"{'interval':>26}" if "predicted_lo" in table.columns else "") + f"{'error':>10}")
    for row in table.to_dict("records"):
        interval = f"{_short((row['predicted_lo'], row['predicted_hi'])):>26}" if "predicted_lo" in row else ""
        lines.append(f"  {str(row['run_id']):<16}" + "".join(f"{row[c]:>12.4g}" for c in cols)
                     + f"{row['observed']:>12.6g}{row['predicted']:>12.6g}{interval}{row['abs_rel_error']:>10.3%}")
    return "\n".join(lines)


def points_report(table, chained: bool, chain_path: str | None) -> str:
    """Predictions at --at points (a chain: loss by the first fit, metric by this one)."""
    keys = [k for k in table.columns if k not in ("predicted", "lo", "hi", "loss", "loss_lo", "loss_hi", "metric",
                                                  "metric_lo", "metric_hi", "draws")]
    lines = [""]
    if chained:
        draws = int(table["draws"].iloc[0]) if len(table) else 0
        lines.append(f"chain: loss from {chain_path}, then this fit's metric at that loss "
                     f"({draws} paired bootstrap draws)")
        for row in table.to_dict("records"):
            where = ", ".join(f"{k}={row[k]:.4g}" for k in keys)
            lines.append(f"  {where}: loss {g7(row['loss'])} {_short((row['loss_lo'], row['loss_hi']))}, "
                         f"metric {g7(row['metric'])} {_short((row['metric_lo'], row['metric_hi']))}")
    else:
        lines.append("predictions:")
        for row in table.to_dict("records"):
            where = ", ".join(f"{k}={row[k]:.4g}" for k in keys)
            interval = f" {_short((row['lo'], row['hi']))}" if math.isfinite(row["lo"]) else ""
            lines.append(f"  {where}: {g7(row['predicted'])}{interval}")
    return "\n".join(lines)
