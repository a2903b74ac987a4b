"""The tables of the SIMS paper in Markdown and LaTeX, from a results table, with the published rows
alongside when asked (``--published``).

- ``table1_synthetic_data``: runs per training corpus (the paper: real vs synthetic vs both).
- ``table2_cross_modal``: cross-modal StoryCloze (S, S→T, T→S, T, original text LM) of the runs
  in each variant's largest compute budget, with their parameters and compute.
- ``table3_slm_comparison``: the largest run of each variant with parameters, tokens, sBLIMP, sSC,
  tSC (and GenPPL when the table has ``gen_ppl``), beside published SLMs.
- ``table4_data_sizes``: tokens per corpus and modality trained on (the paper: hours and tokens per
  source of its training data).

Each is written as ``NAME.md``, ``NAME.tex`` (booktabs) and ``NAME.csv`` (unrounded values). The best
value of each metric column is set in bold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from scaling.figures import fits
from scaling.figures.metrics import CROSS_MODAL, available, metric
from scaling.figures.reference import load_reference
from scaling.figures.registry import Context, Output, register
from scaling.figures.style import sci
from scaling.formatting import human
from scaling.figures.table import Skip, final_rows, require, run_key

PUBLISHED = "SIMS v1"


@dataclass
class Column:
    """One table column: header, how to format a value, and which value is best (None: no bold)."""

    header: str
    fmt: Callable[[float], str]
    best: str | None = None  # "max", "min" or None
    group: str = ""


@dataclass
class Table:
    """A rendered table: columns, rows of raw values, a caption and rule positions."""

    caption: str
    columns: list[Column]
    rows: list[list[object]]
    rules: list[int] = field(default_factory=list)  # a rule is drawn before these row indices

    def _cells(self) -> list[list[str]]:
        best = {}
        for j, col in enumerate(self.columns):
            nums = [r[j] for r in self.rows if _is_num(r[j])]
            if col.best and nums:
                best[j] = max(nums) if col.best == "max" else min(nums)
        out = []
        for r in self.rows:
            cells = []
            for j, (col, v) in enumerate(zip(self.columns, r)):
                text = col.fmt(v) if _is_num(v) else ("–" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                cells.append((text, j in best and _is_num(v) and v == best[j]))
            out.append(cells)
        return out

    def _headers(self) -> list[str]:
        return [f"{c.group} {c.header}".strip() for c in self.columns]

    def _align(self) -> list[str]:
        """'l' for text columns, 'r' for numbers."""
        return ["l" if c.fmt is str else "r" for c in self.columns]

    def markdown(self) -> str:
        """GitHub-flavoured Markdown: caption, header, rows; best values in bold."""
        head = self._headers()
        align = ["---" if a == "l" else "---:" for a in self._align()]
        lines = [f"**{self.caption}**", "", "| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
        for cells in self._cells():
            lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in cells) + " |")
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        """A booktabs ``table`` environment; grouped columns get a spanning header."""
        n = len(self.columns)
        lines = ["\\begin{table}[t]", "\\centering", "\\small", "\\begin{tabular}{" + "".join(self._align()) + "}", "\\toprule"]
        groups = [c.group for c in self.columns]
        if any(groups):
            spans, rules, j = [], [], 0
            while j < n:
                k = j
                while k + 1 < n and groups[k + 1] == groups[j]:
                    k += 1
                width = k - j + 1
                if groups[j]:
                    spans.append(f"\\multicolumn{{{width}}}{{c}}{{{_tex(groups[j])}}}")
                    rules.append(f"\\cmidrule(lr){{{j + 1}-{k + 1}}}")
                else:
                    spans += [""] * width
                j = k + 1
            lines += [" & ".join(spans) + " \\\\", " ".join(rules)]
        lines.append(" & ".join(_tex(c.header) for c in self.columns) + " \\\\")
        lines.append("\\midrule")
        for i, cells in enumerate(self._cells()):
            if i in self.rules:
                lines.append("\\midrule")
            lines.append(" & ".join(f"\\textbf{{{_tex(t)}}}" if b else _tex(t) for t, b in cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{_tex(self.caption)}}}", "\\end{table}"]
        return "\n".join(lines) + "\n"


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)


_TEX = {"&": "\\&", "%": "\\%", "_": "\\_", "#": "\\#", "~": "$\\sim$", "→": "$\\rightarrow$", "↑": "$\\uparrow$",
        "↓": "$\\downarrow$", "–": "--", "≈": "$\\approx$", "·": "$\\cdot$", "é": "\\'e"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def pct(v: float) -> str:
    return f"{v:.2f}"


def loss(v: float) -> str:
    return f"{v:.3f}"


def _metric_column(col: str, group: str = "", header: str | None = None) -> Column:
    meta = metric(col)
    arrow = "↓" if meta.lower_is_better else "↑"
    return Column(f"{header or meta.label} {arrow}", pct if meta.is_accuracy else loss,
                  "min" if meta.lower_is_better else "max", group)


def _run_label(rows: pd.DataFrame) -> pd.Series:
    if "name" in rows.columns:
        return rows["name"].astype(str)
    return rows["variant_label"].astype(str)


def _largest(rows: pd.DataFrame, by: list[str], compute: str) -> pd.DataFrame:
    """Per group of ``by``, the final run with the largest compute."""
    require(rows, compute, what="choosing the largest run")
    return rows.sort_values(compute).groupby(by, sort=True).tail(1)


def _top_budget(df: pd.DataFrame, compute: str) -> pd.DataFrame:
    """Per variant, the final runs in its largest compute budget (models of different sizes at one C)."""
    parts = []
    for _, rows in df.groupby("variant_label"):
        budget = fits.budgets(rows[compute])
        parts.append(rows[budget == budget.max()])
    return pd.concat(parts)


def _output(name: str, table: Table, data: pd.DataFrame) -> list[Output]:
    return [Output(name, data.reset_index(drop=True), table=table)]


@register("table1_synthetic_data", "table", "SIMS Table 1: metrics per training corpus (real vs synthetic vs both)")
def table1_synthetic_data(ctx: Context) -> list[Output]:
    df = final_rows(ctx.table)
    if "data_corpus" not in df.columns:
        raise Skip("the table has no column 'data_corpus', which this table compares")
    wanted = ["acc_sblimp", "acc_ssc", "acc_ms_ssc", "acc_stc", "acc_ms_stc", "loss_val"]
    metrics = [m for m in wanted if available(df, m)]
    if not metrics:
        raise Skip("no final runs with any of " + ", ".join(wanted))
    df = df.assign(_variant=df["variant_label"], _model=df.get("model_size", df["variant_label"]).astype(str))
    chosen = _largest(df, ["_variant", "_model", "data_corpus"], ctx.columns.compute)
    chosen = chosen.sort_values([c for c in ("_variant", ctx.columns.params, "data_corpus") if c in chosen.columns])
    columns = [Column("Model", str), Column("Variant", str), Column("Training data", str)] + [_metric_column(m) for m in metrics]
    rows = [[r["_model"], r["_variant"], r["data_corpus"], *[r[m] for m in metrics]] for _, r in chosen.iterrows()]
    data = chosen[["_model", "_variant", "data_corpus", *metrics]].rename(columns={"_model": "model", "_variant": "variant"})
    data["source"] = "this table"
    rules = []
    if ctx.published:
        ref = load_reference("table1")
        rules.append(len(rows))
        names = {(True, False): "real", (False, True): "synthetic", (True, True): "real + synthetic"}
        for _, r in ref.iterrows():
            corpus = names[(bool(r["real"]), bool(r["synthetic"]))]
            rows.append([f"{r['model']} ({PUBLISHED})", "Interleaved, TextLM init", corpus,
                         *[r[m] if m in ref.columns else None for m in metrics]])
        pub = ref.assign(variant="Interleaved, TextLM init",
                         data_corpus=[names[(bool(a), bool(b))] for a, b in zip(ref["real"], ref["synthetic"])])
        data = pd.concat([data, pub[["model", "variant", "data_corpus", *[m for m in metrics if m in ref.columns], "source"]]])
    table = Table("Metrics of the longest run per model and training corpus (accuracies in %, loss in nats/token).",
                  columns, rows, rules)
    return _output("table1_synthetic_data", table, data)


def _cross_modal_bench(df: pd.DataFrame, names: tuple[str, str]) -> str | None:
    for bench in names:
        if any(available(df, f"acc_{bench}{suffix}") for suffix, _ in CROSS_MODAL[1:]):
            return bench
    return None


@register("table2_cross_modal", "table", "SIMS Table 2: cross-modal StoryCloze (S, S→T, T→S, T, original text LM)")
def table2_cross_modal(ctx: Context) -> list[Output]:
    df = final_rows(ctx.table)
    benches = [b for b in (_cross_modal_bench(df, ("ms_ssc", "ssc")), _cross_modal_bench(df, ("ms_stc", "stc"))) if b]
    if not benches:
        raise Skip("no cross-modal StoryCloze columns (acc_ms_ssc_s2t, acc_ms_stc_t2s, … or acc_ssc_s2t, …)")
    c, n = ctx.columns.compute, ctx.columns.params
    require(df, c, what="choosing each variant's largest budget")
    df = _top_budget(df, c).sort_values([k for k in ("variant_label", n) if k in df.columns])
    cols = [f"acc_{b}{suffix}" for b in benches for suffix, _ in CROSS_MODAL]
    columns = [Column("Model", str), Column("Params", human), Column("C", sci)]
    columns += [Column(head, pct, "max", metric(f"acc_{b}").label) for b in benches for _, head in CROSS_MODAL]
    get = lambda r, k: r[k] if k in r.index else None  # noqa: E731
    rows = [[label, get(r, n), get(r, c), *[get(r, k) for k in cols]] for label, (_, r) in zip(_run_label(df), df.iterrows())]
    data = df.assign(model=_run_label(df))[["model", *[k for k in (n, c, *cols) if k in df.columns]]]
    data["source"] = "this table"
    rules = []
    if ctx.published:
        ref = load_reference("table2")
        rules.append(len(rows))
        for _, r in ref.iterrows():
            rows.append([f"{r['model']} ({r['init_text_lm']}; {PUBLISHED})", r["params_total"], r["flops"],
                         *[r[k] if k in ref.columns else None for k in cols]])
        data = pd.concat([data, ref.rename(columns={"flops": c})[["model", n, c, *[k for k in cols if k in ref.columns], "source"]]])
    table = Table("Cross-modal StoryCloze accuracy (%) of the runs in each variant's largest compute budget: prompt → "
                  "continuation modality; Orig. is the text LM before speech training.", columns, rows, rules)
    return _output("table2_cross_modal", table, data)


@register("table3_slm_comparison", "table", "SIMS Table 3: the largest run per variant beside published SLMs")
def table3_slm_comparison(ctx: Context) -> list[Output]:
    df = final_rows(ctx.table)
    metrics = [m for m in ("acc_sblimp", "acc_ssc", "acc_stc") if available(df, m)]
    if not metrics:
        raise Skip("no final runs with acc_sblimp, acc_ssc or acc_stc")
    extra = ["gen_ppl"] if available(df, "gen_ppl") else []
    n, d, c = ctx.columns.params, ctx.columns.tokens, ctx.columns.compute
    chosen = _largest(df, ["variant_label"], c)
    columns = [Column("Model", str), Column("Params", human), Column("Tokens", human)]
    columns += [_metric_column(m) for m in metrics] + [Column("GenPPL ↓", lambda v: f"{v:.1f}", "min") for _ in extra]
    get = lambda r, k: r[k] if k in r.index else None  # noqa: E731
    rows = [[label, get(r, n), get(r, d), *[r[m] for m in metrics + extra]]
            for label, (_, r) in zip(_run_label(chosen), chosen.iterrows())]
    data = chosen.assign(model=_run_label(chosen))[["model", *[k for k in (n, d, *metrics, *extra) if k in chosen.columns]]]
    data["source"] = "this table"
    rules = []
    if ctx.published:
        ref = load_reference("table3")
        rules.append(len(rows))
        for _, r in ref.iterrows():
            rows.append([f"{r['model']} ({r['block']})", r["params_total"], r["tokens_as_printed"],
                         *[r[m] if m in ref.columns else None for m in metrics + extra]])
        keep = ["model", "params_total", "tokens", *[m for m in metrics + extra if m in ref.columns], "source"]
        data = pd.concat([data, ref[keep].rename(columns={"params_total": n, "tokens": d})])
    table = Table("The largest run of each variant (accuracies in %)"
                  + (f"; published SLMs from {PUBLISHED}, Table 3, below the rule." if ctx.published else "."),
                  columns, rows, rules)
    return _output("table3_slm_comparison", table, data)


@register("table4_data_sizes", "table", "SIMS Table 4: training data per corpus (tokens per modality; published hours)")
def table4_data_sizes(ctx: Context) -> list[Output]:
    df = final_rows(ctx.table)
    if "data_corpus" not in df.columns:
        raise Skip("the table has no column 'data_corpus', which this table lists")
    parts = [col for col in ("tokens_speech", "tokens_text") if available(df, col)]
    if not parts:
        raise Skip("no tokens_speech or tokens_text values")
    grouped = df.groupby("data_corpus")
    per = grouped[parts].max().assign(runs=grouped.apply(lambda g: run_key(g).nunique(), include_groups=False))
    columns = [Column("Corpus", str), Column("Hours", lambda v: f"{v:,.0f}")]
    columns += [Column({"tokens_speech": "Speech tokens", "tokens_text": "Text tokens"}[p], human) for p in parts]
    columns.append(Column("Runs", lambda v: f"{v:.0f}"))
    rows = [[corpus, None, *[r[p] for p in parts], float(r["runs"])] for corpus, r in per.iterrows()]
    data = per.reset_index().assign(source="this table (largest run per corpus)")
    rules = []
    if ctx.published:
        ref = load_reference("table4")
        rules.append(len(rows))
        for _, r in ref.iterrows():
            rows.append([f"{r['dataset']} ({PUBLISHED})", r["hours"], *[r["tokens"] if p == "tokens_speech" else None
                                                                     for p in parts], None])
        data = pd.concat([data, ref.rename(columns={"dataset": "data_corpus", "tokens": "tokens_speech"})
                          [["data_corpus", "hours", "tokens_speech", "source"]]])
    table = Table("Tokens trained on per corpus (largest run; speech tokens are speech-unit tokens)"
                  + (f"; published training sets ({PUBLISHED}, Table 4) below the rule." if ctx.published else "."),
                  columns, rows, rules)
    return _output("table4_data_sizes", table, data)
