"""Batched Newton minimisation of the Chinchilla objective, for thousands of starts at once.

The Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta is fitted in log space (Hoffmann et al.
2022, Approach 3): with A = e^a, B = e^b, E = e^e the prediction of log L is

    LSE(a - alpha*log N, b - beta*log D, e),      LSE = log-sum-exp,

and the objective is sum_i w_i * rho(LSE_i - log L_i), with rho the Huber function of threshold
delta (or r^2/2 for least squares, i.e. delta = inf). Internal coordinates are
``theta = (a, b, e, alpha, beta)``.

Everything here works on a batch of S parameter vectors at once: residuals are (S, P) arrays and
every sum over points is a matrix product with a fixed (P, k) table of features
(1, x1, x2, x1^2, x2^2, x1*x2), so the exact gradient and Hessian of all starts cost a few passes
over one array. log N and log D are centred (a' = a - alpha*mean(log N)), which removes the strong
a-alpha and b-beta correlation; the step is a Levenberg-Marquardt-damped, saddle-free Newton
step (|eigenvalues| + lambda) computed from the batched 5x5 eigendecomposition.

Fixed and tied parameters are an affine map from the free coordinates z to the full centred
vector: theta_c = z @ J.T + o (see :class:`Parametrisation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PARAMS = ("a", "b", "e", "alpha", "beta")
_INDEX = {name: i for i, name in enumerate(PARAMS)}


@dataclass(frozen=True)
class Problem:
    """One data set in log space: centred log N and log D, log loss, optional point weights.

    ``weights`` is None (all ones), a (P,) array shared by every start, or an (S, P) array with
    one weight row per start (bootstrap resamples). ``delta`` is the Huber threshold on
    log-residuals (nats of log loss); ``np.inf`` gives least squares r^2/2.
    """

    x1: np.ndarray
    x2: np.ndarray
    ly: np.ndarray
    m1: float
    m2: float
    delta: float
    weights: np.ndarray | None = None
    _tables: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_data(cls, n, d, y, delta: float, weights=None) -> "Problem":
        """Build from parameters N, tokens D and loss y (all positive arrays of one length P)."""
        x1 = np.log(np.asarray(n, dtype=float))
        x2 = np.log(np.asarray(d, dtype=float))
        m1, m2 = float(x1.mean()), float(x2.mean())
        w = None if weights is None else np.asarray(weights, dtype=float)
        return cls(x1 - m1, x2 - m2, np.log(np.asarray(y, dtype=float)), m1, m2, float(delta), w)

    def restricted(self, rows) -> "Problem":
        """The same problem on a subset of the points, re-centred (shared weights follow the rows)."""
        x1, x2 = self.x1[rows] + self.m1, self.x2[rows] + self.m2
        m1, m2 = float(x1.mean()), float(x2.mean())
        w = None if self.weights is None else self.weights[..., rows]
        return Problem(x1 - m1, x2 - m2, self.ly[rows], m1, m2, self.delta, w)

    def tables(self, dtype) -> dict:
        """Per-point arrays in ``dtype``: x1, x2, log y and the feature table
        (1, x1, x2, x1^2, x2^2, x1*x2) with shared weights folded in; cached per dtype."""
        key = np.dtype(dtype).str
        if key not in self._tables:
            x1, x2 = self.x1, self.x2
            feats = np.stack([np.ones_like(x1), x1, x2, x1 * x1, x2 * x2, x1 * x2], axis=1)
            if self.weights is not None and self.weights.ndim == 1:
                feats = feats * self.weights[:, None]
            self._tables[key] = {"x1": x1.astype(dtype), "x2": x2.astype(dtype),
                                 "ly": self.ly.astype(dtype), "F": feats.astype(dtype)}
        return self._tables[key]


@dataclass(frozen=True)
class Parametrisation:
    """Which internal coordinates are free: ``fixed`` maps names in PARAMS to values (a = log A,
    e = log E, ...); ``tie`` makes beta equal to alpha. Free coordinates are the centred ones."""

    fixed: tuple[tuple[str, float], ...] = ()
    tie: bool = False

    @property
    def free(self) -> tuple[str, ...]:
        """Names of the free coordinates, in PARAMS order (beta omitted when tied)."""
        fixed = dict(self.fixed)
        return tuple(p for p in PARAMS if p not in fixed and not (self.tie and p == "beta"))

    def affine(self, m1: float, m2: float) -> tuple[np.ndarray, np.ndarray]:
        """(J, o) with theta_centred = z @ J.T + o for free centred coordinates z."""
        free = self.free
        o = self._centred(np.zeros(len(free)), m1, m2)
        J = np.stack([self._centred(np.eye(len(free))[k], m1, m2) - o for k in range(len(free))], axis=1)
        return J, o

    def _centred(self, z: np.ndarray, m1: float, m2: float) -> np.ndarray:
        values = dict(self.fixed)
        values.update(zip(self.free, z))
        alpha = values["alpha"]
        beta = alpha if self.tie else values["beta"]
        # A fixed pins a = a' + alpha*m1, so a' = a - alpha*m1 follows alpha; likewise B.
        a_c = values["a"] - alpha * m1 if "a" in dict(self.fixed) else values["a"]
        b_c = values["b"] - beta * m2 if "b" in dict(self.fixed) else values["b"]
        return np.array([a_c, b_c, values["e"], alpha, beta])

    def to_free(self, theta: np.ndarray, m1: float, m2: float) -> np.ndarray:
        """Free centred coordinates of (S, 5) original-coordinate starts (constraints imposed)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float)).copy()
        for name, value in self.fixed:
            theta[:, _INDEX[name]] = value
        if self.tie:
            theta[:, 4] = theta[:, 3]
        centred = to_centred(theta, m1, m2)
        return centred[:, [_INDEX[p] for p in self.free]]

    def to_original(self, z: np.ndarray, m1: float, m2: float) -> np.ndarray:
        """(S, 5) original coordinates (a, b, e, alpha, beta) of free centred coordinates z."""
        J, o = self.affine(m1, m2)
        return from_centred(np.atleast_2d(z) @ J.T + o, m1, m2)


def to_centred(theta: np.ndarray, m1: float, m2: float) -> np.ndarray:
    """Map (a, b, e, alpha, beta) to centred coordinates (a - alpha*m1, b - beta*m2, e, alpha, beta)."""
    out = np.array(theta, dtype=float, copy=True)
    out[:, 0] -= out[:, 3] * m1
    out[:, 1] -= out[:, 4] * m2
    return out


def from_centred(theta_c: np.ndarray, m1: float, m2: float) -> np.ndarray:
    """Inverse of :func:`to_centred`."""
    out = np.array(theta_c, dtype=float, copy=True)
    out[:, 0] += out[:, 3] * m1
    out[:, 1] += out[:, 4] * m2
    return out


ABSOLUTE_FLOOR = 1e-30  # per point: below rounding of a squared log-residual (~1e-32)
_BLOCK = 1 << 16  # elements per (rows, points) work array: blocks stay in cache, buffers are reused

_WORK = ("p1", "p2", "p3", "m", "s", "r", "ar", "c", "rho", "d1", "d2", "dd")
_UPPER = np.triu_indices(5, 1)


def evaluate(problem: Problem, theta_c: np.ndarray, dtype=np.float64, rows=None):
    """Objective (S,), gradient (S, 5) and Hessian (S, 5, 5) at centred parameters (S, 5).

    ``rows`` gives, for per-start weights (S_w, P), which weight row each of the S vectors uses
    (default: row i for vector i). The work is done in blocks of rows with preallocated
    temporaries, which keeps it in cache and avoids fresh allocations for every pass.
    """
    theta_c = np.atleast_2d(theta_c)
    S, P = theta_c.shape[0], problem.x1.size
    f, g, H = np.empty(S), np.empty((S, 5)), np.empty((S, 5, 5))
    w = problem.weights
    per_start = w is not None and w.ndim == 2
    if per_start and rows is None:
        rows = np.arange(S)
    step = max(1, min(S, _BLOCK // max(1, P)))
    buf = {k: np.empty((step, P), dtype) for k in _WORK}
    buf["q"] = np.empty((9, step, P), dtype)
    for lo in range(0, S, step):
        sl = slice(lo, min(S, lo + step))
        wb = w[rows[sl]].astype(dtype) if per_start else None
        f[sl], g[sl], H[sl] = _evaluate_block(problem, theta_c[sl].astype(dtype), wb, buf)
    return f, g, H


def _evaluate_block(problem: Problem, T: np.ndarray, wb, buf):
    X = problem.tables(T.dtype)
    delta = problem.delta
    n = T.shape[0]
    p1, p2, p3, m, s, r, ar, c, rho, d1, d2, dd = (buf[k][:n] for k in _WORK)
    q = buf["q"][:, :n]
    np.multiply(T[:, 3:4], X["x1"], out=p1)
    np.subtract(T[:, 0:1], p1, out=p1)            # u1 = a' - alpha*x1
    np.multiply(T[:, 4:5], X["x2"], out=p2)
    np.subtract(T[:, 1:2], p2, out=p2)            # u2 = b' - beta*x2
    np.maximum(p1, p2, out=m)
    np.maximum(m, T[:, 2:3], out=m)
    np.exp(np.subtract(p1, m, out=p1), out=p1)
    np.exp(np.subtract(p2, m, out=p2), out=p2)
    np.exp(np.subtract(T[:, 2:3], m, out=p3), out=p3)
    np.add(p1, p2, out=s)
    s += p3
    np.log(s, out=r)
    r += m
    r -= X["ly"]                                  # residual of log loss
    p1 /= s                                       # softmax weights of the three terms
    p2 /= s
    p3 /= s
    np.abs(r, out=ar)
    np.minimum(ar, delta, out=c)
    np.multiply(c, 0.5, out=rho)
    np.subtract(ar, rho, out=rho)
    rho *= c                                      # Huber: c*(|r| - c/2), c = min(|r|, delta)
    np.minimum(np.maximum(r, -delta, out=d1), delta, out=d1)   # rho'
    np.less_equal(ar, delta, out=d2, casting="unsafe")   # rho''
    if wb is not None:
        rho *= wb
        d1 *= wb
        d2 *= wb
    F = X["F"]
    f = rho @ F[:, 0]
    # Hessian of LSE in its arguments is diag(p) - p p^T, so the objective's second derivatives
    # are sums of q_jk = rho'' p_j p_k + rho' (delta_jk p_j - p_j p_k) times point features.
    np.subtract(d2, d1, out=dd)
    for k, pk in enumerate((p1, p2, p3)):
        np.multiply(d1, pk, out=q[k])             # rho' p_k (gradient terms)
        np.multiply(dd, pk, out=q[3 + k])
        q[3 + k] *= pk
        q[3 + k] += q[k]
    for k, (pj, pk) in enumerate(((p1, p2), (p1, p3), (p2, p3))):
        np.multiply(dd, pj, out=q[6 + k])
        q[6 + k] *= pk
    R = np.matmul(q, F).astype(np.float64)       # (9, n, 6): sums times 1, x1, x2, x1^2, x2^2, x1*x2
    g = np.empty((n, 5))
    g[:, 0], g[:, 1], g[:, 2] = R[0, :, 0], R[1, :, 0], R[2, :, 0]
    g[:, 3], g[:, 4] = -R[0, :, 1], -R[1, :, 2]
    H = np.empty((n, 5, 5))
    H[:, 0, 0], H[:, 0, 3], H[:, 3, 3] = R[3, :, 0], -R[3, :, 1], R[3, :, 3]
    H[:, 1, 1], H[:, 1, 4], H[:, 4, 4] = R[4, :, 0], -R[4, :, 2], R[4, :, 4]
    H[:, 2, 2] = R[5, :, 0]
    H[:, 0, 1], H[:, 0, 4], H[:, 1, 3], H[:, 3, 4] = R[6, :, 0], -R[6, :, 2], -R[6, :, 1], R[6, :, 5]
    H[:, 0, 2], H[:, 2, 3] = R[7, :, 0], -R[7, :, 1]
    H[:, 1, 2], H[:, 2, 4] = R[8, :, 0], -R[8, :, 2]
    H[:, _UPPER[1], _UPPER[0]] = H[:, _UPPER[0], _UPPER[1]]
    return f.astype(np.float64), g, H


@dataclass(frozen=True)
class NewtonResult:
    """Outcome per start: free centred coordinates ``z`` (S, k), objective ``f``, Newton
    decrement at the last point (predicted further decrease), iterations, and status flags:
    ``converged`` (decrement <= rtol*f), ``stalled`` (no decrease possible at any damping)."""

    z: np.ndarray
    f: np.ndarray
    decrement: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    stalled: np.ndarray


def minimise(problem: Problem, z0: np.ndarray, param: Parametrisation, *, dtype=np.float64,
             max_iter: int = 500, rtol: float = 1e-14, max_step: float = 5.0,
             lam0: float = 1e-3, rows=None) -> NewtonResult:
    """Damped Newton from every row of ``z0`` (free centred coordinates) until each converges.

    Convergence of a start: the Newton decrement g^T (|H| + lambda)^-1 g / 2 (the decrease the
    local quadratic model still promises) is at most ``rtol`` times the objective (plus
    ABSOLUTE_FLOOR per point, for exact fits), a criterion relative to the objective's own scale
    (the objective is ~1e-3 and its gradient ~1e-5 on real data, so absolute tolerances on the
    gradient would stop early). A start whose step is rejected at every
    damping up to 1e3 x the curvature scale is marked stalled. Steps are capped at ``max_step``
    (max-norm, in nats / exponent units). ``dtype`` float32 is for cheap screening only.
    ``rows`` maps starts to weight rows when the problem has per-start weights.
    """
    J, o = param.affine(problem.m1, problem.m2)
    identity = J.shape == (5, 5) and np.array_equal(J, np.eye(5)) and not o.any()
    z = np.array(np.atleast_2d(z0), dtype=float, copy=True)
    S = z.shape[0]
    rows = np.arange(S) if rows is None else np.asarray(rows)

    def free_eval(zz, rr):
        f, g, H = evaluate(problem, zz if identity else zz @ J.T + o, dtype, rr)
        return (f, g, H) if identity else (f, g @ J, J.T @ H @ J)

    f, g, H = free_eval(z, rows)
    usable = _finite(f, g, H)            # a start where the law overflows takes no step
    f = np.where(usable, f, np.inf)
    H[~usable] = np.eye(H.shape[1])
    g[~usable] = 0.0
    ev, V = np.linalg.eigh(H)            # recomputed only where a step is accepted
    w = problem.weights
    total = float(problem.x1.size if w is None else (w.sum() if w.ndim == 1 else w.sum(axis=1).max()))
    floor = ABSOLUTE_FLOOR * total       # an exact fit has f ~ 0: no relative criterion can hold there
    lam = np.full(S, lam0)
    dec = np.full(S, np.inf)
    active = usable.copy()
    iters = np.zeros(S, dtype=int)
    converged = np.zeros(S, dtype=bool)
    stalled = np.zeros(S, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        absev = np.abs(ev[idx])
        d = absev + lam[idx, None] * (absev.max(axis=1, keepdims=True) + 1e-300)
        gv = np.einsum("sji,sj->si", V[idx], g[idx])
        dec[idx] = 0.5 * np.sum(gv * gv / d, axis=1)
        done = dec[idx] <= rtol * f[idx] + floor
        converged[idx[done]] = True
        active[idx[done]] = False
        keep = ~done
        idx, gv, d = idx[keep], gv[keep], d[keep]
        if idx.size == 0:
            break
        step = -np.einsum("sij,sj->si", V[idx], gv / d)
        size = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, max_step / np.maximum(size, 1e-300))[:, None]
        z_new = z[idx] + step
        f_new, g_new, H_new = free_eval(z_new, rows[idx])
        ok = (f_new < f[idx]) & _finite(f_new, g_new, H_new)
        iters[idx] += 1
        acc = idx[ok]
        z[acc], f[acc], g[acc] = z_new[ok], f_new[ok], g_new[ok]
        if acc.size:
            ev[acc], V[acc] = np.linalg.eigh(H_new[ok])
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-15)
        rej = idx[~ok]
        lam[rej] *= 5.0
        stuck = rej[lam[rej] > 1e3]
        stalled[stuck] = True
        active[stuck] = False
    return NewtonResult(z, f, dec, iters, converged, stalled)


def _finite(f, g, H) -> np.ndarray:
    """Rows whose objective, gradient and Hessian are all finite."""
    return np.isfinite(f) & np.isfinite(g).all(axis=1) & np.isfinite(H).all(axis=(1, 2))
