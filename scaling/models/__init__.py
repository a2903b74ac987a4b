"""Model families and sizes: one dial turns a target parameter count into an architecture.

``resolve_model`` fills a :class:`scaling.spec.ModelSpec` (depth, width, heads, FFN width) from a
named size or a target count; ``count_params`` gives the parameter counts in every convention the
results table reports; ``build_model`` (torch) instantiates the transformers model.
"""

from scaling.models.sizes import FAMILIES, NAMED_SIZES, ParamCounts, count_params, resolve_model
from scaling.models.flops import flops_per_token

__all__ = ["FAMILIES", "NAMED_SIZES", "ParamCounts", "count_params", "resolve_model", "flops_per_token"]
