"""FLOPs per trained token, in the conventions the results table reports.

* ``6nd``: 6·N per token with N = all parameters (Kaplan/Chinchilla's C ≈ 6·N·D; SIMS compares
  runs at equal 6·N·D with N the total count).
* ``6nd_nonembed``: 6·N with N = non-embedding parameters.
* ``exact``: forward + backward (backward = 2 × forward) of the matmuls that really run, after
  Hoffmann et al. (2022, Appendix F): every block's projections 2·(block params), the attention
  scores and the weighted sum 2·2·L·T·d (T = context, the full square, as computed without a
  causal kernel), and the output logits 2·d·V. Embedding lookups and norms cost no FLOPs here.
"""

from __future__ import annotations

from scaling.models.sizes import ParamCounts
from scaling.spec import ModelSpec


def flops_per_token(model: ModelSpec, counts: ParamCounts, vocab_size: int, context: int) -> dict[str, float]:
    """FLOPs per trained token in each convention: keys ``6nd``, ``6nd_nonembed``, ``exact``."""
    forward = 2 * counts.non_embedding + 4 * model.n_layers * context * model.d_model + 2 * model.d_model * vocab_size
    return {
        "6nd": 6.0 * counts.total,
        "6nd_nonembed": 6.0 * counts.non_embedding,
        "exact": 3.0 * forward,
    }
