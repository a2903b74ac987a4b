"""`scaling plan SWEEP`: what a sweep would train, with sizes, tokens, FLOPs and estimated time."""

from __future__ import annotations

import argparse
import statistics

from scaling.commands.common import add_sweep_arguments, open_sweep
from scaling.formatting import duration, format_rows, gib, human, memory_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)
    p.add_argument("--mfu", type=float, default=0.3, help="assumed model FLOP utilisation when the store has no finished run to measure (default 0.3)")


def measured_flops_per_second(store) -> tuple[float | None, str]:
    """Median achieved 6·N·D FLOP/s of the store's finished runs, from their metrics logs."""
    rates = []
    for run in store.runs():
        rows = [r for r in run.metrics() if r.get("tokens_per_s")]
        if rows:
            rates.append(statistics.median(r["tokens_per_s"] * r["flops_6nd"] / max(1, r["tokens"]) for r in rows))
    if rates:
        return statistics.median(rates), f"measured on {len(rates)} run(s) in {store.root}"
    return None, ""


def slurm_rates(sweep):
    """For a sweep bound for SLURM (``executor: slurm``, or ``auto`` with a ``slurm:`` section): a
    function N_total → (6·N·D FLOP/s per task, tasks, whether they are GPUs), by the rules of its
    SLURM time limits; else None."""
    section = sweep.config.get("slurm")
    if sweep.config.get("executor", "local") not in ("slurm", "auto") or not section:
        return None
    from scaling.launch.resources import CPU_THROUGHPUT, GPU_THROUGHPUT, SlurmSettings

    settings = SlurmSettings.from_config(section, {})

    def rate(n_params: int) -> tuple[float, int, bool]:
        s = settings.for_params(n_params)
        tasks = s.gpus_per_run or s.tasks_per_run or 1
        return s.throughput or (GPU_THROUGHPUT if s.gpus_per_run else CPU_THROUGHPUT), tasks, bool(s.gpus_per_run)

    return rate


def run(args: argparse.Namespace) -> int:
    from scaling.runs.vocabulary import published_tokenizers

    with published_tokenizers() as substituted:
        status = _plan(args)
    for path, size in sorted(substituted.items()):
        print(f"note: {path} does not exist; {size} runs were planned with its published tokenizer's size "
              "(training needs the directory: nothing is downloaded)")
    return status


def _plan(args: argparse.Namespace) -> int:
    from scaling.errors import UserError
    from scaling.runs.costs import Device, costs, param_counts, usable_bytes
    from scaling.runs.graph import with_dependencies

    if not 0 < args.mfu <= 1:
        raise UserError(f"--mfu {args.mfu!r}: expected a fraction of the peak in (0, 1], e.g. 0.3")
    sweep, store = open_sweep(args)
    engine = sweep.engine
    rate, source = measured_flops_per_second(store)
    slurm = slurm_rates(sweep)
    measured = rate is not None
    if slurm is not None and not measured:
        rate, source = 0.0, "slurm.throughput per task of the sweep's slurm section (or its default), times the run's tasks"
    elif not measured:
        from scaling.train.metrics import measure_peak_flops
        import torch

        rate = measure_peak_flops(torch.device("cpu")) * args.mfu
        source = f"{args.mfu:.0%} of the fp32 matmul peak measured now on this machine"
    rows, total_flops, total_tokens, total_time = [], 0.0, 0, 0.0
    specs = with_dependencies(list(sweep.runs))
    gpus_seen = False
    for spec in specs:
        per_task, tasks, gpu = slurm(param_counts(spec).total) if slurm is not None else (rate, 1, bool(engine.gpu_memory))
        per_task = rate if measured else per_task
        device = Device.gpus(engine) if gpu else Device()
        gpus_seen |= gpu
        cost = costs(spec, engine, tasks, device)  # refuses a run that fits its GPUs under no allowed layout
        counts, flops = cost.params, cost.flops  # FLOPs of the budget, plus what decay branches add
        state = store.run(spec.run_id).status().get("state", "pending") if store.run(spec.run_id).spec_file.exists() else "new"
        seconds = flops / (per_task * tasks)  # wall time
        total_flops += flops
        total_tokens += cost.tokens_spent
        total_time += seconds * tasks if state not in ("done", "diverged") else 0
        m, layout = spec.model, cost.layout
        rows.append([spec.run_id, spec.name, f"{m.n_layers}x{m.d_model}", human(counts.total), human(counts.non_embedding),
                     human(spec.train.tokens), f"{spec.train.tokens / counts.total:.1f}", f"{flops:.2e}",
                     f"{layout.strategy}{'+ac' if layout.activation_checkpointing else ''} x{tasks}" + (" GPU" if gpu else ""),
                     str(layout.micro_batch), memory_size(cost.memory.total), duration(seconds), state])
    header = ["run_id", "name", "LxD", "N_total", "N_nonemb", "tokens", "D/N", "FLOPs(6ND)", "strategy", "micro", "mem/task",
              "est.time", "state"]
    print(format_rows(rows, header))
    limit = usable_bytes(Device.gpus(engine)) if gpus_seen else None
    print("mem/task: peak memory of one task (one GPU) by the memory model (scaling.runs.costs): weights, gradients, AdamW's "
          "moments, working copies, activations and a loss chunk at the micro-batch shown" +
          (f"; every GPU run fits {gib(limit)} usable of a {gib(Device.gpus(engine).memory)} GPU (engine.gpu_memory)"
           if limit is not None else ""))
    extra = len(specs) - len(sweep.runs)
    print(f"\nsweep {sweep.name}: {len(sweep.runs)} runs" + (f" + {extra} text-LM pre-training run(s)" if extra else "")
          + f", {human(total_tokens)} tokens, {total_flops:.3g} FLOPs; "
          + (f"estimated {duration(total_time)} of compute left at {rate:.3g} FLOP/s per task ({source})" if rate else
             f"estimated {duration(total_time)} of task (GPU) time left; est.time is each run's wall time ({source})")
          + f"; store {store.root}")
    print("nothing was trained (dry run); `scaling launch` trains it")
    return 0
