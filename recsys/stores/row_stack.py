"""Sparse rows kept in blocks and read as one matrix.

A served model's content profiles are a million shared rows; a live catalogue change adds a few. scipy's
vstack copies every block, so growing by stacking would give each worker a private copy of all of them per
change. A RowStack keeps the blocks as they are (a block may be a selection of another's rows) and answers the
two things serving asks of a profile matrix: some rows, and its product with a profile.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

Block = tuple[sparse.csr_matrix, np.ndarray | None]  # a matrix, and which of its rows (None: all, in order)


class RowStack:
    """The rows of each block in turn."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        if not blocks:
            raise ValueError("a RowStack needs at least one block")
        self._blocks = [(matrix, None if rows is None else np.asarray(rows, dtype=np.int64))
                        for matrix, rows in blocks]
        sizes = [matrix.shape[0] if rows is None else len(rows) for matrix, rows in self._blocks]
        self._starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.shape = (int(self._starts[-1]), int(blocks[0][0].shape[1]))

    def __getitem__(self, rows: int | Sequence[int] | np.ndarray) -> sparse.csr_matrix:
        """The csr matrix of those rows, in that order (one row for an int)."""
        wanted = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self.shape[0]):
            raise IndexError(f"row out of range for a stack of {self.shape[0]} rows")
        block = np.searchsorted(self._starts, wanted, side="right") - 1
        parts, order = [], []
        for b in np.unique(block).tolist():
            matrix, selection = self._blocks[b]
            at = np.flatnonzero(block == b)
            local = wanted[at] - self._starts[b]
            parts.append(matrix[local if selection is None else selection[local]])
            order.append(at)
        if not parts:
            return sparse.csr_matrix((0, self.shape[1]), dtype=self._blocks[0][0].dtype)
        stacked = sparse.vstack(parts).tocsr()
        return stacked[np.argsort(np.concatenate(order), kind="stable")]

    def __matmul__(self, other):
        """Each block's product, its selected rows, one after the other: a vector for a vector."""
        products = []
        for matrix, selection in self._blocks:
            product = matrix @ other
            products.append(product if selection is None else product[selection])
        if sparse.issparse(products[0]):
            return sparse.vstack(products).tocsr()
        return np.concatenate(products)

    def tocsr(self) -> sparse.csr_matrix:
        """Every row in one matrix: a copy (for checks, never on a request)."""
        return self[np.arange(self.shape[0])]
