"""Train one run of a store: the function every executor calls (local processes, SLURM jobs).

``python -m scaling.train.entry STORE RUN_ID`` or :func:`train_run`. It takes the run's lease
(one writer per run directory), marks the run running, prepares the data (cached), builds or
loads the model, resumes from the latest checkpoint, trains to the budget, writes the summary and
exports the model as a local Hugging Face directory (``model/``) for evaluation and for runs
initialised from it. Rank 0 writes the store; other ranks only train.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch

from scaling.atomic import atomic_write_json
from scaling.errors import UserError
from scaling.runs.materialise import materialise
from scaling.runs.outcome import Outcome
from scaling.store import FINAL_STATES, Lease, LeaseHeld, Store, now
from scaling.train.distributed import World, init_process_group, world_from_env
from scaling.spec import EngineSpec, MirrorSpec, parse_seconds
from scaling.train.metrics import progress_line
from scaling.train.mirrors import open_mirrors
from scaling.train.signals import StopSignal


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0))))
    return torch.device("cpu")


def train_run(store_root: str | Path, run_id: str, *, threads: int | None = None,
              should_stop: Callable[[], bool] = lambda: False, progress: Callable | None = None,
              engine: EngineSpec = EngineSpec(), mirrors: MirrorSpec = MirrorSpec()) -> Outcome:
    """Train run ``run_id`` of the store to completion (resuming); returns how this attempt ended
    (an :class:`~scaling.runs.outcome.Outcome`: done, diverged, stopped, busy or skipped; an error
    marks the run failed and propagates). ``engine``: strategy, checkpointing, intervals and
    timeouts (:class:`~scaling.spec.EngineSpec`); ``mirrors``: where rank 0 also sends the run's rows."""
    from scaling.train.loop import Trainer, export_model, host_info

    if threads:
        torch.set_num_threads(threads)
    store = Store(store_root)
    run = store.run(run_id)
    if not run.spec_file.exists():
        raise UserError(f"unknown run {run_id!r} in store {str(store_root)!r}")
    world = world_from_env()
    spec = run.spec()
    engine.validate()
    init_process_group(world, parse_seconds(engine.collective_timeout, "engine.collective_timeout"))
    device = pick_device()
    decision, lease = claim(run, world, device)
    if decision is not None:
        return decision
    mirror = None
    try:
        if world.is_main:
            removed = run.remove_leftovers(lease.ttl)
            if removed:
                print(f"run {run_id}: removed {len(removed)} temporary file(s) of a writer that died: {', '.join(removed)}", flush=True)
            mirror = open_mirrors(run, spec, mirrors)
            status = run.status()
            run.update_status(state="running", attempts=status.get("attempts", 0) + 1, started=now(),
                              error=None, note=None, resumed_from_step=None, **host_info(), world_size=world.size)
        built = materialise(spec, store)
        trainer = Trainer(spec=spec, run=run, prep=built.data, model=built.model, world=world, device=device,
                          should_stop=should_stop, engine=engine, on_eval=_benchmark_hook(), mirror=mirror)
        if world.is_main:
            layout = trainer.layout
            run.update_status(micro_batch=layout.micro_batch, strategy=layout.strategy if world.size > 1 else "ddp",
                              activation_checkpointing=layout.activation_checkpointing,
                              memory_per_task=trainer.costs.memory.total)
        if trainer.resume() and world.is_main:
            run.update_status(resumed_from_step=trainer.state.step)
        if trainer.state.discarded and world.is_main:
            print(f"run {run_id}: {trainer.state.discarded}", flush=True)
            run.update_status(note=trainer.state.discarded)
        outcome = trainer.train_to_budget(progress=progress)
        if outcome == Outcome.DONE:
            export_model(trainer, run.path / "model")
        if outcome == Outcome.DONE and world.is_main:
            atomic_write_json(run.summary_file, summary(trainer))
            run.update_status(state="done", finished=now(), step=trainer.state.step, tokens=trainer.state.tokens.total)
        elif outcome == Outcome.STOPPED and world.is_main:
            run.update_status(state="pending", step=trainer.state.step, tokens=trainer.state.tokens.total, stopped=now())
        return outcome
    except Exception as exc:
        if world.is_main:
            reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            run.update_status(state="failed", error=reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__,
                              finished=now())
        raise
    finally:
        if mirror is not None:
            mirror.close()
        if lease:
            lease.release()


def summary(trainer) -> dict:
    """``summary.json`` of a finished run: the trunk's last evaluation row, parameter counts,
    vocabulary, steps, branches and the compute the whole run spent."""
    run, spec, counts = trainer.run, trainer.spec, trainer.counts
    trunk = [r for r in run.evals() if not r.get("branch")]
    return {"run_id": spec.run_id, "name": spec.name, **(trunk[-1] if trunk else {}),
            "params_total": counts.total, "params_non_embedding": counts.non_embedding,
            "params_embedding": counts.embedding, "params_embedding_speech": counts.embedding_speech,
            "vocab_size": trainer.prep.vocab_size, "steps": trainer.timeline.n_steps, "branches": len(trainer.timeline.branches),
            **trainer.spent(), "finished": now()}


def claim(run, world: World, device: torch.device) -> tuple[Outcome | None, Lease | None]:
    """Whether to train ``run`` here: (None, the run's lease on rank 0) to train; (skipped, None)
    when it is finished, (busy, None) when another live process holds it. Rank 0 decides and every
    rank follows, so none waits forever."""
    from scaling.train.loop import host_info

    decision, lease = None, None
    if world.is_main:
        if run.status().get("state") in FINAL_STATES:
            decision = Outcome.SKIPPED
        else:
            try:
                lease = Lease(run, owner=host_info()).acquire()
            except LeaseHeld:
                decision = Outcome.BUSY
    if world.size > 1:
        choices = (None, Outcome.SKIPPED, Outcome.BUSY)
        code = torch.tensor([choices.index(decision)], device=device)
        torch.distributed.broadcast(code, src=0)
        decision = choices[int(code.item())]
    return decision, lease


def _benchmark_hook():
    """The evaluation engine's per-checkpoint benchmarks, when that part of the toolkit is present."""
    try:
        from scaling.evaluation.hooks import benchmark_metrics
    except ModuleNotFoundError:
        return None
    return benchmark_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train one run of a store (resuming from its checkpoint).")
    parser.add_argument("store", help="store root directory")
    parser.add_argument("run_id", help="run id (directory name under STORE/runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for this run")
    engine = EngineSpec()
    parser.add_argument("--strategy", default=engine.strategy, help="auto, ddp, zero1 or fsdp (engine.strategy; default auto)")
    parser.add_argument("--activation-checkpointing", default=engine.activation_checkpointing,
                        help="auto, true or false (engine.activation_checkpointing; default auto)")
    parser.add_argument("--checkpoint-every", default=engine.checkpoint_every,
                        help="auto, a duration such as 10m, or '500 steps' (engine.checkpoint_every; default auto)")
    parser.add_argument("--collective-timeout", default=engine.collective_timeout,
                        help="how long a rank waits at a collective, e.g. 30m (engine.collective_timeout)")
    parser.add_argument("--gpu-memory", default="", help="memory of one GPU, e.g. 80G (engine.gpu_memory; default: the GPU's own)")
    parser.add_argument("--tensorboard", action="store_true", help="also write the run's rows as TensorBoard scalars (scaling.train.mirrors)")
    parser.add_argument("--wandb", default="", metavar="PROJECT", help="also log the run's rows to this W&B project, offline")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stop = StopSignal().install()
    try:
        engine = EngineSpec(strategy=args.strategy, activation_checkpointing=args.activation_checkpointing,
                            checkpoint_every=args.checkpoint_every, collective_timeout=args.collective_timeout,
                            gpu_memory=args.gpu_memory)
        state = train_run(args.store, args.run_id, threads=args.threads, engine=engine,
                          should_stop=stop, progress=lambda row: print(progress_line(row), flush=True),
                          mirrors=MirrorSpec(tensorboard=args.tensorboard, wandb=args.wandb))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return Outcome.FAILED.exit_code
    print(f"run {args.run_id}: {state}", flush=True)
    return state.exit_code


if __name__ == "__main__":
    sys.exit(main())
