"""RowStack reads blocks of sparse rows (some of them selections) as the one matrix vstack would build."""

import numpy as np
import pytest
from scipy import sparse

from recsys.stores.row_stack import RowStack

pytestmark = pytest.mark.unit


def blocks():
    rng = np.random.default_rng(2)
    first, second = (sparse.random(n, 6, density=0.4, format="csr", random_state=rng, dtype=np.float32)
                     for n in (5, 3))
    selection = np.array([4, 0, 2])
    return RowStack([(first, None), (second, selection[:2] % 3), (first, selection)]), sparse.vstack(
        [first, second[selection[:2] % 3], first[selection]]).tocsr()


def test_rows_and_products_are_those_of_the_stacked_matrix():
    stack, dense = blocks()
    assert stack.shape == dense.shape == (10, 6)
    for rows in ([0], [9, 0, 5, 6], [7, 7, 1], list(range(10))):
        assert np.array_equal(stack[rows].toarray(), dense[rows].toarray())
    assert np.array_equal(stack[6].toarray(), dense[6].toarray())
    vector = np.arange(6, dtype=np.float32)
    assert np.allclose(stack @ vector, dense @ vector)
    assert np.allclose((stack @ dense[[2]].T).toarray(), (dense @ dense[[2]].T).toarray())
    assert np.array_equal(stack.tocsr().toarray(), dense.toarray())


def test_no_rows_and_rows_out_of_range():
    stack, _ = blocks()
    assert stack[[]].shape == (0, 6)
    with pytest.raises(IndexError):
        stack[[10]]
    with pytest.raises(ValueError):
        RowStack([])
