"""Benchmarks at every evaluation point of a training run (the trainer's ``on_eval`` hook).

:func:`benchmark_metrics` is called by :class:`scaling.train.loop.Trainer` on the main rank at each
evaluation point (an :class:`~scaling.train.loop.EvalPoint`), the last one included; the
accuracies it returns are merged into the run's evaluation row (``evals.jsonl``) and so become
columns of the collected table. Per-pair scores go
to ``runs/<id>/benchmarks/step<step>.csv`` (``branch<i>-step<step>.csv`` at a decay branch's row).
Sequences longer than the run's training context (``data.context``) are scored in sliding windows
of that context (see :mod:`scaling.evaluation.scoring`).

Cost is kept small (in the demo, a run's training is often shorter than one pass over the sets):
each set is cut to the store's ``pairs`` setting (default 64, see
:mod:`scaling.evaluation.settings`); cross-modal and text-LM columns of speech models are scored
at final points only; the sets are built once per corpus in the store cache and loaded once per
run; and the text-LM reference (``acc_*_textlm``) is scored once per text LM and benchmark, and
cached in the store (:mod:`scaling.evaluation.reference_cache`), so runs read it rather than load
the text LM onto their training device again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.evaluation.offline import Unavailable
from scaling.evaluation.reference_cache import load_reference, reference_recipe, save_reference
from scaling.evaluation.settings import EvalSettings, load_settings
from scaling.evaluation.suite import Benchmarks, Task, choose_tasks, run_tasks, write_pair_scores
from scaling.evaluation.tokens import ModelVocab
from scaling.reading import load_pretrained


@dataclass
class _RunContext:
    """What one run's evaluations share: settings, vocabulary, tasks, loaded benchmarks."""

    settings: EvalSettings
    vocab: ModelVocab
    tasks: list[Task]
    benches: Benchmarks
    store_root: Path
    text_lm_results: dict[str, Any] = field(default_factory=dict)


_CONTEXTS: dict[str, _RunContext] = {}


def benchmark_metrics(point) -> dict[str, float]:
    """Accuracy (in [0, 1]) of the benchmark columns due at an evaluation point (a
    :class:`scaling.train.loop.EvalPoint`): every column at a final point (the run's last step, or
    the end of a decay branch); for models that read speech, only the speech columns (S→S and
    unprompted speech) at earlier points, since cross-modal and text-LM columns are reported for
    final models (SIMS Table 2)."""
    start, step = time.perf_counter(), point.step
    ctx = _context(point)
    due = [t for t in ctx.tasks if point.final or not ctx.vocab.speech or t.direction in ("s2s", "s")]
    results = run_tasks(point.model, ctx.vocab, [t for t in due if not t.text_lm], ctx.benches,
                        mask_other_modality=ctx.settings.mask_other_modality, score=ctx.settings.score,
                        context=point.spec.data.context, device=point.device)
    lm_tasks = [t for t in due if t.text_lm and t.column not in ctx.text_lm_results]
    if lm_tasks:
        _text_lm_references(ctx, lm_tasks, point)
    results += [ctx.text_lm_results[t.column] for t in due if t.text_lm]
    name = f"step{step:08d}.csv" if point.branch is None else f"branch{point.branch}-step{step:08d}.csv"
    write_pair_scores(point.run.path / "benchmarks" / name, results)
    print(f"benchmarks at step {step}: {len(results)} columns, {sum(r.n_pairs for r in results)} pairs in "
          f"{time.perf_counter() - start:.1f}s", flush=True)
    return {r.column: r.accuracy for r in results}


def _context(point) -> _RunContext:
    key = str(point.run.path)
    if key not in _CONTEXTS:
        store_root = point.run.path.parents[1]
        settings = load_settings(store_root)
        vocab = ModelVocab.of(point.prep.vocab)
        benches = Benchmarks(point.prep.corpus_config, store_root / "cache", speech=vocab.speech, limit=settings.pairs,
                             official=dict(settings.official), corpus=point.prep.corpus)
        offline = tuple(s for s in settings.sets if s not in settings.official and _available(benches, s))
        tasks = choose_tasks(vocab, benches, offline, settings.official, cross_modal=settings.cross_modal,
                             text_lm=point.spec.init == "text-lm" and settings.cross_modal and vocab.text)
        print(f"benchmarks: {len(tasks)} columns, up to {settings.pairs} pairs each ({', '.join(t.column for t in tasks)})", flush=True)
        _CONTEXTS[key] = _RunContext(settings, vocab, tasks, benches, store_root)
    return _CONTEXTS[key]


def _available(benches: Benchmarks, name: str) -> bool:
    """Whether offline set ``name`` can be built from the run's corpus (builds it); prints why not."""
    try:
        benches.get(name)
    except Unavailable as exc:
        print(f"benchmarks: skipping {name}: {exc}", flush=True)
        return False
    return True


def _text_lm_references(ctx: _RunContext, tasks: list[Task], point) -> None:
    """The text-LM reference results of ``tasks`` into ``ctx.text_lm_results``: from the store's
    cache (:mod:`scaling.evaluation.reference_cache`), else scored by the text LM, loaded only then,
    and cached for every later run of that text LM."""
    import torch
    from transformers import AutoModelForCausalLM

    from scaling.runs.graph import text_lm_dir
    from scaling.store import Store

    path = text_lm_dir(Store(ctx.store_root), point.spec)
    mask, score = ctx.settings.mask_other_modality, ctx.settings.score
    recipes = {t.column: reference_recipe(path, t, ctx.benches.get(t.bench), score, mask) for t in tasks}
    cache = ctx.store_root / "cache"
    for t in tasks:
        cached = load_reference(cache, recipes[t.column])
        if cached is not None:
            ctx.text_lm_results[t.column] = cached
    missing = [t for t in tasks if t.column not in ctx.text_lm_results]
    if not missing:
        return
    text_lm = (load_pretrained(AutoModelForCausalLM, path, "text LM", dtype=torch.float32).to(point.device), ModelVocab.from_dir(path))
    for r in run_tasks(None, ctx.vocab, missing, ctx.benches, mask_other_modality=mask, score=score, device=point.device,
                       text_lm=text_lm):
        ctx.text_lm_results[r.column] = r
        save_reference(cache, recipes[r.column], r)
