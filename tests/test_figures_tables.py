"""The SIMS tables in Markdown and LaTeX, with and without the published rows, and the shipped
reference data they draw on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from scaling.figures.reference import FILES, load_reference
from scaling.figures.render import entries
from scaling.figures.table import Skip
from tests.test_figures import context
from tests.test_figures_fixtures import study_table

REPO = Path(__file__).resolve().parents[1]


def make(name: str, df: pd.DataFrame | None = None, **kw):
    (out,) = entries()[name].draw(context(study_table() if df is None else df, **kw))
    return out


def test_table1_rows_per_model_and_corpus_with_published_rows():
    df = study_table()
    df.loc[df["model_size"] == "4M", "data_corpus"] = "synthetic"
    out = make("table1_synthetic_data", df, published=True)
    md, tex = out.table.markdown(), out.table.latex()
    assert md.splitlines()[2] == ("| Model | Variant | Training data | sBLIMP ↑ | sSC ↑ | MS-sSC ↑ | tSC ↑ | MS-tSC ↑ | "
                                  "Validation loss ↓ |")
    assert "| 4M | Interleaved, TextLM init | synthetic |" in md
    assert "| Qwen2.5-0.5B (SIMS v1) | Interleaved, TextLM init | real + synthetic | 56.98 | 59.81 | 54.85 | **81.51** | " \
           "**81.67** | 1.983 |" in md
    assert "\\textbf{1.961}" in tex  # the lowest loss, published "real" row
    assert tex.count("\\midrule") == 2  # after the header, and before the published rows
    assert set(out.data["source"]) == {"this table", "Maimon et al. 2025, arXiv:2504.02398v1, Table 1"}
    assert len(out.data) == 12 + 3


def test_table2_cross_modal_layout_and_escaping():
    out = make("table2_cross_modal", published=True)
    tex = out.table.latex()
    assert "\\multicolumn{5}{c}{MS-sSC} & \\multicolumn{5}{c}{MS-tSC}" in tex
    assert "\\cmidrule(lr){4-8} \\cmidrule(lr){9-13}" in tex
    assert "S$\\rightarrow$T & T$\\rightarrow$S" in tex and "(\\%)" in tex
    assert "SIMS (Qwen2.5; SIMS v1) & 7.6B & 6.86e20 & 60.33 & 67.73 & 60.65 & 72.47 & \\textbf{75.09}" in tex
    ours = out.data[out.data["source"] == "this table"]
    assert set(ours["flops_6nd"].round(-15)) == {1e17}  # the largest budget of each variant
    assert len(ours) == 12


def test_table2_skips_without_cross_modal_columns():
    df = study_table()
    df = df.drop(columns=[c for c in df.columns if c.endswith(("_s2t", "_t2s", "_t2t", "_textlm"))])
    with pytest.raises(Skip, match="no cross-modal StoryCloze columns"):
        make("table2_cross_modal", df)


def test_table3_largest_run_per_variant_beside_published_slms():
    out = make("table3_slm_comparison", published=True)
    md = out.table.markdown()
    assert "| llama-16M-speech-scratch-1e+17 | 16M | 1.04B |" in md
    assert "| SIMS (Maimon et al. 2025) (speech-text) | 7B | 15B | 59.80 | **66.70** | **88.30** |" in md
    assert "| AlignSLM (Lin et al. 2024) (textless) | 7B | 36 + 158B |" in md
    assert "| Zeng et al. (2024) (speech-text) | 9B | ~1T | – |" in md
    plain = make("table3_slm_comparison")
    assert "SIMS (Maimon" not in plain.table.markdown() and len(plain.table.rows) == 2


def test_table4_tokens_per_corpus_and_published_hours():
    out = make("table4_data_sizes", published=True)
    md = out.table.markdown()
    assert "| demo | – | 33.3B | 13.3B | 48 |" in md
    assert "| Libri-Light (Kahn et al. 2020) (SIMS v1) | 50,000 | 3.5B | – | – |" in md
    with pytest.raises(Skip, match="no tokens_speech or tokens_text"):
        make("table4_data_sizes", study_table().drop(columns=["tokens_speech", "tokens_text"]))


def test_reference_files_carry_their_source():
    for key in FILES:
        df = load_reference(key)
        assert df["source"].str.match(r"Maimon et al\. 2025, arXiv:2504\.02398v1, Table [1-4]$").all()
    t3 = load_reference("table3")
    sims = t3[t3["model"].str.startswith("SIMS")].iloc[0]
    assert (sims["acc_sblimp"], sims["acc_ssc"], sims["acc_stc"]) == (59.8, 66.7, 88.3)


def test_analysis_script_writes_its_table(tmp_path):
    table = tmp_path / "results.csv"
    study_table().to_csv(table, index=False)
    proc = subprocess.run([sys.executable, str(REPO / "analysis" / "table3_slm_comparison.py"), str(table),
                           "--out", str(tmp_path / "out"), "--published"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"wrote 0 figures and 1 tables (3 files) to {tmp_path / 'out'}/"
    assert "SIMS (Maimon et al. 2025)" in (tmp_path / "out" / "table3_slm_comparison.md").read_text()
