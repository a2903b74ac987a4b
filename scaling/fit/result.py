"""The typed result of a fit, with its JSON form (full precision, round-trips exactly)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from scaling.errors import UserError
from scaling.fit.laws import LAWS, Law, get_law

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
    samples: the parameters of every successful bootstrap refit, by name (empty without
    bootstrap): they carry the uncertainty into predictions and chains.
    law_definition: the :class:`~scaling.fit.laws.Law` itself when it is not a shipped one (a law
    defined in Python; not saved in JSON, pass it to :meth:`from_json` again).
    """

    law: str
    params: dict[str, float]
    objective: float
    n_points: int
    approach: int
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    law_definition: Law | None = field(default=None, compare=False, repr=False)

    def law_object(self) -> Law:
        """The fitted :class:`~scaling.fit.laws.Law` (rebuilt from its expression when it was one)."""
        if self.approach != 3:
            raise UserError(f"an Approach-{self.approach} fit estimates the allocation N*(C), D*(C), not a loss; "
                            "use compute_optimal() or fit with approach 3")
        if self.law_definition is not None:
            return self.law_definition
        expression = self.provenance.get("expression")
        if expression:
            return get_law(expression, tuple(self.provenance.get("bound") or ()))
        if self.law not in LAWS:
            raise UserError(f"law {self.law!r} was defined in Python and is not saved in the fit JSON; "
                            "rebuild the result with FitResult.from_json(data, law=YOUR_LAW)")
        return LAWS[self.law]

    def predict(self, n=None, d=None, params: Mapping[str, float] | None = None, **inputs) -> np.ndarray:
        """Predicted loss (or metric, for downstream laws) for parameters ``n`` and tokens ``d``
        (numpy broadcasting); other inputs by name (``c`` FLOPs, default 6*N*D; ``u`` unique tokens;
        ``m`` = D/N, derived; ``x`` the input of a downstream law; bound expression inputs).
        ``params`` replaces the fitted parameters (e.g. one bootstrap sample)."""
        law = self.law_object()
        given = {"n": n, "d": d, **inputs}
        if n is not None and d is not None:
            nn, dd = np.asarray(n, float), np.asarray(d, float)
            given["c"] = 6.0 * nn * dd if given.get("c") is None else given["c"]
            given["m"] = dd / nn if given.get("m") is None else given["m"]
        missing = [k for k in law.inputs if given.get(k) is None]
        if missing:
            raise UserError(f"law {law.name} needs inputs {', '.join(law.inputs)}; missing {', '.join(missing)}")
        values = dict(self.params if params is None else params)
        with np.errstate(all="ignore"):
            return np.asarray(law.predict(values, {k: np.asarray(given[k], float) for k in law.inputs}))

    def sample_params(self) -> list[dict[str, float]]:
        """The bootstrap refits' parameters, one dict per resample (empty without bootstrap)."""
        names = list(self.samples)
        return [dict(zip(names, values)) for values in zip(*(self.samples[k] for k in names))]

    def to_json(self) -> dict:
        """A JSON-ready dict; floats keep full precision (Python's repr round-trips them)."""
        return {"law": self.law, "approach": self.approach, "params": dict(self.params),
                "objective": self.objective, "n_points": self.n_points,
                "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
                "samples": _plain(self.samples),
                "diagnostics": _plain(self.diagnostics), "provenance": _plain(self.provenance)}

    @classmethod
    def from_json(cls, data: dict, law: Law | None = None) -> "FitResult":
        """Rebuild a result written by :meth:`to_json` (``law``: the Law of a fit whose law was
        defined in Python)."""
        try:
            return cls(law=data["law"], params={k: float(v) for k, v in data["params"].items()},
                       objective=float(data["objective"]), n_points=int(data["n_points"]),
                       approach=int(data["approach"]),
                       intervals={k: (float(v[0]), float(v[1])) for k, v in data.get("intervals", {}).items()},
                       diagnostics=data.get("diagnostics", {}), provenance=data.get("provenance", {}),
                       samples={k: [float("nan") if x is None else float(x) for x in v]
                                for k, v in (data.get("samples") or {}).items()},
                       law_definition=law)
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
