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
  LayerNorm with bias (2·d) and learned positions (context + 2 rows);
* gpt_neox (Pythia) and bloom: a fused biased q, k, v (3·d² + 3·d), a biased output (d² + d), a
  two-matrix MLP with biases (2·d·d_ff + d_ff + d), two LayerNorms with bias (4·d); a final
  LayerNorm (2·d; bloom also normalises the embeddings: 2·d more); no position rows (rotary
  positions on a quarter of each head, or ALiBi). Bloom's MLP is always 4·d wide (``fixed_d_ff``)
  and its attention is eager (ALiBi is a bias on the attention scores, so no fused kernel).

Activations (:class:`ActivationRule`, bytes saved for the backward pass per token) were counted
with ``torch.autograd.graph.saved_tensors_hooks`` on each family's transformers model in the three
precisions training uses (``tests/test_memory_model.py`` checks them against the built models):
fp32 (the CPU), bf16 autocast over fp32 weights (``ddp`` and ``zero1`` on a GPU) and bf16 weights
(``fsdp``'s mixed precision on a GPU).
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


#: the precisions a run computes in: fp32 (CPU), bf16 autocast over fp32 weights, bf16 weights (FSDP)
PRECISIONS = ("fp32", "autocast", "bf16")


@dataclass(frozen=True)
class ActivationRule:
    """Bytes saved for the backward pass per token, for one precision: per decoder block
    ``d·d_model + kv·(n_kv_heads·head width) + ff·d_ff + heads·n_heads + scores·n_heads·context + const``
    (``scores``: eager attention keeps its probabilities, context of them per head and token), and
    outside the blocks (embedding output, final norm) ``base_d·d_model + base``; ``block_input``:
    bytes per d_model of a block's input (all that activation checkpointing keeps of a block)."""

    d: float
    kv: float
    ff: float
    heads: float
    scores: float
    const: float
    base_d: float
    base: float
    block_input: float

    def per_block(self, model: ModelSpec, context: int) -> float:
        """Bytes per token one decoder block saves (``model`` resolved)."""
        kv = (model.n_kv_heads or model.n_heads) * (model.d_model // model.n_heads)
        return (self.d * model.d_model + self.kv * kv + self.ff * model.d_ff + self.heads * model.n_heads
                + self.scores * model.n_heads * context + self.const)

    def outside_blocks(self, model: ModelSpec) -> float:
        """Bytes per token saved outside the decoder blocks."""
        return self.base_d * model.d_model + self.base


@dataclass(frozen=True)
class Family:
    """One architecture family (see the module docstring). ``block_params(d, d_ff, n_heads,
    n_kv_heads)``, ``final_norm_params(d)`` and ``position_rows(context)`` count parameters;
    ``config(model, vocab_size, context, pad_id)`` builds the transformers config (dropout off);
    ``activations``: an :class:`ActivationRule` per precision (:data:`PRECISIONS`); ``attention``:
    the transformers attention implementation; ``fixed_d_ff(d)``: the MLP width when the family
    fixes it (else the size rule solves for it)."""

    name: str
    block_params: Callable[[int, int, int, int], int]
    final_norm_params: Callable[[int], int]
    position_rows: Callable[[int], int]
    config: Callable[[ModelSpec, int, int, int | None], Any]
    sizes: dict[str, NamedSize]
    activations: dict[str, ActivationRule]
    attention: str = "sdpa"
    fixed_d_ff: Callable[[int], int] | None = None


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


def _fused_block(d: int, d_ff: int, n_heads: int, n_kv_heads: int) -> int:
    return (3 * d * d + 3 * d) + (d * d + d) + (2 * d * d_ff + d_ff + d) + 4 * d


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


def _gpt_neox_config(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None):
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(intermediate_size=model.d_ff, hidden_dropout=0.0, attention_dropout=0.0, use_parallel_residual=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
                         **_common(model, vocab_size, context, pad_id))


def _bloom_config(model: ModelSpec, vocab_size: int, context: int, pad_id: int | None):
    from transformers import BloomConfig

    return BloomConfig(vocab_size=vocab_size, hidden_size=model.d_model, n_layer=model.n_layers, n_head=model.n_heads,
                       hidden_dropout=0.0, attention_dropout=0.0, tie_word_embeddings=model.tie_embeddings, pad_token_id=pad_id)


#: activation rules per precision (see the module docstring); bloom's MLP width is 4·d, so its
#: MLP and its key/value terms are folded into ``d``
_GATED = {"fp32": ActivationRule(32, 8, 16, 4, 0, 8, 8, 12, 4), "autocast": ActivationRule(30, 4, 8, 4, 0, 8, 8, 12, 4),
          "bf16": ActivationRule(20, 4, 8, 4, 0, 8, 6, 12, 2)}
_OPT = {"fp32": ActivationRule(32, 0, 4, 4, 0, 16, 4, 24, 4), "autocast": ActivationRule(24, 0, 2, 4, 0, 16, 4, 24, 4),
        "bf16": ActivationRule(16, 0, 2, 4, 0, 8, 2, 20, 2)}
_NEOX = {"fp32": ActivationRule(40, 0, 8, 4, 0, 16, 4, 16, 4), "autocast": ActivationRule(22, 0, 4, 4, 0, 16, 4, 16, 4),
         "bf16": ActivationRule(20, 0, 4, 4, 0, 8, 2, 12, 2)}
_BLOOM = {"fp32": ActivationRule(64, 0, 0, 0, 4, 16, 8, 24, 4), "autocast": ActivationRule(36, 0, 0, 0, 6, 16, 8, 24, 4),
          "bf16": ActivationRule(32, 0, 0, 0, 6, 8, 4, 16, 2)}

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
        # SmolLM2 (49,152 tokens; its pad, where set, is its eos, so a pad is added)
        "smollm2-135M": NamedSize(30, 576, 9, 3, 1536, True, tokenizer=(49_152, 1)),
        "smollm2-360M": NamedSize(32, 960, 15, 5, 2560, True, tokenizer=(49_152, 1)),
        "smollm2-1.7B": NamedSize(24, 2048, 32, 32, 8192, True, tokenizer=(49_152, 1)),
    }, _GATED),
    "qwen2": Family("qwen2", _gated_block(qkv_bias=True), lambda d: d, lambda context: 0, _qwen2_config, {
        # the text LMs SIMS initialises from (Qwen2.5 base: 151,665 tokens; its pad is its eos, so a pad is added)
        "qwen2.5-0.5B": NamedSize(24, 896, 14, 2, 4864, True, tokenizer=(151_665, 1)),
        "qwen2.5-1.5B": NamedSize(28, 1536, 12, 2, 8960, True, tokenizer=(151_665, 1)),
        "qwen2.5-3B": NamedSize(36, 2048, 16, 2, 11008, True, tokenizer=(151_665, 1)),
        "qwen2.5-7B": NamedSize(28, 3584, 28, 4, 18944, False, tokenizer=(151_665, 1)),
    }, _GATED),
    "opt": Family("opt", _opt_block, lambda d: 2 * d, lambda context: context + 2, _opt_config, {
        # OPT-125M (50,265 tokens; own pad and eos)
        "opt-125m": NamedSize(12, 768, 12, 12, 3072, True, tokenizer=(50_265, 0)),
    }, _OPT),
    "gpt_neox": Family("gpt_neox", _fused_block, lambda d: 2 * d, lambda context: 0, _gpt_neox_config, {
        # Pythia (the GPT-NeoX-20B tokenizer: 50,277 tokens, no pad; untied input and output embeddings)
        "pythia-70m": NamedSize(6, 512, 8, 8, 2048, False, tokenizer=(50_277, 1)),
        "pythia-160m": NamedSize(12, 768, 12, 12, 3072, False, tokenizer=(50_277, 1)),
        "pythia-410m": NamedSize(24, 1024, 16, 16, 4096, False, tokenizer=(50_277, 1)),
        "pythia-1b": NamedSize(16, 2048, 8, 8, 8192, False, tokenizer=(50_277, 1)),
        "pythia-1.4b": NamedSize(24, 2048, 16, 16, 8192, False, tokenizer=(50_277, 1)),
        "pythia-2.8b": NamedSize(32, 2560, 32, 32, 10240, False, tokenizer=(50_277, 1)),
        "pythia-6.9b": NamedSize(32, 4096, 32, 32, 16384, False, tokenizer=(50_277, 1)),
    }, _NEOX),
    "bloom": Family("bloom", _fused_block, lambda d: 4 * d, lambda context: 0, _bloom_config, {
        # BLOOM (250,680 tokens with their own pad; tied embeddings)
        "bloom-560m": NamedSize(24, 1024, 16, 16, 4096, True, tokenizer=(250_680, 0)),
        "bloom-1b1": NamedSize(24, 1536, 16, 16, 6144, True, tokenizer=(250_680, 0)),
        "bloom-1b7": NamedSize(24, 2048, 16, 16, 8192, True, tokenizer=(250_680, 0)),
        "bloom-3b": NamedSize(30, 2560, 32, 32, 10240, True, tokenizer=(250_680, 0)),
        "bloom-7b1": NamedSize(30, 4096, 32, 32, 16384, True, tokenizer=(250_680, 0)),
    }, _BLOOM, attention="eager", fixed_d_ff=lambda d: 4 * d),
}

#: every named size, by name → its family's name
NAMED_SIZES: dict[str, str] = {size: family.name for family in FAMILIES.values() for size in family.sizes}
