"""The standard scaling-law figures, one set per variant, from the final run of every run.

- ``isoflop``: loss vs parameters per compute budget, the fitted parabolas and their minima
  (Approach 2), one file per variant;
- ``loss_vs_compute``: every run's loss vs compute, the best run per compute, and the
  compute-optimal frontier L*(C) of the Approach-3 law with its bootstrap band;
- ``allocation``: N*(C) and D*(C) from Approach 2 (minima and power laws) and Approach 3, with
  bootstrap bands, beside the allocations of published laws;
- ``isoloss``: contours of the fitted L(N, D) with the efficient frontier and the runs, one file
  per variant;
- ``residuals``: relative residuals of the Approach-3 fit vs compute;
- ``backtest``: the law fitted below the largest budget predicts the runs above it.

The loss column is ``--loss`` (default loss_val); N, D and C are ``--params``, ``--tokens`` and
``--compute``. Bands are 95 % percentile intervals over bootstrap resamples of whole runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.figures import fits
from scaling.figures.canvas import Canvas
from scaling.figures.metrics import COMPUTE_LABEL, PARAMS_LABEL, TOKENS_LABEL, metric
from scaling.figures.registry import Context, Output, register
from scaling.figures.style import sci, sequential
from scaling.figures.table import Skip, final_rows, require, run_key, slug, variants, with_values

def _runs(ctx: Context) -> pd.DataFrame:
    """Final rows with positive N, D, C and a loss; Skip when there are none."""
    cols = ctx.columns
    require(ctx.table, cols.params, cols.tokens, cols.compute, cols.loss, what="the fitted-law figures")
    df = with_values(final_rows(ctx.table), cols.params, cols.tokens, cols.compute, cols.loss)
    if df.empty:
        raise Skip(f"no final runs with {cols.params}, {cols.tokens}, {cols.compute} and {cols.loss} values")
    return df


def _law_fits(ctx: Context, df: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame, fits.LawFit]]:
    """(variant, rows, Approach-3 fit) for each variant the fitting engine can fit; refusals become notes."""
    out, reasons = [], []
    for variant, rows in variants(df):
        label = rows["variant_label"].iloc[0]
        try:
            law = fits.law_fit(rows, ctx, key=f"law:{variant}", label=label)
        except UserError as exc:
            reasons.append(f"{label}: {exc}")
            continue
        out.append((variant, rows, law))
    if not out:
        raise Skip("no variant could be fitted (" + "; ".join(reasons) + ")")
    for reason in reasons:
        ctx.note(f"not fitted: {reason}")
    return out


def _curve(canvas: Canvas, panel: str, curve: fits.Curve, series: str, colour: str, label: str | None = None,
           dashed: bool = False) -> None:
    canvas.line(panel, curve.x, curve.y, series, color=colour, label=label, dashed=dashed)
    if curve.lo is not None:
        canvas.band(panel, curve.x, curve.lo, curve.hi, series, color=colour)


@register("isoflop", "figure", "IsoFLOP profiles: loss vs N per budget, fitted parabolas and minima (Approach 2)")
def isoflop(ctx: Context) -> list[Output]:
    cols, df = ctx.columns, _runs(ctx)
    outputs, reasons = [], []
    for variant, rows in variants(df):
        label = rows["variant_label"].iloc[0]
        budget_of = fits.budgets(rows[cols.compute])
        sizes = rows.groupby(budget_of)[cols.params].nunique()
        budgets = sorted(sizes[sizes >= 2].index)
        if not budgets:
            reasons.append(f"{label}: no compute budget with two or more model sizes")
            continue
        try:
            iso = fits.isoflop(rows, ctx)
        except UserError as exc:  # too few budgets with an interior minimum: draw the profiles alone
            iso = None
            ctx.note(f"{label}: profiles without parabolas: {exc}")
        canvas = Canvas(ctx.style, ["isoflop"], title=label)
        canvas.axes_for("isoflop", PARAMS_LABEL, metric(cols.loss).axis_label, xlog="count")
        for budget, colour in zip(budgets, sequential(len(budgets))):
            group = rows[budget_of == budget].sort_values(cols.params)
            name = f"C={sci(budget)}"
            extra = {"run": run_key(group), "budget": budget}
            legend = f"C ≈ {sci(float(f'{budget:.2g}'))}"
            ns = np.geomspace(group[cols.params].min() / 1.3, group[cols.params].max() * 1.3, 40)
            parabola = iso.parabola(budget, ns) if iso is not None else None
            if parabola is not None:
                canvas.points("isoflop", group[cols.params], group[cols.loss], name, color=colour, label=legend,
                              extra=extra)
                _curve(canvas, "isoflop", parabola, f"{name}: parabola", colour)
            else:
                canvas.line("isoflop", group[cols.params], group[cols.loss], name, color=colour, role="data",
                            marker="o", label=legend, extra=extra)
        if iso is not None:
            m = iso.result.minima
            canvas.points("isoflop", m["n_opt"], m["loss_opt"], "minima", color="#000000", role="minimum", marker="*",
                          size=ctx.style.marker_size * 2.2, label="parabola minimum", extra={"budget": m["c"]})
        if canvas.drew("interval"):
            canvas.key("95 % bootstrap band", band=True)
        fig, data = canvas.finish()
        outputs.append(Output(f"isoflop_{slug(label)}", data, figure=fig))
    if not outputs:
        raise Skip("; ".join(reasons))
    for reason in reasons:
        ctx.note(f"no IsoFLOP profile: {reason}")
    return outputs


@register("loss_vs_compute", "figure", "Loss vs compute: runs, best run per compute and the fitted frontier L*(C)")
def loss_vs_compute(ctx: Context) -> list[Output]:
    cols, df = ctx.columns, _runs(ctx)
    canvas = Canvas(ctx.style, ["loss"])
    canvas.axes_for("loss", COMPUTE_LABEL, metric(cols.loss).axis_label, xlog="flops", ylog="count")
    for variant, rows, law in _law_fits(ctx, df):
        label = rows["variant_label"].iloc[0]
        colour = ctx.palette.variant(variant)
        canvas.points("loss", rows[cols.compute], rows[cols.loss], f"{label}: runs", color=colour, hollow=True,
                      extra={"run": run_key(rows)})
        env = fits.envelope(rows, cols.compute, cols.loss, lower_is_better=True)
        canvas.points("loss", env[cols.compute], env[cols.loss], f"{label}: best per compute", color=colour,
                      role="envelope", extra={"run": env["run"]})
        frontier, _, _ = law.frontier(fits.grid(rows[cols.compute]))
        _curve(canvas, "loss", frontier, f"{label}: L*(C), {law.label}", colour, label=label)
    canvas.key("every run", hollow=True)
    canvas.key("best run per compute")
    canvas.key("fitted frontier L*(C) (Approach 3)", line=True)
    if canvas.drew("interval"):
        canvas.key("95 % bootstrap band", band=True)
    fig, data = canvas.finish()
    return [Output("loss_vs_compute", data, figure=fig)]


@register("allocation", "figure", "Compute-optimal N*(C) and D*(C): Approach 2 and 3 with bands, and published laws")
def allocation(ctx: Context) -> list[Output]:
    cols, df = ctx.columns, _runs(ctx)
    canvas = Canvas(ctx.style, ["n_opt", "d_opt"])
    canvas.axes_for("n_opt", COMPUTE_LABEL, "N* (parameters)", title="Compute-optimal size", xlog="flops", ylog="count")
    canvas.axes_for("d_opt", COMPUTE_LABEL, "D* (tokens)", title="Compute-optimal data", xlog="flops", ylog="count")
    c = fits.grid(df[cols.compute])
    for variant, rows, law in _law_fits(ctx, df):
        label = rows["variant_label"].iloc[0]
        colour = ctx.palette.variant(variant)
        _, n_curve, d_curve = law.frontier(c)
        _curve(canvas, "n_opt", n_curve, f"{label}: Approach 3", colour, label=f"{label} (Approach 3)")
        _curve(canvas, "d_opt", d_curve, f"{label}: Approach 3", colour)
        try:
            iso = fits.isoflop(rows, ctx)
        except UserError as exc:
            ctx.note(f"{label}: no Approach-2 minima ({exc})")
            continue
        m = iso.result.minima
        for panel, curve, column in (("n_opt", iso.n_curve, "n_opt"), ("d_opt", iso.d_curve, "d_opt")):
            canvas.points(panel, m["c"], m[column], f"{label}: IsoFLOP minima", color=colour, role="minimum",
                          marker="s", label=f"{label} (Approach 2)" if panel == "n_opt" else None)
            _curve(canvas, panel, curve, f"{label}: Approach 2, {curve.label}", colour, dashed=True)
    for ref_label, n_ref, d_ref in fits.reference_allocations(c):
        canvas.reference_line("n_opt", n_ref.x, n_ref.y, ref_label, label=ref_label)
        canvas.reference_line("d_opt", d_ref.x, d_ref.y, ref_label)
    if canvas.drew("interval"):
        canvas.key("95 % bootstrap band", band=True)
    fig, data = canvas.finish()
    return [Output("allocation", data, figure=fig)]


@register("isoloss", "figure", "IsoLoss contours of the fitted L(N, D) with the efficient frontier, per variant")
def isoloss(ctx: Context) -> list[Output]:
    from contourpy import contour_generator

    cols, df = ctx.columns, _runs(ctx)
    outputs = []
    for variant, rows, law in _law_fits(ctx, df):
        label = rows["variant_label"].iloc[0]
        n = np.geomspace(rows[cols.params].min() / 2, rows[cols.params].max() * 2, 80)
        d = np.geomspace(rows[cols.tokens].min() / 2, rows[cols.tokens].max() * 2, 80)
        loss = law.predict(n[None, :], d[:, None])
        levels = np.quantile(rows[cols.loss], [0.05, 0.25, 0.5, 0.75, 0.95])
        canvas = Canvas(ctx.style, ["isoloss"], title=label)
        canvas.axes_for("isoloss", PARAMS_LABEL, TOKENS_LABEL, xlog="count", ylog="count")
        generator = contour_generator(np.log(n), np.log(d), loss)
        for i, (level, colour) in enumerate(zip(levels, sequential(len(levels)))):
            for k, path in enumerate(generator.lines(level)):
                x, y = np.exp(path[:, 0]), np.exp(path[:, 1])
                canvas.line("isoloss", x, y, f"L={level:.3f} ({k})", color=colour)
                canvas.label_curve("isoloss", x, y, f"{level:.2f}", color=colour, at=(i + 1) / (len(levels) + 1))
        _curve(canvas, "isoloss", law.frontier_nd(n), "efficient frontier", "#000000", label="compute-optimal frontier")
        canvas.points("isoloss", rows[cols.params], rows[cols.tokens], "runs", color="#000000", role="data",
                      hollow=True, label="runs", extra={"run": run_key(rows), "loss": rows[cols.loss]})
        canvas.key(f"fitted {metric(cols.loss).label.lower()} (contours)", line=True)
        if canvas.drew("interval"):
            canvas.key("95 % bootstrap band", band=True)
        canvas.axes["isoloss"].set_xlim(n[0], n[-1])
        canvas.axes["isoloss"].set_ylim(d[0], d[-1])
        fig, data = canvas.finish()
        outputs.append(Output(f"isoloss_{slug(label)}", data, figure=fig))
    return outputs


@register("residuals", "figure", "Relative residuals of the Approach-3 fit vs compute, per variant")
def residuals(ctx: Context) -> list[Output]:
    cols, df = ctx.columns, _runs(ctx)
    canvas = Canvas(ctx.style, ["residuals"])
    canvas.axes_for("residuals", COMPUTE_LABEL, "(observed − fitted) / fitted (%)", xlog="flops")
    canvas.axes["residuals"].axhline(0.0, color="#4D4D4D", linewidth=0.8)
    for variant, rows, law in _law_fits(ctx, df):
        label = rows["variant_label"].iloc[0]
        predicted = law.predict(rows[cols.params], rows[cols.tokens])
        rel = 100 * (rows[cols.loss].to_numpy(dtype=float) - predicted) / predicted
        canvas.points("residuals", rows[cols.compute], rel, label, color=ctx.palette.variant(variant), label=label,
                      extra={"run": run_key(rows), "observed": rows[cols.loss], "fitted": predicted})
    fig, data = canvas.finish()
    return [Output("residuals", data, figure=fig)]


@register("backtest", "figure", "Back-test: the law fitted below the largest budget predicts the runs above it")
def backtest(ctx: Context) -> list[Output]:
    cols, df = ctx.columns, _runs(ctx)
    results, reasons = [], []
    for variant, rows in variants(df):
        label = rows["variant_label"].iloc[0]
        try:
            results.append((variant, label, *fits.backtest(rows, ctx)))
        except UserError as exc:
            reasons.append(f"{label}: {exc}")
    if not results:
        raise Skip("no variant could be back-tested (" + "; ".join(reasons) + ")")
    canvas = Canvas(ctx.style, ["backtest"])
    canvas.axes_for("backtest", f"Observed {metric(cols.loss).label.lower()}", f"Predicted {metric(cols.loss).label.lower()}")
    for variant, label, rows, summary in results:
        colour = ctx.palette.variant(variant)
        for held, role_label in ((False, "fitted (C ≤ threshold)"), (True, "held out")):
            part = rows[rows["held_out"] == held]
            canvas.points("backtest", part[cols.loss], part["predicted"], f"{label}: {role_label}", color=colour,
                          hollow=not held, label=f"{label}: {role_label}",
                          extra={"run": run_key(part), "compute": part[cols.compute], "abs_rel_error": part["abs_rel_error"]})
        ctx.note(f"{label}: fitted on {summary['n_train']} runs with C ≤ {summary['threshold_c']:.3g}; "
                 f"held-out error mean {100 * summary['mean_abs_rel_error']:.2f} %, max {100 * summary['max_abs_rel_error']:.2f} %")
    ax = canvas.axes["backtest"]
    lo, hi = min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="#4D4D4D", linewidth=0.8, linestyle="--")
    canvas.key("perfect prediction (y = x)", line=True, dashed=True)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    for reason in reasons:
        ctx.note(f"not back-tested: {reason}")
    fig, data = canvas.finish()
    return [Output("backtest", data, figure=fig)]
