"""Load and validate the columns a fit reads from a results table or any CSV.

The results table has one row per run x evaluation point, with columns such as
``params_total``, ``params_non_embedding``, ``tokens``, ``flops_6nd``, ``loss_val``,
``loss_val_speech``, ``status``, ``final`` (the last evaluation of a run) and ``run_id``; it is
read, and its cells interpreted, by :mod:`scaling.results_table`.
Defaults: only final rows are fitted (the ``final`` column, else each run's last step; see
:func:`scaling.results_table.final_mask`; ``all_rows=True`` keeps every evaluation point); rows
of diverged or failed runs (``status``) are excluded with a warning.
Rows with a missing (NaN/empty/infinite) value in a used column are excluded with a warning;
a non-numeric or non-positive value is an error naming the column, the row and the value.
What was kept and why is recorded in ``kept.attrs["selection"]``.
"""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from scaling.errors import UserError, unknown_choice
from scaling.results_table import TRUE_WORDS, describe_row, final_mask, numbers, parse_bool, read_table, unusable_mask

log = logging.getLogger("scaling.fit")


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
    final = None if all_rows else final_mask(df)
    if final is not None:
        selection["final_only"] = True
        df = df[final]
        if df.empty:
            raise UserError("no row has final=true; pass all_rows (--all-rows) to fit every evaluation point")
    if not include_diverged:
        unusable = unusable_mask(df)
        states = df.loc[unusable, "status"].astype(str).str.lower() if unusable.any() else pd.Series(dtype=str)
        for state in sorted(set(states)):
            _exclude(selection, f"status={state}", states.index[states == state])
        df = df[~unusable]
    values = {}
    for col in needed:
        values[col] = numbers(df[col], col, source)
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
            raise UserError(f"column {col!r} {describe_row(df.index[i], source)} is {float(v[i])!r}; expected a positive number")
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
            mask = parse_bool(series, col) == (str(value).strip().lower() in TRUE_WORDS)
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


def _exclude(selection, reason, index):
    if len(index) == 0:
        return
    labels = [int(i) if isinstance(i, (int, np.integer)) else str(i) for i in index]
    selection["excluded"][reason] = selection["excluded"].get(reason, 0) + len(labels)
    shown = ", ".join(map(str, labels[:5])) + (", ..." if len(labels) > 5 else "")
    log.warning("excluded %d row(s) with %s (rows %s)", len(labels), reason, shown)


def _summary(selection) -> str:
    return "; ".join(f"{k}: {v}" for k, v in selection["excluded"].items()) or "none excluded"
