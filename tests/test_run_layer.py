"""The run layer: stable run ids, the dependency graph, the one cost and memory model, outcomes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scaling.errors import UserError
from scaling.launch.resources import MEM_BASE_MB, SlurmSettings, resources_for
from scaling.launch.scheduler import Partition
from scaling.models import NAMED_SIZES, resolve_model
from scaling.runs.costs import STRATEGIES, costs, param_counts
from scaling.runs.graph import dependencies, text_lm_dir, with_dependencies
from scaling.runs.outcome import EXIT_CODES, Outcome
from scaling.spec import EngineSpec, ModelSpec, RunSpec
from scaling.store import Store
from scaling.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]
#: the embedded demo sweep as it was when these ids were computed (the demo itself has changed since)
OLD_DEMO = REPO / "tests" / "fixtures" / "demo_before_issue17.yaml"

# Ids computed with the code before the run layer existed (commit e0e51f7): stores written then
# must find their runs under the same ids.
DEMO_IDS = {
    "llama-40k-text-scratch-300k-s0": "4d7662ca1721", "llama-80k-text-scratch-300k-s0": "b815c914ccc8",
    "llama-160k-text-scratch-300k-s0": "e9b79009d833", "llama-40k-interleaved-tinit-44.5k-s0": "da7cea74f458",
    "llama-40k-interleaved-tinit-148k-s0": "724878a1fcf1", "llama-40k-interleaved-tinit-445k-s0": "0760ca895224",
    "llama-80k-interleaved-tinit-22.4k-s0": "73d00e43e06e", "llama-80k-interleaved-tinit-74.5k-s0": "f8a5b552e521",
    "llama-80k-interleaved-tinit-224k-s0": "1651b25ff224", "llama-160k-interleaved-tinit-13.3k-s0": "4cea4d66903d",
    "llama-160k-interleaved-tinit-44.4k-s0": "20ee64d9cf8d", "llama-160k-interleaved-tinit-133k-s0": "1cc10425e477",
    "llama-40k-speech-scratch-107k-s0": "fdcb1228a5f8", "llama-40k-speech-scratch-356k-s0": "e46d665eadf3",
    "llama-40k-speech-scratch-1.07M-s0": "d15aa8177a14", "llama-80k-speech-scratch-54k-s0": "d26fc9ffbfaa",
    "llama-80k-speech-scratch-180k-s0": "2613bea151cb", "llama-80k-speech-scratch-540k-s0": "059a30900069",
    "llama-160k-speech-scratch-28k-s0": "72718412f215", "llama-160k-speech-scratch-93.2k-s0": "aaaabc8987c2",
    "llama-160k-speech-scratch-280k-s0": "61bd9ef754ba"}
BRANCHED_IDS = {
    "llama-40k-interleaved-tinit-445k+2b-s0": "50e0681e7a6c", "llama-80k-interleaved-tinit-224k+2b-s0": "29894b3d8247",
    "llama-160k-interleaved-tinit-133k+2b-s0": "c36b2bbb3de6", "llama-40k-speech-scratch-1.07M+2b-s0": "7332852d96fb",
    "llama-80k-speech-scratch-540k+2b-s0": "203724885112", "llama-160k-speech-scratch-280k+2b-s0": "170f7c19b269"}
MODEL_IDS = {
    ("llama", "20k"): "7c25032c8680", ("llama", "1M"): "fbb1940b41fb", ("llama", "30M"): "b6ca7daf50b7",
    ("llama", "1B"): "0dcaf85f4ddc", ("qwen2", "20k"): "7a2edc24d6d1", ("qwen2", "1M"): "2c50d9e6f644",
    ("qwen2", "30M"): "82700008a4f7", ("qwen2", "1B"): "ff821473c6d6", ("opt", "20k"): "49ca5ed76018",
    ("opt", "1M"): "88be6aa3babc", ("opt", "30M"): "2920688e7fec", ("opt", "1B"): "f612e755908c",
    ("llama", "cm-20M"): "88c872202db1", ("llama", "cm-85M"): "32c603ab3090", ("llama", "cm-155M"): "3ea63f4354c8",
    ("llama", "cm-309M"): "6b6afe7acc72", ("llama", "cm-823M"): "9792e90ab72c", ("qwen2", "qwen2.5-0.5B"): "5979cd3f80b5",
    ("qwen2", "qwen2.5-1.5B"): "d312327b6b50", ("qwen2", "qwen2.5-3B"): "4e9682899941", ("qwen2", "qwen2.5-7B"): "b86421838d4c",
    ("llama", "llama-3.2-3B"): "70f104927797", ("opt", "opt-125m"): "57ed0d11ff07",
    ("llama", "smollm2-135M"): "1166a3c546f7", ("llama", "smollm2-360M"): "68cd9af0cc1a", ("llama", "smollm2-1.7B"): "8e711455d63b",
    ("gpt_neox", "pythia-70m"): "c76716a241ed", ("gpt_neox", "pythia-160m"): "728a78fcef0d", ("gpt_neox", "pythia-410m"): "a30e02a8473b",
    ("gpt_neox", "pythia-1b"): "b8b317aa67f5", ("gpt_neox", "pythia-1.4b"): "ca8b7f21ab72", ("gpt_neox", "pythia-2.8b"): "4b5fe22508c7",
    ("gpt_neox", "pythia-6.9b"): "443138fbfdee", ("bloom", "bloom-560m"): "f1bf140dc6df", ("bloom", "bloom-1b1"): "78b13e0ed798",
    ("bloom", "bloom-1b7"): "6fa608b28cf7", ("bloom", "bloom-3b"): "58f6a93575ec", ("bloom", "bloom-7b1"): "06da52a8cc29"}


def test_run_ids_are_those_existing_stores_hold():
    demo = with_dependencies(list(load_sweep(OLD_DEMO).runs))
    assert {r.name: r.run_id for r in demo} == DEMO_IDS
    branched = load_sweep(OLD_DEMO, ["budget.branches=true", "train.schedule=wsd", "data.val_exclude=[espeak]"])
    assert {r.name: r.run_id for r in branched.runs} == BRANCHED_IDS
    assert {(f, s): RunSpec(model=resolve_model(ModelSpec(family=f, size=s))).run_id for f, s in MODEL_IDS} == MODEL_IDS
    assert len(MODEL_IDS) == 12 + len(NAMED_SIZES)


def test_dependencies_come_first_once_and_must_be_done(tmp_path):
    runs = list(load_sweep(OLD_DEMO).runs)
    ordered = with_dependencies(runs)
    position = {r.run_id: i for i, r in enumerate(ordered)}
    deps = [d for r in runs for d in dependencies(r)]
    assert len({d.run_id for d in deps}) == 3 and len(ordered) == len(runs) + 3
    assert all(position[d.run_id] < position[r.run_id] for r in runs for d in dependencies(r))
    store = Store(tmp_path)
    with pytest.raises(UserError, match="which is not done yet; launch it first"):
        text_lm_dir(store, runs[0])


def test_one_memory_model_for_plan_and_the_slurm_request():
    """zero1 on CPU tasks: 4 + 4 bytes of weights and gradients per parameter on every task, 8 of
    AdamW's moments shared by the tasks; a decay branch keeps the trunk's weights and moment share
    on the host. The SLURM request per task is the model's host memory plus the training state
    (on CPUs it lives in host memory) plus MEM_BASE_MB, rounded up to 256 MB."""
    spec = load_sweep(OLD_DEMO).runs[-1]
    n = param_counts(spec).total
    zero1 = EngineSpec(strategy="zero1")
    one, eight = costs(spec), costs(spec, zero1, 8)
    assert (one.memory.weights, one.memory.gradients, one.memory.optimizer) == (4 * n, 4 * n, 8 * n)
    assert (eight.memory.weights, eight.memory.gradients, eight.memory.optimizer) == (4 * n, 4 * n, n)
    assert one.flops == 6 * n * spec.train.tokens and one.params.total == n
    branched = load_sweep(OLD_DEMO, ["budget.branches=true", "train.schedule=wsd"]).runs[-1]
    with_branches = costs(branched, zero1, 2)
    n_b = with_branches.params.total
    assert with_branches.memory.host == pytest.approx(4 * n_b + 8 * n_b / 2 + 4 * n_b)  # trunk copy + the model gathered
    assert with_branches.tokens_spent > with_branches.tokens and with_branches.flops == 6 * n_b * with_branches.tokens_spent
    partition = Partition("p", True, True, None, ("n1",), 16, 64_000, 0)
    for tasks in (1, 4):
        request = resources_for(branched, SlurmSettings(tasks_per_run=tasks), partition, zero1)
        mem = costs(branched, zero1, tasks).memory
        assert request.mem_mb_per_node == tasks * 256 * math.ceil((MEM_BASE_MB + (mem.host + mem.total) / 2**20) / 256)
    with pytest.raises(UserError, match="engine.strategy: 'deepspeed'; expected one of: auto, ddp, fsdp, zero1"):
        costs(spec, EngineSpec(strategy="deepspeed"))
    assert set(STRATEGIES) == {"ddp", "zero1", "fsdp"}


def test_every_outcome_has_its_own_exit_status():
    assert len(set(EXIT_CODES.values())) == len(Outcome) == len(EXIT_CODES)
    for outcome in Outcome:
        assert Outcome.from_exit_code(outcome.exit_code) is outcome
        assert outcome == outcome.value and f"{outcome:9s}" == f"{outcome.value:9s}" and str(outcome) == outcome.value
    assert Outcome.STOPPED.exit_code != Outcome.DONE.exit_code  # a stopped run is not reported as done
    assert Outcome.from_exit_code(2) is Outcome.FAILED and Outcome.from_exit_code(-9) is Outcome.FAILED
    assert {Outcome.DONE: 1}["done"] == 1 and {"done": 1}[Outcome.DONE] == 1
