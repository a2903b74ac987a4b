"""Scaling-law fitting: laws (shipped, Python or expressions), Approaches 1-3, bootstrap and
profile intervals, compute-optimal allocation, back-tests, downstream chains, reference laws and a
simulation harness. No plotting here (see scaling.figures).

Conventions: N parameters, D training tokens, C = 6*N*D training FLOPs, loss in nats/token.

Names are imported lazily (on first use), so that ``scaling fit --help`` and the CLI parser do
not pay for scipy and pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "scaling.fit.allocation": ("Allocation", "chinchilla_constants", "compare_allocations", "compute_optimal",
                               "derived_quantities", "has_allocation"),
    "scaling.fit.curves": ("Approach1Result", "approach1"),
    "scaling.fit.isoflop": ("Approach2Refusal", "Approach2Result", "approach2", "group_budgets", "optimal_pairs_fit"),
    "scaling.fit.approach3": ("chinchilla_grid",),
    "scaling.fit.generic": ("Constraints", "FitDidNotConverge"),
    "scaling.fit.backtesting": ("Backtest", "backtest", "holdout_mask"),
    "scaling.fit.chain": ("chain_predict", "predict_at"),
    "scaling.fit.expression": ("expression_law",),
    "scaling.fit.profile": ("ProfileInterval", "profile_interval"),
    "scaling.fit.starts": ("start_grid",),
    "scaling.fit.uncertainty": ("BootstrapResult", "bootstrap"),
    "scaling.fit.fitting": ("fit_law",),
    "scaling.fit.laws": ("LAWS", "Law", "Parameter", "get_law"),
    "scaling.fit.objective": ("log_likelihood",),
    "scaling.fit.powerlaw": ("PowerLaw", "envelope", "power_law_fit"),
    "scaling.fit.references": ("REFERENCE_LAWS", "ReferenceLaw", "reference_law"),
    "scaling.fit.result": ("FitResult",),
    "scaling.fit.simulation": ("simulate", "simulate_fits"),
    "scaling.fit.table": ("load_table",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scaling.fit' has no attribute {name!r}")


def __dir__():
    return __all__
