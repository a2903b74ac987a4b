"""GPU smoke benchmark of the training engine: throughput, MFU and peak memory against the memory
model, then a short run with checkpoints, a kill -9 and a resume. Prints one table.

Throughput: for each size (llama family, ~125M, ~350M, ~1.5B parameters at context 2048 on a
GPU), the engine's own pieces (:func:`scaling.train.parallel.wrap`: the chunked loss, fused AdamW,
bf16 autocast, activation checkpointing when the memory model asks for it) train on random
token ids at the micro-batch the memory model chooses (:func:`scaling.runs.costs.costs` for one
GPU of this card's memory). Steps ``--warmup`` and later are timed (CUDA synchronised), tokens/s
is their median; MFU is 6·N_total·tokens/s over the card's bf16 dense peak (989 TFLOP/s for
H100/H200 SXM, 312 for A100; ``--peak`` to override). Peak memory is
``torch.cuda.max_memory_allocated`` against the memory model's peak for that layout.

Resume: a real run through the store (``scaling.train.entry`` processes: tiny text corpus, a
small model, 20 steps, a checkpoint every 5 steps) killed with SIGKILL after step 12 by the fault
injection of :mod:`scaling.train.faults`, restarted, and compared with the same run uninterrupted:
the largest relative difference of their training losses. With two or more GPUs, or in
``--smoke`` mode (two gloo ranks on the CPU), the interrupted run uses fsdp over two ranks and
sharded checkpoints; on one GPU it is one process.

``--smoke``: the same on the CPU in fp32 with tiny sizes (1M, 2M at context 64; MFU against the
fp32 matmul peak measured now), to check the script end to end without a GPU; peak memory is not
measured there (``tests/test_memory_model.py`` measures CPU allocations).

    .venv/bin/python benchmarks/bench_gpu.py            # one GPU, under 8 minutes on an H100/H200
    .venv/bin/python benchmarks/bench_gpu.py --smoke    # CPU, a minute or two
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from scaling.formatting import format_rows, human, memory_size  # noqa: E402
from scaling.models import resolve_model  # noqa: E402
from scaling.models.build import build_model  # noqa: E402
from scaling.runs.costs import Device, costs, loss_chunk_tokens  # noqa: E402
from scaling.spec import DataSpec, EngineSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from scaling.store import Store  # noqa: E402
from scaling.train.distributed import World  # noqa: E402
from scaling.train.metrics import measure_peak_flops  # noqa: E402
from scaling.train.parallel import wrap  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: bf16 dense peak FLOP/s by a substring of the CUDA device name
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12}
GPU_SIZES, GPU_CONTEXT, GPU_BATCH = ("125M", "350M", "1.5B"), 2048, 64
SMOKE_SIZES, SMOKE_CONTEXT, SMOKE_BATCH = ("1M", "2M"), 64, 8


def card_peak(device: torch.device, override: float | None) -> tuple[float, str]:
    """(peak FLOP/s, what it is) of ``device``: ``override``, the table above for a GPU, or the fp32
    matmul peak measured now on the CPU."""
    if override:
        return override, "--peak"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in BF16_PEAK.items():
            if key in name:
                return peak, f"bf16 dense peak of {name}"
        raise SystemExit(f"bench_gpu: no known bf16 peak for {name!r}; pass --peak FLOP/s")
    return measure_peak_flops(device), "fp32 matmul peak measured now on this CPU"


def throughput(size: str, context: int, batch: int, device: torch.device, steps: int, warmup: int) -> dict:
    """Train ``size`` (llama) ``steps`` steps on random ids; tokens/s, memory model and measured peak."""
    spec = RunSpec(model=resolve_model(ModelSpec(family="llama", size=size)), data=DataSpec(mode="text", corpus="tiny", context=context),
                   train=TrainSpec(tokens=10**9, batch_size=batch)).validate()
    gpu = device.type == "cuda"
    cost = costs(spec, EngineSpec(), 1, Device(gpu, torch.cuda.get_device_properties(device).total_memory if gpu else None))
    layout, vocab = cost.layout, cost.vocab_size
    lm = build_model(spec.model, vocab, context, seed=0).to(device)
    parallel = wrap(lm, spec.train, layout, World(), device, loss_chunk_tokens(vocab))
    micro = layout.micro_batch
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (micro, context), generator=generator).to(device)
    y = torch.randint(0, vocab, (micro, context), generator=generator).to(device)
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(steps):
        start = time.perf_counter()
        parallel.optimizer.zero_grad(set_to_none=True)
        for _ in range(-(-batch // micro)):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                loss = parallel.forward(x, y).sum()
            (loss / (batch * context)).backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), spec.train.grad_clip, foreach=True)
        parallel.optimizer.step()
        if gpu:
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    tokens_per_s = batch * context / statistics.median(times)
    measured = torch.cuda.max_memory_allocated(device) if gpu else None
    del parallel, lm
    if gpu:
        torch.cuda.empty_cache()
    return {"size": size, "params": cost.params.total, "layout": layout.describe(), "tokens_per_s": tokens_per_s,
            "flops": 6 * cost.params.total * tokens_per_s, "model_bytes": cost.memory.total, "measured_bytes": measured}


def train_processes(store: Path, run_id: str, ranks: int, extra: list[str], fault: str = "") -> list[int]:
    """Train run ``run_id`` of ``store`` with ``ranks`` processes of ``scaling.train.entry``; their exit codes."""
    from torch.distributed import TCPStore

    rendezvous = TCPStore("127.0.0.1", 0, ranks, is_master=True, wait_for_workers=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", SCALING_FAULT=fault, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(rendezvous.port),
               TORCHELASTIC_USE_AGENT_STORE="True", WORLD_SIZE=str(ranks))
    if ranks == 1:
        env = {k: v for k, v in env.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE", "WORLD_SIZE")}
    procs = [subprocess.Popen([sys.executable, "-m", "scaling.train.entry", str(store), run_id, *extra], cwd=REPO,
                              env={**env, **({"RANK": str(r), "LOCAL_RANK": str(r)} if ranks > 1 else {})},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for r in range(ranks)]
    codes = []
    for p in procs:
        _, err = p.communicate(timeout=480)
        if p.returncode not in (0, -9):
            print(err[-3000:], file=sys.stderr)
        codes.append(p.returncode)
    del rendezvous
    return codes


def resume_check(smoke: bool, device: torch.device) -> dict:
    """The 20-step run killed after step 12 and resumed, against the same run uninterrupted."""
    from scaling.data import prepare_data

    ranks = 2 if smoke or (device.type == "cuda" and torch.cuda.device_count() >= 2) else 1
    strategy = "fsdp" if ranks > 1 else "ddp"
    spec = RunSpec(model=resolve_model(ModelSpec(family="llama", size="2M" if smoke else "30M")),
                   data=DataSpec(mode="text", corpus="tiny", context=64),
                   train=TrainSpec(tokens=20 * 8 * 64, batch_size=8, lr=3e-3, eval_points=2, val_windows=8)).validate()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        stores = {name: Path(tmp) / name for name in ("straight", "resumed")}
        for root in stores.values():
            root.mkdir(parents=True)
        prepare_data(spec.data, stores["straight"] / "cache", seed=0)
        os.symlink(stores["straight"] / "cache", stores["resumed"] / "cache")
        for root in stores.values():
            Store(root).register(spec)
        flags = ["--threads", "1", "--strategy", strategy, "--checkpoint-every", "5 steps"]
        start = time.perf_counter()
        straight = train_processes(stores["straight"], spec.run_id, 1, flags)
        killed = train_processes(stores["resumed"], spec.run_id, ranks, flags, fault="kill:step:12")
        again = train_processes(stores["resumed"], spec.run_id, ranks, flags)
        seconds = time.perf_counter() - start
        one, two = Store(stores["straight"]).run(spec.run_id), Store(stores["resumed"]).run(spec.run_id)
        a, b = [r["loss_train"] for r in one.metrics()], [r["loss_train"] for r in two.metrics()]
        status = two.status()
        sharded = sorted(p.name for p in two.checkpoint_dir.glob("sharded-*"))
    ok = straight == [0] and all(c == -9 for c in killed) and again == [0] * ranks and len(a) == len(b) and status["state"] == "done"
    rel = max(abs(x - y) / abs(y) for x, y in zip(b, a)) if ok else float("nan")
    return {"ok": ok, "ranks": ranks, "strategy": strategy, "resumed_from_step": status.get("resumed_from_step"),
            "max_rel_loss_diff": rel, "sharded_checkpoints": sharded, "seconds": seconds, "exit_codes": [straight, killed, again]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (fp32): check the script end to end")
    p.add_argument("--sizes", default=None, help="comma-separated llama sizes (default 125M,350M,1.5B; smoke 1M,2M)")
    p.add_argument("--steps", type=int, default=None, help="steps per size (default 12; smoke 4)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 3; smoke 1)")
    p.add_argument("--peak", type=float, default=None, help="the card's peak FLOP/s, when its name is not known")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    if args.smoke:
        device, sizes, context, batch = torch.device("cpu"), SMOKE_SIZES, SMOKE_CONTEXT, SMOKE_BATCH
    elif torch.cuda.is_available():
        device, sizes, context, batch = torch.device("cuda", 0), GPU_SIZES, GPU_CONTEXT, GPU_BATCH
    else:
        print("bench_gpu: no CUDA device; run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    sizes = args.sizes.split(",") if args.sizes else sizes
    steps, warmup = args.steps or (4 if args.smoke else 12), args.warmup or (1 if args.smoke else 3)
    torch.manual_seed(0)
    peak, peak_source = card_peak(device, args.peak)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"bench_gpu on {name} (torch {torch.__version__}); context {context}, global batch {batch}; "
          f"MFU against {peak:.3g} FLOP/s ({peak_source})", flush=True)
    rows, figures = [], {"device": name, "peak": peak, "sizes": [], "resume": None}
    for size in sizes:
        r = throughput(size, context, batch, device, steps, warmup)
        figures["sizes"].append(r)
        measured = r["measured_bytes"]
        rows.append([size, human(r["params"]), r["layout"], f"{r['tokens_per_s']:,.0f}", f"{r['flops'] / peak:.1%}", memory_size(r["model_bytes"]),
                     memory_size(measured) if measured is not None else "-",
                     f"{measured / r['model_bytes'] - 1:+.1%}" if measured is not None else "-"])
        print(f"  {size}: {r['tokens_per_s']:,.0f} tokens/s", flush=True)
    resume = resume_check(args.smoke, device)
    figures["resume"] = resume
    print(format_rows(rows, ["size", "N_total", "layout", "tokens/s", "MFU", "mem model", "mem measured", "measured/model"]))
    print(f"resume: {resume['ranks']} rank(s), {resume['strategy']}, killed -9 after step 12, resumed from step "
          f"{resume['resumed_from_step']}; training losses within {resume['max_rel_loss_diff']:.2e} relative of an "
          f"uninterrupted run; {'ok' if resume['ok'] else 'FAILED ' + str(resume['exit_codes'])} ({resume['seconds']:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0 if resume["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
