"""Run specs, sweep expansion, overrides and the size rule."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from scaling.errors import UserError
from scaling.models import FAMILIES, count_params, resolve_model
from scaling.models.build import build_model
from scaling.spec import ModelSpec, RunSpec, from_dict, parse_count
from scaling.sweep import apply_overrides, expand, load_sweep
from scaling.runs.vocabulary import vocabulary_rows


def test_run_id_ignores_sweep_name_and_tracks_result_fields():
    a = RunSpec(sweep="one")
    assert a.run_id == RunSpec(sweep="two").run_id
    assert a.run_id != dataclasses.replace(a, train=dataclasses.replace(a.train, lr=1e-4)).run_id
    assert a.run_id != dataclasses.replace(a, seed=1).run_id
    assert len(a.run_id) == 12 and a.run_id == RunSpec(sweep="one").run_id


def test_from_dict_is_strict_and_parses_counts():
    spec = from_dict(RunSpec, {"train": {"tokens": "2.5M", "lr": "1e-3"}, "data": {"mix": [0.2, 0.5, 0.3]}})
    assert spec.train.tokens == 2_500_000 and spec.train.lr == 1e-3 and spec.data.mix == (0.2, 0.5, 0.3)
    with pytest.raises(UserError, match=r"unknown key 'train.lrr' \(did you mean 'train.lr'\?\)"):
        from_dict(RunSpec, {"train": {"lrr": 1}})
    with pytest.raises(UserError, match="train.batch_size = 'many': expected"):
        from_dict(RunSpec, {"train": {"batch_size": "many"}})
    with pytest.raises(UserError, match="data.mode"):
        from_dict(RunSpec, {"data": {"mode": "video"}}).validate()
    with pytest.raises(UserError, match="init_from"):
        from_dict(RunSpec, {"init": "text-lm"}).validate()
    assert parse_count("500k", "x") == 5e5
    with pytest.raises(UserError):
        parse_count("-3", "x")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", ["20k", "300k", "1M", "10M", "1B"])
def test_size_rule_hits_target_within_5_percent(family, size):
    model = resolve_model(ModelSpec(family=family, size=size))
    counts = count_params(model, vocab_size=1000)
    assert abs(counts.non_embedding / parse_count(size, "size") - 1) < 0.05
    assert model.d_model % model.n_heads == 0


@pytest.mark.parametrize("family,size", [("llama", "50k"), ("qwen2", "200k"), ("opt", "100k"), ("opt", "opt-125m"), ("qwen2", "qwen2.5-0.5B"),
                                         ("llama", "3x48"), ("opt", "2x64"), ("gpt_neox", "2x64"), ("bloom", "2x64")])
def test_analytic_counts_match_the_built_model(family, size):
    model = resolve_model(ModelSpec(family=family, size=size))
    counts = count_params(model, vocab_size=1234, n_added_vocab=502, context=64)
    with torch.device("meta"):
        built = build_model(model, 1234, 64, seed=0)
    assert counts.total == sum(p.numel() for p in built.parameters())
    assert counts.embedding_speech == 502 * model.d_model * (1 if model.tie_embeddings else 2)


def test_a_shape_is_layers_by_width_with_the_family_mlp():
    llama, opt = resolve_model(ModelSpec(size="3x48")), resolve_model(ModelSpec(family="opt", size="2x64"))
    assert (llama.n_layers, llama.d_model, llama.n_heads, llama.d_ff) == (3, 48, 1, 128)  # 8/3 of 48
    assert (opt.n_layers, opt.d_model, opt.n_heads, opt.d_ff) == (2, 64, 2, 256)
    assert resolve_model(ModelSpec(size="1x96")).n_heads == 3
    for bad in ("0x32", "2x4", "2x112"):  # no layer; too narrow; 112 does not split into 3 heads
        with pytest.raises(UserError, match=f"model.size = '{bad}': expected LxD"):
            resolve_model(ModelSpec(size=bad))


def test_named_size_of_wrong_family_is_an_error():
    with pytest.raises(UserError, match="qwen2 architecture"):
        resolve_model(ModelSpec(family="llama", size="qwen2.5-0.5B"))
    with pytest.raises(UserError, match="model.size"):
        resolve_model(ModelSpec(family="llama", size="huge"))


def _config(**budget):
    return {"name": "s", "base": {"data": {"corpus": "tiny", "context": 32, "mode": "speech"}},
            "grid": {"model.size": ["20k", "80k"], "seed": [0, 1]}, "budget": budget}


def test_budget_tokens_per_param_and_isoflop():
    sweep = expand(_config(tokens_per_param=[2, 4]))
    assert len(sweep.runs) == 2 * 2 * 2
    for run in sweep.runs:
        vocab, added = vocabulary_rows(run)
        n = count_params(run.model, vocab, added, 32).total
        assert run.train.tokens / n in (pytest.approx(2, rel=1e-4), pytest.approx(4, rel=1e-4))
    iso = expand(_config(flops=[1e12]))
    for run in iso.runs:
        vocab, added = vocabulary_rows(run)
        n = count_params(run.model, vocab, added, 32).total
        assert 6 * n * run.train.tokens == pytest.approx(1e12, rel=1e-4)
    assert len({r.run_id for r in iso.runs}) == len(iso.runs)


def test_budget_window_keeps_the_sizes_around_each_budget():
    """D/N = C / (6 N^2): 20k (20,320 non-embedding) has D/N 40 at 1e11 and 404 at 1e12; 80k (79,552) 2.6 and 26."""
    sweep = expand(_config(flops=[1e11, 1e12], params="non_embedding", window=[5, 50]))
    kept = {(r.model.size, round(6 * count_params(r.model, 102, 102, 32).non_embedding * r.train.tokens, -9)) for r in sweep.runs}
    assert kept == {("20k", 1e11), ("80k", 1e12)}
    with pytest.raises(UserError, match=r"model.size = 80k: no budget gives tokens per parameter within budget.window = \[30, 50\]"):
        expand(_config(flops=[1e11, 1e12], params="non_embedding", window=[30, 50]))
    for bad, why in (([5], "expected \\[lo, hi\\]"), ([50, 5], "expected lo < hi"), (["x", 5], "budget.window")):
        with pytest.raises(UserError, match=why):
            expand(_config(flops=[1e11], window=bad))


def test_budget_errors():
    with pytest.raises(UserError, match="exactly one of"):
        expand(_config(tokens=[1e5], flops=[1e12]))
    with pytest.raises(UserError, match="at least one context window"):
        expand(_config(tokens=[10]))
    with pytest.raises(UserError, match="budget.tokens"):
        expand(_config(tokens=["lots"]))


def test_variants_cross_the_grid_and_overrides_apply(tmp_path):
    config = _config(tokens=[1e4])
    config["variants"] = [{"data.mode": "interleaved", "init": "text-lm", "init_from": "pretrain:1e4"},
                          {"data.mode": "speech", "init": "scratch"}]
    config = apply_overrides(config, ["train.lr=1e-3", "grid.model.size=[20k]", "budget.tokens=[5e4]"])
    sweep = expand(config)
    assert len(sweep.runs) == 2 * 2
    assert {r.data.mode for r in sweep.runs} == {"interleaved", "speech"}
    assert all(r.train.lr == 1e-3 and r.train.tokens == 50_000 and r.model.size == "20k" for r in sweep.runs)
    with pytest.raises(UserError, match="expected key=value"):
        apply_overrides(config, ["train.lr"])


def test_sweep_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_sweep(bad)
    bad.write_text("name: x\ngird: {}\nbudget: {tokens: [1e4]}\n")
    with pytest.raises(UserError, match="did you mean 'grid'"):
        load_sweep(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")


def test_demo_sweep_brackets_each_budget_with_five_sizes_on_one_ladder_per_variant():
    """The demo's design: per variant one WSD run per size, at least 3 IsoFLOP budgets (non-embedding
    6·N·D), each trained at 5 or more consecutive sizes of the ladder, the same points for both variants."""
    from tests.helpers import REPO

    sweep = load_sweep(REPO / "sweeps" / "demo.yaml")
    assert {r.init for r in sweep.runs} == {"scratch", "text-lm"}
    sizes = sweep.config["grid"]["model.size"]
    budgets = [parse_count(c, "budget") for c in sweep.config["budget"]["flops"]]
    points = {}
    for run in sweep.runs:
        n = count_params(run.model, 102, 102, run.data.context).non_embedding
        for tokens in (*run.train.branch_tokens, run.train.tokens):
            budget = min(budgets, key=lambda c: abs(6 * n * tokens / c - 1))
            assert 6 * n * tokens == pytest.approx(budget, rel=1e-5)
            points.setdefault(run.data.mode, set()).add((budget, sizes.index(run.model.size)))
    assert len(budgets) >= 3 and points["interleaved"] == points["speech"]
    for budget in budgets:
        at = sorted(i for c, i in points["speech"] if c == budget)
        assert len(at) >= 5 and at == list(range(at[0], at[-1] + 1))
    assert len(sweep.runs) == 2 * len(sizes) and all(r.train.schedule == "wsd" for r in sweep.runs)


def test_large_demo_grid_keeps_five_sizes_per_budget():
    """`scaling demo --large` continues the ladder: every size has a budget in the window, every budget 5+ sizes."""
    from scaling.commands.demo import DEMO, LARGE

    sweep = load_sweep(DEMO, LARGE)
    per_budget = {}
    for run in sweep.runs:
        n = count_params(run.model, 102, 102, run.data.context).non_embedding
        for tokens in (*run.train.branch_tokens, run.train.tokens):
            per_budget.setdefault(round(6 * n * tokens, -9), set()).add(run.model.size)
    assert len(per_budget) == 4 and all(len(sizes) >= 5 for sizes in per_budget.values())


def test_overrides_may_follow_options(tmp_path, capsys):
    from scaling.cli import main
    from tests.helpers import write_sweep

    sweep = write_sweep(tmp_path / "s.yaml", tmp_path / "store", sizes=("20k", "30k"), tokens=(4096,))
    assert main(["status", str(sweep), "--store", str(tmp_path / "other"), "grid.model.size=[20k]"]) == 0
    out = capsys.readouterr().out
    assert "llama-20k" in out and "llama-30k" not in out and str(tmp_path / "other") in out


def test_run_ids_are_stable_across_later_fields():
    """Ids of specs stored before ``data.val_exclude`` existed do not change (values computed with
    the spec module of that time); a non-default value does change the id."""
    from scaling.spec import DataSpec, RunSpec, TrainSpec

    assert RunSpec().run_id == "a4c1dc0a6561"
    branched = RunSpec(data=DataSpec(mode="speech", context=64), train=TrainSpec(tokens=1000, branch_tokens=(500,), schedule="wsd"))
    assert branched.run_id == "dce95c0f4781"
    assert RunSpec(data=DataSpec(val_exclude=("espeak",))).run_id != RunSpec().run_id
    assert RunSpec(data=DataSpec(resample_interleave=False)).run_id != RunSpec().run_id
    assert RunSpec(data=DataSpec(resample_interleave=False, val_exclude=("espeak",))).run_id == "7313eb7fc6ac", "as before data.mix_tokens"
    shares = RunSpec(data=DataSpec(mix_tokens=(("speech", 0.3), ("text", 0.7))))
    assert shares.run_id != RunSpec().run_id and shares.validate()
    with pytest.raises(UserError, match="data.val_exclude"):
        RunSpec(data=DataSpec(val_exclude=("espeak", "espeak"))).validate()
    with pytest.raises(UserError, match="data.mix_tokens"):
        RunSpec(data=DataSpec(mix_tokens=(("speech", 0.3), ("text", 0.6)))).validate()


def test_mix_tokens_from_a_sweep_mapping():
    from scaling.spec import DataSpec, from_dict

    data = from_dict(DataSpec, {"mix_tokens": {"text": 0.3, "speech": "0.7"}}, "data")
    assert data.mix_tokens == (("speech", 0.7), ("text", 0.3))
    with pytest.raises(UserError, match="data.mix_tokens.text"):
        from_dict(DataSpec, {"mix_tokens": {"text": "lots"}}, "data")
