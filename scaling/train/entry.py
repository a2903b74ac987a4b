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
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from scaling.errors import UserError
from scaling.spec import RunSpec, DataSpec
from scaling.atomic import atomic_write_json
from scaling.store import FINAL_STATES, Lease, LeaseHeld, Store, now
from scaling.train.distributed import World, init_process_group, world_from_env


def pretrain_spec(spec: RunSpec) -> RunSpec:
    """The text-LM run that ``init_from: pretrain:<tokens>`` names: same architecture, text data, scratch."""
    tokens = spec.init_from.split(":", 1)[1]
    from scaling.spec import parse_count

    data = DataSpec(mode="text", corpus=spec.data.corpus, context=spec.data.context)
    train = replace(spec.train, tokens=int(parse_count(tokens, "init_from")), schedule="cosine", branch_tokens=())
    return RunSpec(model=spec.model, data=data, train=train, init="scratch", init_from="", seed=spec.seed, sweep=spec.sweep)


def dependencies(spec: RunSpec) -> list[RunSpec]:
    """Runs that must finish before ``spec`` can start (its pre-trained text LM, if any)."""
    if spec.init == "text-lm" and spec.init_from.startswith("pretrain:"):
        return [pretrain_spec(spec)]
    return []


def text_lm_dir(store: Store, spec: RunSpec) -> Path:
    """Directory of the text LM a run starts from (a local path, or the exported pretrain run)."""
    if spec.init_from.startswith("pretrain:"):
        dep = store.run(pretrain_spec(spec).run_id)
        if dep.status().get("state") != "done" or not (dep.path / "model").exists():
            raise UserError(f"run {spec.run_id} starts from text LM run {dep.run_id}, which is not done yet; launch it first")
        return dep.path / "model"
    return Path(spec.init_from).expanduser()


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0))))
    return torch.device("cpu")


def train_run(store_root: str | Path, run_id: str, *, threads: int | None = None,
              should_stop: Callable[[], bool] = lambda: False, progress: Callable | None = None,
              checkpoint_seconds: float = 60.0) -> str:
    """Train run ``run_id`` of the store to completion (resuming). Returns the final state.

    States: 'done', 'diverged', 'stopped' (asked to stop; checkpoint saved), 'busy' (another
    process holds the run), 'skipped' (already finished), 'failed'.
    """
    from scaling.data import prepare_data
    from scaling.models.build import build_model, load_text_lm
    from scaling.train.loop import Trainer, export_model, host_info

    if threads:
        torch.set_num_threads(threads)
    store = Store(store_root)
    run = store.run(run_id)
    if not run.spec_file.exists():
        raise UserError(f"unknown run {run_id!r} in store {str(store_root)!r}")
    world = world_from_env()
    spec = run.spec()
    init_process_group(world)
    device = pick_device()
    # rank 0 decides (finished / held elsewhere / go) and every rank follows, so none waits forever
    decision, lease = "go", None
    if world.is_main:
        if run.status().get("state") in FINAL_STATES:
            decision = "skipped"
        else:
            try:
                lease = Lease(run, owner=host_info()).acquire()
            except LeaseHeld:
                decision = "busy"
    decision = broadcast_decision(decision, world, device)
    if decision != "go":
        return decision
    try:
        if world.is_main:
            status = run.status()
            run.update_status(state="running", attempts=status.get("attempts", 0) + 1, started=now(),
                              error=None, **host_info(), world_size=world.size)
        tokenizer_dir = None
        if spec.init == "text-lm":
            lm_dir = text_lm_dir(store, spec)
            tokenizer_dir = str(lm_dir)
        prep = prepare_data(spec.data, store.cache, seed=spec.seed, tokenizer_dir=tokenizer_dir)
        if spec.init == "text-lm":
            model = load_text_lm(lm_dir, prep.vocab_size, seed=spec.seed, n_text_vocab=prep.n_text_vocab)
        else:
            model = build_model(spec.model, prep.vocab_size, spec.data.context, seed=spec.seed, pad_id=prep.pad_id)
        trainer = Trainer(spec=spec, run=run, prep=prep, model=model, world=world, device=device,
                          should_stop=should_stop, checkpoint_seconds=checkpoint_seconds,
                          on_eval=_benchmark_hook())
        if world.is_main:
            run.update_status(micro_batch=trainer.micro_batch)
        resumed = trainer.resume()
        if world.is_main and resumed:
            run.update_status(resumed_from_step=trainer.step)
        state = trainer.fit(progress=progress)
        if state == "done" and world.is_main:
            export_model(trainer, run.path / "model")
            trunk = [r for r in run.evals() if not r.get("branch")]
            summary = {"run_id": spec.run_id, "name": spec.name, **(trunk[-1] if trunk else {}),
                       "params_total": trainer.counts.total, "params_non_embedding": trainer.counts.non_embedding,
                       "params_embedding": trainer.counts.embedding, "params_embedding_speech": trainer.counts.embedding_speech,
                       "vocab_size": prep.vocab_size, "steps": trainer.plan.n_steps, "branches": len(trainer.plan.branches),
                       **trainer.spent(), "finished": now()}
            atomic_write_json(run.summary_file, summary)
            run.update_status(state="done", finished=now(), step=trainer.step, tokens=trainer.acc.tokens)
        elif state == "stopped" and world.is_main:
            run.update_status(state="pending", step=trainer.step, tokens=trainer.acc.tokens, stopped=now())
        return state
    except UserError as exc:
        if world.is_main:
            run.update_status(state="failed", error=str(exc), finished=now())
        raise
    except Exception as exc:
        if world.is_main:
            run.update_status(state="failed", error=f"{type(exc).__name__}: {exc}", finished=now())
        raise
    finally:
        if lease:
            lease.release()


class StopFlag:
    """Set by SIGTERM, SIGINT or SIGUSR2 (preemption, time limit, Ctrl-C): the loop checkpoints and stops."""

    def __init__(self) -> None:
        self.raised = False

    def install(self) -> "StopFlag":
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.raised = True

    def __call__(self) -> bool:
        return self.raised


def broadcast_decision(decision: str, world: World, device: torch.device) -> str:
    """Rank 0's decision, on every rank."""
    if world.size == 1:
        return decision
    choices = ("go", "skipped", "busy")
    code = torch.tensor([choices.index(decision)], device=device)
    torch.distributed.broadcast(code, src=0)
    return choices[int(code.item())]


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
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="save a checkpoint at least this often (seconds)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stop = StopFlag().install()
    try:
        state = train_run(args.store, args.run_id, threads=args.threads, checkpoint_seconds=args.checkpoint_seconds,
                          should_stop=stop,
                          progress=lambda row: print(f"step {row['step']} tokens {row['tokens']} loss {row['loss_train']:.4f} "
                                                     f"{row['tokens_per_s']:.0f} tok/s", flush=True))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    print(f"run {args.run_id}: {state}", flush=True)
    return {"done": 0, "skipped": 0, "stopped": 0, "busy": 3, "diverged": 4}.get(state, 1)


if __name__ == "__main__":
    sys.exit(main())
