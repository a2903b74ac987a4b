"""The one memory model (scaling.runs.costs): activation rules against the tensors each family's
transformers model saves; strategies, layouts and the refusal of runs that fit no GPU; the SLURM
request; and the model's peak against the peak CPU allocations of real training, measured with
torch's profiler, in each strategy on two gloo ranks and in one process."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from scaling.errors import UserError
from scaling.launch.resources import MEM_BASE_MB, SlurmSettings, resources_for
from scaling.launch.scheduler import Partition
from scaling.models import FAMILIES, resolve_model
from scaling.models.families import PRECISIONS
from scaling.runs.costs import Device, Layout, choose_layout, costs, memory, param_counts, usable_bytes
from scaling.runs.vocabulary import vocabulary_rows
from scaling.spec import DataSpec, EngineSpec, ModelSpec, RunSpec, TrainSpec
from scaling.sweep import load_sweep
from tests.helpers import PYTHON, REPO, link_cache, rendezvous

GPU80 = Device(True, 80 * 2**30)


# ---------------------------------------------------------------- activation rules
def saved_bytes(family: str, model: ModelSpec, batch: int, context: int, precision: str, checkpointing: bool = False) -> int:
    """Bytes of the distinct storages a forward pass of the family's trunk saves for backward
    (parameters excluded), counted with saved_tensors_hooks."""
    from transformers import AutoModelForCausalLM

    fam = FAMILIES[family]
    lm = AutoModelForCausalLM.from_config(fam.config(model, 256, context, None), attn_implementation=fam.attention, dtype=torch.float32)
    if precision == "bf16":
        lm.to(torch.bfloat16)
    lm.train()
    if checkpointing:
        lm.activation_checkpointing_enable()
    params = {p.untyped_storage().data_ptr() for p in lm.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    x = torch.randint(0, 256, (batch, context))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "autocast"):
            lm.base_model(input_ids=x, use_cache=False)
    return sum(storages.values())


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_activation_rules_are_the_bytes_each_family_saves(family, precision):
    """Two blocks of a shape the rules were not fitted on (d 192, 6 heads, 3 key/value heads where
    the family has them, context 48), batch 2 against batch 1: the bytes per token the rule
    predicts, blocks and outside, are what the model saves, to the byte; with activation
    checkpointing each block keeps its input only."""
    torch.manual_seed(0)
    fam = FAMILIES[family]
    kv = 3 if family in ("llama", "qwen2") else 6
    model = ModelSpec(family=family, size="x", n_layers=2, d_model=192, n_heads=6, n_kv_heads=kv,
                      d_ff=fam.fixed_d_ff(192) if fam.fixed_d_ff else 520)
    context, rule = 48, fam.activations[precision]
    per_token = (saved_bytes(family, model, 2, context, precision) - saved_bytes(family, model, 1, context, precision)) / context
    assert per_token == pytest.approx(2 * rule.per_block(model, context) + rule.outside_blocks(model), abs=1e-9)
    one = dataclasses.replace(model, n_layers=1)
    checkpointed = (saved_bytes(family, model, 2, context, precision, True) - saved_bytes(family, one, 2, context, precision, True)) / (2 * context)
    assert checkpointed == pytest.approx(rule.block_input * model.d_model)


# ---------------------------------------------------------------- strategies and layouts
def _paper_run(size: str) -> RunSpec:
    sweep = load_sweep(REPO / "sweeps" / "sims_paper.yaml", [f"grid.model.size=[{size}]", "variants=[{}]",
                                                              "init=scratch", "data.corpus=tiny"])
    return sweep.runs[0]


def test_strategies_shard_what_they_say():
    """Per parameter: ddp 4 + 4 + 8 bytes on every task, zero1 shares the 8 of AdamW's moments,
    fsdp shares all 16; a decay branch's trunk copy is on the host (the device only under fsdp,
    where it passes through to be saved)."""
    spec = _paper_run("qwen2.5-1.5B")
    vocab, _ = vocabulary_rows(spec)
    n = param_counts(spec).total
    parts = {s: memory(spec, param_counts(spec), vocab, Layout(s, False, 1, 8), GPU80, branches=True) for s in ("ddp", "zero1", "fsdp")}
    assert (parts["ddp"].weights, parts["ddp"].gradients, parts["ddp"].optimizer) == (4 * n, 4 * n, 8 * n)
    assert (parts["zero1"].weights, parts["zero1"].gradients, parts["zero1"].optimizer) == (4 * n, 4 * n, n)
    assert (parts["fsdp"].weights, parts["fsdp"].gradients, parts["fsdp"].optimizer) == (n / 2, n / 2, n)
    assert parts["ddp"].checkpoint == parts["zero1"].checkpoint == 0 and parts["fsdp"].checkpoint == pytest.approx(12 * n / 8)
    assert parts["fsdp"].total < parts["zero1"].total < parts["ddp"].total
    alone = memory(spec, param_counts(spec), vocab, Layout("fsdp", False, 1, 1), GPU80, branches=False)
    assert alone.weights == 4 * n and alone.optimizer == 8 * n  # one task: every strategy is the model and AdamW
    ac = memory(spec, param_counts(spec), vocab, Layout("fsdp", True, 1, 8), GPU80, branches=False)
    assert ac.activations < parts["fsdp"].activations / 3


def test_auto_picks_the_first_layout_that_fits_and_refuses_what_fits_none():
    small, big = _paper_run("qwen2.5-0.5B"), _paper_run("qwen2.5-7B")
    layout, mem = choose_layout(small, EngineSpec(), 1, GPU80)
    assert (layout.strategy, layout.activation_checkpointing) == ("ddp", False) and mem.total <= usable_bytes(GPU80)
    bigger = memory(small, param_counts(small), vocabulary_rows(small)[0], dataclasses.replace(layout, micro_batch=layout.micro_batch + 1),
                    GPU80, branches=False)
    assert bigger.total > usable_bytes(GPU80)  # the largest micro-batch that fits
    layout, mem = choose_layout(big, EngineSpec(), 8, GPU80)
    assert layout.strategy == "fsdp" and mem.total <= usable_bytes(GPU80)
    layout, _ = choose_layout(big, EngineSpec(), 8, Device(True, 24 * 2**30))
    assert (layout.strategy, layout.activation_checkpointing) == ("fsdp", True)
    with pytest.raises(UserError, match=r"run qwen2-qwen2.5-7B.* needs \d+\.\d GiB per GPU even as ddp x1, micro-batch 1, "
                                        r"but a GPU has 80.0 GiB") as err:
        choose_layout(big, EngineSpec(), 1, GPU80)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"engine.strategy = 'ddp'; auto may fit"):
        costs(big, EngineSpec(strategy="ddp", activation_checkpointing="true"), 8, GPU80)
    assert choose_layout(big, EngineSpec(), 8, Device())[0].micro_batch == 32  # the CPU: no bound, the whole local batch


def test_the_slurm_request_is_the_memory_models_host_side():
    """GPU runs ask SLURM for MEM_BASE_MB plus the model's host memory; CPU-only runs also for the
    training state, which lives in host memory there; rounded up to 256 MB."""
    spec = _paper_run("qwen2.5-0.5B")
    gpu = Partition("gpu", False, True, None, ("g1",), 64, 2_000_000, 8)
    for settings, device in ((SlurmSettings(gpus_per_run=1), GPU80), (SlurmSettings(tasks_per_run=1), Device())):
        cost = costs(spec, EngineSpec(), 1, device)
        state = cost.memory.host + (0 if device.gpu else cost.memory.total)
        assert resources_for(spec, settings, gpu).mem_mb_per_node == 256 * math.ceil((MEM_BASE_MB + state / 2**20) / 256)
    big = _paper_run("qwen2.5-7B")
    with pytest.raises(UserError, match="needs .* per GPU"):
        resources_for(big, SlurmSettings(gpus_per_run=1), gpu)


# ---------------------------------------------------------------- against measured allocations
#: (model size, batch, context): activations dominate the first, weights and AdamW's state the second
CONFIGS = {"activations": ("200k", 16, 64), "state": ("3M", 2, 16)}


def _probe_spec(config: str) -> RunSpec:
    size, batch, context = CONFIGS[config]
    return RunSpec(model=resolve_model(ModelSpec(family="llama", size=size)), data=DataSpec(mode="text", corpus="tiny", context=context),
                   train=TrainSpec(tokens=10 * batch * context, batch_size=batch, eval_points=1, val_windows=4)).validate()


def count_every_thread() -> None:
    """Make c10's CPU allocation counter (the ``total_allocated`` of the profiler's allocation
    records) count allocations and frees on every thread: by default it counts those of profiled
    threads only, so a tensor freed by gloo's communication thread (DDP's old gradient buckets, say)
    would stay counted. The switch is c10's flag ``caffe2_report_cpu_memory_usage``."""
    import ctypes

    libc10 = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libc10.so"))
    ctypes.c_bool.in_dll(libc10, "FLAGS_caffe2_report_cpu_memory_usage").value = True


def peak_probe(store_root: str, config: str, strategy: str) -> None:
    """Run in each rank: build the model and train six steps under the profiler (from before the
    model exists, so its allocator records count every live tensor); print {"measured": the peak
    bytes allocated during steady steps (3 to 6), "model": the memory model's peak} as JSON. The
    first two steps warm up: AdamW creates its moments, DistributedDataParallel rebuilds its
    gradient buckets."""
    from torch._C._profiler import _EventType

    from scaling.runs.materialise import materialise
    from scaling.store import Store
    from scaling.train.distributed import init_process_group, world_from_env
    from scaling.train.loop import Trainer

    torch.set_num_threads(1)
    count_every_thread()
    world = world_from_env()
    init_process_group(world)
    spec, store = _probe_spec(config), Store(store_root)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        built = materialise(spec, store)
        trainer = Trainer(spec=spec, run=store.register(spec), prep=built.data, model=built.model, world=world,
                          engine=EngineSpec(strategy=strategy))
        for step in range(6):
            with torch.profiler.record_function(f"step{step}"):
                trainer.train_step()
    events = []

    def walk(event):
        events.append(event)
        for child in event.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    allocations = [e for e in events if e.tag == _EventType.Allocation]
    peaks = []
    for step in range(2, 6):
        span = next(e for e in events if e.name == f"step{step}")
        peaks.append(max(a.extra_fields.total_allocated for a in allocations if span.start_time_ns <= a.start_time_ns <= span.end_time_ns))
    print(json.dumps({"measured": max(peaks), "steps": peaks, "model": trainer.costs.memory.total, "strategy": trainer.layout.strategy}))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("config", CONFIGS)
def test_the_memory_model_is_within_15_percent_of_measured_peaks(tmp_path, config):
    """Peak CPU bytes allocated by torch (the profiler's allocator records, which count every tensor
    allocated since before the model was built) in steady training steps, per rank, against the
    memory model's peak per task: one process, and two gloo ranks under each strategy; within 15%
    (the model leaves out small transients: norm statistics, the backward pass's per-block
    temporaries, collective buffers; and one-off warm-up of the first steps)."""
    from scaling.data import prepare_data

    link_cache(tmp_path / "store", tmp_path / "cache")
    spec = _probe_spec(config)
    prepare_data(spec.data, tmp_path / "store" / "cache", seed=0)  # built here, not inside the measurement
    code = f"from tests.test_memory_model import peak_probe; peak_probe({str(tmp_path / 'store')!r}, {config!r}, {{s!r}})"
    results = {}
    for strategy, n in (("ddp", 1), ("ddp", 2), ("zero1", 2), ("fsdp", 2)):
        with rendezvous(n) as env:
            procs = [subprocess.Popen([PYTHON, "-c", code.format(s=strategy)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1", RANK=str(r), WORLD_SIZE=str(n),
                                                         LOCAL_RANK=str(r), **env))
                     for r in range(n)]
            outs = [p.communicate(timeout=400) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
        results[(strategy, n)] = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    print(json.dumps({f"{s} x{n}": r for (s, n), r in results.items()}), file=sys.stderr)
    for (strategy, n), ranks in results.items():
        for r in ranks:
            assert r["strategy"] == (strategy if n > 1 else "ddp")
            assert r["model"] == pytest.approx(r["measured"], rel=0.15), (strategy, n, r)
