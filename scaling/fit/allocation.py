"""Compute-optimal allocation: how to split a FLOP budget C between parameters N and tokens D.

Convention: C = 6*N*D (training FLOPs of a dense transformer, forward + backward). For the
Chinchilla law the optimum is closed-form (Hoffmann et al. 2022, Eq. 4):

    N_opt = G*(C/6)^a,  D_opt = (C/6)^b / G,  G = (alpha*A/(beta*B))^(1/(alpha+beta)),
    a = beta/(alpha+beta),  b = alpha/(alpha+beta).

Every other law whose inputs follow from N and D at a budget (N, D, C = 6ND, M = D/N, and a
given number of unique tokens U for the data-constrained law) is minimised numerically along
N*D = C/6; a law that reads anything else (only C, a loss, a bound column) has no allocation and
says so. Approach-1/2 fits carry the power laws N*(C) = k_n*C^a and D*(C) = k_d*C^b directly.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scaling.errors import UserError
from scaling.fit.laws import Law, get_law
from scaling.fit.result import ALLOCATION_PARAMS, FitResult


class Allocation(NamedTuple):
    """Compute-optimal split of budgets ``c`` (FLOPs): parameters ``n_opt``, tokens ``d_opt``,
    ``tokens_per_param`` = d_opt/n_opt, and the predicted loss there (NaN when the fit has no
    loss law). Scalars for a scalar C, arrays otherwise."""

    c: np.ndarray | float
    n_opt: np.ndarray | float
    d_opt: np.ndarray | float
    tokens_per_param: np.ndarray | float
    loss: np.ndarray | float


def chinchilla_constants(params: Mapping[str, float]) -> dict[str, float]:
    """G, a, b of the closed-form Chinchilla allocation (see module docstring)."""
    alpha, beta = params["alpha"], params["beta"]
    if not (alpha > 0 and beta > 0):
        raise UserError(f"alpha={alpha:.6g} and beta={beta:.6g} must both be positive for a compute-optimal allocation")
    s = alpha + beta
    G = (alpha * params["A"] / (beta * params["B"])) ** (1.0 / s)
    return {"G": G, "a": beta / s, "b": alpha / s}


def compute_optimal(fit_or_params: FitResult | Mapping[str, float], C, law: str | Law = "chinchilla",
                    unique_tokens: float | None = None) -> Allocation:
    """Compute-optimal N*, D*, D/N (and loss) at budget(s) ``C`` in FLOPs (C = 6*N*D).

    ``fit_or_params``: a :class:`FitResult`, or a params dict of ``law`` (Chinchilla keys E, A,
    B, alpha, beta; or the allocation keys k_n, a, k_d, b of Approaches 1-2). ``unique_tokens``:
    U for the data-constrained law (default: the fit's, from its data). A law without an
    allocation raises UserError saying so.
    """
    if isinstance(fit_or_params, FitResult):
        params = fit_or_params.params
        allocation_only = fit_or_params.approach != 3
        law = fit_or_params.law if allocation_only else fit_or_params.law_object()
        if unique_tokens is None:
            unique_tokens = fit_or_params.provenance.get("unique_tokens")
    else:
        params = dict(fit_or_params)
        allocation_only = set(ALLOCATION_PARAMS) <= set(params)
    c = np.asarray(C, dtype=float)
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise UserError(f"compute budget C={np.asarray(C).tolist()} must be positive FLOPs")
    if allocation_only:
        n_opt, d_opt = params["k_n"] * c ** params["a"], params["k_d"] * c ** params["b"]
        loss = np.full_like(c, np.nan)
    elif get_law(law).name == "chinchilla":
        k = chinchilla_constants(params)
        n_opt = k["G"] * (c / 6) ** k["a"]
        d_opt = (c / 6) ** k["b"] / k["G"]
        loss = get_law(law).predict(params, {"n": n_opt, "d": d_opt})
    else:
        n_opt, loss = _numeric_optimum(params, get_law(law), c, unique_tokens)
        d_opt = c / (6 * n_opt)
    out = Allocation(c, n_opt, d_opt, d_opt / n_opt, loss)
    return Allocation(*(float(v) for v in out)) if c.ndim == 0 else out


ALLOCATION_INPUTS = ("n", "d", "c", "m", "u")


def has_allocation(law: Law) -> str | None:
    """None when ``law`` has a compute-optimal allocation, else why not (one line)."""
    if not set(law.inputs) <= set(ALLOCATION_INPUTS):
        other = [k for k in law.inputs if k not in ALLOCATION_INPUTS]
        return f"no allocation for law {law.name}: it reads {', '.join(other)}, which a compute budget does not fix"
    if not set(law.inputs) & {"n", "d", "m"}:
        return (f"no allocation for law {law.name}: it reads only {', '.join(law.inputs)}, so every split of a budget "
                "between N and D predicts the same loss")
    return None


def _numeric_optimum(params, law, c, unique_tokens):
    reason = has_allocation(law)
    if reason:
        raise UserError(reason)
    if "u" in law.inputs and unique_tokens is None:
        raise UserError(f"law {law.name} needs the number of unique tokens U for an allocation (--unique-tokens)")
    n_opt, loss = np.empty(c.shape), np.empty(c.shape)
    for i, ci in np.ndenumerate(c):
        total = np.log(ci / 6)
        x = np.linspace(0.02, 0.98, 481) * total            # log N; log D = total - log N

        def f(log_n):
            n, d = np.exp(log_n), np.exp(total - log_n)
            inputs = {"n": n, "d": d, "c": np.full_like(n, ci), "m": d / n, "u": np.full_like(n, unique_tokens or 1.0)}
            with np.errstate(all="ignore"):
                return law.predict(params, {k: inputs[k] for k in law.inputs})

        k = int(np.argmin(f(x)))
        if k in (0, len(x) - 1):
            raise UserError(f"law {law.name} has no interior compute-optimal N at C={ci:.4g} FLOPs")
        res = minimize_scalar(f, bounds=(x[k - 1], x[k + 1]), method="bounded", options={"xatol": 1e-10})
        n_opt[i], loss[i] = np.exp(res.x), res.fun
    return n_opt, loss


def derived_quantities(params: Mapping[str, float], law: str | Law, approach: int, targets_c=(),
                       unique_tokens: float | None = None) -> dict[str, float]:
    """Quantities derived from a fit, by name: ``a``, ``b`` (exponents of N*, D* in C), ``G``
    (Chinchilla), ``M_opt`` (the over-training law's compute-optimal D/N), and at every target
    budget C: ``n_opt@C``, ``d_opt@C``, ``tokens_per_param@C`` and (with a loss law)
    ``loss_opt@C``. C is written as ``%.3g``. A law without an allocation raises UserError."""
    out: dict[str, float] = {}
    if approach != 3:
        out["a"], out["b"] = params["a"], params["b"]
    elif get_law(law).name == "chinchilla":
        out.update(chinchilla_constants(params))
    elif get_law(law).name == "overtraining":
        out["M_opt"] = (params["b"] / params["a"]) ** (1.0 / (2.0 * params["eta"]))
    elif targets_c:
        reason = has_allocation(get_law(law))
        if reason:
            raise UserError(reason)
    for c in targets_c:
        tag = f"@{c:.3g}"
        alloc = compute_optimal(params, c, law, unique_tokens) if approach == 3 else compute_optimal(
            {k: params[k] for k in ALLOCATION_PARAMS}, c)
        out["n_opt" + tag], out["d_opt" + tag] = alloc.n_opt, alloc.d_opt
        out["tokens_per_param" + tag] = alloc.tokens_per_param
        if np.isfinite(alloc.loss):
            out["loss_opt" + tag] = alloc.loss
    return out


def compare_allocations(fits: Mapping[str, FitResult | Mapping[str, float]], C) -> pd.DataFrame:
    """Side-by-side compute-optimal allocations of several fits at the same budgets ``C``.

    One row per (budget, fit) with columns c, fit, n_opt, d_opt, tokens_per_param, loss and
    n_ratio / d_ratio relative to the first fit (e.g. interleaved vs textless SLMs).
    """
    rows = []
    budgets = np.atleast_1d(np.asarray(C, dtype=float))
    first = None
    for name, fit in fits.items():
        alloc = compute_optimal(fit, budgets)
        first = first or alloc
        for i, c in enumerate(budgets):
            rows.append({"c": c, "fit": name, "n_opt": alloc.n_opt[i], "d_opt": alloc.d_opt[i],
                         "tokens_per_param": alloc.tokens_per_param[i], "loss": alloc.loss[i],
                         "n_ratio": alloc.n_opt[i] / first.n_opt[i], "d_ratio": alloc.d_opt[i] / first.d_opt[i]})
    return pd.DataFrame(rows).sort_values("c", kind="stable").reset_index(drop=True)
