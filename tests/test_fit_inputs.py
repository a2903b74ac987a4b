"""Loading and validating tables, bad input, bootstrap units, result JSON, reference laws and
the ``scaling fit`` command on a results table."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling.cli import main
from scaling.errors import UserError
from scaling.fit import REFERENCE_LAWS, FitResult, bootstrap, fit_law, load_table, reference_law, simulate
from scaling.fit.uncertainty import resample_weights

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


@pytest.fixture
def table(tmp_path) -> Path:
    """A results table with training curves (3 evaluations per run, final on the last)."""
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 6), c_grid=np.geomspace(1e18, 1e21, 4), noise=0.004, seed=7,
                  curve_points=3)
    df["params_non_embedding"] = df["params_total"] * 0.9
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    return path


def test_load_table_defaults_to_final_rows_and_drops_diverged(table, caplog):
    df = pd.read_csv(table)
    df.loc[df.index[-1], "status"] = "diverged"
    n, d, y, kept = load_table(df)
    assert len(y) == 23 and kept["final"].all()
    assert "status=diverged" in caplog.text
    n_all, *_ = load_table(df, all_rows=True)
    assert len(n_all) == 71
    _, d_c, _, _ = load_table(df, c="flops_6nd")
    assert d_c == pytest.approx(d)
    _, _, _, sel = load_table(df, where=["params_total>1e9", "status=done"])
    assert (sel["params_total"] > 1e9).all() and sel.attrs["selection"]["where"] == ["params_total>1e9", "status=done"]


def test_missing_values_are_excluded_with_a_warning(table, caplog):
    df = pd.read_csv(table)
    df.loc[[2, 5], "loss_val"] = np.nan
    with caplog.at_level(logging.WARNING, logger="scaling.fit"):
        _, _, y, kept = load_table(df)
    assert len(y) == 22 and np.isfinite(y).all()
    assert kept.attrs["selection"]["excluded"] == {"missing or non-finite loss_val": 2}
    assert "excluded 2 row(s) with missing or non-finite loss_val (rows 2, 5)" in caplog.text


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(columns="tokens"), "unknown column 'tokens'.*expected one of"),
    (lambda df: df.assign(loss_val=df["loss_val"].astype(object).where(df.index != 2, "abc")),
     "column 'loss_val' line 4 has 'abc'; expected a number"),
    (lambda df: df.assign(params_total=df["params_total"].where(df.index != 5, -1.0)),
     "column 'params_total' line 7 is -1.0; expected a positive number"),
    (lambda df: df.assign(final=False), "no row has final=true"),
    (lambda df: df.assign(final="maybe"), "column 'final' has 'maybe'; expected true/false"),
])
def test_bad_tables_raise_one_line_errors(table, tmp_path, change, message):
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(table)).to_csv(bad, index=False)
    with pytest.raises(UserError, match=message) as err:
        load_table(bad)
    assert "\n" not in str(err.value)


def test_bad_arrays_raise_user_errors():
    n, d = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9]), np.full(6, 1e10)
    y = np.linspace(3, 2.5, 6)
    with pytest.raises(UserError, match=r"D \(tokens\) is constant \(1e\+10\)"):
        fit_law(n, d, y)
    with pytest.raises(UserError, match="3 points cannot fit 5 free parameters"):
        fit_law(n[:3], d[:3] * [1, 2, 3], y[:3])
    with pytest.raises(UserError, match=r"y \(loss\) at point 1 is nan"):
        fit_law(n, d, np.array([3, np.nan, 2, 2, 2, 2.0]))
    with pytest.raises(UserError, match=r"N \(parameters\) at point 0 is -1.0"):
        fit_law(-n, d, y)
    with pytest.raises(UserError, match="has 5 values but the loss has 6"):
        fit_law(n[:5], d[:5], y)
    with pytest.raises(UserError, match="unknown law 'chinchila' \\(did you mean 'chinchilla'\\?\\)"):
        fit_law(n, d, y, law="chinchila")
    with pytest.raises(UserError, match="unknown loss 'l1'"):
        fit_law(n, d * np.arange(1, 7), y, loss="l1")


def test_bootstrap_resamples_whole_runs(table):
    df = pd.read_csv(table)
    weights, units = resample_weights(df["run_id"], n_boot=50, seed=1)
    assert units == 24 and weights.shape == (50, 72)
    for run, rows in df.groupby("run_id").groups.items():
        assert (weights[:, rows] == weights[:, rows[:1]]).all(), run   # a run's rows move together
    assert weights.sum(axis=1) == pytest.approx(np.full(50, 72.0))
    n, d, y, kept = load_table(df, all_rows=True)
    fit = fit_law(n, d, y, run_id=kept["run_id"].to_numpy(), bootstrap=100, seed=3, targets_c=[1e22])
    boot = fit.diagnostics["bootstrap"]
    assert boot["unit"] == "run" and boot["units"] == 24 and boot["failed"] == 0
    lo, hi = fit.intervals["alpha"]
    assert lo < fit.params["alpha"] < hi and lo < 0.35 < hi
    assert "n_opt@1e+22" in fit.intervals and "tokens_per_param@1e+22" in fit.intervals
    again = bootstrap(n, d, y, fit, groups=kept["run_id"], n_boot=100, seed=3, targets_c=[1e22])
    assert again.intervals["alpha"] == pytest.approx(fit.intervals["alpha"])   # seeded: reproducible


def test_result_json_round_trips_at_full_precision():
    df = simulate(TRUE, np.geomspace(3e7, 1e10, 6), c_grid=np.geomspace(1e18, 1e21, 4), noise=0.004, seed=7)
    fit = fit_law(df["params_total"], df["tokens"], df["loss_val"], seed=5)
    text = json.dumps(fit.to_json())
    back = FitResult.from_json(json.loads(text))
    assert back.params == fit.params and back.objective == fit.objective
    assert back.predict(1e9, 2e10) == fit.predict(1e9, 2e10)
    assert fit.predict(np.array([1e8, 1e9])[:, None], np.array([1e10, 1e11])).shape == (2, 2)
    prov = fit.provenance
    assert prov["law"] == "chinchilla" and prov["approach"] == 3 and prov["starts"].startswith("Hoffmann")
    with pytest.raises(UserError, match="not a fit JSON"):
        FitResult.from_json({"law": "chinchilla"})


def test_reference_laws_carry_sources():
    assert {"chinchilla_published", "chinchilla_unrounded", "epoch_replication", "cuervo_marxer_speech",
            "cuervo_marxer_speech_metrics", "cuervo_marxer_text_metrics", "muennighoff_text"} <= set(REFERENCE_LAWS)
    assert all(ref.source for ref in REFERENCE_LAWS.values())
    assert reference_law("chinchilla_unrounded").params["E"] == pytest.approx(np.exp(0.5267228), rel=1e-15)
    assert reference_law("cuervo_marxer_speech").delta == 0.03
    assert reference_law("cuervo_marxer_text_metrics").exponents["sBLIMP"] == 0.066
    with pytest.raises(UserError, match="unknown reference law"):
        reference_law("gpt5")


def test_cli_fits_a_results_table(table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["fit", str(table), "--bootstrap", "50", "--seed", "1", "--target-c", "1e22", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chinchilla law, Approach 3" in text and "24 points of 72 rows" in text
    assert "95% interval" in text and "1e+22" in text and "bootstrap: 50 of 50 refits over 24 runs" in text
    saved = json.loads(out.read_text())
    assert saved["provenance"]["selection"]["final_only"] is True and saved["provenance"]["seed"] == 1
    assert main(["fit", str(table), "--approach", "2", "--tie", "alpha=beta"]) == 2
    assert "tie apply to Approach 3 only" in capsys.readouterr().err
    assert main(["fit", str(table), "--approach", "2"]) == 0
    text = capsys.readouterr().out
    assert "Approach 2" in text and "4 budgets with an interior minimum" in text
    assert text.strip().endswith("nothing written (pass --json OUT to save the fit with its provenance)")
    assert main(["fit", str(table), "--holdout-above", "2e20", "--fix", "E=1.8"]) == 0
    text = capsys.readouterr().out
    assert "back-test: fitted on 18 points" in text and "absolute relative error" in text
    assert main(["fit", str(table), "--json", str(out), "--compare", "chinchilla_unrounded", "--compare", str(out)]) == 0
    text = capsys.readouterr().out
    assert "compared allocations" in text and "chinchilla_unrounded" in text and text.count(str(out)) >= 2


@pytest.mark.parametrize("argv, message", [
    (["--n", "params"], "unknown column 'params'"),
    (["--fix", "E"], "--fix 'E': expected NAME=VALUE"),
    (["--where", "status~done"], "expected COLUMN=VALUE"),
    (["--json", "/nonexistent/dir/fit.json"], "directory '/nonexistent/dir' does not exist"),
    (["--compare", "gpt5"], "unknown reference law 'gpt5'"),
])
def test_cli_errors_are_one_line(table, capsys, argv, message):
    assert main(["fit", str(table), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scaling fit: error:") and message in err[0]


def test_cli_error_path_in_a_subprocess(tmp_path):
    exe = Path(sys.executable).with_name("scaling")
    proc = subprocess.run([str(exe), "fit", str(tmp_path / "missing.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"scaling fit: error: table '{tmp_path / 'missing.csv'}' does not exist or is not a file; "
        "expected a CSV or Parquet results table"]
