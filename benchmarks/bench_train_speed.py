"""Training throughput of the engine against the Hugging Face ``Trainer``, and model FLOP utilisation.

Not a test: it prints figures and ratios side by side. For each size, both trainers get the same
model (``scaling.runs.materialise``, same seed), the same windows in the same order (the run's data, labels
already shifted, so both train the same positions), the same global batch in one forward pass,
and the same optimisation (AdamW fused, weight decay 0.1, betas 0.9/0.95, clipping 0.5, cosine
schedule). Throughput is the median over all timed steps of the wall time between the ends of
successive steps (after ``--warmup`` steps), in trained tokens per second; the two trainers
alternate ``--repeats`` times, so load from other processes falls on both. ``best`` is the ratio
of the two fastest steps, the least disturbed by other processes. MFU is the engine's
6·N_total·tokens/s over the fp32 matmul peak (:func:`scaling.train.metrics.measure_peak_flops`)
measured in this process at the same thread count, the higher of two measurements taken before
and after the timing.

Targets (issue 5): engine / HF ≥ 1.3 at 1M parameters and ≥ 1.0 at 10M; MFU of the 10M model ≥ 50 %.
The Hugging Face ``Trainer`` needs ``accelerate`` (``pip install 'accelerate>=1.1'``), which the
toolkit itself does not.

    .venv/bin/python benchmarks/bench_train_speed.py [--sizes 1M,10M] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from scaling.models import count_params, resolve_model  # noqa: E402
from scaling.runs.materialise import materialise, run_data  # noqa: E402
from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec  # noqa: E402
from scaling.store import Store  # noqa: E402
from scaling.train.batches import make_labels  # noqa: E402
from scaling.train.loop import Trainer  # noqa: E402
from scaling.train.metrics import measure_peak_flops  # noqa: E402

TARGETS = {"1M": 1.3, "10M": 1.0}


def engine_step_times(spec: RunSpec, store: Store, steps: int) -> list[float]:
    """Seconds per step of the engine's loop (``Trainer.train_step`` back to back, as ``train_to_budget`` runs it)."""
    built = materialise(spec, store)
    trainer = Trainer(spec=spec, run=store.register(spec), prep=built.data, model=built.model)
    ends = [time.perf_counter()]
    for _ in range(steps):
        trainer.train_step()
        ends.append(time.perf_counter())
    return [b - a for a, b in zip(ends, ends[1:])]


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def gemm_seconds_per_step(spec: RunSpec, store: Store, steps: int) -> float:
    """Seconds per engine step spent inside the model's dense matrix products (``aten::mm`` and
    friends, self time under the profiler): work that any trainer of this model must do, already
    running at the BLAS library's speed. ``HF step time / this`` is the ceiling of the speed-up any
    trainer could reach over the HF ``Trainer`` on the same model while keeping its kernels."""
    from torch.profiler import ProfilerActivity, profile

    built = materialise(spec, store)
    trainer = Trainer(spec=spec, run=store.register(spec), prep=built.data, model=built.model)
    trainer.train_step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    return sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in GEMM_OPS) / 1e6 / steps


def hf_step_times(spec: RunSpec, store: Store, steps: int, out_dir: Path) -> list[float]:
    """Seconds per step of ``transformers.Trainer`` on the same model, windows, batch and optimizer."""
    from torch.utils.data import Dataset, SequentialSampler
    from transformers import PrinterCallback, Trainer as HFTrainer, TrainerCallback, TrainingArguments

    built = materialise(spec, store)
    prep = built.data

    class Windows(Dataset):
        def __len__(self):
            return steps * spec.train.batch_size

        def __getitem__(self, i):
            ids, mod = prep.train_window(i)
            inputs, labels, _ = make_labels(ids[None], mod[None], spec.data.marker_loss)
            return {"input_ids": inputs[0], "labels": labels[0], "shift_labels": labels[0]}

    class InOrder(HFTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    t = spec.train
    args = TrainingArguments(output_dir=str(out_dir), per_device_train_batch_size=t.batch_size, max_steps=steps,
                             learning_rate=t.lr, weight_decay=t.weight_decay, adam_beta1=t.beta1, adam_beta2=t.beta2,
                             adam_epsilon=1e-8, max_grad_norm=t.grad_clip, lr_scheduler_type="cosine", warmup_steps=0,
                             logging_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
                             dataloader_num_workers=0, dataloader_pin_memory=False, seed=0)
    hf = InOrder(model=built.model, args=args, train_dataset=Windows(), callbacks=[Clock()])
    hf.remove_callback(PrinterCallback)
    hf.train()
    return [b - a for a, b in zip(ends, ends[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,10M", help="model sizes (non-embedding parameter targets), comma-separated")
    parser.add_argument("--batch", type=int, default=8, help="global batch in windows")
    parser.add_argument("--context", type=int, default=128, help="tokens per window")
    parser.add_argument("--steps", default="12,5", help="steps per trainer and repeat, one per size (the first --warmup are not timed)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of engine and HF")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a machine shared with other work)")
    parser.add_argument("--corpus", default="tiny", help="corpus preset (text mode)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_train_speed.") as work:
        run(args, Path(work))


def run(args: argparse.Namespace, work: Path) -> None:
    store = Store(work / "store")
    sizes = args.sizes.split(",")
    steps = [int(s) for s in args.steps.split(",")]
    steps += steps[-1:] * (len(sizes) - len(steps))
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch} x context {args.context} "
          f"= {args.batch * args.context} tokens/step, {args.repeats} alternating repeats, {args.warmup} untimed steps each")
    print(f"{'size':>5} {'params':>11} {'timed':>6} {'engine tok/s':>13} {'HF tok/s':>10} {'ratio':>6} {'best':>5} {'target':>7} "
          f"{'peak GF/s':>10} {'MFU':>6} {'GEMM share':>11} {'ceiling':>8}")
    for size, n_steps in zip(sizes, steps):
        model = resolve_model(ModelSpec(family="llama", size=size))
        spec = RunSpec(model=model, data=DataSpec(mode="text", corpus=args.corpus, context=args.context),
                       train=TrainSpec(tokens=10**12, batch_size=args.batch, lr=3e-3, eval_points=1)).validate()
        prep = run_data(spec, store)
        peaks = [measure_peak_flops(torch.device("cpu"), seconds=1.0)]
        times: dict[str, list[float]] = {"engine": [], "hf": []}
        for _ in range(args.repeats):
            times["engine"] += engine_step_times(spec, store, n_steps)[args.warmup:]
            times["hf"] += hf_step_times(spec, store, n_steps, work / "hf")[args.warmup:]
        peaks.append(measure_peak_flops(torch.device("cpu"), seconds=1.0))
        gemm = gemm_seconds_per_step(spec, store, 4)
        tokens = args.batch * args.context
        engine, hf = (tokens / statistics.median(times[k]) for k in ("engine", "hf"))
        n_total = count_params(spec.model, prep.vocab_size, prep.n_added_vocab, args.context).total
        peak = max(peaks)
        mfu = engine * 6 * n_total / peak
        target = TARGETS.get(size)
        print(f"{size:>5} {n_total:>11,} {len(times['engine']):>6} {engine:>13,.0f} {hf:>10,.0f} {engine / hf:>6.2f} {min(times['hf']) / min(times['engine']):>5.2f} "
              f"{'>= %.1f' % target if target else '':>7} {peak / 1e9:>10.1f} {mfu:>6.1%} "
              f"{gemm / statistics.median(times['engine']):>11.0%} {statistics.median(times['hf']) / gemm:>7.2f}x", flush=True)
    print("MFU target: >= 50% for 10M (6·N_total·tokens/s over the fp32 matmul peak measured above)")
    print("GEMM share: the engine's step time spent in the model's matrix products (profiled); ceiling: HF step time over\n"
          "that GEMM time, the largest speed-up over the HF Trainer that any trainer keeping the model's kernels could reach")


if __name__ == "__main__":
    main()
