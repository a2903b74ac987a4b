"""Model families and sizes: one dial turns a target parameter count into an architecture.

A family is one record (:mod:`scaling.models.families`: config, size rule, named sizes and their
tokenizers). ``resolve_model`` fills a :class:`scaling.spec.ModelSpec` (depth, width, heads, FFN
width) from a named size or a target count; ``count_params`` gives the parameter counts in every
convention the results table reports; ``build_model`` (torch) instantiates the transformers model.
"""

from scaling.models.families import FAMILIES, NAMED_SIZES, Family, NamedSize
from scaling.models.flops import flops_per_token
from scaling.models.sizes import ParamCounts, count_params, resolve_model

__all__ = ["FAMILIES", "NAMED_SIZES", "Family", "NamedSize", "ParamCounts", "count_params", "resolve_model", "flops_per_token"]
