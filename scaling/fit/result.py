"""The typed result of a fit, with its JSON form (full precision, round-trips exactly)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.errors import UserError
from scaling.fit.laws import get_law

ALLOCATION_PARAMS = ("k_n", "a", "k_d", "b")  # N*(C) = k_n * C^a, D*(C) = k_d * C^b (Approaches 1 and 2)


@dataclass(frozen=True)
class FitResult:
    """A fitted law or allocation.

    law: law name (``chinchilla``, ...). params: natural-unit parameters; for the Chinchilla law
    ``E``, ``A``, ``B``, ``alpha``, ``beta`` (loss in nats/token, N parameters, D tokens). For
    Approaches 1 and 2 the params are the compute-optimal power laws N*(C) = k_n*C^a and
    D*(C) = k_d*C^b (C in FLOPs). objective: the minimised objective (Huber sum on
    log-residuals, or r^2/2 sum, or the Huber negative log-likelihood; sum of squared log
    residuals of the power laws for Approaches 1-2). n_points: points fitted. approach: 1, 2 or 3.
    intervals: percentile intervals by parameter or derived quantity (empty without bootstrap).
    diagnostics: optimiser details (starts reaching the best objective, convergence, warnings).
    provenance: what was fitted how (data selection, law, approach, loss, delta, starts, seed).
    """

    law: str
    params: dict[str, float]
    objective: float
    n_points: int
    approach: int
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def predict(self, n=None, d=None, **inputs) -> np.ndarray:
        """Predicted loss for parameters ``n`` and tokens ``d`` (numpy broadcasting); other
        inputs by name (``c`` FLOPs for ``kaplan_compute``, default 6*N*D; ``u`` unique tokens
        for ``data_constrained``)."""
        if self.approach != 3:
            raise UserError(f"an Approach-{self.approach} fit estimates the allocation N*(C), D*(C), not a loss; "
                            "use compute_optimal() or fit with approach 3")
        law = get_law(self.law)
        given = {"n": n, "d": d, **inputs}
        if given.get("c") is None and n is not None and d is not None:
            given["c"] = 6.0 * np.asarray(n, float) * np.asarray(d, float)
        missing = [k for k in law.inputs if given.get(k) is None]
        if missing:
            raise UserError(f"law {law.name} needs inputs {', '.join(law.inputs)}; missing {', '.join(missing)}")
        return np.asarray(law.predict(self.params, {k: np.asarray(given[k], float) for k in law.inputs}))

    def to_json(self) -> dict:
        """A JSON-ready dict; floats keep full precision (Python's repr round-trips them)."""
        return {"law": self.law, "approach": self.approach, "params": dict(self.params),
                "objective": self.objective, "n_points": self.n_points,
                "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
                "diagnostics": _plain(self.diagnostics), "provenance": _plain(self.provenance)}

    @classmethod
    def from_json(cls, data: dict) -> "FitResult":
        """Rebuild a result written by :meth:`to_json`."""
        try:
            return cls(law=data["law"], params={k: float(v) for k, v in data["params"].items()},
                       objective=float(data["objective"]), n_points=int(data["n_points"]),
                       approach=int(data["approach"]),
                       intervals={k: (float(v[0]), float(v[1])) for k, v in data.get("intervals", {}).items()},
                       diagnostics=data.get("diagnostics", {}), provenance=data.get("provenance", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"not a fit JSON: {exc!r}; expected keys law, approach, params, objective, n_points") from None


def _plain(value):
    """Convert numpy scalars/arrays and tuples to JSON types; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value
