"""The CG half-step solves MLlib's implicit-ALS equations: exactly with enough steps, closer with each step."""

import numpy as np
import pytest
from scipy import sparse

from recsys.als.conjugate_gradient import CsrBlock, initial_factors, solve_rows

pytestmark = pytest.mark.unit

REG, ALPHA, RANK = 0.3, 2.0, 6


def mllib_solution(block: sparse.csr_matrix, other: np.ndarray) -> np.ndarray:
    """Each row's exact solution of MLlib's normal equations, written out the way ALS.scala builds them:
    YᵀY + Σ alpha|r| y yᵀ + reg * (positive ratings) I against Σ (1 + alpha r) y over positive ratings."""
    y = other.astype(np.float64)
    out = np.zeros((block.shape[0], y.shape[1]))
    for u in range(block.shape[0]):
        row = slice(block.indptr[u], block.indptr[u + 1])
        cols, values = block.indices[row], block.data[row]
        a, b = y.T @ y, np.zeros(y.shape[1])
        for col, value in zip(cols, values, strict=True):
            c1 = ALPHA * abs(value)
            a += c1 * np.outer(y[col], y[col])
            if value > 0:
                b += (1 + c1) * y[col]
        a += REG * int((values > 0).sum()) * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, b)
    return out


@pytest.fixture(scope="module")
def block() -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    dense = rng.random((12, 30)) * (rng.random((12, 30)) < 0.3) * 3
    dense[0, 0] = -1.0  # a negative strength: confidence on the left, nothing on the right
    dense[:, 1] += 0.5  # every row has at least one interaction
    return sparse.csr_matrix(dense.astype(np.float32)), initial_factors(12, RANK, 1), initial_factors(30, RANK, 2)


def _solve(matrix: sparse.csr_matrix, own, other, steps: int, threads: int = 1) -> np.ndarray:
    block = CsrBlock(np.arange(matrix.shape[0], dtype=np.int32), matrix.indptr.astype(np.int64),
                     matrix.indices.astype(np.int32), matrix.data.astype(np.float32))
    return solve_rows(block, own, other, REG, ALPHA, steps, threads)


def test_enough_steps_reach_mllibs_exact_solution(block):
    matrix, own, other = block
    assert np.allclose(_solve(matrix, own, other, 50), mllib_solution(matrix, other), atol=1e-4)


def test_each_step_comes_closer_and_the_start_is_left_alone(block):
    matrix, own, other = block
    before = own.copy()
    exact = mllib_solution(matrix, other)
    errors = [np.abs(_solve(matrix, own, other, steps) - exact).max() for steps in (1, 2, 3, RANK)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4 < errors[0]
    assert np.array_equal(own, before)


def test_a_row_already_solved_stays_where_it_is(block):
    matrix, _, other = block
    exact = mllib_solution(matrix, other).astype(np.float32)
    assert np.allclose(_solve(matrix, exact, other, 3), exact, atol=1e-4)


def test_initial_factors_are_seeded_unit_vectors():
    first, again = initial_factors(5, RANK, 7), initial_factors(5, RANK, 7)
    assert np.array_equal(first, again) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert not np.array_equal(first, initial_factors(5, RANK, 8))


def test_threads_solve_slices_of_the_same_rows(block):
    matrix, own, other = block
    assert np.array_equal(_solve(matrix, own, other, 3, threads=3), _solve(matrix, own, other, 3))


def test_a_block_keeps_each_interaction_and_its_rows_in_id_order():
    block = CsrBlock.of(np.asarray([5, 2, 5, 2, 9]), np.asarray([0, 1, 2, 1, 3]),
                        np.asarray([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert block.ids.tolist() == [2, 5, 9] and block.indptr.tolist() == [0, 2, 4, 5]
    assert block.indices.tolist() == [1, 1, 0, 2, 3]  # the repeated pair (2, 1) stays two terms, as in MLlib
    assert block.strengths.tolist() == [2.0, 4.0, 1.0, 3.0, 5.0]
    tail = block.rows(1, 3)
    assert tail.ids.tolist() == [5, 9] and tail.indptr.tolist() == [0, 2, 3] and tail.indices.tolist() == [0, 2, 3]


def test_load_kernel_compiles_what_solve_rows_calls():
    """Loaded ahead (to overlap with a collect), the kernel has the one signature a solve then uses: no second
    compile at the first sweep."""
    from recsys.als.conjugate_gradient import _solve_rows, load_kernel

    load_kernel()
    assert len(_solve_rows.signatures) == 1
    rng = np.random.default_rng(3)
    block = CsrBlock.of(rng.integers(0, 30, 200), rng.integers(0, 20, 200), rng.random(200, dtype=np.float32))
    solve_rows(block, initial_factors(30, 4, 1)[block.ids], initial_factors(20, 4, 2), 0.1, 1.0, 2, threads=2)
    assert len(_solve_rows.signatures) == 1
