"""Model families: what the toolkit knows about one architecture family, in one record each.

A :class:`Family` holds its transformers config (built from a resolved
:class:`~scaling.spec.ModelSpec`), its size rule (the parameters of one block, of the final norm,
and of learned position embeddings, from which :mod:`scaling.models.sizes` counts parameters and
derives an architecture from a target size), and its named sizes (published architectures, each
with the size of its published tokenizer, so that sweeps can be planned before the text LMs are
downloaded; see :mod:`scaling.runs.vocabulary`). Adding a family is adding one record to
:data:`FAMILIES`.

Block parameter counts (d = d_model, kv = n_kv_heads · d / n_heads):

* llama: q, o (d·d each), k, v (d·kv each), a gated MLP (3·d·d_ff), two RMSNorms (2·d);
* qwen2: as llama, with biases on q, k, v (d + 2·kv);
* opt: biased q, k, v, o, a two-matrix MLP with biases, two LayerNorms with bias (4·d); a final
  LayerNorm with bias (2·d) and learned positions (context + 2 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from scaling.spec import ModelSpec


@dataclass(frozen=True)
class NamedSize:
    """A published architecture; ``tokenizer``: (tokens, special rows the toolkit adds: a pad when
    the tokenizer has none of its own) of its text LM's published tokenizer, None for textless ones."""

    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    tie_embeddings: bool
    tokenizer: tuple[int, int] | None = None


@dataclass(frozen=True)
class Family:
    """One architecture family (see the module docstring). ``block_params(d, d_ff, n_heads,
    n_kv_heads)``, ``final_norm_params(d)`` and ``position_rows(context)`` count parameters;
    ``config(model, vocab_size, context, pad_id)`` builds the transformers config (dropout off)."""

    name: str
    block_params: Callable[[int, int, int, int], int]
    final_norm_params: Callable[[int], int]
    position_rows: Callable[[int], int]
    config: Callable[[ModelSpec, int, int, int | None], Any]
    sizes: dict[str, NamedSize]


def _kv(d: int, n_heads: int, n_kv_heads: int) -> int:
    return n_kv_heads * (d // n_heads)


def _gated_block(qkv_bias: bool) -> Callable[[int, int, int, int], int]:
    def params(d: int, d_ff: int, n_heads: int, n_kv_heads: int) -> int:
        kv = _kv(d, n_heads, n_kv_heads)
        return 2 * d * d + 2 * d * kv + (d + 2 * kv if qkv_bias else 0) + 3 * d * d_ff + 2 * d
    return params


def _opt_block(d: int, d_ff: int, n_heads: int, n_kv_heads: int) -> int:
    kv = _kv(d, n_heads, n_kv_heads)
    return (2 * d * d + 2 * d * kv + 2 * d + 2 * kv) + (2 * d * d_ff + d_ff + d) + 4 * d


def _common(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None) -> dict[str, Any]:
    return dict(vocab_size=vocab_size, hidden_size=model.d_model, num_hidden_layers=model.n_layers,
                num_attention_heads=model.n_heads, max_position_embeddings=context,
                tie_word_embeddings=model.tie_embeddings, pad_token_id=pad_id)


def _llama_config(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None):
    from transformers import LlamaConfig

    return LlamaConfig(intermediate_size=model.d_ff, num_key_value_heads=model.n_kv_heads or model.n_heads, attention_dropout=0.0,
                       rms_norm_eps=1e-5, **_common(model, vocab_size, context, pad_id))


def _qwen2_config(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None):
    from transformers import Qwen2Config

    return Qwen2Config(intermediate_size=model.d_ff, num_key_value_heads=model.n_kv_heads or model.n_heads, attention_dropout=0.0,
                       rms_norm_eps=1e-6, **_common(model, vocab_size, context, pad_id))


def _opt_config(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None):
    from transformers import OPTConfig

    return OPTConfig(ffn_dim=model.d_ff, word_embed_proj_dim=model.d_model, dropout=0.0, attention_dropout=0.0,
                     activation_dropout=0.0, layerdrop=0.0, do_layer_norm_before=True, **_common(model, vocab_size, context, pad_id))


FAMILIES: dict[str, Family] = {
    "llama": Family("llama", _gated_block(qkv_bias=False), lambda d: d, lambda context: 0, _llama_config, {
        # Cuervo & Marxer (2024) textless ladder, Llama-style
        "cm-20M": NamedSize(6, 512, 8, 8, 1376, False),
        "cm-85M": NamedSize(12, 768, 12, 12, 2048, False),
        "cm-155M": NamedSize(12, 1024, 16, 16, 2736, False),
        "cm-309M": NamedSize(24, 1024, 16, 16, 2736, False),
        "cm-823M": NamedSize(16, 2048, 32, 32, 5472, False),
        # Llama-3.2 (128,256 tokens; no pad)
        "llama-3.2-3B": NamedSize(28, 3072, 24, 8, 8192, True, tokenizer=(128_256, 1)),
    }),
    "qwen2": Family("qwen2", _gated_block(qkv_bias=True), lambda d: d, lambda context: 0, _qwen2_config, {
        # the text LMs SIMS initialises from (Qwen2.5 base: 151,665 tokens; its pad is its eos, so a pad is added)
        "qwen2.5-0.5B": NamedSize(24, 896, 14, 2, 4864, True, tokenizer=(151_665, 1)),
        "qwen2.5-1.5B": NamedSize(28, 1536, 12, 2, 8960, True, tokenizer=(151_665, 1)),
        "qwen2.5-3B": NamedSize(36, 2048, 16, 2, 11008, True, tokenizer=(151_665, 1)),
        "qwen2.5-7B": NamedSize(28, 3584, 28, 4, 18944, False, tokenizer=(151_665, 1)),
    }),
    "opt": Family("opt", _opt_block, lambda d: 2 * d, lambda context: context + 2, _opt_config, {
        # OPT-125M (50,265 tokens; own pad and eos)
        "opt-125m": NamedSize(12, 768, 12, 12, 3072, True, tokenizer=(50_265, 0)),
    }),
}

#: every named size, by name → its family's name
NAMED_SIZES: dict[str, str] = {size: family.name for family in FAMILIES.values() for size in family.sizes}
