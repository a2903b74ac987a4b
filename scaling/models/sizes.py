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
  to well under 5 % at every size (a family that fixes its MLP width, as bloom's 4·d, keeps it;
  its blocks are then about 12·d² as the rule assumes).

Shapes. A size written ``LxD`` (``2x32``, ``4x64``) is a shape rather than a count: L blocks of
width d, heads of the rule's head width, and the family's usual MLP width (d_ff = 8/3·d rounded to
a multiple of 8 for the gated MLPs of llama and qwen2, 4·d for the plain MLPs of the others). At 10⁴–10⁵ parameters the
count rule leaves d at 32 and one block below ~50k and grows only d_ff, which adds little; a
ladder of shapes grows depth and width together instead (the embedded demo uses one).

Named sizes reproduce published architectures (Cuervo & Marxer's textless ladder, Qwen2.5,
OPT-125M, Llama-3.2-3B, SmolLM2, Pythia, BLOOM) for cluster sweeps. What differs between families (block layout, norms,
positions, named sizes) is each family's record in :mod:`scaling.models.families`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import NamedTuple

from scaling.errors import UserError, unknown_choice
from scaling.models.families import FAMILIES, NAMED_SIZES
from scaling.spec import ModelSpec, parse_count

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


def _heads(d: int) -> int:
    """Attention heads of width ``d`` in a family whose widths are multiples of 8: about
    :func:`_head_width` wide, dividing ``d``."""
    heads = max(1, round(d / _head_width(d)))
    while d % heads:
        heads -= 1
    return heads


def _fixed_ff_params(model: ModelSpec, n_layers: int, d: int) -> int:
    """Non-embedding parameters of ``model``'s family (one whose FFN width is fixed by the width)
    at ``n_layers`` × ``d``."""
    family = FAMILIES[model.family]
    shape = dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=_heads(d), n_kv_heads=_heads(d), d_ff=family.fixed_d_ff(d))
    return count_params(shape, vocab_size=1).non_embedding


def resolve_model(model: ModelSpec) -> ModelSpec:
    """Fill depth, width, heads and FFN width of ``model`` from its family and size label.

    A size is a name from :data:`~scaling.models.families.NAMED_SIZES`, a shape ``LxD`` ('2x32': 2 blocks
    of width 32, see the module doc) or a target non-embedding parameter count ('1M', '2.5e6', 300000).
    Already-resolved specs are returned unchanged.
    """
    if model.family not in FAMILIES:
        raise unknown_choice("model.family", model.family, FAMILIES)
    if model.n_layers and model.d_model and model.n_heads and model.d_ff:
        return model
    if model.size in NAMED_SIZES:
        family = NAMED_SIZES[model.size]
        if family != model.family:
            raise UserError(f"model.size = {model.size!r} is a {family} architecture, but model.family = {model.family!r}")
        s = FAMILIES[family].sizes[model.size]
        return dataclasses.replace(model, n_layers=s.n_layers, d_model=s.d_model, n_heads=s.n_heads, n_kv_heads=s.n_kv_heads,
                                   d_ff=s.d_ff, tie_embeddings=s.tie_embeddings)
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
    family = FAMILIES[model.family]
    if family.fixed_d_ff is not None:  # the FFN width follows the width: hit the target with the width, in steps of 8
        d = min(range(8, 2 * int(d_raw) + 16, 8), key=lambda w: abs(_fixed_ff_params(model, n_layers, w) - target))
        heads, d_ff = _heads(d), family.fixed_d_ff(d)
    else:
        base = family.block_params(d, 0, heads, heads)
        per_ff = family.block_params(d, 1, heads, heads) - base
        d_ff = max(8, round((target / n_layers - base) / per_ff / 8) * 8)
    return dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=heads, n_kv_heads=heads, d_ff=d_ff)


#: families whose MLP is gated (three d × d_ff matrices): a shape gives them d_ff ≈ 8/3·d, the others 4·d
GATED_MLP = ("llama", "qwen2")


def _shape(model: ModelSpec, n_layers: int, d: int) -> ModelSpec:
    """``model`` with ``n_layers`` blocks of width ``d`` (a size written ``LxD``; see the module doc)."""
    heads = max(1, d // _head_width(d))
    if n_layers < 1 or d < 8 or d % heads:
        raise UserError(f"model.size = {model.size!r}: expected LxD with at least 1 layer and a width of at least 8 that "
                        "splits into heads of 32 (below 256), 64 (below 2048) or 128 (above), e.g. 2x32 or 3x96")
    d_ff = max(8, round(8 * d / 3 / 8) * 8) if model.family in GATED_MLP else 4 * d
    return dataclasses.replace(model, n_layers=n_layers, d_model=d, n_heads=heads, n_kv_heads=heads, d_ff=d_ff)


def count_params(model: ModelSpec, vocab_size: int, n_added_vocab: int = 0, context: int = 2048) -> ParamCounts:
    """Analytic parameter counts of a resolved model with ``vocab_size`` rows.

    ``n_added_vocab`` rows (speech units and markers) are reported in ``embedding_speech``;
    ``context`` matters only for learned position embeddings (OPT: context + 2 rows).
    Matches ``sum(p.numel() for p in model.parameters())`` of the built model exactly.
    """
    family = FAMILIES[model.family]
    kv = model.n_kv_heads or model.n_heads
    blocks = model.n_layers * family.block_params(model.d_model, model.d_ff, model.n_heads, kv)
    non_embedding = blocks + family.final_norm_params(model.d_model)
    out_rows = 0 if model.tie_embeddings else vocab_size
    embedding = (vocab_size + out_rows + family.position_rows(context)) * model.d_model
    speech = n_added_vocab * model.d_model * (1 if model.tie_embeddings else 2)
    return ParamCounts(non_embedding + embedding, non_embedding, embedding, speech)
