"""The training engine in process: decay branches, vocabulary extension, model families, gradient
accumulation and rank slicing (several processes: tests/test_train_sharded.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from scaling.collect import collect_rows
from scaling.data import prepare_data
from scaling.errors import UserError
from scaling.models import FAMILIES, resolve_model
from scaling.models.build import build_model, load_text_lm
from scaling.runs.materialise import materialise
from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec
from scaling.store import Store
from scaling.sweep import expand
from scaling.train.distributed import World, rank_rows
from scaling.train.entry import train_run
from scaling.train.loop import Trainer
from scaling.train.parallel import largest_that_fits
from scaling.runs.timeline import Timeline
from scaling.train.schedule import learning_rate
from tests.helpers import link_cache

PER_STEP = 8 * 32  # tokens per step of the specs below (batch 8, context 32)


def _spec(family="llama", size="20k", tokens=10 * PER_STEP, **train) -> RunSpec:
    train = {"batch_size": 8, "eval_points": 2, "val_windows": 8, "lr": 3e-3, **train}
    return RunSpec(model=resolve_model(ModelSpec(family=family, size=size)), data=DataSpec(mode="text", corpus="tiny", context=32),
                   train=TrainSpec(tokens=tokens, **train)).validate()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def one_thread():
    """In-process training on one thread: results do not depend on the machine's load, and a shared
    2-core machine does not stall on a thread that another process has descheduled."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _store(tmp_path, cache, name) -> Store:
    link_cache(tmp_path / name, cache)
    return Store(tmp_path / name)


def _trainer(store: Store, spec: RunSpec, **kw) -> Trainer:
    built = materialise(spec, store)
    return Trainer(spec=spec, run=store.register(spec), prep=built.data, model=built.model, **kw)


def _evals(run, *drop):
    return [{k: v for k, v in r.items() if k not in ("time", "eval_seconds", *drop)} for r in run.evals()]


# ---------------------------------------------------------------- schedules and plans (no training)
def test_branch_schedule_is_an_independent_wsd_run_from_its_start():
    spec = _spec(tokens=100 * PER_STEP, schedule="wsd", decay=0.2, warmup=0.02, branch_tokens=(25 * PER_STEP, 50 * PER_STEP - 7))
    plan = Timeline.of(spec)
    assert [(b.start, b.end, b.last_step_tokens) for b in plan.branches] == [(20, 25, PER_STEP), (40, 50, PER_STEP - 7)]
    for b in plan.branches:
        alone = dataclasses.replace(spec.train, tokens=b.tokens, branch_tokens=())
        n_alone = Timeline.of(dataclasses.replace(spec, train=alone)).n_steps
        for step in range(plan.n_steps):
            trunk = learning_rate(spec.train, step, plan.n_steps)
            branch = learning_rate(spec.train, step, plan.n_steps, end=b.end)
            if step < b.start:
                assert branch == trunk and (trunk == spec.train.lr or step < plan.warmup_steps)
            elif step < b.end:
                assert branch == learning_rate(alone, step, n_alone) < spec.train.lr
        assert learning_rate(spec.train, b.end - 1, plan.n_steps, end=b.end) == spec.train.min_lr
    assert plan.tokens_spent == spec.train.tokens + (25 - 20) * PER_STEP + (50 * PER_STEP - 7 - 40 * PER_STEP)


def test_a_four_budget_ladder_costs_under_65_percent_of_independent_runs():
    d = 10 * PER_STEP
    plan = Timeline.of(_spec(tokens=8 * d, schedule="wsd", decay=0.2, branch_tokens=(d, 2 * d, 4 * d)))
    assert plan.tokens_spent / (15 * d) <= 0.65


def test_branch_errors_name_the_field():
    with pytest.raises(UserError, match="need train.schedule = 'wsd'"):
        _spec(branch_tokens=(PER_STEP * 2,))
    with pytest.raises(UserError, match="increasing positive budgets below train.tokens"):
        _spec(schedule="wsd", branch_tokens=(PER_STEP * 20,))
    with pytest.raises(UserError, match="inside the trunk's warmup"):
        Timeline.of(_spec(tokens=1000 * PER_STEP, schedule="wsd", warmup=0.05, branch_tokens=(10 * PER_STEP,)))


def test_sweep_branches_make_one_run_per_size():
    config = {"name": "b", "base": {"data": {"corpus": "tiny", "context": 32, "mode": "text"}, "train": {"schedule": "wsd"}},
              "grid": {"model.size": ["20k", "40k"]}, "budget": {"tokens_per_param": [20, 5, 10, 40], "branches": True}}
    runs = expand(config).runs
    assert len(runs) == 2
    for run in runs:
        budgets = (*run.train.branch_tokens, run.train.tokens)
        assert list(budgets) == sorted(budgets) and len(budgets) == 4
        assert budgets[-1] / budgets[0] == pytest.approx(8, rel=1e-3) and run.name.endswith("+3b-s0")
    config["base"]["train"]["schedule"] = "cosine"
    with pytest.raises(UserError, match="budget.branches = true with train.schedule = 'cosine'"):
        expand(config)
    config["budget"]["branches"] = "yes"
    with pytest.raises(UserError, match="budget.branches = 'yes': expected true or false"):
        expand(config)


def test_rank_rows_join_into_the_global_batch_in_order():
    for batch in range(1, 10):
        for size in range(1, 5):
            rows = [r for rank in range(size) for r in range(*rank_rows(batch, World(rank, size)))]
            assert rows == list(range(batch))


# ---------------------------------------------------------------- models
@pytest.mark.parametrize("family,tie", [("llama", False), ("qwen2", True), ("opt", True)])
def test_vocabulary_extension_keeps_text_weights_bit_identical(tmp_path, family, tie):
    model = dataclasses.replace(resolve_model(ModelSpec(family=family, size="20k")), tie_embeddings=tie)
    lm = build_model(model, 100, 32, seed=0)
    lm.save_pretrained(tmp_path)
    old = {k: v.clone() for k, v in lm.state_dict().items()}
    n_text = 90  # the tokenizer uses 90 rows; the checkpoint carries 10 unused padding rows
    new = load_text_lm(tmp_path, 140, seed=3, n_text_vocab=n_text)
    assert new.get_input_embeddings().weight.shape[0] == 140 and new.config.vocab_size == 140
    tables = {k for k, v in old.items() if v.shape[0] == 100}
    assert tables and all(torch.equal(v, old[k]) for k, v in new.state_dict().items() if k not in tables)
    for key in tables:
        w, text = new.state_dict()[key], old[key][:n_text]
        assert torch.equal(w[:n_text], text)
        added = w[n_text:]
        assert torch.isfinite(added).all() and not torch.equal(added[:10], old[key][n_text:])
        assert (added.mean(0) - text.mean(0)).abs().max() < 4 * text.std(0).max() / added.shape[0] ** 0.5
    again = load_text_lm(tmp_path, 140, seed=3, n_text_vocab=n_text)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in new.state_dict().items())
    shrunk = load_text_lm(tmp_path, 95, seed=3, n_text_vocab=n_text)
    assert shrunk.get_input_embeddings().weight.shape[0] == 95
    with pytest.raises(UserError, match="smaller than the text LM's 90 text tokens"):
        load_text_lm(tmp_path, 80, seed=3, n_text_vocab=n_text)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains(tmp_path, cache, family):
    trainer = _trainer(_store(tmp_path, cache, family), _spec(family=family, tokens=12 * PER_STEP, lr=1e-2))
    losses = [trainer.train_step() for _ in range(12)]
    assert all(map(torch.isfinite, torch.tensor(losses))) and sum(losses[-3:]) < sum(losses[:3]) - 0.3
    assert trainer.state.tokens.total == 12 * PER_STEP


def test_a_spec_that_does_not_describe_the_model_is_an_error(tmp_path, cache):
    spec = _spec()
    store = _store(tmp_path, cache, "s")
    prep = prepare_data(spec.data, store.cache, seed=0)
    other = build_model(resolve_model(ModelSpec(size="40k")), prep.vocab_size, 32, seed=0)
    with pytest.raises(UserError, match="expected the spec to describe the model"):
        Trainer(spec=spec, run=store.register(spec), prep=prep, model=other)


# ---------------------------------------------------------------- training
def test_micro_batches_accumulate_to_the_full_batch(tmp_path, cache):
    spec = _spec(tokens=4 * PER_STEP - 5)
    full, micro = (_trainer(_store(tmp_path, cache, name), spec, micro_batch=mb) for name, mb in (("full", 0), ("micro", 3)))
    for _ in range(4):
        assert full.train_step() == pytest.approx(micro.train_step(), rel=1e-5)
        # The clipped gradient: the same float32 sum over a step's label positions, added in another
        # order (per micro-batch). Reordering a sum of n terms moves it by at most n * eps32 times the
        # largest term, so each tensor is compared to PER_STEP * eps32 of its largest element; on
        # AVX2, AVX-512 and torch's non-vectorised kernels the differences seen are 1-2e-6 of it.
        for a, b in zip(full.model.parameters(), micro.model.parameters()):
            scale = float(a.grad.abs().max()) * PER_STEP * torch.finfo(torch.float32).eps
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=scale)
    assert full.state.tokens.total == micro.state.tokens.total == spec.train.tokens
    for a, b in zip(full.model.parameters(), micro.model.parameters()):  # Adam's normalised steps amplify float noise
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_branches_equal_independent_runs_resume_across_branches_and_collect(tmp_path, cache, monkeypatch):
    """warmup 0, so a branch is exactly an independent WSD run of its budget (bit-identical here)."""
    monkeypatch.setattr("scaling.train.entry._benchmark_hook", lambda: None)  # benchmarks are not under test here
    budgets = (10 * PER_STEP, 20 * PER_STEP - 120)
    spec = _spec(tokens=40 * PER_STEP, schedule="wsd", warmup=0.0, decay=0.2, branch_tokens=budgets, eval_points=4)
    straight = _store(tmp_path, cache, "straight")
    straight.register(spec)
    assert train_run(straight.root, spec.run_id) == "done"
    run = straight.run(spec.run_id)
    evals = run.evals()
    branch_rows = [r for r in evals if r["branch"]]
    assert [r["tokens"] for r in branch_rows] == list(budgets) and [r["step"] for r in branch_rows] == [10, 20]
    assert [r["branch_from_step"] for r in branch_rows] == [8, 16]
    assert [r["branch_cost_tokens"] for r in branch_rows] == [b - s * PER_STEP for b, s in zip(budgets, (8, 16))]
    assert all(r["flops_6nd"] == 6 * r["params_total"] * r["tokens"] for r in evals)
    assert [r["tokens"] for r in evals if not r["branch"]][-1] == spec.train.tokens

    for tokens, row in zip(budgets, branch_rows):  # each branch is the independent run of its budget
        alone = dataclasses.replace(spec, train=dataclasses.replace(spec.train, tokens=tokens, branch_tokens=()))
        trainer = _trainer(_store(tmp_path, cache, f"alone{tokens}"), alone)
        assert trainer.train_to_budget() == "done"
        assert trainer.run.evals()[-1]["loss_val"] == row["loss_val"]
    plain = dataclasses.replace(spec, train=dataclasses.replace(spec.train, branch_tokens=()))
    trainer = _trainer(_store(tmp_path, cache, "plain"), plain)
    assert trainer.train_to_budget() == "done" and trainer.run.evals()[-1]["loss_val"] == evals[-1]["loss_val"]

    stopped = _store(tmp_path, cache, "stopped")
    trainer = _trainer(stopped, spec)
    trainer.should_stop = lambda: trainer.state.branch == 1 and trainer.state.step == 18
    assert trainer.train_to_budget() == "stopped"
    resumed = _trainer(stopped, spec)
    assert resumed.resume() and resumed.state.branch == 1 and resumed.state.step == 18 and resumed.state.trunk["step"] == 16
    assert resumed.train_to_budget() == "done"
    assert _evals(stopped.run(spec.run_id)) == _evals(run)
    assert [r["loss_train"] for r in stopped.run(spec.run_id).metrics()] == [r["loss_train"] for r in run.metrics()]

    rows = collect_rows(straight)
    assert [(r["branch"], r["final"]) for r in rows] == [(r["branch"], r["branch"]) for r in evals[:-1]] + [(False, True)]
    summary = run.summary()
    assert all(r["tokens_spent"] == summary["tokens_spent"] == Timeline.of(spec).tokens_spent for r in rows)
    assert summary["tokens"] == spec.train.tokens and summary["branches"] == 2


def test_validation_can_leave_out_a_source(tmp_path, cache):
    """data.val_exclude: an interleaved run validated without its speech source has text losses only;
    an unknown source fails when the trainer starts, naming the sources there are."""
    base = _spec(tokens=2 * PER_STEP, eval_points=1)
    store = _store(tmp_path, cache, "s")
    spec = dataclasses.replace(base, data=dataclasses.replace(base.data, mode="interleaved", val_exclude=("espeak",))).validate()
    trainer = _trainer(store, spec)
    assert trainer.train_to_budget() == "done"
    row = trainer.run.evals()[-1]
    assert "loss_val_text" in row and "loss_val_speech" not in row and row["loss_val"] == row["loss_val_text"]
    bad = dataclasses.replace(spec, data=dataclasses.replace(spec.data, val_exclude=("youtube",))).validate()
    with pytest.raises(UserError, match="no source 'youtube'"):
        _trainer(store, bad)


def test_micro_batch_search_halves_on_out_of_memory(tmp_path, cache, monkeypatch):
    """On a GPU the trainer looks for the largest micro-batch that fits by halving on OOM (here an
    attempt that runs out of memory above 3 windows); $SCALING_MICRO_BATCH sets it outright."""
    tried = []

    def attempt(m):
        tried.append(m)
        if m > 3:
            raise torch.OutOfMemoryError("fake")

    assert largest_that_fits(16, attempt) == 2 and tried == [16, 8, 4, 2]
    with pytest.raises(UserError, match="does not fit"):
        largest_that_fits(5, lambda m: (_ for _ in ()).throw(torch.OutOfMemoryError("fake")))
    monkeypatch.setenv("SCALING_MICRO_BATCH", "3")
    assert _trainer(_store(tmp_path, cache, "m"), _spec()).micro_batch == 3
    monkeypatch.delenv("SCALING_MICRO_BATCH")
    assert _trainer(_store(tmp_path, cache, "w"), _spec()).micro_batch == 8  # CPU: the whole batch
