"""`scaling pretrain-text`: pre-train a small text LM on the shipped text, for offline TWIST init.

The text LM is an ordinary text-mode run in a store (so it resumes, and is trained once); its
exported Hugging Face directory can be named by any sweep as ``init_from: <dir>``. Sweeps can also
say ``init_from: "pretrain:<tokens>"``, which trains the same text LM for each SLM architecture
automatically before the SLM starts.
"""

from __future__ import annotations

import argparse
import shutil


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default="llama", help="model family: llama, qwen2 or opt (default llama)")
    p.add_argument("--size", default="1M", help="named size or target non-embedding parameter count (default 1M)")
    p.add_argument("--tokens", default="5M", help="training tokens (default 5M)")
    p.add_argument("--context", type=int, default=128, help="context window in tokens (default 128)")
    p.add_argument("--corpus", default="default", help="corpus preset or config whose text split is used (default: default)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--store", default="results/text-lm", help="store for the training run (default results/text-lm)")
    p.add_argument("--out", required=True, help="directory to write the text LM to (a local Hugging Face model directory)")


def run(args: argparse.Namespace) -> int:
    from scaling.atomic import check_writable
    from scaling.errors import UserError
    from scaling.launch.executors import open_executor
    from scaling.runs.outcome import Outcome
    from scaling.models import resolve_model
    from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec, parse_count
    from scaling.store import Store

    spec = RunSpec(model=resolve_model(ModelSpec(family=args.family, size=args.size)),
                   data=DataSpec(mode="text", corpus=args.corpus, context=args.context),
                   train=TrainSpec(tokens=int(parse_count(args.tokens, "--tokens"))), seed=args.seed,
                   sweep="pretrain-text").validate()
    out = check_writable(args.out, "--out", directory=True)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise UserError(f"--out {str(out)!r} is a directory that holds something other than a model; expected a new directory, "
                        "or a text LM written here before (it is replaced)")
    store = Store(args.store)
    store.ensure_writable()
    executor = open_executor("local", store, {"max_parallel": 1}, sweep="pretrain-text", say=lambda line: print(line, flush=True))
    (handle,) = executor.submit([spec])
    run = store.run(spec.run_id)
    if run.status().get("state") != "done":
        raise UserError(f"text-LM run {spec.run_id} did not finish ({run.status().get('error') or run.status().get('state')}); see {run.log_file}")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(run.path / "model", out)
    summary = run.summary() or {}
    print(f"text LM {spec.name} ({summary.get('params_total', 0):,} parameters, loss_val {summary.get('loss_val', float('nan')):.4f}) "
          f"written to {out}; use it with init: text-lm, init_from: {out}")
    return 0 if handle.action != Outcome.FAILED else 1
