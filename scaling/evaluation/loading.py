"""Load what ``scaling eval`` scores: a run (exported model or checkpoint) or a model directory.

A run is rebuilt exactly as training built it: its vocabulary from ``prepare_data`` (cached in the
store), its weights from ``runs/<id>/model`` when it finished, or from the checkpoint otherwise
(or when a checkpoint is named), its corpus from its spec, and for runs initialised from a text LM
that text LM too (for the ``acc_*_textlm`` reference). A model directory brings its tokenizer;
its corpus, needed for offline speech sets and audio, is ``--corpus``.

Context (the most tokens the model reads at once when scoring): a run's training context
(``data.context`` of its spec); a model directory's ``max_position_embeddings``; ``--context``
overrides either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from scaling.errors import UserError
from scaling.evaluation.tokens import ModelVocab
from scaling.reading import UnreadableFile, load_pretrained, load_tensors

#: fills a model (one process) from a run's checkpoint: (its latest.pt, the state read from it, the model)
WeightsReader = Callable[[Path, dict, torch.nn.Module], None]


@dataclass
class Target:
    """A loaded model and what scoring it needs. corpus: its built corpus when already open (a
    run's); text_lm: (model, vocab) of its initial text LM or None; context: the most tokens the
    model reads at once (None: sequences in one piece)."""

    model: torch.nn.Module
    vocab: ModelVocab
    corpus_config: Any
    corpus: Any
    text_lm: tuple[torch.nn.Module, ModelVocab] | None
    description: str
    context: int | None


@dataclass(frozen=True)
class TargetRef:
    """Where a target is, before anything is loaded: a run (with an optional checkpoint) or a
    model directory; store_root: the store a run belongs to."""

    run: Any
    checkpoint: Path | None
    model_dir: Path | None
    store_root: Path | None


def resolve_target(target: str, store: str | None) -> TargetRef:
    """Find ``target`` (see :mod:`scaling.commands.evaluate`) without loading it."""
    from scaling.store import RunDir, Store

    path = Path(target).expanduser()
    checkpoint = None
    if path.exists():
        if path.is_file() and path.suffix == ".pt":
            checkpoint, path = path, path.parent.parent
        elif path.is_dir() and path.name == "checkpoint":
            checkpoint, path = path / "latest.pt", path.parent
        if (path / "spec.json").is_file():
            run = RunDir(path.resolve())
            return TargetRef(run, checkpoint, None, run.path.parents[1])
        if (path / "config.json").is_file():
            return TargetRef(None, None, path, None)
        raise UserError(f"{target!r} is neither a run directory (spec.json), a checkpoint nor a model directory (config.json)")
    if not store:
        raise UserError(f"{target!r} is not a path; give --store STORE to find a run id or name in it")
    return TargetRef(Store(store).find_run(target), None, None, Path(store))


def load_target(ref: TargetRef, *, corpus: str | None, device: torch.device, context: int | None = None,
                trust_pickles: bool = False, checkpoint_weights: WeightsReader | None = None) -> Target:
    """Load a resolved target on ``device``; ``corpus``: the corpus of a model directory;
    ``context``: scoring context in tokens instead of the target's own (see the module doc);
    ``trust_pickles``: let model directories load pickled weights (:func:`scaling.reading.load_pretrained`);
    ``checkpoint_weights``: how a run's checkpoint fills its model (training's format:
    :func:`scaling.train.state.load_trunk_weights`, which the command passes; needed for runs
    scored from their checkpoint)."""
    from transformers.utils import logging as hf_logging

    from scaling.data.config import resolve_corpus
    from scaling.store import Store

    hf_logging.disable_progress_bar()
    config = resolve_corpus(corpus) if corpus else None
    if ref.model_dir is not None:
        target = _model_dir(ref.model_dir, config, device, trust_pickles)
    else:
        target = _run(Store(ref.store_root), ref.run, ref.checkpoint, config, device, trust_pickles, checkpoint_weights)
    if context is not None:
        target.context = context
    return target


def _model_dir(path: Path, corpus_config, device: torch.device, trust_pickles: bool) -> Target:
    from transformers import AutoModelForCausalLM

    vocab = ModelVocab.from_dir(path)
    model = load_pretrained(AutoModelForCausalLM, path, trust_pickles=trust_pickles, dtype=torch.float32).to(device)
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < vocab.layout.vocab_size:
        raise UserError(f"model {str(path)!r} has {rows} embedding rows but its tokenizer has {vocab.layout.vocab_size} tokens; expected a matching vocabulary")
    from scaling.evaluation.suite import config_context

    return Target(model, vocab, corpus_config, None, None, f"model {path} ({vocab.layout.kind} vocabulary, {vocab.layout.n_units} units)",
                  config_context(model))


def _run(store, run, checkpoint: Path | None, corpus_config, device: torch.device, trust_pickles: bool,
         checkpoint_weights: WeightsReader | None) -> Target:
    from transformers import AutoModelForCausalLM

    from scaling.data.config import resolve_corpus
    from scaling.runs.graph import text_lm_dir
    from scaling.runs.materialise import materialise, run_data

    spec = run.spec()
    lm_dir = text_lm_dir(store, spec) if spec.init == "text-lm" else None
    exported = run.path / "model"
    if checkpoint is None and (exported / "config.json").is_file():
        prep = run_data(spec, store)
        model = load_pretrained(AutoModelForCausalLM, exported, "exported model", trust_pickles=trust_pickles, dtype=torch.float32)
        source = str(exported)
    else:
        checkpoint = checkpoint or run.checkpoint_dir / "latest.pt"
        if not checkpoint.is_file():
            raise UserError(f"run {run.run_id} has no exported model and no checkpoint {str(checkpoint)!r} yet; expected a run that has trained")
        state = load_tensors(checkpoint)
        if not isinstance(state, dict) or not isinstance(state.get("tensors", state.get("sharded")), dict):
            raise UnreadableFile(f"checkpoint {str(checkpoint)!r} holds no model state; expected a checkpoint written by scaling")
        if checkpoint_weights is None:
            raise UserError(f"run {run.run_id} has no exported model; scoring its checkpoint {str(checkpoint)!r} needs the reader "
                            "of training's checkpoints (scaling eval passes it)")
        built = materialise(spec, store)
        prep, model = built.data, built.model
        checkpoint_weights(checkpoint, state, model)
        source = f"{checkpoint} (step {state.get('step')})"
    text_lm = None
    if lm_dir is not None:
        lm = load_pretrained(AutoModelForCausalLM, lm_dir, "text LM", trust_pickles=trust_pickles, dtype=torch.float32).to(device)
        text_lm = (lm, ModelVocab.from_dir(lm_dir))
    config = resolve_corpus(spec.data.corpus)
    if corpus_config is not None and corpus_config != config:
        raise UserError(f"--corpus {corpus_config.name!r}: run {run.run_id} was trained on corpus {config.name!r}, whose codebook its units "
                        "come from; a run is scored on its own corpus (omit --corpus)")
    return Target(model.to(device), ModelVocab.of(prep.vocab), config, prep.corpus, text_lm,
                  f"run {run.run_id} {spec.name}: {source} ({prep.vocab.layout.kind} vocabulary, corpus {config.name})",
                  spec.data.context)
