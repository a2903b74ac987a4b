"""Reading a results table for figures: loading, checking, and choosing the rows a figure needs.

The table is the one written by ``scaling collect`` (one row per run × evaluation point) or any
user CSV with some of its columns, read and interpreted by :mod:`scaling.results_table`. Figures
read only columns (DESIGN, contract 1). A table may be partial: each figure checks for what it
needs and is skipped with a reason when it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.errors import UserError
from scaling.figures.metrics import to_percent
from scaling.results_table import METRIC_PREFIXES, NUMERIC_COLUMNS, describe_row, final_mask, numbers, parse_bool, unusable_mask


class Skip(Exception):
    """A figure or table cannot be drawn from this table; the message says why (one line)."""


@dataclass(frozen=True)
class Columns:
    """Which columns play which role. ``compute`` is C (FLOPs), ``params`` N, ``tokens`` D."""

    compute: str = "flops_6nd"
    params: str = "params_total"
    tokens: str = "tokens"
    loss: str = "loss_val"


def select_rows(df: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """Rows matching every ``COL=VALUE`` filter (also !=, <, <=, >, >=), with the same rules and
    messages as ``scaling fit --where``."""
    from scaling.fit.table import apply_where

    return apply_where(df, where, {}) if where else df


def prepare(df: pd.DataFrame, columns: Columns, source: str = "<DataFrame>") -> pd.DataFrame:
    """Check types, derive what can be derived, and add the helper columns figures use.

    - numeric columns must hold numbers (an error names the column, the row and the value);
    - ``final`` becomes boolean (:func:`scaling.results_table.final_mask`; every row when the
      table cannot tell); ``branch`` (a WSD decay branch's row) becomes boolean, false when absent;
    - without the compute column, C = 6·N·D is derived from the params and tokens columns
      (and ``compute_derived`` is set) when both exist; otherwise the figures that need C skip;
    - accuracies held as fractions become percent (see :mod:`scaling.figures.metrics`);
    - ``variant`` = (data_mode, init), and ``variant_label`` for legends.
    """
    df = df.copy()
    for col in sorted({*NUMERIC_COLUMNS, columns.params, columns.tokens, columns.compute, columns.loss} & set(df.columns)) + \
            [c for c in df.columns if c.startswith(METRIC_PREFIXES)]:
        df[col] = numbers(df[col], col, source)
    for col in sorted({columns.params, columns.tokens, columns.compute} & set(df.columns)):  # N, D, C: counts, as `scaling fit` requires
        nonpositive = df[col] <= 0
        if nonpositive.any():
            label = df.index[nonpositive.to_numpy()][0]
            raise UserError(f"{source}: column {col!r} {describe_row(label, source)} is {float(df[col][label])!r}; expected a positive number")
    if columns.compute not in df.columns and columns.params in df.columns and columns.tokens in df.columns:
        df[columns.compute] = 6.0 * df[columns.params] * df[columns.tokens]
        df.attrs["compute_derived"] = True
    if columns.loss not in df.columns and not any(c.startswith(METRIC_PREFIXES) for c in df.columns):
        raise UserError(f"{source} has no metric column ({columns.loss} (--loss), loss_val_speech, acc_stc, …); "
                        "nothing to draw")
    df.attrs["percent_from_fraction"] = to_percent(df)
    final = final_mask(df)
    df["final"] = True if final is None else final
    df["branch"] = parse_bool(df["branch"], "branch") if "branch" in df.columns else False
    mode = df["data_mode"].astype(str) if "data_mode" in df.columns else pd.Series("all", index=df.index)
    init = df["init"].astype(str) if "init" in df.columns else pd.Series("", index=df.index)
    df["variant"] = list(zip(mode, init))
    df["variant_label"] = [variant_label(m, i) for m, i in df["variant"]]
    return df


def variant_label(mode: str, init: str) -> str:
    """A legend label for a (data_mode, init) variant, in the paper's words."""
    if mode == "all":
        return "all runs"
    names = {"interleaved": "Interleaved", "speech": "Textless" if init in ("scratch", "") else "Speech-only",
             "text": "Text"}
    base = names.get(mode, mode)
    if init == "text-lm":
        return f"{base}, TextLM init"
    if init == "scratch" and mode != "speech":
        return f"{base}, scratch"
    return base


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs that did not diverge or fail."""
    return df[~unusable_mask(df)]


def trunk(df: pd.DataFrame) -> pd.DataFrame:
    """Rows on a run's own training curve: decay-branch rows (a shorter budget decayed off the
    trunk, see :mod:`scaling.collect`) left out, diverged and failed runs too."""
    return usable(df)[lambda d: ~d["branch"]]


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The last point of every budget: each finished run's last evaluation point and each of its
    decay branches' points (diverged and failed runs left out). Branches of one run share its
    ``run_id``, so a bootstrap over runs resamples them together."""
    return usable(df)[lambda d: d["final"]]


def with_values(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    """Rows whose ``cols`` are finite and positive where they are counts (compute, params, tokens)."""
    mask = pd.Series(True, index=df.index)
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce") if c in df.columns else pd.Series(np.nan, index=df.index)
        mask &= np.isfinite(v)
        if not c.startswith(("acc_", "loss_")):
            mask &= v > 0
    return df[mask]


def require(df: pd.DataFrame, *cols: str, what: str = "this figure") -> None:
    """Raise Skip naming the first of ``cols`` that ``df`` lacks (or has no values in)."""
    for c in cols:
        if c not in df.columns:
            raise Skip(f"the table has no column {c!r}, needed for {what}")
        if not np.isfinite(pd.to_numeric(df[c], errors="coerce")).any():
            raise Skip(f"column {c!r} has no values, needed for {what}")


def run_key(df: pd.DataFrame) -> pd.Series:
    """An identifier per run: ``run_id``, else ``name``, else the row index."""
    for col in ("run_id", "name"):
        if col in df.columns:
            return df[col].astype(str)
    return pd.Series(df.index.astype(str), index=df.index)


def slug(text: str) -> str:
    """A file-name-safe version of ``text``: 'Interleaved, TextLM init' -> 'interleaved-textlm-init'."""
    out = "".join(ch.lower() if ch.isalnum() or ch == "." else "-" for ch in str(text))
    return "-".join(part for part in out.split("-") if part)



def variants(df: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """(variant, rows) pairs of ``df``, interleaved first, then textless, then text, in a fixed order."""
    order = {"interleaved": 0, "speech": 1, "text": 2}
    keys = sorted(set(df["variant"]), key=lambda v: (order.get(v[0], 3), v))
    return [(k, df[df["variant"].apply(lambda v, k=k: v == k)]) for k in keys]
