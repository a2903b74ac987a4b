"""The figures of the SIMS paper (Maimon et al. 2025, arXiv:2504.02398), drawn from a results table.

- ``fig1_metric_vs_compute``: validation loss (``--loss``), sBLIMP, sSC, tSC vs training compute for the best
  run per compute of each variant, with power-law fits and bands, against the textless trends of
  Cuervo & Marxer (2024).
- ``fig2_text_lm_families``: runs initialised from different text LMs after the same number of
  steps (MS-sSC, MS-tSC, validation loss), sorted by size from large to small.
- ``fig3_training_curves`` (the paper's Figures 3 and 5: one file per base model) and
  ``fig6_training_curves_ssc``: metrics vs steps for each variant of one base model.
- ``fig4_fixed_budget`` and ``fig7_fixed_budget_ssc``: at fixed compute budgets, models of
  different sizes (speech validation loss and MS-tSC; MS-sSC), one file per variant.

Where the paper's multi-speaker metric is missing, the single-speaker one is used and the axis
says which was drawn. Speech validation loss panels draw ``loss_val_speech_only`` (the same
speech-only units for every variant) where the table has it, else ``loss_val_speech``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling.figures import fits
from scaling.figures.canvas import Canvas
from scaling.figures.metrics import COMPUTE_LABEL, PARAMS_LABEL, available, first_available, metric
from scaling.figures.reference import published_slms
from scaling.figures.registry import Context, Output, register
from scaling.figures.style import sci, sequential
from scaling.figures.table import Skip, final_rows, require, run_key, slug, trunk, variants, with_values

#: the speech validation loss panels draw: the loss every speech LM shares where the table has it
SPEECH_LOSS = ("loss_val_speech_only", "loss_val_speech")


def _base(df: pd.DataFrame) -> pd.Series:
    """The base model of each row: 'family size' when the table says, else 'all runs'."""
    if "model_family" in df.columns and "model_size" in df.columns:
        return df["model_family"].astype(str) + " " + df["model_size"].astype(str)
    if "model_family" in df.columns:
        return df["model_family"].astype(str)
    return pd.Series("all runs", index=df.index)


@register("fig1_metric_vs_compute", "figure",
          "SIMS Fig. 1: metric vs compute, best run per compute per variant, power-law fits, textless trends")
def fig1_metric_vs_compute(ctx: Context) -> list[Output]:
    c = ctx.columns.compute
    require(ctx.table, c)
    df = with_values(final_rows(ctx.table), c)
    wanted = (ctx.columns.loss, "acc_sblimp", "acc_ssc", "acc_stc")
    panels = [m for m in wanted if available(df, m)]
    if not panels:
        raise Skip(f"no final runs with {', '.join(wanted)} and a compute value")
    canvas = Canvas(ctx.style, panels)
    published = published_slms() if ctx.published else None
    for m in panels:
        meta = metric(m)
        canvas.axes_for(m, COMPUTE_LABEL, meta.axis_label, title=meta.label, xlog="flops",
                        ylog="count" if m.startswith("loss") else None)
        anchor = None
        for variant, rows in variants(with_values(df, m)):
            label = rows["variant_label"].iloc[0]
            colour = ctx.palette.variant(variant)
            canvas.points(m, rows[c], rows[m], f"{label}: runs", color=colour, hollow=True,
                          size=ctx.style.marker_size * 0.7, extra={"run": run_key(rows)})
            env = fits.envelope(rows, c, m, meta.lower_is_better)
            canvas.line(m, env[c], env[m], f"{label}: best per compute", color=colour, role="envelope",
                        marker="o", label=label, extra={"run": env["run"]})
            anchor = anchor or (float(env[c].iloc[0]), float(rows[c].max()), float(env[m].iloc[0]), label)
            curve = fits.power_law_curve(rows, c, m, meta.lower_is_better, ctx)
            if curve is not None:
                canvas.line(m, curve.x, curve.y, f"{label}: fit {curve.label}", color=colour, dashed=True)
                if curve.lo is not None:
                    canvas.band(m, curve.x, curve.lo, curve.hi, f"{label}: fit {curve.label}", color=colour)
            else:
                ctx.note(f"{m}, {label}: {len(env)} best-per-compute point(s); a power law needs 3, none drawn")
        trend = fits.textless_trend(m)
        if trend is not None and anchor is not None:
            x0, x1, y0, who = anchor
            xs = np.geomspace(x0, x1, 50)
            ys = y0 * (xs / x0) ** trend.gamma
            canvas.reference_line(m, xs, ys, "textless trend", label=f"textless slope ({trend.source}), through first point",
                                  extra={"gamma": trend.gamma})
            ctx.note(f"{m}: textless trend Q ∝ C^{trend.gamma:g} ({trend.source}) drawn through the first best run of {who}")
        if published is not None and available(published, m):
            ref = with_values(published, m)
            canvas.reference_points(m, ref["flops_6nd"], ref[m], "published SLMs",
                                    label="published SLMs (SIMS v1, Table 3)", extra={"run": ref["model"]})
    canvas.key("every run", hollow=True)
    if canvas.drew("fit"):
        canvas.key("power-law fit to the best runs", line=True, dashed=True)
    if canvas.drew("interval"):
        canvas.key("95 % bootstrap band", band=True)
    fig, data = canvas.finish()
    return [Output("fig1_metric_vs_compute", data, figure=fig)]


@register("fig2_text_lm_families", "figure",
          "SIMS Fig. 2: runs from different text-LM initialisations after the same steps, largest first")
def fig2_text_lm_families(ctx: Context) -> list[Output]:
    df = trunk(ctx.table)
    if "init" in df.columns:
        df = df[df["init"].astype(str) == "text-lm"]
    elif "init_from" in df.columns:
        df = df[df["init_from"].fillna("").astype(str) != ""]
    if df.empty:
        raise Skip("no runs initialised from a text LM (init = text-lm)")
    require(df, "step")
    lm = df["init_from"].astype(str) if "init_from" in df.columns else df.get("model_family", pd.Series("?", index=df.index))
    df = df.assign(_lm=lm.to_numpy(), _run=run_key(df).to_numpy())
    if df["_lm"].nunique() < 2:
        raise Skip(f"runs from only one text LM ({df['_lm'].iloc[0]}); the comparison needs at least two")
    common = df.groupby("_run")["step"].max().min()
    at = df[df["step"] <= common].sort_values("step").groupby("_run").tail(1)
    at = at.sort_values(ctx.columns.params, ascending=False) if ctx.columns.params in at.columns else at
    family = at["model_family"].astype(str) if "model_family" in at.columns else at["_lm"]
    panels = [p for p in (first_available(at, ("acc_ms_ssc", "acc_ssc")), first_available(at, ("acc_ms_stc", "acc_stc")),
                          first_available(at, ("loss_val",))) if p]
    if not panels:
        raise Skip(f"no acc_ms_ssc/acc_ssc, acc_ms_stc/acc_stc or loss_val values at step {common:g}")
    labels = [_lm_label(row) for _, row in at.iterrows()]
    canvas = Canvas(ctx.style, panels, title=f"After {common:,.0f} steps")
    for m in panels:
        meta = metric(m)
        canvas.axes_for(m, "Text LM used for initialisation", meta.axis_label, title=meta.label)
        canvas.categories(m, labels, at[m].to_numpy(), meta.label, colors=[ctx.palette.family(f) for f in family],
                          extra={"run": at["_run"].to_list(), "step": at["step"].to_list()})
    fig, data = canvas.finish()
    return [Output("fig2_text_lm_families", data, figure=fig)]


def _lm_label(row: pd.Series) -> str:
    """'qwen2 0.5B' from family and size; else the text LM's directory name."""
    if "model_family" in row and "model_size" in row:
        return f"{row['model_family']} {row['model_size']}"
    return str(row["_lm"]).rstrip("/").split("/")[-1]


def _training_curves(ctx: Context, name: str, wanted: list[tuple[str, ...]]) -> list[Output]:
    df = trunk(ctx.table)
    x = "step" if "step" in df.columns else "tokens" if "tokens" in df.columns else None
    if x is None:
        raise Skip("the table has neither 'step' nor 'tokens' for the x axis")
    df = df.assign(_base=_base(df).to_numpy(), _run=run_key(df).to_numpy())
    outputs, reasons = [], []
    for base, rows in df.groupby("_base", sort=True):
        panels = [p for p in (first_available(rows, cols) for cols in wanted) if p]
        found = [(v, r) for v, r in variants(rows) if any(available(r, p) for p in panels)]
        if not panels:
            reasons.append(f"{base}: none of {', '.join('/'.join(w) for w in wanted)}")
            continue
        if len(found) < 2:
            reasons.append(f"{base}: one variant only with these metrics")
            continue
        canvas = Canvas(ctx.style, panels, title=f"Base model: {base}")
        for m in panels:
            meta = metric(m)
            canvas.axes_for(m, "Training step" if x == "step" else "Training tokens", meta.axis_label, title=meta.label)
            for variant, vrows in found:
                run = _longest_run(vrows)
                curve = with_values(run, m).sort_values(x)
                if curve.empty:
                    continue
                label = vrows["variant_label"].iloc[0]
                canvas.line(m, curve[x], curve[m], label, color=ctx.palette.variant(variant), role="data",
                            marker="o", label=label, extra={"run": curve["_run"]})
        fig, data = canvas.finish()
        outputs.append(Output(f"{name}_{slug(base)}", data, figure=fig))
    if not outputs:
        raise Skip("no base model with two or more variants to compare (" + "; ".join(reasons) + ")")
    return outputs


def _longest_run(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the run with the largest budget among ``rows`` (first seed on ties)."""
    budget = "train_tokens" if "train_tokens" in rows.columns else "tokens" if "tokens" in rows.columns else "step"
    per_run = rows.groupby("_run")[budget].max()
    if "seed" in rows.columns:
        seeds = rows.groupby("_run")["seed"].min()
        per_run = per_run[seeds == seeds.min()]
    return rows[rows["_run"] == per_run.idxmax()]


@register("fig3_training_curves", "figure",
          "SIMS Figs. 3 and 5: MS-tSC and speech validation loss vs steps per variant, one file per base model")
def fig3_training_curves(ctx: Context) -> list[Output]:
    return _training_curves(ctx, "fig3_training_curves", [("acc_ms_stc", "acc_stc"), SPEECH_LOSS])


def _fixed_budget(ctx: Context, name: str, wanted: list[tuple[str, ...]]) -> list[Output]:
    c, n = ctx.columns.compute, ctx.columns.params
    require(ctx.table, c, n)
    df = with_values(final_rows(ctx.table), c, n)
    if df.empty:
        raise Skip(f"no final runs with {c!r} and {n!r} values")
    outputs, reasons = [], []
    for variant, rows in variants(df):
        label = rows["variant_label"].iloc[0]
        rows = rows.assign(_budget=fits.budgets(rows[c]), _run=run_key(rows).to_numpy())
        sizes = rows.groupby("_budget")[n].nunique()
        budgets = sorted(sizes[sizes >= 2].index)
        panels = [p for p in (first_available(rows, cols) for cols in wanted) if p]
        if not budgets or not panels:
            reasons.append(f"{label}: " + ("no budget with two or more model sizes" if not budgets else
                                           "none of " + ", ".join("/".join(w) for w in wanted)))
            continue
        canvas = Canvas(ctx.style, panels, title=label)
        colours = sequential(len(budgets))
        for m in panels:
            meta = metric(m)
            canvas.axes_for(m, PARAMS_LABEL, meta.axis_label, title=meta.label, xlog="count")
            for budget, colour in zip(budgets, colours):
                group = with_values(rows[rows["_budget"] == budget], m).sort_values(n)
                if group.empty:
                    continue
                canvas.line(m, group[n], group[m], f"C={sci(budget)}", color=colour, role="data", marker="o",
                            label=f"C ≈ {sci(float(f'{budget:.2g}'))}",
                            extra={"run": group["_run"], "budget": budget, "compute": group[c]})
        fig, data = canvas.finish()
        outputs.append(Output(f"{name}_{slug(label)}", data, figure=fig))
    if not outputs:
        raise Skip("; ".join(reasons))
    return outputs


@register("fig4_fixed_budget", "figure",
          "SIMS Fig. 4: speech validation loss and MS-tSC of models of different sizes at fixed compute budgets, per variant")
def fig4_fixed_budget(ctx: Context) -> list[Output]:
    return _fixed_budget(ctx, "fig4_fixed_budget", [SPEECH_LOSS, ("acc_ms_stc", "acc_stc")])


@register("fig6_training_curves_ssc", "figure",
          "SIMS Fig. 6: MS-sSC, MS-tSC and speech validation loss vs steps per variant, one file per base model")
def fig6_training_curves_ssc(ctx: Context) -> list[Output]:
    return _training_curves(ctx, "fig6_training_curves_ssc",
                            [("acc_ms_ssc", "acc_ssc"), ("acc_ms_stc", "acc_stc"), SPEECH_LOSS])


@register("fig7_fixed_budget_ssc", "figure",
          "SIMS Fig. 7: MS-sSC of models of different sizes at fixed compute budgets, per variant")
def fig7_fixed_budget_ssc(ctx: Context) -> list[Output]:
    return _fixed_budget(ctx, "fig7_fixed_budget_ssc", [("acc_ms_ssc", "acc_ssc")])

