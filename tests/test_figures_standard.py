"""The standard scaling-law figures: drawn from fits of the fitting engine, with bands, and a CSV that
holds exactly what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.figures.table import Skip
from tests.test_figures import assert_csv_is_drawing, context, draw, plt
from tests.test_figures_fixtures import LAWS, study_table

STANDARD = ["isoflop", "loss_vs_compute", "allocation", "isoloss", "residuals", "backtest"]


@pytest.fixture(scope="module")
def drawn():
    """Every standard figure of the fixture study, drawn once with one shared fit cache."""
    ctx = context(study_table(), bootstrap=10)
    out = {name: draw(name, ctx) for name in STANDARD}
    yield out, ctx
    plt.close("all")


@pytest.mark.parametrize("name", STANDARD)
def test_standard_figure_csv_holds_what_is_drawn(drawn, name):
    outputs, _ = drawn
    for output in outputs[name]:
        assert_csv_is_drawing(output)


def test_isoflop_parabolas_have_minima_inside_the_sampled_sizes_and_bands(drawn):
    outputs, _ = drawn
    iso = {o.name: o.data for o in outputs["isoflop"]}
    assert set(iso) == {"isoflop_interleaved-textlm-init", "isoflop_textless"}
    d = iso["isoflop_interleaved-textlm-init"]
    minima = d[d["role"] == "minimum"]
    assert len(minima) == 4 and minima["x"].between(0.5e6, 16e6).all()
    assert (d["role"] == "interval").sum() > 0
    # the minimum N* grows with the budget
    assert (np.diff(minima.sort_values("budget")["x"]) > 0).all()


def test_allocation_recovers_the_simulated_exponent_and_draws_published_laws(drawn):
    outputs, _ = drawn
    (out,) = outputs["allocation"]
    d = out.data
    e, a, b, alpha, beta = LAWS[("interleaved", "text-lm")]
    fit = d[(d["panel"] == "n_opt") & (d["series"] == "Interleaved, TextLM init: Approach 3") & (d["role"] == "fit")]
    slope = np.polyfit(np.log(fit["x"]), np.log(fit["y"]), 1)[0]
    assert slope == pytest.approx(beta / (alpha + beta), abs=0.05)  # N* ∝ C^(β/(α+β))
    refs = set(d.loc[d["role"] == "reference", "series"])
    assert refs == {"Chinchilla (Hoffmann et al. 2022)", "textless SLMs (Cuervo & Marxer 2024)",
                    "text LMs (Muennighoff et al. 2023)"}
    band = d[(d["role"] == "interval") & (d["panel"] == "d_opt")]
    assert (band["y_lo"] <= band["y_hi"]).all() and len(band) > 0


def test_loss_frontier_lies_at_or_below_the_best_runs(drawn):
    outputs, _ = drawn
    d = outputs["loss_vs_compute"][0].data
    for label in ("Interleaved, TextLM init", "Textless"):
        best = d[d["series"] == f"{label}: best per compute"]
        frontier = d[(d["role"] == "fit") & d["series"].str.startswith(f"{label}: L*(C)")]
        at_best = np.interp(np.log(best["x"]), np.log(frontier["x"]), frontier["y"])
        assert (at_best <= best["y"] * 1.02).all()


def test_residuals_are_small_for_data_from_the_law(drawn):
    outputs, _ = drawn
    d = outputs["residuals"][0].data
    assert d["y"].abs().max() < 3.0  # percent; the fixture's noise is 0.4 %


def test_backtest_holds_out_the_largest_budget(drawn):
    outputs, ctx = drawn
    d = outputs["backtest"][0].data
    held = d[d["series"].str.endswith("held out")]
    assert len(held) == 12 and (held["compute"] > 5e16).all()
    assert held["abs_rel_error"].max() < 0.05
    assert any("held-out error mean" in n for n in ctx.notes)


def test_isoloss_contours_and_frontier_per_variant(drawn):
    outputs, _ = drawn
    names = [o.name for o in outputs["isoloss"]]
    assert names == ["isoloss_interleaved-textlm-init", "isoloss_textless"]
    d = outputs["isoloss"][0].data
    assert d.loc[d["series"].str.startswith("L="), "series"].str.split(" ").str[0].nunique() == 5
    assert "efficient frontier" in set(d["series"])


def test_with_one_budget_isoflop_draws_the_profile_without_parabolas_and_says_why():
    df = study_table()
    df = df[df["train_tokens"] * 6 * df["params_total"] < 5e15]  # one budget only
    ctx = context(df, bootstrap=0)
    outputs = draw("isoflop", ctx)
    for out in outputs:
        assert_csv_is_drawing(out)
        assert set(out.data["role"]) == {"data"} and len(out.data) == 6
        plt.close(out.figure)
    assert any("profiles without parabolas: approach 2 needs at least 2 budgets" in n for n in ctx.notes)


def test_isoflop_skips_when_no_budget_has_two_sizes():
    df = study_table()
    df = df[df["params_total"] == 1e6]
    with pytest.raises(Skip, match="no compute budget with two or more model sizes"):
        draw("isoflop", context(df, bootstrap=0))


def test_without_a_tokens_column_the_law_figures_skip():
    with pytest.raises(Skip, match="no column 'tokens'"):
        draw("loss_vs_compute", context(study_table().drop(columns=["tokens"]), bootstrap=0))
