"""Figures from results tables: every figure's CSV is what it draws, partial tables skip with a
reason, the command's errors are one line, and the look (log ticks, colours) holds."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest

from scaling.cli import main as cli
from scaling.errors import UserError
from scaling.figures.registry import Context
from scaling.figures.render import entries
from scaling.figures.style import STYLES, Palette, sci
from scaling.formatting import human
from scaling.figures.fits import budgets
from scaling.figures.table import Columns, Skip, prepare
from scaling.results_table import read_table
from tests.test_figures_fixtures import families_table, study_table

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAPER_FIGURES = ["fig1_metric_vs_compute", "fig3_training_curves", "fig4_fixed_budget", "fig6_training_curves_ssc",
                 "fig7_fixed_budget_ssc"]


def context(df: pd.DataFrame, **kw) -> Context:
    """A drawing context for ``df`` with the paper style and few bootstrap resamples (fast)."""
    table = prepare(df, Columns())
    palette = Palette(variants=set(table["variant"]), families=set(table.get("model_family", pd.Series(dtype=str))))
    return Context(**{"table": table, "columns": Columns(), "style": STYLES["paper"], "palette": palette,
                      "bootstrap": 10, **kw})


def draw(name: str, ctx: Context):
    with plt.rc_context(ctx.style.rc()):
        return entries()[name].draw(ctx)


def artist_data(fig) -> dict[tuple[str, str, str], np.ndarray]:
    """(panel, series, role) -> drawn points (n, 2), or for bands the polygon's vertices."""
    found = {}
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.collections]:
            gid = artist.get_gid()
            if not gid:
                continue
            key = tuple(gid.split("|"))
            if hasattr(artist, "get_xydata"):
                found[key] = np.asarray(artist.get_xydata(), dtype=float)
            elif key[2] == "interval":
                found[key] = np.concatenate([p.vertices for p in artist.get_paths()])
            else:
                found[key] = np.asarray(artist.get_offsets(), dtype=float)
    return found


def assert_csv_is_drawing(output) -> None:
    """Every recorded series is drawn exactly, and every drawn series is recorded."""
    drawn = artist_data(output.figure)
    data = output.data
    recorded = set(map(tuple, data[["panel", "series", "role"]].drop_duplicates().to_numpy()))
    assert recorded == set(drawn), f"{output.name}: CSV series {recorded ^ set(drawn)} differ from the drawing"
    for key, xy in drawn.items():
        rows = data[(data["panel"] == key[0]) & (data["series"] == key[1]) & (data["role"] == key[2])]
        if key[2] == "interval":
            assert np.isclose(xy[:, 1].min(), rows["y_lo"].min()) and np.isclose(xy[:, 1].max(), rows["y_hi"].max())
            assert np.isclose(xy[:, 0].min(), rows["x"].min()) and np.isclose(xy[:, 0].max(), rows["x"].max())
        else:
            np.testing.assert_allclose(xy, rows[["x", "y"]].to_numpy(dtype=float), rtol=1e-12, err_msg=str(key))


@pytest.fixture(scope="module")
def study():
    return study_table()


@pytest.fixture(scope="module")
def paper_figures(study):
    """Every paper figure of the fixture study, drawn once."""
    ctx = context(study)
    yield {name: draw(name, ctx) for name in PAPER_FIGURES}
    plt.close("all")


@pytest.mark.parametrize("name", PAPER_FIGURES)
def test_paper_figure_csv_holds_what_is_drawn(paper_figures, name):
    outputs = paper_figures[name]
    assert outputs
    for output in outputs:
        assert output.name.startswith(name)
        assert_csv_is_drawing(output)
        assert set(output.data["role"]) <= {"data", "envelope", "fit", "interval", "minimum", "reference"}


def test_fig1_draws_envelopes_fits_bands_and_textless_trends(paper_figures):
    (out,) = paper_figures["fig1_metric_vs_compute"]
    d = out.data
    assert set(d["panel"]) == {"loss_val", "acc_sblimp", "acc_ssc", "acc_stc"}
    env = d[(d["panel"] == "loss_val") & (d["role"] == "envelope")]
    assert set(env["series"]) == {"Interleaved, TextLM init: best per compute", "Textless: best per compute"}
    for series, rows in env.groupby("series"):
        assert (np.diff(rows["y"]) < 0).all(), f"{series}: the best loss per compute must fall with compute"
    assert (d["role"] == "interval").any() and (d["role"] == "fit").any()
    ref = d[d["role"] == "reference"]
    assert set(ref["panel"]) == {"acc_sblimp", "acc_ssc", "acc_stc"}  # textless trends exist for these three
    assert d.loc[(d["panel"] == "acc_stc") & (d["role"] == "data"), "y"].between(50, 100).all()  # fractions as percent


def test_fig1_places_published_slms_when_asked(study):
    (out,) = draw("fig1_metric_vs_compute", context(study, published=True))
    pub = out.data[out.data["series"] == "published SLMs"]
    assert "SIMS (Maimon et al. 2025)" in set(pub["run"])
    sims = pub[(pub["run"] == "SIMS (Maimon et al. 2025)") & (pub["panel"] == "acc_stc")]
    assert sims["y"].iloc[0] == pytest.approx(88.3) and sims["x"].iloc[0] == pytest.approx(6 * 7e9 * 15e9)
    plt.close(out.figure)


def test_fig2_compares_text_lms_at_a_common_step_largest_first():
    (out,) = draw("fig2_text_lm_families", context(families_table()))
    assert_csv_is_drawing(out)
    panel = out.data[out.data["panel"] == "acc_ms_stc"]
    assert list(panel["category"]) == ["qwen2 1.5B", "llama 1B", "qwen2 0.5B", "opt 125M"]
    assert set(panel["step"]) == {4000}
    plt.close(out.figure)


def test_fig2_uses_the_last_step_every_run_reached():
    df = families_table()
    df = df[~((df["run_id"] == "opt-125M") & (df["step"] > 2000))]
    (out,) = draw("fig2_text_lm_families", context(df))
    assert set(out.data["step"]) == {2000}
    plt.close(out.figure)


def test_training_curves_one_file_per_base_model_with_one_curve_per_variant(paper_figures):
    outputs = paper_figures["fig3_training_curves"]
    assert len(outputs) == 6 and outputs[0].name == "fig3_training_curves_llama-0.5m"
    d = outputs[0].data
    assert set(d["series"]) == {"Interleaved, TextLM init", "Textless"}
    # the longest run of each variant: the largest budget, all three evaluation points
    assert d.groupby(["panel", "series"]).size().eq(3).all()


def test_fixed_budget_groups_runs_by_compute(paper_figures):
    outputs = paper_figures["fig4_fixed_budget"]
    assert [o.name for o in outputs] == ["fig4_fixed_budget_interleaved-textlm-init", "fig4_fixed_budget_textless"]
    d = outputs[0].data
    assert d["budget"].nunique() == 4 and d.groupby("series").size().eq(6 * 2).all()  # 6 sizes × 2 panels


def test_colours_are_fixed_per_variant_across_figures(paper_figures):
    colours = {}
    for name in ("fig1_metric_vs_compute", "fig3_training_curves"):
        for out in paper_figures[name]:
            for ax in out.figure.axes:
                for line in ax.lines:
                    gid = line.get_gid() or ""
                    if gid.split("|")[1:2] in (["Interleaved, TextLM init"], ["Interleaved, TextLM init: best per compute"]):
                        colours.setdefault(name, set()).add(line.get_color())
    assert colours["fig1_metric_vs_compute"] == colours["fig3_training_curves"] == {"#0072B2"}


@pytest.mark.parametrize("drop, name, reason", [
    (["step", "tokens"], "fig3_training_curves", "neither 'step' nor 'tokens'"),
    (["loss_val_speech", "acc_ms_stc", "acc_stc"], "fig3_training_curves", "none of"),
    (["data_mode", "init"], "fig3_training_curves", "one variant only with these metrics"),
    (["loss_val", "acc_sblimp", "acc_ssc", "acc_stc"], "fig1_metric_vs_compute", "no final runs with"),
    (["acc_ms_ssc", "acc_ssc"], "fig7_fixed_budget_ssc", "none of acc_ms_ssc/acc_ssc"),
    (["init"], "fig2_text_lm_families", "only one text LM"),
])
def test_partial_tables_skip_with_a_reason(study, drop, name, reason):
    with pytest.raises(Skip, match=reason):
        draw(name, context(study.drop(columns=drop)))


def test_missing_panels_are_left_out_not_drawn_empty(study):
    (out,) = draw("fig1_metric_vs_compute", context(study.drop(columns=["acc_sblimp", "acc_ssc"])))
    assert set(out.data["panel"]) == {"loss_val", "acc_stc"} and len(out.figure.axes) == 2
    plt.close(out.figure)


def test_one_variant_study_draws_without_comparison(study):
    one = study[study["data_mode"] == "interleaved"]
    (out,) = draw("fig1_metric_vs_compute", context(one))
    assert {s.split(":")[0] for s in out.data.loc[out.data["role"] == "envelope", "series"]} == {"Interleaved, TextLM init"}
    plt.close(out.figure)


def test_prepare_checks_types_and_derives_compute():
    df = study_table().drop(columns=["flops_6nd"])
    table = prepare(df, Columns())
    assert table.attrs["compute_derived"]
    np.testing.assert_allclose(table["flops_6nd"], 6 * df["params_total"] * df["tokens"])
    assert table["final"].dtype == bool and table["final"].sum() == 48
    bad = study_table()
    bad["loss_val"] = bad["loss_val"].astype(object)
    bad.loc[3, "loss_val"] = "nan?"
    with pytest.raises(UserError, match=r"column 'loss_val' row 3 has 'nan\?'; expected a number"):
        prepare(bad, Columns())
    no_compute = context(df.drop(columns=["params_total"]))
    assert "flops_6nd" not in no_compute.table.columns
    with pytest.raises(Skip, match="no column 'flops_6nd', needed for this figure"):
        draw("fig1_metric_vs_compute", no_compute)
    with pytest.raises(UserError, match="no metric column"):
        prepare(df[["params_total", "tokens"]], Columns())


def test_final_rows_without_final_column_are_each_runs_last_step():
    df = study_table().drop(columns=["final"])
    table = prepare(df, Columns())
    assert table["final"].sum() == 48 and (table.loc[table["final"], "step"] > 0).all()


def test_budgets_join_nearby_compute():
    groups = budgets([1.0e15, 1.02e15, 0.99e15, 3e15, 3.1e15, 1e16])
    assert len(set(groups)) == 3 and groups[0] == groups[1] == groups[2] == pytest.approx((1.02 * 0.99) ** (1 / 3) * 1e15)


def test_tick_labels_are_readable(paper_figures):
    assert [sci(v) for v in (1e18, 3e19, 6.86e20)] == ["1e18", "3e19", "6.86e20"]
    assert [human(v) for v in (40e3, 1.5e9, 4166666667)] == ["40k", "1.5B", "4.17B"]

    def visible(ax) -> list[str]:
        ax.figure.canvas.draw()
        lo, hi = ax.get_xlim()
        return [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]

    assert visible(paper_figures["fig1_metric_vs_compute"][0].figure.axes[0]) == ["3e15", "1e16", "3e16", "1e17"]
    assert visible(paper_figures["fig4_fixed_budget"][0].figure.axes[0]) == ["1M", "3M", "10M"]


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(UserError, match="is a directory"):
        read_table(tmp_path)
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="has no rows"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="cannot read table"):
        read_table(tmp_path / "bad.parquet")


def test_cli_writes_png_pdf_csv_and_says_what_it_wrote(tmp_path, capsys):
    table = tmp_path / "results.csv"
    study_table().to_csv(table, index=False)
    out = tmp_path / "figs"
    assert cli(["figures", str(table), "--out", str(out), "--only", "fig7", "table3", "--style", "slides"]) == 0
    text = capsys.readouterr().out
    assert text.strip().splitlines()[-1] == f"wrote 2 figures and 1 tables (9 files) to {out}/"
    for stem in ("fig7_fixed_budget_ssc_interleaved-textlm-init", "fig7_fixed_budget_ssc_textless"):
        for ext in ("png", "pdf", "csv"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0
    assert (out / "fig7_fixed_budget_ssc_textless.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "table3_slm_comparison.tex").read_text().startswith("\\begin{table}")
    assert not list(out.glob(".*.tmp"))


def test_cli_prints_skip_reasons(tmp_path, capsys):
    table = tmp_path / "results.csv"
    study_table().drop(columns=["data_corpus"]).to_csv(table, index=False)
    assert cli(["figures", str(table), "--out", str(tmp_path / "o"), "--only", "table1", "table4"]) == 1
    text = capsys.readouterr().out
    assert "skipped table1_synthetic_data: the table has no column 'data_corpus'" in text
    assert text.strip().splitlines()[-1].endswith("skipped 2 (reasons above)")


@pytest.mark.parametrize("args, message", [
    (["figures", "nope.csv"], "table 'nope.csv' does not exist"),
    (["figures", "{table}", "--only", "fig9"], "unknown figure or table 'fig9'"),
    (["figures", "{table}", "--compute", "flops_exact"], "has no column 'flops_exact' (--compute)"),
    (["figures", "{table}", "--bootstrap", "-1"], "--bootstrap -1"),
    (["figures"], "missing the results table"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    table = tmp_path / "t.csv"
    study_table().to_csv(table, index=False)
    assert cli([a.format(table=table) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scaling figures: error:") and message in err[0]


def test_bad_table_in_a_fresh_process_prints_no_traceback(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("run_id,params_total,tokens\nx,abc,3\n")
    proc = subprocess.run([sys.executable, "-m", "scaling.cli", "figures", str(table)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("scaling figures: error: table '" + str(table)
                                   + "': column 'params_total' line 2 has 'abc'; expected a number")


def test_list_names_every_figure_and_table(capsys):
    assert cli(["figures", "--list"]) == 0
    text = capsys.readouterr().out
    for name in entries():
        assert name in text


def test_decay_branch_rows_are_budgets_not_curve_points(study):
    run = study[(study["run_id"] == "in-te-1e+06-1e+17")]
    branch = run[run["final"]].copy()
    branch["tokens"] /= 2
    branch["flops_6nd"] /= 2
    branch["loss_val_speech"] += 0.05
    branch["branch"] = True
    df = pd.concat([study.assign(branch=False), branch], ignore_index=True)
    ctx = context(df)
    assert ctx.table["final"].sum() == 49  # one more budget, same run id
    curves = draw("fig3_training_curves", ctx)
    one_m = next(o for o in curves if o.name.endswith("llama-1m"))
    assert len(one_m.data[one_m.data["series"] == "Interleaved, TextLM init"]) == 3 * 2  # trunk points only
    for o in curves:
        plt.close(o.figure)


def test_where_keeps_matching_rows(tmp_path, capsys):
    table = tmp_path / "t.csv"
    study_table().to_csv(table, index=False)
    out = tmp_path / "o"
    assert cli(["figures", str(table), "--out", str(out), "--only", "table3", "--where", "data_mode=speech"]) == 0
    assert (out / "table3_slm_comparison.csv").read_text().count("speech-scratch") == 1
    assert "interleaved" not in (out / "table3_slm_comparison.csv").read_text()
    assert cli(["figures", str(table), "--out", str(out), "--where", "data_mode=nope"]) == 2
    assert "no row matches data_mode=nope" in capsys.readouterr().err
