"""The one results-table module: how every reader interprets a cell, and the one writer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.errors import UserError
from scaling.figures.table import Columns, prepare
from scaling.fit import load_table
from scaling.results_table import LEADING_COLUMNS, final_mask, numbers, parse_bool, read_table, write_table


def curves() -> pd.DataFrame:
    """Two runs of three evaluation points each (steps 1-3), a third run that failed half-way."""
    rows = []
    for run, n, status in (("a", 1e6, "done"), ("b", 4e6, "done"), ("c", 2e6, "failed")):
        for step in (1, 2, 3) if status == "done" else (1,):
            d = 1e6 * step
            rows.append({"run_id": run, "status": status, "step": step, "params_total": n, "tokens": d,
                         "flops_6nd": 6 * n * d, "loss_val": 2 + 100 / n**0.3 + 100 / d**0.3})
    return pd.DataFrame(rows)


def test_booleans_are_read_alike_everywhere():
    series = pd.Series(["1.0", "0.0", "TRUE", "no", "", np.nan, "y"])
    assert list(parse_bool(series, "final")) == [True, False, True, False, False, False, True]
    assert list(parse_bool(pd.Series([1, 0, 1]), "final")) == [True, False, True]
    with pytest.raises(UserError, match="column 'final' has 'maybe'; expected true/false"):
        parse_bool(pd.Series(["true", "maybe"]), "final")


def test_final_rows_without_the_column_are_each_runs_last_step_for_fit_and_figures():
    df = curves()
    assert list(final_mask(df)) == [False, False, True, False, False, True, True]
    assert final_mask(df.drop(columns=["run_id"])) is None  # cannot tell: every row is a point
    n, d, y, kept = load_table(df)
    assert list(kept["run_id"]) == ["a", "b"] and kept.attrs["selection"]["excluded"] == {"status=failed": 1}
    assert len(load_table(df.drop(columns=["status"]))[3]) == 3  # no status: no run is left out
    figures = prepare(df, Columns())
    assert list(figures.loc[figures["final"], "run_id"]) == ["a", "b", "c"]
    from scaling.figures.table import final_rows

    assert list(final_rows(figures)["run_id"]) == list(kept["run_id"])  # both leave the failed run out
    strings = df.assign(final=["0.0", "0.0", "1.0", "0", "0", "1", "1"])
    assert list(load_table(strings)[3]["run_id"]) == ["a", "b"]
    assert prepare(strings, Columns())["final"].sum() == 3


def test_numbers_name_the_file_line_and_value(tmp_path):
    path = tmp_path / "t.csv"
    curves().assign(tokens=["1e6", "x", "3e6", "1e6", "2e6", "3e6", ""]).to_csv(path, index=False)
    df, source = read_table(path)
    with pytest.raises(UserError, match=rf"^table '{path}': column 'tokens' line 3 has 'x'; expected a number$"):
        numbers(df["tokens"], "tokens", source)
    assert np.isnan(numbers(df["tokens"].where(df.index != 1, "1"), "tokens", source)[-1])  # an empty cell is missing


def test_writer_puts_the_leading_columns_first_and_round_trips(tmp_path):
    df = curves().assign(zeta=1, alpha=2, time="now", final=True)
    paths = write_table(df, tmp_path / "results")
    assert [p.name for p in paths] == ["results.csv", "results.parquet"]
    for path in paths:
        back, _ = read_table(path)
        leading = [c for c in LEADING_COLUMNS if c in df.columns]
        assert list(back.columns) == leading + ["alpha", "zeta"]  # time stamps are not written
        assert back["final"].all() and len(back) == len(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.parquet"]
