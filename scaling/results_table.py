"""The results table: the one interface between training and analysis (DESIGN, contract 1).

One row per run × evaluation point, written by ``scaling collect`` (:func:`write_table`) and read
by ``scaling fit`` and ``scaling figures`` through :func:`read_table` and the typed readers below,
so that every reader agrees on what a cell means. Any user CSV or Parquet file with some of the
columns is a results table too.

Conventions of the columns (every name states its unit or convention):

* ``params_total`` all parameters, embeddings and a tied output layer once; ``params_non_embedding``
  without token/position embeddings and an untied output layer; ``params_embedding`` the rest;
  ``params_embedding_speech`` the embedding rows added for speech units and markers;
* ``tokens`` trained (label) tokens at the row's point, ``tokens_speech`` / ``tokens_text`` /
  ``tokens_marker`` by the modality of the target; ``train_tokens`` the run's budget;
* ``flops_6nd`` = 6·N_total·tokens, ``flops_6nd_nonembed`` = 6·N_non_embedding·tokens,
  ``flops_exact`` counts attention and the output layer (:mod:`scaling.models.flops`);
  ``*_spent``: the whole run, trunk and decay branches;
* ``loss_*`` mean next-token loss in nats per token; ``acc_*`` accuracies in [0, 1];
* booleans (``final``, ``branch``, ``diverged``) are true/false, 1/0 or yes/no, in any case;
* ``final`` is true on the last point of each budget; a table without it has each run's last
  step (by ``run_id`` and ``step``) as final, or every row when it has neither;
* ``status`` is the run's state; rows of runs in :data:`UNUSABLE_STATES` carry no trustworthy numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling.atomic import atomic_write
from scaling.errors import UserError

RUN_ID, STATUS, FINAL, STEP = "run_id", "status", "final", "step"

#: the columns a collected table starts with, in this order (every other column follows, sorted)
LEADING_COLUMNS = (
    "run_id", "name", "sweep", "status", "final", "branch", "step", "tokens", "tokens_speech", "tokens_text", "tokens_marker",
    "params_total", "params_non_embedding", "params_embedding", "params_embedding_speech",
    "flops_6nd", "flops_6nd_nonembed", "flops_exact", "loss_train", "loss_val", "loss_val_speech", "loss_val_text", "loss_val_speech_only",
    "branch_from_step", "branch_from_tokens", "branch_cost_tokens", "branch_cost_flops_6nd", "branch_cost_flops_6nd_nonembed",
    "branch_cost_flops_exact", "tokens_spent", "flops_6nd_spent", "flops_6nd_nonembed_spent", "flops_exact_spent")
#: columns that hold numbers wherever they appear, besides every ``loss_*`` and ``acc_*`` column
NUMERIC_COLUMNS = ("step", "tokens", "tokens_speech", "tokens_text", "params_total", "params_non_embedding",
                   "params_embedding_speech", "flops_6nd", "flops_6nd_nonembed", "flops_exact", "train_tokens")
METRIC_PREFIXES = ("loss_", "acc_")
#: states of runs whose rows no fit or figure uses
UNUSABLE_STATES = ("diverged", "failed")
#: columns of the store's logs that a table leaves out (wall-clock stamps)
DROPPED_COLUMNS = ("time",)

#: how true and false are written in a boolean column (lower case; an empty cell is false)
TRUE_WORDS = frozenset({"true", "1", "1.0", "yes", "t", "y"})
FALSE_WORDS = frozenset({"false", "0", "0.0", "no", "f", "n", "", "nan", "none"})


def read_table(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table at ``source`` (a CSV or Parquet path, or a DataFrame, returned as it is) and a
    description of where it came from: the path, or ``"<DataFrame>"``. UserError when the file is
    missing, unreadable or has no rows."""
    if isinstance(source, pd.DataFrame):
        return source, "<DataFrame>"
    path = Path(source)
    if path.is_dir():
        raise UserError(f"table {str(path)!r} is a directory; expected a CSV or Parquet results table (e.g. results.csv)")
    if not path.is_file():
        raise UserError(f"table {str(path)!r} does not exist or is not a file; expected a CSV or Parquet results table")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read table {str(path)!r}: {reason}") from None
    if df.empty:
        raise UserError(f"table {str(path)!r} has no rows")
    return df, str(path)


def describe_row(label, source: str) -> str:
    """Where a row is, for people: the line of a CSV file (header = line 1), else the index label."""
    if source.endswith(".csv") and isinstance(label, (int, np.integer)):
        return f"line {int(label) + 2}"
    return f"row {label!r}"


def _prefix(source: str) -> str:
    return "" if source == "<DataFrame>" else f"table {source!r}: "


def numbers(series: pd.Series, column: str, source: str = "<DataFrame>") -> np.ndarray:
    """A column as float64 (empty cells NaN); UserError naming the column, the row and the value
    when a cell is not a number, or when the column holds true/false."""
    if pd.api.types.is_bool_dtype(series):
        raise UserError(f"{_prefix(source)}column {column!r} holds true/false values; expected numbers")
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        label = series.index[bad.to_numpy()][0]
        raise UserError(f"{_prefix(source)}column {column!r} {describe_row(label, source)} has {str(series[label])!r}; expected a number")
    return values.to_numpy(dtype=float)


def parse_bool(series: pd.Series, column: str) -> pd.Series:
    """A boolean column from bools, 0/1 (also 1.0/0.0) or true/false, yes/no, t/f, y/n in any case;
    empty cells are false; anything else is a UserError."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(bool)
    text = series.map(lambda v: "" if pd.isna(v) else str(v)).str.strip().str.lower()
    bad = ~text.isin(TRUE_WORDS | FALSE_WORDS)
    if bad.any():
        raise UserError(f"column {column!r} has {str(series[bad].iloc[0])!r}; expected true/false")
    return text.isin(TRUE_WORDS)


def final_mask(df: pd.DataFrame) -> pd.Series | None:
    """Which rows are final (the last point of each budget): the ``final`` column; without it, each
    run's last step when the table has ``run_id`` and ``step``; None when it cannot tell (every row
    is then a point of its own)."""
    if FINAL in df.columns:
        return parse_bool(df[FINAL], FINAL)
    if RUN_ID in df.columns and STEP in df.columns:
        step = pd.Series(numbers(df[STEP], STEP), index=df.index)
        return step == step.groupby(df[RUN_ID]).transform("max")
    return None


def unusable_mask(df: pd.DataFrame) -> pd.Series:
    """Rows of runs in :data:`UNUSABLE_STATES` (none when the table has no ``status``)."""
    if STATUS not in df.columns:
        return pd.Series(False, index=df.index)
    return df[STATUS].astype(str).str.lower().isin(UNUSABLE_STATES)


def arrange(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of a table as written: :data:`LEADING_COLUMNS` first, every other column
    sorted, :data:`DROPPED_COLUMNS` left out."""
    if df.empty:
        return df
    df = df[[c for c in LEADING_COLUMNS if c in df.columns] + sorted(c for c in df.columns if c not in LEADING_COLUMNS)]
    return df.drop(columns=[c for c in DROPPED_COLUMNS if c in df.columns])


def write_table(df: pd.DataFrame, out: Path) -> list[Path]:
    """Write ``df``, its columns arranged (:func:`arrange`), as ``out.csv`` and ``out.parquet``
    (``out`` without suffix), each atomically; returns the paths written."""
    df = arrange(df)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return [atomic_write(out.with_suffix(".csv"), lambda f: df.to_csv(f, index=False)),
            atomic_write(out.with_suffix(".parquet"), lambda f: df.to_parquet(f, index=False))]
