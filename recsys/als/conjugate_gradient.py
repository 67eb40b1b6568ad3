"""One ALS half-step for implicit feedback, solved by conjugate gradient: Spark MLlib's equations, cheaper solves.

For each row u (a user against the item factors Y, or an item against the user factors) MLlib solves

    (YᵀY + Σ c_ui y_i y_iᵀ + λ n_u I) x_u = Σ (1 + c_ui) y_i [over the u's positive strengths],

c_ui = alpha |strength|, n_u = the row's positive strengths (ALS-WR's weighted λ). MLlib builds that k x k system
for every row (one rank-one update per interaction, O(nnz k²)) and factors it. Conjugate gradient, as the
`implicit` library does (Takács et al., 2011), never forms it: a few steps from the previous sweep's vector, each
one pass over the row's interactions (O(nnz k) per step). At rank 64 and three steps a sweep costs about a tenth.
With enough steps it reaches MLlib's exact solution (tests check that); `implicit`'s own solver cannot be used as
it has one λ for every row, not MLlib's λ n_u, the regularisation the project's tuned parameters are in.

The loop is compiled by numba: per-interaction work on a few dozen floats is what Python and numpy cannot do
fast. Compiled code is cached on disk where numba can (NUMBA_CACHE_DIR, else beside the module or a user cache).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _compiled(function):
    """njit with an on-disk cache; without one where no cache directory is writable (a read-only zip, no home)."""
    try:
        return njit(nogil=True, fastmath=True, cache=True)(function)
    except RuntimeError:
        return njit(nogil=True, fastmath=True)(function)


@_compiled
def _solve_rows(indptr, indices, strengths, own, other, gram, reg, alpha, steps):  # pragma: no cover (compiled)
    n, k = own.shape
    r = np.empty(k, np.float32)
    p = np.empty(k, np.float32)
    ap = np.empty(k, np.float32)
    for u in range(n):
        start, end = indptr[u], indptr[u + 1]
        x = own[u]
        count = 0
        for j in range(start, end):
            if strengths[j] > 0:
                count += 1
        lam = np.float32(reg * count)
        for a in range(k):  # r = b - A x, the dense part first
            acc = np.float32(0.0)
            for b in range(k):
                acc += gram[a, b] * x[b]
            r[a] = -acc - lam * x[a]
        for j in range(start, end):
            y = other[indices[j]]
            c1 = alpha * abs(strengths[j])
            yx = np.float32(0.0)
            for a in range(k):
                yx += y[a] * x[a]
            w = (np.float32(1.0) + c1 if strengths[j] > 0 else np.float32(0.0)) - c1 * yx
            for a in range(k):
                r[a] += w * y[a]
        rs = np.float32(0.0)
        for a in range(k):
            p[a] = r[a]
            rs += r[a] * r[a]
        for _ in range(steps):
            if rs < 1e-20:
                break
            for a in range(k):  # ap = A p without forming A
                acc = np.float32(0.0)
                for b in range(k):
                    acc += gram[a, b] * p[b]
                ap[a] = acc + lam * p[a]
            for j in range(start, end):
                y = other[indices[j]]
                yp = np.float32(0.0)
                for a in range(k):
                    yp += y[a] * p[a]
                yp *= alpha * abs(strengths[j])
                for a in range(k):
                    ap[a] += yp * y[a]
            pap = np.float32(0.0)
            for a in range(k):
                pap += p[a] * ap[a]
            if pap <= 0:
                break
            step = rs / pap
            rs_new = np.float32(0.0)
            for a in range(k):
                x[a] += step * p[a]
                r[a] -= step * ap[a]
                rs_new += r[a] * r[a]
            for a in range(k):
                p[a] = r[a] + (rs_new / rs) * p[a]
            rs = rs_new


def solve_rows(indptr: np.ndarray, indices: np.ndarray, strengths: np.ndarray, own: np.ndarray,
               other: np.ndarray, reg: float, alpha: float, steps: int) -> np.ndarray:
    """New factors of the rows of a CSR block (row u's interactions are indices/strengths[indptr[u]:indptr[u+1]]
    into `other`), `steps` CG steps from `own` (the previous sweep's factors, float32, one row per CSR row)."""
    other = np.ascontiguousarray(other, dtype=np.float32)
    gram = other.T @ other
    solved = np.array(own, dtype=np.float32, order="C")  # a copy: the previous factors stay as they were
    _solve_rows(np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int32),
                np.asarray(strengths, dtype=np.float32), solved, other, gram, np.float32(reg), np.float32(alpha),
                int(steps))
    return solved


def initial_factors(n: int, rank: int, seed: int) -> np.ndarray:
    """Unit-length Gaussian vectors, as MLlib starts its factors."""
    factors = np.random.default_rng(seed).standard_normal((n, rank), dtype=np.float32)
    return factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), np.float32(1e-12))
