"""Factor matrices as the factor tables' `factors ARRAY<FLOAT>` column in Arrow (recsys.contracts.tables), and
back, without Python lists: what a trainer hands Spark, a synthetic model writes to Delta, and the top-k and the
model store read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def factor_column(matrix: np.ndarray) -> pa.Array:
    """A (rows, rank) matrix as a list<float> column, one vector per row."""
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel(), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]).cast(pa.list_(pa.float32()))


def factor_matrix(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A list<float> column of equal-length vectors as a (rows, rank) float32 matrix."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = len(values)
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if rows and flat.size % rows:
        raise ValueError(f"factor vectors of unequal length: {flat.size} values for {rows} rows")
    return flat.reshape(rows, -1) if rows else np.empty((0, 0), np.float32)
