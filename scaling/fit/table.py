"""Load and validate the columns a fit reads from a results table or any CSV.

The results table has one row per run x evaluation point, with columns such as
``params_total``, ``params_non_embedding``, ``tokens``, ``flops_6nd``, ``loss_val``,
``loss_val_speech``, ``status``, ``final`` (the last evaluation of a run) and ``run_id``.
Defaults: when a ``final`` column exists only final rows are fitted (``all_rows=True`` keeps
every evaluation point); rows whose ``status`` is ``diverged`` are excluded with a warning.
Rows with a missing (NaN/empty/infinite) value in a used column are excluded with a warning;
a non-numeric or non-positive value is an error naming the column, the row and the value.
What was kept and why is recorded in ``kept.attrs["selection"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from scaling.errors import UserError, unknown_choice

log = logging.getLogger("scaling.fit")

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


def read_table(path_or_df) -> tuple[pd.DataFrame, str]:
    """A DataFrame and a description of where it came from (CSV, Parquet, or a DataFrame)."""
    if isinstance(path_or_df, pd.DataFrame):
        return path_or_df, "<DataFrame>"
    path = Path(path_or_df)
    if not path.is_file():
        raise UserError(f"table {str(path)!r} does not exist or is not a file; expected a CSV or Parquet results table")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise UserError(f"cannot read table {str(path)!r}: {str(exc).splitlines()[0]}") from None
    return df, str(path)


def parse_bool(series: pd.Series, column: str) -> pd.Series:
    """A boolean column from bools, 0/1 or true/false strings; anything else is a UserError."""
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE | {"nan"})
    if bad.any():
        raise UserError(f"column {column!r} has {str(series[bad].iloc[0])!r}; expected true/false")
    return text.isin(_TRUE)


def load_table(path_or_df, n: str | None = "params_total", d: str | None = "tokens", y: str | None = "loss_val",
               c: str | None = None, *, where: Mapping[str, str] | Iterable[str] | None = None,
               all_rows: bool = False, include_diverged: bool = False, extra: Iterable[str] = ()):
    """Read and validate the N, D and loss columns of a table.

    Returns ``(n, d, y, kept)``: float arrays of parameters, tokens and loss (positive, finite)
    and the kept rows of the table. With ``c`` (a FLOPs column) D is derived as C/(6*N) and
    ``d`` is not read. ``n``, ``d`` or ``y`` may be None (a downstream law reads only ``extra``
    columns and y; given optimal pairs have no loss): that array is then None. ``extra`` names
    more numeric columns validated the same way (in ``kept`` as floats). ``where`` filters rows
    before anything else: a mapping column -> value, or strings ``COLUMN=VALUE`` (also ``!=``,
    ``<``, ``<=``, ``>``, ``>=`` on numeric columns).
    """
    df, source = read_table(path_or_df)
    selection = {"source": source, "rows_read": int(len(df)), "columns": {"n": n, "y": y},
                 "excluded": {}}
    base = [n, y] + ([c] if c else [d]) if n is not None else [y]
    needed = list(dict.fromkeys([col for col in base if col is not None] + list(extra)))
    selection["columns"].update({"c": c} if c else {"d": d})
    for col in needed:
        if col is None or col not in df.columns:
            raise unknown_choice("column", col, df.columns)
    df = apply_where(df, where, selection)
    if "final" in df.columns and not all_rows:
        final = parse_bool(df["final"], "final")
        selection["final_only"] = True
        df = df[final]
        if df.empty:
            raise UserError("no row has final=true; pass all_rows (--all-rows) to fit every evaluation point")
    if "status" in df.columns and not include_diverged:
        diverged = df["status"].astype(str).str.lower() == "diverged"
        if diverged.any():
            _exclude(selection, "status=diverged", df.index[diverged])
            df = df[~diverged]
    values = {}
    for col in needed:
        values[col] = _numeric(df[col], col, source)
    missing = np.zeros(len(df), dtype=bool)
    for col, v in values.items():
        bad = ~np.isfinite(v)
        if bad.any():
            _exclude(selection, f"missing or non-finite {col}", df.index[bad & ~missing])
        missing |= bad
    for col, v in values.items():
        nonpos = ~missing & (v <= 0)
        if nonpos.any():
            i = int(np.flatnonzero(nonpos)[0])
            raise UserError(f"column {col!r} {_row(df.index[i], source)} is {float(v[i])!r}; expected a positive number")
    keep = ~missing
    if not keep.any():
        raise UserError(f"no usable rows in {source}: every row was excluded ({_summary(selection)})")
    kept = df[keep].copy()
    for col in extra:
        kept[col] = values[col][keep]
    n_arr = values[n][keep] if n is not None else None
    d_arr = None if n is None else values[c][keep] / (6.0 * n_arr) if c else values[d][keep]
    selection["rows_kept"] = int(keep.sum())
    kept.attrs["selection"] = selection
    return n_arr, d_arr, values[y][keep] if y is not None else None, kept


_OPERATORS = ("<=", ">=", "!=", "<", ">", "=")


def apply_where(df, where, selection):
    """Rows of ``df`` matching every filter in ``where`` (``COL=VALUE``, ``!=``, ``<``, ``<=``, ``>``,
    ``>=`` strings, or a mapping of equalities); what was applied is recorded in ``selection``."""
    if not where:
        return df
    items = [(k, "=", v) for k, v in where.items()] if isinstance(where, Mapping) else [_split(w) for w in where]
    applied = []
    for col, op, value in items:
        if col not in df.columns:
            raise unknown_choice("column in --where", col, df.columns)
        series = df[col]
        if series.dtype == bool or col == "final":
            if op not in ("=", "!="):
                raise UserError(f"--where {col}{op}{value}: column {col!r} is true/false; use = or !=")
            mask = parse_bool(series, col) == (str(value).strip().lower() in _TRUE)
            mask = mask if op == "=" else ~mask
        elif pd.api.types.is_numeric_dtype(series):
            try:
                target = float(value)
            except ValueError:
                raise UserError(f"--where {col}{op}{value}: column {col!r} is numeric; expected a number") from None
            v = series.to_numpy(dtype=float)
            equal = np.isclose(v, target, rtol=1e-9, atol=0)
            mask = {"=": equal, "!=": ~equal, "<": v < target, "<=": (v <= target) | equal,
                    ">": v > target, ">=": (v >= target) | equal}[op]
        else:
            if op not in ("=", "!="):
                raise UserError(f"--where {col}{op}{value}: column {col!r} is text; use = or !=")
            mask = (series.astype(str) == str(value)).to_numpy()
            mask = mask if op == "=" else ~mask
        df = df[mask]
        applied.append(f"{col}{op}{value}")
    selection["where"] = applied
    if df.empty:
        raise UserError(f"no row matches {' and '.join(applied)}")
    return df


def _split(item: str) -> tuple[str, str, str]:
    """COLUMN, operator, VALUE of a filter such as ``status=done`` or ``loss<4.5``."""
    for op in _OPERATORS:
        if op in item:
            col, value = item.split(op, 1)
            if col.strip():
                return col.strip(), op, value.strip()
    raise UserError(f"--where {item!r}: expected COLUMN=VALUE (or !=, <, <=, >, >=)")


def _numeric(series: pd.Series, col: str, source: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        raise UserError(f"column {col!r} holds true/false values; expected numbers")
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        label = series.index[bad.to_numpy()][0]
        raise UserError(f"column {col!r} {_row(label, source)} has {str(series[label])!r}; expected a number")
    return values.to_numpy(dtype=float)


def _row(label, source: str) -> str:
    """Where a row is, for people: the line of a CSV file (header = line 1), else the index label."""
    if source.endswith(".csv") and isinstance(label, (int, np.integer)):
        return f"line {int(label) + 2}"
    return f"row {label!r}"


def _exclude(selection, reason, index):
    if len(index) == 0:
        return
    labels = [int(i) if isinstance(i, (int, np.integer)) else str(i) for i in index]
    selection["excluded"][reason] = selection["excluded"].get(reason, 0) + len(labels)
    shown = ", ".join(map(str, labels[:5])) + (", ..." if len(labels) > 5 else "")
    log.warning("excluded %d row(s) with %s (rows %s)", len(labels), reason, shown)


def _summary(selection) -> str:
    return "; ".join(f"{k}: {v}" for k, v in selection["excluded"].items()) or "none excluded"
