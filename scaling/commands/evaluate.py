"""`scaling eval TARGET --bench NAME`: score a saved run, checkpoint or model on benchmarks.

TARGET is a run (its id, id prefix or name with ``--store``, or its directory), a checkpoint
(``runs/<id>/checkpoint`` or its ``latest.pt``) or a model directory (Hugging Face format with its
tokenizer, e.g. ``runs/<id>/model`` or a published checkpoint). A run is loaded with its exact
vocabulary and corpus; a model directory's vocabulary is read off its tokenizer, and ``--corpus``
names the corpus whose codebook its unit tokens come from.

NAME is an offline set (``stc``, ``ssc``, ``ms_stc``, ``ms_ssc``, ``sblimp``, ``swuggy``), a name
under ``official`` in the store's ``eval.yaml``, a path to a local official set or benchmark file
(see :mod:`scaling.evaluation.official`), or ``all`` (the default: every offline set, plus
official ones from ``eval.yaml``). Sets are scored in full (offline sets up to 1000 pairs) unless
``--pairs`` says otherwise. Sequences longer than the model's context (a run's training context, a
model directory's ``max_position_embeddings``, or ``--context``) are scored in sliding windows.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from scaling.evaluation.tokens import DIRECTIONS, SCORES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="run id/prefix/name (with --store) or run directory, checkpoint (runs/<id>/checkpoint[/latest.pt]), or model directory")
    p.add_argument("--bench", action="append", metavar="NAME_OR_PATH",
                   help="benchmark: an offline set (stc, ssc, ms_stc, ms_ssc, sblimp, swuggy), a name under official in eval.yaml, "
                        "a local path (.jsonl, ZeroSpeech gold.csv directory, *_correct/*_incorrect directory, StoryCloze .csv), or all "
                        "(default); repeatable")
    p.add_argument("--direction", action="append", choices=list(DIRECTIONS),
                   help="score only these directions (s2s s2t t2s t2t for prompted sets, s t for unprompted ones); repeatable; default: all that apply")
    p.add_argument("--pairs", type=int, default=None, help="at most this many pairs per set, whole balanced blocks (default: all; offline sets have up to 1000)")
    p.add_argument("--store", default=None, help="store root in which to find a run id or name (also gives eval.yaml and the cache)")
    p.add_argument("--corpus", default=None, help="corpus preset or config of the offline sets and audio codebook (default: the run's corpus; needed for a model directory with speech units)")
    p.add_argument("--cache", default=None, help="cache directory for corpora and built sets (default: the store's cache, else results/cache)")
    p.add_argument("--mask-other-modality", action="store_true", default=None, help="softmax over the target's modality only (default: the store's eval.yaml, else off)")
    p.add_argument("--score", choices=list(SCORES), default=None, help="mean over the whole sequence (SIMS) or the continuation only (default: eval.yaml, else sequence)")
    p.add_argument("--context", type=int, default=None,
                   help="score with at most this many tokens of left context, longer sequences in sliding windows "
                        "(default: a run's training context, a model directory's max_position_embeddings)")
    p.add_argument("--out", default=None, help="write the accuracies as JSON to this file and the per-pair scores beside it (.pairs.csv)")
    p.add_argument("--trust-pickles", action="store_true",
                   help="let a model directory load pickled weights (pytorch_model.bin), whose loading can run code: only "
                        "for files from authors you trust (default: safetensors only; checkpoints never load pickled objects)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    import torch

    from scaling.atomic import check_writable
    from scaling.errors import UserError, unknown_choice
    from scaling.evaluation.loading import load_target, resolve_target
    from scaling.evaluation.offline import OFFLINE_SETS
    from scaling.evaluation.settings import EvalSettings, load_settings
    from scaling.evaluation.suite import Benchmarks, choose_tasks, run_tasks, write_pair_scores

    if args.pairs is not None and args.pairs < 1:
        raise UserError(f"--pairs = {args.pairs}: expected a positive number of pairs")
    if args.context is not None and args.context < 1:
        raise UserError(f"--context = {args.context}: expected a positive number of tokens")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads = {args.threads}: expected a positive number of torch threads")
    if args.out:
        check_writable(args.out, "--out")
        check_writable(Path(args.out).with_suffix(".pairs.csv"), "--out (its per-pair scores)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ref = resolve_target(args.target, args.store)
    settings = load_settings(ref.store_root) if ref.store_root else EvalSettings()
    cache = Path(args.cache) if args.cache else (ref.store_root / "cache" if ref.store_root else Path("results/cache"))
    official = dict(settings.official)
    offline: list[str] = []
    official_names: list[str] = []
    for name in args.bench or ["all"]:
        if name == "all":
            offline += [s for s in settings.sets if s not in official]
            official_names += list(settings.official)
        elif name in official:
            official_names.append(name)
        elif name in OFFLINE_SETS:
            offline.append(name)
        elif Path(name).expanduser().exists():
            key = re.sub(r"[^a-z0-9_]+", "_", Path(name).stem.lower()).strip("_") or "bench"
            official[key] = name
            official_names.append(key)
        else:
            raise unknown_choice("benchmark (offline set, name under official in eval.yaml, or an existing path)", name,
                                 list(OFFLINE_SETS) + list(settings.official) + ["all"])
    from scaling.train.state import load_trunk_weights

    target = load_target(ref, corpus=args.corpus, device=device, context=args.context, trust_pickles=args.trust_pickles,
                         checkpoint_weights=load_trunk_weights)
    benches = Benchmarks(target.corpus_config, cache, speech=target.vocab.speech, limit=args.pairs, official=official, progress=True,
                         corpus=target.corpus)
    directions = tuple(args.direction) if args.direction else None
    tasks = choose_tasks(target.vocab, benches, tuple(dict.fromkeys(offline)), official_names, cross_modal=True,
                         text_lm=target.text_lm is not None, directions=directions)
    if not tasks:
        raise UserError(f"no benchmark applies to {args.target} ({target.vocab.layout.kind} vocabulary) with the directions asked for")
    start = time.perf_counter()
    results = run_tasks(target.model, target.vocab, tasks, benches,
                        mask_other_modality=settings.mask_other_modality if args.mask_other_modality is None else True,
                        score=args.score or settings.score, context=target.context, device=device, text_lm=target.text_lm)
    seconds = time.perf_counter() - start
    print(f"{target.description}, scored with at most {target.context or 'unlimited'} tokens of context")
    width = max(len(r.column) for r in results)
    print(f"{'column':<{width}}  {'pairs':>6}  {'accuracy':>8}  {'± s.e.':>7}")
    for r in results:
        se = (r.accuracy * (1 - r.accuracy) / r.n_pairs) ** 0.5
        print(f"{r.column:<{width}}  {r.n_pairs:>6}  {r.accuracy:>8.4f}  {se:>7.4f}")
    print(f"scored {sum(r.n_pairs for r in results)} pairs in {seconds:.1f}s")
    if args.out:
        from scaling.atomic import atomic_write_json

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"target": str(args.target), "model": target.description, "score": args.score or settings.score, "context": target.context,
                   "results": {r.column: {"accuracy": r.accuracy, "pairs": r.n_pairs, "bench": r.bench, "direction": r.direction} for r in results}}
        atomic_write_json(out, payload)
        write_pair_scores(out.with_suffix(".pairs.csv"), results)
        print(f"wrote {out} and {out.with_suffix('.pairs.csv')}")
    return 0
