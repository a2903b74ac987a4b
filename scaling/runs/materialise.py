"""A run's data, tokenizer and initial model, built from its spec exactly as training builds them.

Training (:mod:`scaling.train.entry`), evaluation of a stored run (:mod:`scaling.evaluation.loading`),
tests and benchmarks all start here, so a model is never built two ways. The data goes through the
data package's one boundary, :func:`scaling.data.prepare_data` (cached in the store by content
hash); a run initialised from a text LM reads that LM's tokenizer and weights from
:func:`~scaling.runs.graph.text_lm_dir`, which must be done. torch is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling.runs.graph import text_lm_dir
from scaling.spec import RunSpec
from scaling.store import Store


@dataclass
class Materialised:
    """What a run trains: ``data`` (a :class:`scaling.data.PreparedData`: vocabulary and windows),
    ``model`` (a freshly initialised causal LM, or the text LM with its vocabulary extended; fp32,
    on the CPU) and ``text_lm_dir`` (the text LM it starts from, or None)."""

    data: Any
    model: Any
    text_lm_dir: Path | None


def run_data(spec: RunSpec, store: Store):
    """The prepared data of a run (a :class:`scaling.data.PreparedData`), its vocabulary built on the
    text LM's tokenizer for runs initialised from one, else on the toolkit's default."""
    from scaling.data import prepare_data

    lm_dir = text_lm_dir(store, spec) if spec.init == "text-lm" else None
    return prepare_data(spec.data, store.cache, seed=spec.seed, tokenizer_dir=str(lm_dir) if lm_dir else None)


def materialise(spec: RunSpec, store: Store) -> Materialised:
    """Data and initial model of ``spec`` (seeded by ``spec.seed``; deterministic)."""
    from scaling.models.build import build_model, load_text_lm

    data = run_data(spec, store)
    if spec.init == "text-lm":
        lm_dir = text_lm_dir(store, spec)
        return Materialised(data, load_text_lm(lm_dir, data.vocab_size, seed=spec.seed, n_text_vocab=data.n_text_vocab), lm_dir)
    return Materialised(data, build_model(spec.model, data.vocab_size, spec.data.context, seed=spec.seed, pad_id=data.pad_id), None)
