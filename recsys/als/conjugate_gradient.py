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

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CsrBlock:
    """Rows of one side (users or items) with their interactions: row r is ids[r], its interactions are
    indices[indptr[r]:indptr[r + 1]] (rows of the other side's factors) with those strengths."""

    ids: np.ndarray  # int32, sorted: which rows of this side's factors the block holds
    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32
    strengths: np.ndarray  # float32

    @classmethod
    def of(cls, own: np.ndarray, other: np.ndarray, strengths: np.ndarray) -> CsrBlock:
        """The block of interactions (own[j], other[j], strengths[j]); each one stays a term of its own, as MLlib
        keeps repeated pairs."""
        order = np.argsort(own, kind="stable")
        mine = own[order]
        ids, starts = np.unique(mine, return_index=True)
        return cls(ids.astype(np.int32), np.append(starts, mine.size).astype(np.int64),
                   np.asarray(other)[order].astype(np.int32), np.asarray(strengths, dtype=np.float32)[order])

    def rows(self, start: int, end: int) -> CsrBlock:
        """Rows [start, end) as a block of their own."""
        first, last = self.indptr[start], self.indptr[end]
        return CsrBlock(self.ids[start:end], self.indptr[start:end + 1] - first, self.indices[first:last],
                        self.strengths[first:last])


def solve_rows(block: CsrBlock, own: np.ndarray, other: np.ndarray, reg: float, alpha: float, steps: int,
               threads: int = 1) -> np.ndarray:
    """New factors of the block's rows: `steps` CG steps from `own` (the previous sweep's factors of those rows,
    float32) against `other` (the other side's factors). `threads` > 1 solves slices of about equal interactions
    at once (the compiled loop releases the GIL)."""
    other = np.ascontiguousarray(other, dtype=np.float32)
    gram = other.T @ other
    solved = np.array(own, dtype=np.float32, order="C")  # a copy: the previous factors stay as they were
    n = len(block.ids)
    bounds = np.searchsorted(block.indptr, np.linspace(0, block.indptr[-1], max(threads, 1) + 1)[1:-1])
    edges = [0, *sorted(set(np.clip(bounds, 0, n).tolist())), n]

    def solve(start: int, end: int) -> None:
        part = block.rows(start, end)
        _solve_rows(part.indptr, part.indices, part.strengths, solved[start:end], other, gram, np.float32(reg),
                    np.float32(alpha), int(steps))

    slices = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
    if len(slices) <= 1:
        for a, b in slices:
            solve(a, b)
        return solved
    with ThreadPoolExecutor(len(slices)) as pool:
        list(pool.map(lambda bounds: solve(*bounds), slices))
    return solved


def load_kernel() -> None:
    """Compile the loop, or load it from numba's cache, now rather than at the first solve: about 0.3 s (and
    ~70 MB of LLVM) that a caller can overlap with work of its own. Types as solve_rows passes them."""
    _solve_rows(np.zeros(1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32), np.empty((0, 1), np.float32),
                np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), np.float32(0), np.float32(0), 1)


def initial_factors(n: int, rank: int, seed: int) -> np.ndarray:
    """Unit-length Gaussian vectors, as MLlib starts its factors."""
    factors = np.random.default_rng(seed).standard_normal((n, rank), dtype=np.float32)
    return factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), np.float32(1e-12))
