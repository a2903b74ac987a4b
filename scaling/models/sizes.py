"""Size ladders: named architectures and the target-count rule, with analytic parameter counts.

The dial. A size such as ``"1M"`` is a target count of *non-embedding* parameters N (Kaplan's
convention: everything but token/position embeddings and an untied output layer), because the
embedding rows depend on the vocabulary, which differs between text, interleaved and textless runs
of the same model. From N the rule derives, as nanochat does from depth, a whole architecture:

* every block has about 12·d² parameters (4·d² attention + an MLP of 8·d² for a gated MLP with
  d_ff ≈ 8/3·d, or a plain MLP with d_ff = 4·d), so N ≈ 12·L·d²;
* the aspect ratio is fixed at d ≈ 64·L, so L = round((N / (12·64²))^(1/3)), at least 1;
* d = sqrt(N / (12·L)) rounded down to a multiple of the head width (32 below 256, 64 below 2048,
  128 above), heads = d / head width;
* finally d_ff is solved so that the count hits N (to within a multiple of 8): the target is met
  to well under 5 % at every size.

Shapes. A size written ``LxD`` (``2x32``, ``4x64``) is a shape rather than a count: L blocks of
width d, heads of the rule's head width, and the family's usual MLP width (d_ff = 8/3·d rounded to
a multiple of 8 for the gated MLPs of llama and qwen2, 4·d for opt). At 10⁴–10⁵ parameters the
count rule leaves d at 32 and one block below ~50k and grows only d_ff, which adds little; a
ladder of shapes grows depth and width together instead (the embedded demo uses one).

Named sizes reproduce published architectures (Cuervo & Marxer's textless ladder, Qwen2.5,
OPT-125M, Llama-3.2-3B) for cluster sweeps.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import NamedTuple

from scaling.errors import UserError, unknown_choice
from scaling.spec import ModelSpec, parse_count

FAMILIES = ("llama", "qwen2", "opt")

# name -> (family, n_layers, d_model, n_heads, n_kv_heads, d_ff, tie_embeddings)
NAMED_SIZES: dict[str, tuple[str, int, int, int, int, int, bool]] = {
    # Cuervo & Marxer (2024) textless ladder, Llama-style
    "cm-20M": ("llama", 6, 512, 8, 8, 1376, False),
    "cm-85M": ("llama", 12, 768, 12, 12, 2048, False),
    "cm-155M": ("llama", 12, 1024, 16, 16, 2736, False),
    "cm-309M": ("llama", 24, 1024, 16, 16, 2736, False),
    "cm-823M": ("llama", 16, 2048, 32, 32, 5472, False),
    # text LMs SIMS initialises from (architectures from their public configs)
    "qwen2.5-0.5B": ("qwen2", 24, 896, 14, 2, 4864, True),
    "qwen2.5-1.5B": ("qwen2", 28, 1536, 12, 2, 8960, True),
    "qwen2.5-3B": ("qwen2", 36, 2048, 16, 2, 11008, True),
    "qwen2.5-7B": ("qwen2", 28, 3584, 28, 4, 18944, False),
    "llama-3.2-3B": ("llama", 28, 3072, 24, 8, 8192, True),
    "opt-125m": ("opt", 12, 768, 12, 12, 3072, True),
}


class ParamCounts(NamedTuple):
    """Parameter counts of one model in every convention the results table reports.

    total: every trainable parameter once (a tied output layer counted once).
    non_embedding: total minus token embeddings, position embeddings and an untied output layer.
    embedding: total - non_embedding.
    embedding_speech: the part of ``embedding`` in rows added for speech units and markers
    (input rows, plus output rows when the output layer is untied).
    """

    total: int
    non_embedding: int
    embedding: int
    embedding_speech: int


def _head_width(d: float) -> int:
    return 32 if d < 256 else 64 if d < 2048 else 128


def _block_params(family: str, d: int, d_ff: int, n_heads: int, n_kv_heads: int) -> int:
    """Parameters of one transformer block (no embeddings)."""
    head = d // n_heads
    kv = n_kv_heads * head
    if family == "opt":  # biased projections, 2-matrix MLP, two LayerNorms with bias
        return (2 * d * d + 2 * d * kv + 2 * d + 2 * kv) + (2 * d * d_ff + d_ff + d) + 4 * d
    attn = 2 * d * d + 2 * d * kv + (d + 2 * kv if family == "qwen2" else 0)
    return attn + 3 * d * d_ff + 2 * d  # gated MLP, two RMSNorms


def resolve_model(model: ModelSpec) -> ModelSpec:
    """Fill depth, width, heads and FFN width of ``model`` from its family and size label.

    A size is a name from :data:`NAMED_SIZES`, a shape ``LxD`` ('2x32': 2 blocks of width 32, see
    the module doc) or a target non-embedding parameter count ('1M', '2.5e6', 300000).
    Already-resolved specs are returned unchanged.
    """
    if model.family not in FAMILIES:
        raise unknown_choice("model.family", model.family, FAMILIES)
    if model.n_layers and model.d_model and model.n_heads and model.d_ff:
        return model
    if model.size in NAMED_SIZES:
        family, n_layers, d, heads, kv, d_ff, tie = NAMED_SIZES[model.size]
        if family != model.family:
            raise UserError(f"model.size = {model.size!r} is a {family} architecture, but model.family = {model.family!r}")
        return dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=heads, n_kv_heads=kv, d_ff=d_ff, tie_embeddings=tie)
    shape = re.fullmatch(r"(\d+)x(\d+)", str(model.size))
    if shape:
        return _shape(model, int(shape[1]), int(shape[2]))
    try:
        target = parse_count(model.size, "model.size")
    except UserError:
        raise unknown_choice("model.size (a named size, a shape such as '2x32', or a count such as '1M')", model.size,
                             NAMED_SIZES) from None
    if target < 5_000:
        raise UserError(f"model.size = {model.size!r}: expected at least 5k non-embedding parameters")
    n_layers = max(1, round((target / (12 * 64**2)) ** (1 / 3)))
    d_raw = math.sqrt(target / (12 * n_layers))
    head = _head_width(d_raw)
    d = max(head, int(d_raw // head) * head)
    heads = d // head
    per_block = target / n_layers
    base = _block_params(model.family, d, 0, heads, heads)
    per_ff = _block_params(model.family, d, 1, heads, heads) - base
    d_ff = max(8, round((per_block - base) / per_ff / 8) * 8)
    return dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=heads, n_kv_heads=heads, d_ff=d_ff)


def _shape(model: ModelSpec, n_layers: int, d: int) -> ModelSpec:
    """``model`` with ``n_layers`` blocks of width ``d`` (a size written ``LxD``; see the module doc)."""
    heads = max(1, d // _head_width(d))
    if n_layers < 1 or d < 8 or d % heads:
        raise UserError(f"model.size = {model.size!r}: expected LxD with at least 1 layer and a width of at least 8 that "
                        "splits into heads of 32 (below 256), 64 (below 2048) or 128 (above), e.g. 2x32 or 3x96")
    d_ff = 4 * d if model.family == "opt" else max(8, round(8 * d / 3 / 8) * 8)
    return dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=heads, n_kv_heads=heads, d_ff=d_ff)


def count_params(model: ModelSpec, vocab_size: int, n_added_vocab: int = 0, context: int = 2048) -> ParamCounts:
    """Analytic parameter counts of a resolved model with ``vocab_size`` rows.

    ``n_added_vocab`` rows (speech units and markers) are reported in ``embedding_speech``;
    ``context`` matters only for OPT's learned position embeddings (context + 2 rows).
    Matches ``sum(p.numel() for p in model.parameters())`` of the built model exactly.
    """
    kv = model.n_kv_heads or model.n_heads
    blocks = model.n_layers * _block_params(model.family, model.d_model, model.d_ff, model.n_heads, kv)
    final_norm = 2 * model.d_model if model.family == "opt" else model.d_model
    non_embedding = blocks + final_norm
    out_rows = 0 if model.tie_embeddings else vocab_size
    embedding = (vocab_size + out_rows) * model.d_model
    if model.family == "opt":
        embedding += (context + 2) * model.d_model
    speech = n_added_vocab * model.d_model * (1 if model.tie_embeddings else 2)
    return ParamCounts(non_embedding + embedding, non_embedding, embedding, speech)
