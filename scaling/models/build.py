"""Instantiate transformers causal LMs from a resolved :class:`ModelSpec`, from scratch or from a
local pre-trained text LM with its vocabulary extended for speech units and markers."""

from __future__ import annotations

from pathlib import Path

import torch

from scaling.errors import UserError, unknown_choice
from scaling.models.families import FAMILIES
from scaling.reading import load_pretrained
from scaling.spec import ModelSpec


def build_model(model: ModelSpec, vocab_size: int, context: int, seed: int, pad_id: int | None = None) -> torch.nn.Module:
    """A freshly initialised causal LM (fp32, the family's attention: SDPA, or eager for ALiBi),
    deterministic given ``seed``."""
    from transformers import AutoModelForCausalLM

    if model.family not in FAMILIES:
        raise unknown_choice("model.family", model.family, FAMILIES)
    torch.manual_seed(seed)
    config = FAMILIES[model.family].config(model, vocab_size, context, pad_id)
    return AutoModelForCausalLM.from_config(config, attn_implementation=FAMILIES[model.family].attention, dtype=torch.float32)


def load_text_lm(path: str | Path, vocab_size: int, seed: int, n_text_vocab: int | None = None) -> torch.nn.Module:
    """Load a local text LM with its vocabulary resized to exactly ``vocab_size`` rows.

    ``n_text_vocab``: rows its tokenizer uses (default: every row of its embedding). Those text
    rows, and every other weight, stay bit-identical. Rows from ``n_text_vocab`` on (speech units,
    markers, added specials, and any unused padding rows a checkpoint carries beyond its
    tokenizer) are new: each is drawn from a normal distribution with the per-dimension mean and
    standard deviation of the text rows (the rule transformers uses for ``mean_resizing``,
    without its covariance step), from a generator seeded with ``seed``, so new tokens start at the
    scale of the old ones. An untied output layer gets the same rule, from its own text rows.
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").exists():
        raise UserError(f"init_from = {str(path)!r}: expected a local text-LM directory with config.json")
    lm = load_pretrained(AutoModelForCausalLM, path, "init_from text LM", dtype=torch.float32)
    rows = lm.get_input_embeddings().weight.shape[0]
    n_text = rows if n_text_vocab is None else n_text_vocab
    if n_text > rows:
        raise UserError(f"the tokenizer of {path} has {n_text} tokens but its model only {rows} embedding rows; expected a matching tokenizer")
    if vocab_size < n_text:
        raise UserError(f"vocabulary of {vocab_size} rows is smaller than the text LM's {n_text} text tokens at {path}")
    if vocab_size != rows:
        lm.resize_token_embeddings(vocab_size, mean_resizing=False)
    matrices = [lm.get_input_embeddings().weight]
    out = lm.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(out.weight)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in matrices:
            if vocab_size > n_text:
                mean, std = w[:n_text].mean(0), w[:n_text].std(0)
                w[n_text:] = mean + std * torch.randn(vocab_size - n_text, w.shape[1], generator=gen)
    lm.config.vocab_size = vocab_size
    return lm
